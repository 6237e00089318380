// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic-fuzz unplug`: the user side of a card that goes away under its users
//! (tests/guest/hotunplug.sh, Documentation/reliability.rst "Hot unplug").
//!
//! The tool sets up a workload, tells the test it is running (the `--ready`
//! file), and then only watches: every worker thread runs until the driver
//! fails one of its calls, and records which call failed with which errno and
//! when (seconds of `/proc/uptime`, the guest script's clock). A worker still
//! running after `--deadline-s` counts as hung. Then, with the card gone, it
//! records the errno of each kind of new call, checks that the buffer objects
//! mapped before the removal can still be read and written (in a child
//! process first, so that a SIGBUS is reported rather than fatal) and still
//! hold what was written before, and closes everything.
//!
//! Modes: `execute` runs inferences of the example network on several
//! threads (EXECUTE_BO + WAIT_BO, each output checked against the CPU
//! reference); `manage` keeps one MANAGE (control protocol STATUS) in flight
//! per thread, to be slowed down by the emulator's `delay-response`.
//!
//! Lines: `unplug: ...` informational, one `UNPLUG-RESULT key=value ...`
//! line the guest script checks, printed before the files are closed, and
//! `UNPLUG-CLOSED` once they are. Exit status 0 when every worker ended with a
//! kernel error, no output mismatched and the mappings were safe; 1
//! otherwise; 3 on a hang.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qaic::workload::Rng;
use qaic::{Bo, Device, Error, Program};

use crate::sys;

/// What the workers do while the card goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Inferences on several threads.
    Execute,
    /// One MANAGE in flight per thread.
    Manage,
}

/// Options of `qaic-fuzz unplug`.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Accel node.
    #[arg(short, long, default_value = "/dev/accel/accel0")]
    pub device: PathBuf,
    /// Workload.
    #[arg(long, value_enum, default_value_t = Mode::Execute)]
    pub mode: Mode,
    /// Worker threads.
    #[arg(long, default_value_t = 3)]
    pub threads: u32,
    /// Created once every worker got a call through (the card may go now).
    #[arg(long, default_value = "/tmp/unplug-ready")]
    pub ready: PathBuf,
    /// Seconds after which a worker that has not failed counts as hung.
    #[arg(long, default_value_t = 120)]
    pub deadline_s: u64,
    /// Buffer objects mapped and filled before the removal, 64 KiB each.
    #[arg(long, default_value_t = 4)]
    pub spare_bos: u32,
}

/// Size of each spare buffer object.
const SPARE_SIZE: u64 = 64 << 10;

/// Seconds since boot, as `/proc/uptime` says (the guest script's clock).
fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// `WAIT_BO:EIO`-style name of a failure.
fn failure(e: &Error) -> String {
    match (e.ioctl(), e.errno()) {
        (Some(i), Some(n)) => format!(
            "{}:{}",
            i.name()
                .trim_start_matches("DRM_IOCTL_QAIC_")
                .trim_start_matches("DRM_IOCTL_"),
            errno_name(n)
        ),
        _ => format!("other:{}", e.to_string().replace(' ', "_")),
    }
}

fn errno_name(n: i32) -> String {
    qaic::Errno(n)
        .name()
        .map_or_else(|| format!("errno{n}"), str::to_owned)
}

/// The byte pattern of spare object `i` at offset `off`.
fn pattern(i: usize, off: usize, round: u8) -> u8 {
    (i as u8).wrapping_mul(61) ^ (off as u8).wrapping_mul(7) ^ (off >> 8) as u8 ^ round
}

/// One worker's outcome.
struct Outcome {
    ok: u64,
    failed: Option<(String, String)>,
    mismatches: u64,
}

struct Shared {
    started: AtomicU32,
    stop: AtomicBool,
    ok: AtomicU64,
}

