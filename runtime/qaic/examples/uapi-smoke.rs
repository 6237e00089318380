// SPDX-License-Identifier: MIT OR Apache-2.0
//! Smoke test of the runtime against a live device (driver + card or
//! emulator), for a guest: every step prints `PASS name` or `FAIL name -
//! why`, the exit status is non-zero if anything failed.
//!
//! It covers what works without a loaded network: protocol status, device
//! info, buffer objects (create, map, write, read back), a bare DMA bridge
//! channel (activate transaction), attach/detach, perf stats, and a few
//! requests the driver must reject with a specific errno.
//!
//! Usage: `uapi-smoke [NODE]` (default: first AIC100).

mod common;

use common::Report;
use qaic::uapi;
use qaic::{Device, Direction, Error, ManageMsg, Slice};

fn main() {
    let mut rep = Report {
        failed: 0,
        passed: 0,
    };
    let dev = match std::env::args().nth(1) {
        Some(node) => Device::open(node),
        None => qaic::sysfs::aic100_devices().and_then(|d| {
            d.first()
                .ok_or_else(|| Error::NoDevice("no AIC100".into()))
                .and_then(|d| d.open())
        }),
    };
    let Some(dev) = rep.check("open", dev) else {
        std::process::exit(1);
    };
    rep.check(
        "driver-version",
        dev.driver_version()
            .map(|v| println!("  driver {}", v.name)),
    );
    rep.check(
        "protocol-status",
        dev.protocol_status()
            .map(|s| println!("  control protocol {}.{}", s.major, s.minor)),
    );
    rep.check(
        "device-info",
        dev.device_info().and_then(|i| i.check_compatible()),
    );

    // buffer objects
    if let Some(mut bo) = rep.check("create-bo", dev.create_bo(8192)) {
        let wrote = bo.bytes_mut().map(|b| {
            for (i, x) in b.iter_mut().enumerate() {
                *x = i as u8;
            }
        });
        rep.check("bo-mmap-write", wrote);
        let ok = bo
            .bytes()
            .map(|b| b.iter().enumerate().all(|(i, x)| *x == i as u8));
        rep.check(
            "bo-mmap-readback",
            ok.and_then(|ok| {
                if ok {
                    Ok(())
                } else {
                    Err(Error::Protocol("mismatch".into()))
                }
            }),
        );
    }
    let zero_filled = dev
        .create_bo(4096)
        .and_then(|bo| Ok(bo.bytes()?.iter().all(|&b| b == 0)));
    rep.check(
        "bo-zero-filled",
        zero_filled.and_then(|z| {
            if z {
                Ok(())
            } else {
                Err(Error::Protocol("not zeroed".into()))
            }
        }),
    );
    rep.expect_errno(
        "create-bo-pad",
        dev.create_bo_raw(uapi::qaic_create_bo {
            size: 4096,
            handle: 0,
            pad: 1,
        }),
        libc::EINVAL,
    );
    rep.expect_errno(
        "create-bo-size-0",
        dev.create_bo_raw(uapi::qaic_create_bo {
            size: 0,
            handle: 0,
            pad: 0,
        }),
        libc::EINVAL,
    );
    rep.expect_errno(
        "mmap-bo-unknown-handle",
        dev.mmap_offset_raw(0xdead),
        libc::ENOENT,
    );
    rep.expect_errno(
        "gem-close-unknown-handle",
        dev.gem_close_raw(0xdead),
        libc::EINVAL,
    );

    // PRIME: export a BO, import it in a second open file of the same device
    if let Some(bo) = rep.check("create-bo-for-prime", dev.create_bo(3 * 4096)) {
        if let Some(fd) = rep.check("prime-export", dev.export_bo(&bo)) {
            use std::os::fd::AsFd;
            let same = dev
                .import_bo(fd.as_fd())
                .map(|b| (b.handle() == bo.handle(), b));
            rep.check(
                "prime-self-import-same-handle",
                same.and_then(|(s, b)| {
                    // the self-imported object shares the handle: do not close it twice
                    std::mem::forget(b);
                    if s {
                        Ok(())
                    } else {
                        Err(Error::Protocol("different handle".into()))
                    }
                }),
            );
            let other = dev.path().to_path_buf();
            if let Some(dev2) = rep.check("open-second-file", Device::open(other)) {
                if let Some(imp) = rep.check("prime-import-foreign", dev2.import_bo(fd.as_fd())) {
                    rep.check(
                        "prime-import-size",
                        if imp.size() == 3 * 4096 {
                            Ok(())
                        } else {
                            Err(Error::Protocol(format!("size {}", imp.size())))
                        },
                    );
                    let mapped = imp.bytes().map(|b| b.len());
                    rep.check(
                        "prime-imported-not-mappable",
                        match mapped {
                            Err(_) => Ok(()),
                            Ok(n) => {
                                Err(Error::Protocol(format!("imported BO mapped ({n} bytes)")))
                            }
                        },
                    );
                }
            }
        }
    }

    // a bare channel: activate transaction only
    let act = dev.manage(&ManageMsg::new().activate(64, 0)).and_then(|r| {
        r.activate()
            .ok_or_else(|| Error::Protocol("no activate answer".into()))
    });
    if let Some(act) = rep.check("activate-bare-channel", act) {
        println!("  dbc {}", act.dbc_id);
        if let Some(mut bo) = rep.check("create-bo-for-slices", dev.create_bo(8192)) {
            rep.check(
                "attach",
                bo.attach(
                    act.dbc_id,
                    Direction::ToDevice,
                    &[Slice::new(0, 8192, 0x10_0000)],
                ),
            );
            rep.expect_errno(
                "attach-twice",
                bo.attach(
                    act.dbc_id,
                    Direction::ToDevice,
                    &[Slice::new(0, 4096, 0x10_0000)],
                ),
                libc::EINVAL,
            );
            rep.check(
                "perf-stats-idle",
                dev.perf_stats(act.dbc_id, &[&bo])
                    .map(|s| println!("  {s:?}")),
            );
            rep.check(
                "wait-never-submitted",
                bo.wait(Some(std::time::Duration::from_millis(100))),
            );
            rep.check("detach", bo.detach());
            rep.expect_errno("detach-twice", bo.detach(), libc::EINVAL);
        }
        rep.expect_errno(
            "wait-bad-pad",
            dev.wait_raw(uapi::qaic_wait {
                handle: 1,
                timeout: 1,
                dbc_id: act.dbc_id,
                pad: 1,
            }),
            libc::EINVAL,
        );
        rep.expect_errno(
            "execute-count-0",
            dev.execute_raw(0, act.dbc_id, &[]),
            libc::EINVAL,
        );
        // No DEACTIVATE of the bare channel: without the firmware's deactivate command the
        // device never confirms it and the driver would keep the channel busy for good, so the
        // next activation of the same channel would block. Closing the file releases it.
    }
    rep.expect_errno(
        "manage-dbc-out-of-range",
        dev.manage_encoded(&ManageMsg::new().deactivate(16).encode().unwrap()),
        libc::EINVAL,
    );

    concurrency(&mut rep, &dev);
    rep.finish();
}

