// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic-fuzz`: a structure-aware, seeded ioctl fuzzer for the AIC100 accel
//! drivers (the upstream C `qaic` and `qaic_rs`), and isolation tests between
//! files, processes and users. See `Documentation/reliability.rst`.
//!
//! All `unsafe` code is in [`sys`]; the rest of the crate denies it.
#![deny(unsafe_code)]

mod errnos;
mod fuzz;
mod isolation;
mod rng;
mod sys;
mod unplug;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use qaic::{Device, Direction, ManageMsg, Slice};

/// Structure-aware ioctl fuzzer and isolation tests for AIC100 accel drivers.
#[derive(Parser)]
#[command(name = "qaic-fuzz", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz the ioctls of a node from several processes and threads.
    Fuzz(FuzzArgs),
    /// Isolation tests: another file, process and user cannot use the
    /// owner's objects and channel.
    Isolation {
        /// Accel node.
        #[arg(short, long, default_value = "/dev/accel/accel0")]
        device: String,
        /// Also run a peer as this user id (needs root and a node it may open).
        #[arg(long)]
        uid: Option<u32>,
        /// Group id for --uid.
        #[arg(long, default_value_t = 65534)]
        gid: u32,
    },
    /// (internal) the peer side of `isolation`.
    #[command(hide = true)]
    IsolationPeer {
        #[arg(short, long)]
        device: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        x: u32,
        #[arg(long)]
        y: u32,
        #[arg(long)]
        off_x: u64,
        #[arg(long)]
        off_y: u64,
        #[arg(long)]
        dbc: u32,
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long, default_value_t = 65534)]
        gid: u32,
    },
    /// (internal) reproduce the C driver's use after free; see reliability.rst.
    #[command(hide = true)]
    ReproCrossDbc {
        #[arg(short, long, default_value = "/dev/accel/accel0")]
        device: String,
    },
    /// A workload that runs while the card is unplugged: which calls fail with
    /// which errno, the mapped buffer objects stay safe, everything closes
    /// (tests/guest/hotunplug.sh).
    Unplug(unplug::Args),
    /// As another user, opening a node that user may not open fails with EACCES.
    IsolationDenied {
        /// Accel node.
        #[arg(short, long, default_value = "/dev/accel/accel0")]
        device: String,
        /// User id.
        #[arg(long, default_value_t = 65534)]
        uid: u32,
        /// Group id.
        #[arg(long, default_value_t = 65534)]
        gid: u32,
    },
}

#[derive(clap::Args, Clone)]
struct FuzzArgs {
    /// Accel node.
    #[arg(short, long, default_value = "/dev/accel/accel0")]
    device: PathBuf,
    /// Seed (decimal or 0x hex); by default taken from the clock. Printed at the start.
    #[arg(long, value_parser = parse_u64)]
    seed: Option<u64>,
    /// Iterations in total, split evenly over processes and threads.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    iterations: u64,
    /// Processes.
    #[arg(long, default_value_t = 2)]
    procs: u32,
    /// Threads per process.
    #[arg(long, default_value_t = 4)]
    threads: u32,
    /// Seconds without progress after which a worker counts as hung.
    #[arg(long, default_value_t = 150)]
    hang_s: u64,
    /// Print every call.
    #[arg(short, long)]
    verbose: bool,
    /// Run as process PROC of a run, in this process (children and replays).
    #[arg(long)]
    proc: Option<u32>,
    /// Iterations per worker (with --proc; replaces --iterations).
    #[arg(long)]
    per_worker: Option<u64>,
    /// Only this thread of the process (replay).
    #[arg(long)]
    only_thread: Option<u32>,
    /// Stop after this iteration (replay).
    #[arg(long)]
    stop_at: Option<u64>,
    /// Leave out a class of inputs known to break a driver (repeatable).
    #[arg(long, value_enum)]
    avoid: Vec<fuzz::Avoid>,
    /// Skip the closing check that the device still executes.
    #[arg(long)]
    no_post_check: bool,
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Fuzz(a) => fuzz_main(a),
        Cmd::Unplug(a) => unplug::run(&a),
        Cmd::Isolation { device, uid, gid } => {
            let rep = isolation::owner(&device, uid.map(|u| (u, gid)));
            finish(&rep)
        }
        Cmd::IsolationPeer {
            device,
            prefix,
            x,
            y,
            off_x,
            off_y,
            dbc,
            uid,
            gid,
        } => {
            let f = isolation::Foreign {
                x,
                y,
                off_x,
                off_y,
                dbc,
            };
            let rep = isolation::peer_main(&device, &prefix, f, uid.map(|u| (u, gid)));
            ExitCode::from(u8::from(rep.failed > 0))
        }
        Cmd::ReproCrossDbc { device } => match isolation::repro_cross_dbc(&device) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("repro: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::IsolationDenied { device, uid, gid } => {
            finish(&isolation::denied_main(&device, (uid, gid)))
        }
    }
}

fn finish(rep: &isolation::Report) -> ExitCode {
    println!("{} passed, {} failed", rep.passed, rep.failed);
    ExitCode::from(u8::from(rep.failed > 0))
}

/// A child's or this process's run of workers.
fn fuzz_process(a: &FuzzArgs, seed: u64, proc_index: u32, per_worker: u64) -> ExitCode {
    let cfg = fuzz::Config {
        node: a.device.clone(),
        seed,
        iterations: per_worker,
        threads: a.threads,
        proc_index,
        only_thread: a.only_thread,
        stop_at: a.stop_at,
        verbose: a.verbose,
        hang_s: a.hang_s,
        avoid: a.avoid.clone(),
    };
    match fuzz::run_process(&cfg) {
        Ok((stats, hung)) => {
            for ((call, e), n) in &stats.results {
                println!("STAT {} {} {n}", call.name(), e);
            }
            println!(
                "process {proc_index}: {} calls, {} findings",
                stats.calls(),
                stats.findings.len()
            );
            if hung {
                ExitCode::from(3)
            } else {
                ExitCode::from(u8::from(!stats.findings.is_empty()))
            }
        }
        Err(e) => {
            println!("FINDING process {proc_index}: {e}");
            ExitCode::from(2)
        }
    }
}

