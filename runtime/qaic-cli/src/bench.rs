// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic bench`: throughput and latency of execute + wait.
//!
//! Each request is one input buffer object copied to device memory and one
//! output buffer object copied back from the same device address, queued
//! with one EXECUTE_BO and completed with WAIT_BO. The output is compared
//! with the input, so a device that does not really move the data fails the
//! benchmark instead of producing numbers.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use qaic::nnc::ActivationState;
use qaic::{Bo, Device, Direction, Error, LoadElfOptions, ManageMsg, Result, Slice};

use crate::DeviceArg;

/// Options of `qaic bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    dev: DeviceArg,
    /// Network image to load and activate for the channel. Without it a
    /// bare channel is activated through MANAGE and --dev-addr is required.
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Device address of the loopback area (default: the activation's DDR base).
    #[arg(long, value_parser = parse_size)]
    dev_addr: Option<u64>,
    /// Bytes per buffer object (suffixes k, m accepted).
    #[arg(long, default_value = "4k", value_parser = parse_size)]
    bo_size: u64,
    /// Requests in flight per thread.
    #[arg(long, default_value_t = 4)]
    queue_depth: u32,
    /// Submitting threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Requests per thread.
    #[arg(short = 'n', long, default_value_t = 1000)]
    requests: u64,
    /// WAIT_BO timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s.as_str(), 1),
    };
    let v = match num.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => num.parse::<u64>(),
    }
    .map_err(|e| format!("{s:?}: {e}"))?;
    v.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// The channel the benchmark runs on and how to release it.
enum Channel {
    Program {
        act: qaic::Activation,
        elf: qaic::ElfId,
    },
    Bare {
        dbc_id: u32,
    },
}

impl Channel {
    fn dbc_id(&self) -> u32 {
        match self {
            Channel::Program { act, .. } => act.dbc_id,
            Channel::Bare { dbc_id } => *dbc_id,
        }
    }

    fn release(&self, dev: &Device) -> Result<()> {
        match self {
            Channel::Program { act, elf } => {
                dev.deactivate(act).and_then(|()| dev.unload_elf(*elf))
            }
            // A DEACTIVATE transaction alone is never confirmed by the device (the confirmation
            // answers the firmware's deactivate command), and the driver would keep the channel
            // busy; closing the file makes the driver release it.
            Channel::Bare { .. } => Ok(()),
        }
    }
}