fn execute_worker(prog: &qaic::program::LoadedProgram, seed: u64, sh: &Shared) -> Outcome {
    let mut out = Outcome {
        ok: 0,
        failed: None,
        mismatches: 0,
    };
    let mut rng = Rng::new(seed);
    let mut req = match prog.request() {
        Ok(r) => r,
        Err(e) => {
            out.failed = Some((failure(&e), uptime()));
            sh.started.fetch_add(1, Ordering::SeqCst);
            return out;
        }
    };
    let mut input = vec![0i8; prog.program().workload().input_len()];
    let mut counted = false;
    while !sh.stop.load(Ordering::Relaxed) {
        rng.fill_i8(&mut input);
        match req.run_checked(&input, Some(Duration::from_secs(10))) {
            Ok(_) => {
                out.ok += 1;
                sh.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(Error::OutputMismatch { .. }) => out.mismatches += 1,
            Err(e) => {
                out.failed = Some((failure(&e), uptime()));
                break;
            }
        }
        if !counted && out.ok >= 5 {
            counted = true;
            sh.started.fetch_add(1, Ordering::SeqCst);
        }
    }
    if !counted {
        sh.started.fetch_add(1, Ordering::SeqCst);
    }
    // The request's objects were mapped by run(): touch them with the card gone.
    if let Err(e) = touch(req.input_bo()).and_then(|()| touch(req.output_bo())) {
        println!("unplug: request objects after the removal: {e}");
    }
    out
}

/// Reads every byte of an object that is already mapped (no new system call).
fn touch(bo: &Bo) -> qaic::Result<()> {
    let s = bo.bytes()?;
    let sum = s.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    std::hint::black_box(sum);
    Ok(())
}

fn manage_worker(dev: &Device, sh: &Shared) -> Outcome {
    let mut out = Outcome {
        ok: 0,
        failed: None,
        mismatches: 0,
    };
    let mut counted = false;
    while !sh.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match dev.protocol_status() {
            Ok(_) => {
                out.ok += 1;
                sh.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                out.failed = Some((
                    format!(
                        "{} ({:.2} s into the call)",
                        failure(&e),
                        t.elapsed().as_secs_f64()
                    ),
                    uptime(),
                ));
                break;
            }
        }
        if !counted {
            counted = true;
            sh.started.fetch_add(1, Ordering::SeqCst);
        }
    }
    if !counted {
        sh.started.fetch_add(1, Ordering::SeqCst);
    }
    out
}