fn fuzz_main(a: FuzzArgs) -> ExitCode {
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    if let Some(p) = a.proc {
        let per = a.per_worker.unwrap_or(a.iterations);
        return fuzz_process(&a, seed, p, per);
    }
    let workers = u64::from(a.procs.max(1)) * u64::from(a.threads.max(1));
    let per_worker = a.iterations.div_ceil(workers);
    println!(
        "qaic-fuzz: seed {seed:#x}, {} processes x {} threads x {per_worker} iterations on {}, avoiding {:?}",
        a.procs,
        a.threads,
        a.device.display(),
        a.avoid.iter().map(|v| fuzz::avoid_name(*v)).collect::<Vec<_>>()
    );
    let start = Instant::now();
    let exe = std::env::current_exe().expect("own executable");
    // one child per process, all at once; their output is collected by a thread each
    let mut children = Vec::new();
    for p in 0..a.procs.max(1) {
        let mut cmd = Command::new(&exe);
        cmd.arg("fuzz")
            .arg("-d")
            .arg(&a.device)
            .args(["--seed", &format!("{seed:#x}")])
            .args(["--threads", &a.threads.to_string()])
            .args(["--proc", &p.to_string()])
            .args(["--per-worker", &per_worker.to_string()])
            .args(["--hang-s", &a.hang_s.to_string()])
            .stdout(Stdio::piped());
        if a.verbose {
            cmd.arg("-v");
        }
        for v in &a.avoid {
            cmd.args(["--avoid", &fuzz::avoid_name(*v)]);
        }
        match cmd.spawn() {
            Ok(mut c) => {
                let mut out = c.stdout.take().expect("piped");
                let reader = std::thread::spawn(move || {
                    let mut s = String::new();
                    let _ = out.read_to_string(&mut s);
                    s
                });
                children.push((p, c, reader));
            }
            Err(e) => {
                println!("FINDING cannot start process {p}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut results: BTreeMap<(String, i32), u64> = BTreeMap::new();
    let mut findings = 0u64;
    let mut worst = 0u8;
    for (p, mut c, reader) in children {
        let status = c.wait();
        let text = reader.join().unwrap_or_default();
        for l in text.lines() {
            let w: Vec<&str> = l.split(' ').collect();
            if let ["STAT", call, e, n] = w[..] {
                let (Ok(e), Ok(n)) = (e.parse::<i32>(), n.parse::<u64>()) else {
                    continue;
                };
                *results.entry((call.to_string(), e)).or_default() += n;
            } else {
                println!("{l}");
                if l.starts_with("FINDING") {
                    findings += 1;
                }
            }
        }
        let code = status.ok().and_then(|s| s.code()).unwrap_or(4) as u8;
        if code != 0 {
            println!("process {p} exited with status {code}");
        }
        worst = worst.max(code);
    }
    let calls: u64 = results.values().sum();
    let secs = start.elapsed().as_secs_f64();
    println!("errnos per call (ok = success):");
    let mut by_call: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((call, e), n) in &results {
        let what = if *e == 0 {
            "ok".to_string()
        } else {
            errnos::name(*e)
        };
        by_call.entry(call).or_default().push(format!("{what} {n}"));
    }
    for (call, parts) in by_call {
        println!("  {call:<19} {}", parts.join(", "));
    }
    println!(
        "qaic-fuzz: seed {seed:#x}: {} iterations, {calls} calls in {secs:.1} s ({:.0} calls/s), {findings} findings",
        per_worker * workers,
        calls as f64 / secs.max(0.001)
    );
    if worst == 0 && !a.no_post_check {
        match post_check(&a.device) {
            Ok(()) => println!("post-check: the device still executes"),
            Err(e) => {
                println!("FINDING post-check: {e}");
                worst = 1;
            }
        }
    }
    if worst == 0 && findings > 0 {
        worst = 1;
    }
    ExitCode::from(worst)
}

/// After the run: a fresh file activates a channel and moves data through it.
fn post_check(node: &std::path::Path) -> qaic::Result<()> {
    let dev = Device::open(node)?;
    let _ = dev.protocol_status()?;
    let r = dev.manage(&ManageMsg::new().activate(64, 0))?;
    let dbc = r
        .activate()
        .ok_or_else(|| qaic::Error::Protocol("no activate answer".into()))?
        .dbc_id;
    let addr = fuzz::DDR_BASE + u64::from(dbc) * fuzz::DDR_WINDOW;
    let mut inb = dev.create_bo(8192)?;
    let mut outb = dev.create_bo(8192)?;
    inb.bytes_mut()?
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i * 7) as u8);
    inb.attach(dbc, Direction::ToDevice, &[Slice::new(0, 8192, addr)])?;
    outb.attach(dbc, Direction::FromDevice, &[Slice::new(0, 8192, addr)])?;
    dev.execute(dbc, &[&inb, &outb])?;
    dev.wait(&outb, dbc, Some(Duration::from_secs(5)))?;
    let back = outb.bytes()?;
    if back.iter().enumerate().any(|(i, &b)| b != (i * 7) as u8) {
        return Err(qaic::Error::Protocol("loop-back data differs".into()));
    }
    Ok(())
}
