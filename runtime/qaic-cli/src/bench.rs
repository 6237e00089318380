// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic bench`: throughput and latency of execute + wait.
//!
//! By default each request is one inference of a loaded network (the
//! example network, `--shape` or `--elf`): the input buffer object goes to
//! device memory and rings the input doorbell, the output buffer object
//! waits for the result and copies it back, queued with one EXECUTE_BO and
//! completed with WAIT_BO; every output is checked against the CPU
//! reference. With `--loopback` each request copies one buffer object to
//! device memory and a second one back from the same address, and the data
//! read back is compared, every byte, with what was written: a body written
//! once per buffer, with the request's sequence number stamped at the start
//! of every 4 KiB page, so that a page this request did not carry is caught
//! while the CPU work per request stays small next to the transfer. Either
//! way, a device that does not really do the work fails the benchmark
//! instead of producing numbers.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use qaic::nnc::ActivationState;
use qaic::program::LoadedProgram;
use qaic::workload::Rng;
use qaic::{Bo, Device, Direction, Error, LoadElfOptions, ManageMsg, Result, Slice};

use crate::{DeviceArg, NetworkArgs};

/// Options of `qaic bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    dev: DeviceArg,
    #[command(flatten)]
    net: NetworkArgs,
    /// Measure plain DMA instead of inferences: copy a buffer object to
    /// device memory and back. The channel comes from activating --elf (any
    /// image; default: one without workload), or from a bare activate
    /// transaction when only --dev-addr is given.
    #[arg(long, conflicts_with_all = ["shape", "seed", "constants"])]
    loopback: bool,
    /// Device address of the loopback area (default: the activation's DDR base).
    #[arg(long, value_parser = parse_size, requires = "loopback")]
    dev_addr: Option<u64>,
    /// Bytes per buffer object with --loopback (suffixes k, m accepted; default 4k).
    #[arg(long, value_parser = parse_size, requires = "loopback")]
    bo_size: Option<u64>,
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

