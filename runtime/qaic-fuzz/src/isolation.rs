// SPDX-License-Identifier: MIT OR Apache-2.0
//! Isolation between open files, processes and users.
//!
//! The owner opens the node, activates a channel, creates buffer objects
//! (one attached to its channel, one not) and maps them. A peer then tries
//! to use them: from a second open file of the same process, from another
//! process, and from another process running as another user. Each attempt
//! must fail with the errno of the uapi specification, as the upstream C
//! driver returns it. The peer also checks that its own objects and channel
//! work (so the refusals mean something), and after each peer the owner
//! checks that its channel and objects still work.
//!
//! Handles are per file: the owner's objects get handle numbers the peer
//! never uses for its own, so a refusal means "not yours", not "yours, but
//! another object".

use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use libc::{EACCES, EINVAL, ENOENT, EPERM};
use qaic::uapi::{self, qaic_execute_entry, qaic_partial_execute_entry, qaic_perf_stats_entry};
use qaic::{Bo, Device, Direction, Error, ManageMsg, Slice};

use crate::errnos;
use crate::fuzz::{DDR_BASE, DDR_WINDOW};
use crate::sys::{self, Map};

/// PASS/FAIL bookkeeping, one line per case.
#[derive(Default)]
pub struct Report {
    /// Prefix of every case name.
    pub prefix: String,
    /// Passed cases.
    pub passed: u32,
    /// Failed cases.
    pub failed: u32,
}

impl Report {
    fn pass(&mut self, name: &str) {
        println!("PASS {}{name}", self.prefix);
        self.passed += 1;
    }

    fn fail(&mut self, name: &str, why: impl std::fmt::Display) {
        println!("FAIL {}{name} - {why}", self.prefix);
        self.failed += 1;
    }

    /// Passes on `Ok`.
    pub fn ok<T>(&mut self, name: &str, r: qaic::Result<T>) -> Option<T> {
        match r {
            Ok(v) => {
                self.pass(name);
                Some(v)
            }
            Err(e) => {
                self.fail(name, e);
                None
            }
        }
    }

    /// Passes when `r` failed with `errno`.
    pub fn errno<T>(&mut self, name: &str, r: Result<T, i32>, errno: i32) {
        match r {
            Err(e) if e == errno => self.pass(name),
            Err(e) => self.fail(
                name,
                format!("expected {}, got {}", errnos::name(errno), errnos::name(e)),
            ),
            Ok(_) => self.fail(
                name,
                format!("expected {}, got success", errnos::name(errno)),
            ),
        }
    }
}

fn errno_of<T>(r: qaic::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.errno().unwrap_or(-1))
}

/// Bare channel activation.
fn activate(dev: &Device) -> qaic::Result<u32> {
    let r = dev.manage(&ManageMsg::new().activate(64, 0))?;
    r.activate()
        .map(|a| a.dbc_id)
        .ok_or_else(|| Error::Protocol("no activate answer".into()))
}

/// An object of `size` bytes attached to `dbc` from device memory of that channel's window.
fn attached(dev: &Device, dbc: u32, size: u64, dir: Direction) -> qaic::Result<Bo> {
    let mut bo = dev.create_bo(size)?;
    bo.attach(
        dbc,
        dir,
        &[Slice::new(0, size, DDR_BASE + u64::from(dbc) * DDR_WINDOW)],
    )?;
    Ok(bo)
}

/// Execute and wait: the channel and the object work.
fn run_once(dev: &Device, dbc: u32, bo: &Bo) -> qaic::Result<()> {
    dev.execute(dbc, &[bo])?;
    dev.wait(bo, dbc, Some(Duration::from_secs(5)))
}

/// What the owner hands to a peer.
#[derive(Clone, Copy, Debug)]
pub struct Foreign {
    /// The owner's attached object.
    pub x: u32,
    /// The owner's unattached object.
    pub y: u32,
    /// Fake mmap offsets of `x` and `y` in the owner's file.
    pub off_x: u64,
    /// See `off_x`.
    pub off_y: u64,
    /// The owner's channel.
    pub dbc: u32,
}