struct Stats {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn fill(buf: &mut [u8], seq: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

struct Pair {
    input: Bo,
    output: Bo,
    seq: u64,
    submitted: Instant,
}

#[allow(clippy::too_many_arguments)]
fn worker(
    dev: &Device,
    dbc: u32,
    base: u64,
    a: &BenchArgs,
    thread: u32,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Vec<Duration>> {
    let stride = a.bo_size.next_multiple_of(4096);
    let timeout = Some(Duration::from_millis(a.timeout_ms));
    let mut pairs = Vec::new();
    for slot in 0..a.queue_depth {
        let addr = base + (u64::from(thread) * u64::from(a.queue_depth) + u64::from(slot)) * stride;
        let mut input = dev.create_bo(a.bo_size)?;
        let mut output = dev.create_bo(a.bo_size)?;
        input.attach(dbc, Direction::ToDevice, &[Slice::new(0, a.bo_size, addr)])?;
        output.attach(
            dbc,
            Direction::FromDevice,
            &[Slice::new(0, a.bo_size, addr)],
        )?;
        pairs.push(Pair {
            input,
            output,
            seq: 0,
            submitted: Instant::now(),
        });
    }
    let mut latencies = Vec::with_capacity(a.requests as usize);
    let mut next_seq = 0u64;
    let submit = |p: &mut Pair, seq: u64| -> Result<()> {
        p.seq = seq;
        fill(p.input.bytes_mut()?, seq);
        p.submitted = Instant::now();
        dev.execute(dbc, &[&p.input, &p.output])
    };
    // prime the pipeline
    let mut in_flight = std::collections::VecDeque::new();
    for (i, p) in pairs.iter_mut().enumerate() {
        if next_seq >= a.requests {
            break;
        }
        submit(p, next_seq)?;
        next_seq += 1;
        in_flight.push_back(i);
    }
    while let Some(i) = in_flight.pop_front() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let p = &mut pairs[i];
        if let Err(e) = p.output.wait(timeout).and_then(|()| p.input.wait(timeout)) {
            eprintln!(
                "qaic bench: thread {thread}: request {} did not complete: {e}",
                p.seq
            );
            return Err(e);
        }
        latencies.push(p.submitted.elapsed());
        let mut expect = vec![0u8; a.bo_size as usize];
        fill(&mut expect, p.seq);
        if p.output.bytes()? != expect.as_slice() {
            return Err(Error::Protocol(format!(
                "request {} on thread {thread}: data read back from device address differs from what was written",
                p.seq
            )));
        }
        done.fetch_add(1, Ordering::Relaxed);
        if next_seq < a.requests {
            submit(p, next_seq)?;
            next_seq += 1;
            in_flight.push_back(i);
        }
    }
    Ok(latencies)
}

fn run_threads(dev: &Device, dbc: u32, base: u64, a: &BenchArgs) -> Result<Stats> {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = a.requests * u64::from(a.threads);
    let progress = std::io::stderr().is_terminal() && !a.json;
    let start = Instant::now();
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let (done, stop) = (&done, &stop);
                s.spawn(move || {
                    let r = worker(dev, dbc, base, a, t, done, stop);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        while progress && !handles.iter().all(|h| h.is_finished()) {
            let n = done.load(Ordering::Relaxed);
            let width = 40;
            let filled = (n * width / total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {n}/{total}",
                "#".repeat(filled),
                " ".repeat(width as usize - filled)
            );
            let _ = std::io::stderr().flush();
            std::thread::sleep(Duration::from_millis(100));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Protocol("worker panicked".into())))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    if progress {
        eprintln!();
    }
    let mut latencies = Vec::new();
    for r in results {
        latencies.extend(r?);
    }
    latencies.sort();
    Ok(Stats { latencies, elapsed })
}

/// Runs `qaic bench`.
pub fn bench(a: &BenchArgs) -> Result<()> {
    if a.queue_depth == 0 || a.threads == 0 || a.requests == 0 || a.bo_size == 0 {
        return Err(Error::InvalidArgument(
            "bo-size, queue-depth, threads and requests must be non-zero".into(),
        ));
    }
    let dev = a.dev.open()?;
    // Every page of every in-flight object may need its own queue element.
    let pages = a.bo_size.div_ceil(4096) + 1;
    let needed = 2 * pages * u64::from(a.queue_depth) * u64::from(a.threads);
    let queue_size = u32::try_from(
        needed
            .max(u64::from(qaic::DEFAULT_QUEUE_SIZE))
            .next_power_of_two(),
    )
    .map_err(|_| Error::InvalidArgument("queue too deep".into()))?;

    let (channel, base) = match &a.elf {
        Some(path) => {
            dev.device_info()?.check_compatible()?;
            let elf_bytes = std::fs::read(path)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
            let elf = dev.load_elf("qaic-bench", &elf_bytes, &LoadElfOptions::default())?;
            let act = match dev.activate(elf, None, queue_size, ActivationState::Ready) {
                Ok(act) => act,
                Err(e) => {
                    let _ = dev.unload_elf(elf);
                    return Err(e);
                }
            };
            let base = a.dev_addr.unwrap_or(act.response.ddr_base);
            (Channel::Program { act, elf }, base)
        }
        None => {
            let base = a.dev_addr.ok_or_else(|| {
                Error::InvalidArgument(
                    "without --elf the device address must be given with --dev-addr".into(),
                )
            })?;
            let r = dev.manage(&ManageMsg::new().activate(queue_size, 0))?;
            let act = r
                .activate()
                .ok_or_else(|| Error::Protocol("no activate answer from the device".into()))?;
            (Channel::Bare { dbc_id: act.dbc_id }, base)
        }
    };

    let result = run_threads(&dev, channel.dbc_id(), base, a);
    let released = channel.release(&dev);
    let stats = result?;
    released?;

    let n = stats.latencies.len();
    let secs = stats.elapsed.as_secs_f64();
    let rps = n as f64 / secs;
    let mbps = rps * a.bo_size as f64 / 1e6;
    let (p50, p99, max) = (
        percentile(&stats.latencies, 0.50),
        percentile(&stats.latencies, 0.99),
        percentile(&stats.latencies, 1.0),
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if a.json {
        println!(
            "{{\"device\":\"{}\",\"dbc_id\":{},\"bo_size\":{},\"queue_depth\":{},\"threads\":{},\"requests\":{n},\
             \"seconds\":{secs:.6},\"requests_per_second\":{rps:.1},\"megabytes_per_second_each_way\":{mbps:.1},\
             \"latency_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\"verified\":true}}",
            dev.path().display(),
            channel.dbc_id(),
            a.bo_size,
            a.queue_depth,
            a.threads,
            us(p50),
            us(p99),
            us(max)
        );
    } else {
        println!("{:<22} {}", "device", dev.path().display());
        println!("{:<22} {}", "dbc", channel.dbc_id());
        println!("{:<22} {} bytes each way", "request", a.bo_size);
        println!(
            "{:<22} {} x {} in flight",
            "threads x depth", a.threads, a.queue_depth
        );
        println!("{:<22} {n} in {secs:.3} s, all verified", "requests");
        println!("{:<22} {rps:.1}", "requests/s");
        println!("{:<22} {mbps:.1}", "MB/s each way");
        println!(
            "{:<22} p50 {:.1}  p99 {:.1}  max {:.1}",
            "latency (us)",
            us(p50),
            us(p99),
            us(max)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("17"), Ok(17));
        assert!(parse_size("x").is_err());
        assert!(parse_size("99999999999999g").is_err());
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(percentile(&v[..1], 0.5), Duration::from_micros(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn fill_depends_on_sequence() {
        let (mut a, mut b) = (vec![0u8; 64], vec![0u8; 64]);
        fill(&mut a, 1);
        fill(&mut b, 2);
        assert_ne!(a, b);
        assert_eq!(u64::from_le_bytes(a[..8].try_into().unwrap()), 1);
        let mut tiny = [0u8; 3];
        fill(&mut tiny, 0x0003_0201);
        assert_eq!(tiny, [1, 2, 3]);
    }
}