/// Creates the ready file once `n` workers got going (or gave up).
fn announce_ready(path: &Path, sh: &Shared, n: u32, deadline: Instant) {
    while sh.started.load(Ordering::SeqCst) < n {
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    match std::fs::write(path, format!("{}\n", uptime())) {
        Ok(()) => println!(
            "unplug: ready at {} ({} calls done)",
            uptime(),
            sh.ok.load(Ordering::Relaxed)
        ),
        Err(e) => println!("unplug: cannot write {}: {e}", path.display()),
    }
}

/// Runs `qaic-fuzz unplug`.
pub fn run(a: &Args) -> std::process::ExitCode {
    let code = match run_inner(a) {
        Ok(c) => c,
        Err(e) => {
            println!("unplug: setup failed: {e}");
            println!("UNPLUG-RESULT setup=failed:{}", failure(&e));
            2
        }
    };
    std::process::ExitCode::from(code)
}

fn run_inner(a: &Args) -> qaic::Result<u8> {
    let dev = Device::open(&a.device)?;
    // Spare objects: mapped and filled now, checked after the removal.
    let mut spares = Vec::new();
    for i in 0..a.spare_bos as usize {
        let mut bo = dev.create_bo(SPARE_SIZE)?;
        for (off, b) in bo.bytes_mut()?.iter_mut().enumerate() {
            *b = pattern(i, off, 0);
        }
        spares.push(bo);
    }
    let prog = match a.mode {
        Mode::Execute => Some(Program::example().load(&dev)?),
        Mode::Manage => None,
    };
    let sh = Shared {
        started: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        ok: AtomicU64::new(0),
    };
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let deadline = Instant::now() + Duration::from_secs(a.deadline_s);
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..a.threads {
            let (sh, outcomes, dev, prog) = (&sh, &outcomes, &dev, prog.as_ref());
            workers.push(s.spawn(move || {
                let o = match prog {
                    Some(p) => execute_worker(p, 0x5eed_0000 + u64::from(t), sh),
                    None => manage_worker(dev, sh),
                };
                match &o.failed {
                    Some((f, at)) => {
                        println!("unplug: worker {t}: {} calls ok, then {f} at {at}", o.ok)
                    }
                    None => println!("unplug: worker {t}: {} calls ok, stopped", o.ok),
                }
                outcomes
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(o);
            }));
        }
        announce_ready(&a.ready, &sh, a.threads, deadline);
        while !workers.iter().all(|w| w.is_finished()) {
            if Instant::now() >= deadline {
                // Leaving the scope would join the hung workers: end the process instead.
                println!(
                    "UNPLUG-RESULT hang=1 workers={} finished={}",
                    workers.len(),
                    workers.iter().filter(|w| w.is_finished()).count()
                );
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let outs = outcomes
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total_ok: u64 = outs.iter().map(|o| o.ok).sum();
    let mismatches: u64 = outs.iter().map(|o| o.mismatches).sum();
    let failed: Vec<&str> = outs
        .iter()
        .filter_map(|o| o.failed.as_ref().map(|(f, _)| f.as_str()))
        .collect();
    let all_failed = failed.len() == outs.len();
    let mut errs: Vec<String> = failed
        .iter()
        .map(|f| f.split(' ').next().unwrap_or(f).to_owned())
        .collect();
    errs.sort();
    errs.dedup();

    // New calls with the card gone.
    let probe = |r: qaic::Result<()>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.errno().map_or_else(|| failure(&e), errno_name),
    };
    let create = probe(dev.create_bo(4096).map(drop));
    let mmap = probe(
        spares
            .first()
            .map_or(Ok(()), |b| dev.mmap_offset_raw(b.handle()).map(drop)),
    );
    let manage = probe(dev.protocol_status().map(drop));
    let dbc = prog.as_ref().map_or(0, |p| p.activation().dbc_id);
    let execute = probe(match spares.first() {
        Some(b) => dev.execute(dbc, &[b]),
        None => Ok(()),
    });

    // The mappings made before the removal: first in a child (a SIGBUS ends only the child),
    // then, if that went well, here.
    let regions: Vec<&[u8]> = spares.iter().filter_map(|b| b.bytes().ok()).collect();
    let child = sys::in_child(|| {
        for (i, r) in regions.iter().enumerate() {
            if r.iter()
                .enumerate()
                .any(|(off, b)| *b != pattern(i, off, 0))
            {
                return 10;
            }
        }
        0
    });
    let kept = match child {
        sys::ChildEnd::Exited(0) => "ok".to_owned(),
        sys::ChildEnd::Exited(10) => "changed".to_owned(),
        sys::ChildEnd::Exited(n) => format!("exit{n}"),
        sys::ChildEnd::Signaled(s) => format!("signal{s}"),
        sys::ChildEnd::ForkFailed(e) => format!("fork:{}", errno_name(e)),
    };
    drop(regions);
    let mut writable = "skipped".to_owned();
    if kept == "ok" {
        writable = "ok".to_owned();
        for (i, bo) in spares.iter_mut().enumerate() {
            let m = bo.bytes_mut()?;
            for (off, b) in m.iter_mut().enumerate() {
                *b = pattern(i, off, 0x5a);
            }
            if m.iter()
                .enumerate()
                .any(|(off, b)| *b != pattern(i, off, 0x5a))
            {
                writable = "changed".to_owned();
            }
        }
    }

    let mmaps_ok = kept == "ok" && writable == "ok";
    println!(
        "UNPLUG-RESULT ok={total_ok} workers={} failed={} errors={} mismatches={mismatches} \
         create_bo={create} mmap_bo={mmap} manage={manage} execute={execute} mmap_kept={kept} \
         mmap_write={writable}",
        outs.len(),
        failed.len(),
        if errs.is_empty() {
            "-".to_owned()
        } else {
            errs.join(",")
        },
    );

    // Close everything: objects (GEM_CLOSE fails with the card gone; munmap does not), the
    // program (its DEACTIVATE fails), the file. The line after says it returned.
    drop(spares);
    drop(prog);
    drop(dev);
    println!("UNPLUG-CLOSED at {}", uptime());
    Ok(if all_failed && mismatches == 0 && mmaps_ok {
        0
    } else {
        1
    })
}