impl Foreign {
    /// As command-line arguments of `isolation-peer`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--x".into(),
            self.x.to_string(),
            "--y".into(),
            self.y.to_string(),
            "--off-x".into(),
            self.off_x.to_string(),
            "--off-y".into(),
            self.off_y.to_string(),
            "--dbc".into(),
            self.dbc.to_string(),
        ]
    }
}

/// The peer's side: every attempt on the owner's objects and channel.
pub fn peer(rep: &mut Report, node: &str, f: Foreign) {
    let Some(dev) = rep.ok("open", Device::open(node)) else {
        return;
    };
    // the peer's own channel and objects (handles 1 and 2 of its file)
    let Some(b) = rep.ok("own-activate", activate(&dev)) else {
        return;
    };
    rep.ensure(
        "own-channel-differs",
        b != f.dbc,
        format!("got the owner's DBC {b}"),
    );
    let Some(z) = rep.ok("own-attach", attached(&dev, b, 4096, Direction::FromDevice)) else {
        return;
    };
    let Some(w) = rep.ok("own-create", dev.create_bo(4096)) else {
        return;
    };
    rep.ensure(
        "handles-distinct",
        ![z.handle(), w.handle()].contains(&f.x) && ![z.handle(), w.handle()].contains(&f.y),
        format!(
            "own handles {} {} collide with {} {}",
            z.handle(),
            w.handle(),
            f.x,
            f.y
        ),
    );

    // buffer objects of another file: unknown here
    rep.errno(
        "mmap-bo-foreign-handle",
        errno_of(dev.mmap_offset_raw(f.x)),
        ENOENT,
    );
    rep.errno(
        "mmap-foreign-offset-attached",
        Map::new(dev.as_fd(), f.off_x, 4096).map(|_| ()),
        EACCES,
    );
    rep.errno(
        "mmap-foreign-offset-unattached",
        Map::new(dev.as_fd(), f.off_y, 4096).map(|_| ()),
        EACCES,
    );
    let hdr = |handle: u32, dbc_id: u32| uapi::qaic_attach_slice_hdr {
        count: 1,
        dbc_id,
        handle,
        dir: 2,
        size: 0,
    };
    let entry = |dbc: u32| uapi::qaic_attach_slice_entry {
        size: 4096,
        dev_addr: DDR_BASE + u64::from(dbc) * DDR_WINDOW,
        ..Default::default()
    };
    rep.errno(
        "attach-foreign-handle",
        errno_of(dev.attach_slice_raw(hdr(f.y, b), &[entry(b)])),
        ENOENT,
    );
    rep.errno(
        "attach-foreign-attached-handle",
        errno_of(dev.attach_slice_raw(hdr(f.x, b), &[entry(b)])),
        ENOENT,
    );
    rep.errno(
        "attach-to-foreign-dbc",
        errno_of(dev.attach_slice_raw(hdr(w.handle(), f.dbc), &[entry(f.dbc)])),
        EINVAL,
    );
    let e = |handle| qaic_execute_entry { handle, dir: 2 };
    rep.errno(
        "execute-foreign-handle",
        errno_of(dev.execute_raw(1, b, &[e(f.x)])),
        ENOENT,
    );
    rep.errno(
        "execute-on-foreign-dbc",
        errno_of(dev.execute_raw(1, f.dbc, &[e(z.handle())])),
        EPERM,
    );
    rep.errno(
        "execute-foreign-handle-on-foreign-dbc",
        errno_of(dev.execute_raw(1, f.dbc, &[e(f.x)])),
        EPERM,
    );
    let pe = |handle| qaic_partial_execute_entry {
        handle,
        dir: 2,
        resize: 0,
    };
    rep.errno(
        "partial-execute-foreign-handle",
        errno_of(dev.partial_execute_raw(1, b, &[pe(f.x)])),
        ENOENT,
    );
    rep.errno(
        "partial-execute-on-foreign-dbc",
        errno_of(dev.partial_execute_raw(1, f.dbc, &[pe(z.handle())])),
        EPERM,
    );
    let wait = |handle, dbc_id| uapi::qaic_wait {
        handle,
        timeout: 100,
        dbc_id,
        pad: 0,
    };
    rep.errno(
        "wait-foreign-handle",
        errno_of(dev.wait_raw(wait(f.x, b))),
        ENOENT,
    );
    rep.errno(
        "wait-on-foreign-dbc",
        errno_of(dev.wait_raw(wait(z.handle(), f.dbc))),
        EPERM,
    );
    rep.errno(
        "wait-foreign-handle-on-foreign-dbc",
        errno_of(dev.wait_raw(wait(f.x, f.dbc))),
        EPERM,
    );
    let ps = |handle| qaic_perf_stats_entry {
        handle,
        ..Default::default()
    };
    rep.errno(
        "perf-stats-foreign-handle",
        errno_of(dev.perf_stats_raw(f.dbc, &mut [ps(f.x)])),
        ENOENT,
    );
    rep.errno(
        "perf-stats-own-bo-foreign-dbc",
        errno_of(dev.perf_stats_raw(f.dbc, &mut [ps(z.handle())])),
        EINVAL,
    );
    rep.errno(
        "detach-foreign-handle",
        errno_of(dev.detach_slice_raw(uapi::qaic_detach_slice {
            handle: f.x,
            pad: 0,
        })),
        ENOENT,
    );
    rep.errno(
        "gem-close-foreign-handle",
        errno_of(dev.gem_close_raw(f.x)),
        EINVAL,
    );
    rep.errno(
        "prime-export-foreign-handle",
        sys::prime_export(dev.as_fd(), f.x, uapi::DRM_CLOEXEC | uapi::DRM_RDWR).map(|_| ()),
        ENOENT,
    );
    rep.errno(
        "deactivate-foreign-dbc",
        errno_of(dev.manage(&ManageMsg::new().deactivate(f.dbc))),
        EPERM,
    );
    // and its own things work
    rep.ok("own-execute-wait", run_once(&dev, b, &z));
    drop((z, w));
}