/// Several threads and several open files at once.
fn concurrency(rep: &mut Report, dev: &Device) {
    const THREADS: usize = 4;
    // MANAGE from several threads: requests are outstanding at the same time and must each get
    // their own answer.
    let r: qaic::Result<()> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| -> qaic::Result<()> {
                    for _ in 0..20 {
                        let st = dev.protocol_status()?;
                        if st.major != 5 {
                            return Err(Error::Protocol(format!("major {}", st.major)));
                        }
                        dev.device_info()?;
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter().try_for_each(|h| h.join().expect("thread"))
    });
    rep.check("concurrent-manage", r);

    // buffer objects created, written, verified and freed from several threads
    let r: qaic::Result<()> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || -> qaic::Result<()> {
                    for i in 0..25u8 {
                        let mut bo = dev.create_bo(4096 * (1 + u64::from(i % 4)))?;
                        let tag = (t as u8).wrapping_mul(31).wrapping_add(i);
                        bo.bytes_mut()?.fill(tag);
                        if bo.bytes()?.iter().any(|&b| b != tag) {
                            return Err(Error::Protocol("BO contents changed".into()));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        hs.into_iter().try_for_each(|h| h.join().expect("thread"))
    });
    rep.check("concurrent-bo", r);

    // two open files: each gets its own channel, neither may use the other's
    let files = (Device::open(dev.path()), Device::open(dev.path()));
    let (Some(a), Some(b)) = (
        rep.check("open-file-a", files.0),
        rep.check("open-file-b", files.1),
    ) else {
        return;
    };
    let act = |d: &Device| {
        d.manage(&ManageMsg::new().activate(32, 0)).and_then(|r| {
            r.activate()
                .ok_or_else(|| Error::Protocol("no activate answer".into()))
        })
    };
    let (Some(ca), Some(cb)) = (
        rep.check("activate-file-a", act(&a)),
        rep.check("activate-file-b", act(&b)),
    ) else {
        return;
    };
    rep.ensure(
        "files-get-distinct-channels",
        ca.dbc_id != cb.dbc_id,
        format!("both got DBC {}", ca.dbc_id),
    );
    if let Some(mut bo) = rep.check("file-b-create-bo", b.create_bo(4096)) {
        rep.expect_errno(
            "attach-on-other-files-channel",
            bo.attach(
                ca.dbc_id,
                Direction::ToDevice,
                &[Slice::new(0, 4096, 0x10_0000)],
            ),
            libc::EINVAL,
        );
        rep.check(
            "attach-on-own-channel",
            bo.attach(
                cb.dbc_id,
                Direction::ToDevice,
                &[Slice::new(0, 4096, 0x10_0000)],
            ),
        );
        rep.expect_errno(
            "execute-on-other-files-channel",
            b.execute(ca.dbc_id, &[&bo]),
            libc::EPERM,
        );
        rep.expect_errno(
            "wait-on-other-files-channel",
            b.wait(&bo, ca.dbc_id, None),
            libc::EPERM,
        );
        rep.expect_errno(
            "handle-unknown-in-other-file",
            a.mmap_offset_raw(bo.handle()),
            libc::ENOENT,
        );
    }
}