impl BenchArgs {
    fn bo_size(&self) -> u64 {
        self.bo_size.unwrap_or(4096)
    }
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

/// Writes the loop-back body for `seq`: different for every `seq`, which it starts with.
fn fill(buf: &mut [u8], seq: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    let n = buf.len().min(8);
    buf[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
}

/// Stamps request `seq` on a loop-back buffer: its sequence number at the start of every 4 KiB
/// page (the rest of the body stays as `fill` wrote it).
fn stamp(buf: &mut [u8], seq: u64) {
    for page in buf.chunks_mut(4096) {
        let n = page.len().min(8);
        page[..n].copy_from_slice(&seq.to_le_bytes()[..n]);
    }
}

struct Pair {
    input: Bo,
    output: Bo,
    seq: u64,
    submitted: Instant,
}

/// What the threads run: loop-back copies or inferences of a program.
enum Work<'a> {
    Loopback {
        dev: &'a Device,
        dbc: u32,
        base: u64,
    },
    Network(&'a LoadedProgram),
}

#[allow(clippy::too_many_arguments)]
fn loopback_worker(
    dev: &Device,
    dbc: u32,
    base: u64,
    a: &BenchArgs,
    thread: u32,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Vec<Duration>> {
    let bo_size = a.bo_size();
    let stride = bo_size.next_multiple_of(4096);
    let timeout = Some(Duration::from_millis(a.timeout_ms));
    let mut pairs = Vec::new();
    for slot in 0..a.queue_depth {
        let addr = base + (u64::from(thread) * u64::from(a.queue_depth) + u64::from(slot)) * stride;
        let mut input = dev.create_bo(bo_size)?;
        let mut output = dev.create_bo(bo_size)?;
        // a body of its own per buffer, never a request's sequence number
        fill(input.bytes_mut()?, u64::MAX - (addr - base) / stride);
        input.attach(dbc, Direction::ToDevice, &[Slice::new(0, bo_size, addr)])?;
        output.attach(dbc, Direction::FromDevice, &[Slice::new(0, bo_size, addr)])?;
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
        stamp(p.input.bytes_mut()?, seq);
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
        if p.output.bytes()? != p.input.bytes()? {
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

/// Inferences: `queue_depth` requests of the program in flight, each
/// output checked against the CPU reference.
fn network_worker(
    prog: &LoadedProgram,
    a: &BenchArgs,
    thread: u32,
    done: &AtomicU64,
    stop: &AtomicBool,
) -> Result<Vec<Duration>> {
    let timeout = Some(Duration::from_millis(a.timeout_ms));
    let mut rng = Rng::new(0x6265_6e63_6800_0000 | u64::from(thread));
    let mut input = vec![0i8; prog.program().workload().input_len()];
    let mut slots = Vec::new();
    for _ in 0..a.queue_depth {
        slots.push((prog.request()?, 0u64, Instant::now()));
    }
    let mut latencies = Vec::with_capacity(a.requests as usize);
    let mut next_seq = 0u64;
    let mut in_flight = std::collections::VecDeque::new();
    let mut submit = |slot: &mut (qaic::Request<'_>, u64, Instant), seq: u64| -> Result<()> {
        rng.fill_i8(&mut input);
        slot.0.set_input(&input)?;
        slot.1 = seq;
        slot.2 = Instant::now();
        slot.0.submit()
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        if next_seq >= a.requests {
            break;
        }
        submit(slot, next_seq)?;
        next_seq += 1;
        in_flight.push_back(i);
    }
    while let Some(i) = in_flight.pop_front() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let slot = &mut slots[i];
        if let Err(e) = slot.0.wait(timeout) {
            eprintln!(
                "qaic bench: thread {thread}: request {} did not complete: {e}",
                slot.1
            );
            return Err(e);
        }
        latencies.push(slot.2.elapsed());
        if let Err(e) = slot.0.check() {
            eprintln!("qaic bench: thread {thread}: request {}: {e}", slot.1);
            return Err(e);
        }
        done.fetch_add(1, Ordering::Relaxed);
        if next_seq < a.requests {
            submit(slot, next_seq)?;
            next_seq += 1;
            in_flight.push_back(i);
        }
    }
    Ok(latencies)
}

fn run_threads(work: &Work<'_>, a: &BenchArgs) -> Result<Stats> {
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
                    let r = match work {
                        Work::Loopback { dev, dbc, base } => {
                            loopback_worker(dev, *dbc, *base, a, t, done, stop)
                        }
                        Work::Network(prog) => network_worker(prog, a, t, done, stop),
                    };
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

/// The queue size that holds every in-flight request: each page of each
/// in-flight object may need its own queue element.
fn queue_size(object_bytes: u64, a: &BenchArgs) -> Result<u32> {
    let pages = object_bytes.div_ceil(4096) + 1;
    let needed = 2 * pages * u64::from(a.queue_depth) * u64::from(a.threads);
    u32::try_from(
        needed
            .max(u64::from(qaic::DEFAULT_QUEUE_SIZE))
            .next_power_of_two(),
    )
    .map_err(|_| Error::InvalidArgument("queue too deep".into()))
}

/// What the report says about the requests.
struct Shape {
    dbc_id: u32,
    mode: &'static str,
    what: String,
    bytes_in: u64,
    bytes_out: u64,
}

/// Runs `qaic bench`.
pub fn bench(a: &BenchArgs) -> Result<()> {
    if a.queue_depth == 0 || a.threads == 0 || a.requests == 0 || a.bo_size == Some(0) {
        return Err(Error::InvalidArgument(
            "bo-size, queue-depth, threads and requests must be non-zero".into(),
        ));
    }
    let dev = a.dev.open()?;
    let (stats, shape) = if a.loopback {
        loopback(&dev, a)?
    } else {
        network(&dev, a)?
    };
    report(&dev, a, &stats, &shape);
    Ok(())
}

fn network(dev: &Device, a: &BenchArgs) -> Result<(Stats, Shape)> {
    dev.device_info()?.check_compatible()?;
    let program = a.net.program()?;
    let w = program.workload();
    let q = queue_size(w.input_len().max(w.output_len()) as u64, a)?;
    let loaded = program.load_with_queue(dev, q)?;
    let result = run_threads(&Work::Network(&loaded), a);
    let shape = Shape {
        dbc_id: loaded.activation().dbc_id,
        mode: "network",
        what: format!("{} {}", program.name(), w),
        bytes_in: w.input_len() as u64,
        bytes_out: w.output_len() as u64,
    };
    let released = loaded.unload();
    let stats = result?;
    released?;
    Ok((stats, shape))
}

fn loopback(dev: &Device, a: &BenchArgs) -> Result<(Stats, Shape)> {
    let q = queue_size(a.bo_size(), a)?;
    /// Where the channel comes from.
    enum Source {
        Image(Vec<u8>),
        Bare(u64),
    }
    let source = match (&a.net.elf, a.dev_addr) {
        (Some(path), _) => Source::Image(
            std::fs::read(path)
                .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?,
        ),
        // without an address of its own, activate a network without workload for the channel
        (None, None) => Source::Image(qaic::program::plain_elf()),
        (None, Some(base)) => Source::Bare(base),
    };
    let (channel, base) = match source {
        Source::Image(elf_bytes) => {
            dev.device_info()?.check_compatible()?;
            let elf = dev.load_elf("qaic-bench", &elf_bytes, &LoadElfOptions::default())?;
            let act = match dev.activate(elf, None, q, ActivationState::Ready) {
                Ok(act) => act,
                Err(e) => {
                    let _ = dev.unload_elf(elf);
                    return Err(e);
                }
            };
            let base = a.dev_addr.unwrap_or(act.response.ddr_base);
            (Channel::Program { act, elf }, base)
        }
        Source::Bare(base) => {
            let r = dev.manage(&ManageMsg::new().activate(q, 0))?;
            let act = r
                .activate()
                .ok_or_else(|| Error::Protocol("no activate answer from the device".into()))?;
            (Channel::Bare { dbc_id: act.dbc_id }, base)
        }
    };
    let work = Work::Loopback {
        dev,
        dbc: channel.dbc_id(),
        base,
    };
    let result = run_threads(&work, a);
    let released = channel.release(dev);
    let stats = result?;
    released?;
    let shape = Shape {
        dbc_id: channel.dbc_id(),
        mode: "loopback",
        what: format!("{} bytes to {base:#x} and back", a.bo_size()),
        bytes_in: a.bo_size(),
        bytes_out: a.bo_size(),
    };
    Ok((stats, shape))
}

/// Escapes a string for JSON.
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn report(dev: &Device, a: &BenchArgs, stats: &Stats, shape: &Shape) {
    let n = stats.latencies.len();
    let secs = stats.elapsed.as_secs_f64();
    let rps = n as f64 / secs;
    let mb_in = rps * shape.bytes_in as f64 / 1e6;
    let mb_out = rps * shape.bytes_out as f64 / 1e6;
    let (p50, p99, max) = (
        percentile(&stats.latencies, 0.50),
        percentile(&stats.latencies, 0.99),
        percentile(&stats.latencies, 1.0),
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if a.json {
        println!(
            "{{\"device\":{},\"mode\":\"{}\",\"work\":{},\"dbc_id\":{},\"bytes_in\":{},\"bytes_out\":{},\
             \"queue_depth\":{},\"threads\":{},\"requests\":{n},\"seconds\":{secs:.6},\
             \"requests_per_second\":{rps:.1},\"megabytes_per_second_in\":{mb_in:.3},\
             \"megabytes_per_second_out\":{mb_out:.3},\
             \"latency_us\":{{\"p50\":{:.1},\"p99\":{:.1},\"max\":{:.1}}},\"verified\":true}}",
            json_str(&dev.path().display().to_string()),
            shape.mode,
            json_str(&shape.what),
            shape.dbc_id,
            shape.bytes_in,
            shape.bytes_out,
            a.queue_depth,
            a.threads,
            us(p50),
            us(p99),
            us(max)
        );
    } else {
        let check = match shape.mode {
            "network" => "all checked against the CPU reference",
            _ => "all read back and compared",
        };
        println!("{:<22} {}", "device", dev.path().display());
        println!("{:<22} {}", "dbc", shape.dbc_id);
        println!("{:<22} {} ({})", "work", shape.what, shape.mode);
        println!(
            "{:<22} {} bytes in, {} bytes out",
            "request", shape.bytes_in, shape.bytes_out
        );
        println!(
            "{:<22} {} x {} in flight",
            "threads x depth", a.threads, a.queue_depth
        );
        println!("{:<22} {n} in {secs:.3} s, {check}", "requests");
        println!("{:<22} {rps:.1}", "requests/s");
        println!("{:<22} {mb_in:.3} in, {mb_out:.3} out", "MB/s");
        println!(
            "{:<22} p50 {:.1}  p99 {:.1}  max {:.1}",
            "latency (us)",
            us(p50),
            us(p99),
            us(max)
        );
    }
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
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_str("16 -> 8"), "\"16 -> 8\"");
    }

    #[test]
    fn stamp_marks_every_page() {
        let mut a = vec![0u8; 3 * 4096 + 5];
        fill(&mut a, u64::MAX);
        let body = a.clone();
        stamp(&mut a, 7);
        for (page, orig) in a.chunks(4096).zip(body.chunks(4096)) {
            let n = page.len().min(8);
            assert_eq!(&page[..n], &7u64.to_le_bytes()[..n]);
            assert_eq!(&page[n..], &orig[n..]);
        }
        let mut b = a.clone();
        stamp(&mut b, 8);
        assert!(a.chunks(4096).zip(b.chunks(4096)).all(|(p, q)| p != q));
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