impl Report {
    /// Passes when `cond` holds.
    pub fn ensure(&mut self, name: &str, cond: bool, why: impl std::fmt::Display) {
        if cond {
            self.pass(name);
        } else {
            self.fail(name, why);
        }
    }
}

/// The owner's side: sets up, runs the peers (same process, other process,
/// other user when `uid` is given), checks its own objects after each.
pub fn owner(node: &str, uid: Option<(u32, u32)>) -> Report {
    let mut rep = Report::default();
    let Some(dev) = rep.ok("owner-open", Device::open(node)) else {
        return rep;
    };
    // eight objects first, so that the two under test have handles the peers never get
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Some(b) = rep.ok("owner-filler", dev.create_bo(4096)) {
            fillers.push(b);
        }
    }
    let Some(a) = rep.ok("owner-activate", activate(&dev)) else {
        return rep;
    };
    let Some(x) = rep.ok(
        "owner-attach",
        attached(&dev, a, 8192, Direction::FromDevice),
    ) else {
        return rep;
    };
    let Some(y) = rep.ok("owner-create", dev.create_bo(4096)) else {
        return rep;
    };
    let (Some(off_x), Some(off_y)) = (
        rep.ok("owner-mmap-bo", dev.mmap_offset_raw(x.handle())),
        rep.ok("owner-mmap-bo", dev.mmap_offset_raw(y.handle())),
    ) else {
        return rep;
    };
    rep.ok("owner-execute-wait", run_once(&dev, a, &x));
    let f = Foreign {
        x: x.handle(),
        y: y.handle(),
        off_x,
        off_y,
        dbc: a,
    };

    let check_owner = |rep: &mut Report, ctx: &str| {
        rep.ok(
            &format!("{ctx}-owner-still-executes"),
            run_once(&dev, a, &x),
        );
        let mapped = Map::new(dev.as_fd(), off_y, 4096).map(|mut m| m.touch(0x5a));
        rep.ensure(
            &format!("{ctx}-owner-still-maps"),
            mapped == Ok(true),
            format!("{mapped:?}"),
        );
        rep.ok(&format!("{ctx}-owner-perf-stats"), dev.perf_stats(a, &[&x]));
    };

    // 1. another open file of the same process
    let mut sub = Report {
        prefix: "file-".into(),
        ..Default::default()
    };
    peer(&mut sub, node, f);
    rep.passed += sub.passed;
    rep.failed += sub.failed;
    check_owner(&mut rep, "file");

    // 2. another process, 3. another user
    let exe = std::env::current_exe().expect("own executable");
    let mut runs = vec![("process", None)];
    if let Some(u) = uid {
        runs.push(("user", Some(u)));
    }
    for (ctx, who) in runs {
        let mut cmd = Command::new(&exe);
        cmd.args(["isolation-peer", "-d", node, "--prefix", &format!("{ctx}-")]);
        cmd.args(f.args());
        if let Some((u, g)) = who {
            cmd.args(["--uid", &u.to_string(), "--gid", &g.to_string()]);
        }
        match cmd.output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                print!("{text}");
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                let (p, fl) = text.lines().fold((0, 0), |(p, fl), l| {
                    if l.starts_with("PASS ") {
                        (p + 1, fl)
                    } else if l.starts_with("FAIL ") {
                        (p, fl + 1)
                    } else {
                        (p, fl)
                    }
                });
                rep.passed += p;
                rep.failed += fl;
                rep.ensure(
                    &format!("{ctx}-peer-ran"),
                    p + fl > 0 && out.status.code().is_some(),
                    format!("peer exited with {}", out.status),
                );
            }
            Err(e) => rep.fail(&format!("{ctx}-peer-ran"), e),
        }
        check_owner(&mut rep, ctx);
    }
    drop((x, y, fillers));
    rep
}

/// `isolation-peer`: optionally drops to `uid`/`gid`, then runs [`peer`].
pub fn peer_main(node: &str, prefix: &str, f: Foreign, uid: Option<(u32, u32)>) -> Report {
    let mut rep = Report {
        prefix: prefix.into(),
        ..Default::default()
    };
    if let Some((u, g)) = uid {
        match sys::drop_privileges(u, g) {
            Ok(()) => rep.ensure("dropped-root", sys::geteuid() == u, "still root"),
            Err(e) => {
                rep.fail("dropped-root", errnos::name(e));
                return rep;
            }
        }
    }
    peer(&mut rep, node, f);
    rep
}

/// `isolation-denied`: as `uid`, opening a node without permission for it
/// must fail with EACCES.
pub fn denied_main(node: &str, uid: (u32, u32)) -> Report {
    let mut rep = Report::default();
    if let Err(e) = sys::drop_privileges(uid.0, uid.1) {
        rep.fail("user-dropped-root", errnos::name(e));
        return rep;
    }
    rep.errno(
        "user-open-without-permission",
        errno_of(Device::open(node)),
        EACCES,
    );
    rep
}

/// `repro-cross-dbc`: the C driver's use after free (Documentation/reliability.rst, findings):
/// a buffer attached to channel A of a file, executed on channel B of the same file behind a
/// pre-sync wait nobody satisfies (so it stays queued), then the file is closed. Upstream accepts
/// the execute and corrupts its reference count at close; qaic_rs refuses the execute (EINVAL).
/// Prints what each step returned; the verdict is in the kernel log.
pub fn repro_cross_dbc(node: &str) -> qaic::Result<()> {
    let dev = Device::open(node)?;
    let a = activate(&dev)?;
    let b = activate(&dev)?;
    println!("channels {a} and {b}");
    let mut bo = dev.create_bo(4096)?;
    let wait = qaic::Sem::new(qaic::SemCmd::WaitEqual, 0, 1).presync();
    bo.attach(
        a,
        Direction::FromDevice,
        &[Slice::new(0, 4096, DDR_BASE + u64::from(a) * DDR_WINDOW).with_sem(wait)?],
    )?;
    let r = dev.execute_raw(
        1,
        b,
        &[qaic_execute_entry {
            handle: bo.handle(),
            dir: 2,
        }],
    );
    println!("EXECUTE_BO of a buffer of channel {a} on channel {b}: {r:?}");
    drop(bo); // GEM_CLOSE: the queue keeps its own reference
    drop(dev);
    println!("file closed");
    Ok(())
}
