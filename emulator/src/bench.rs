// SPDX-License-Identifier: MIT OR Apache-2.0
//! `aic100-emu bench`: the DMA bridge model measured without QEMU. The host side is played
//! here: request elements are written into a host-memory FIFO (a memfd mapped like QEMU's
//! guest RAM, reached through [`MappedDma`]), REQ_TAIL is written, the engine is serviced, the
//! responses are consumed and RSP_HEAD written back, as the driver does.

use crate::dbc::{self, sem, Bar2, DbcEngine, Program, Request};
use crate::dma::{Dma, MappedDma};
use crate::workload::{Layer, Workload};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOST: u64 = 0x1000_0000;
const HOST_SIZE: u64 = 64 << 20;
const N: u32 = 512;
const FIFO: u64 = HOST;
const DATA: u64 = HOST + (1 << 20);

fn host_memory() -> MappedDma {
    // SAFETY: memfd_create with a static name; checked.
    let fd = unsafe { libc::memfd_create(c"bench-host".as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create");
    // SAFETY: fresh descriptor we own.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(HOST_SIZE).expect("ftruncate");
    let mut d = MappedDma::new();
    d.map(HOST, HOST_SIZE, 0, Some(&f), true).expect("map");
    d
}

struct Host {
    dma: MappedDma,
    eng: DbcEngine,
    tail: u32,
    head: u32,
    rsp_q: u64,
}

impl Host {
    fn new() -> Host {
        let mut eng = DbcEngine::new(Bar2::heap(crate::pci::BAR_SIZES[2] as usize));
        let buf = (68 * N as u64 + 256).div_ceil(4096) * 4096;
        let rsp_q = FIFO + buf - 4 * N as u64;
        eng.activate(0, FIFO, rsp_q, N);
        Host {
            dma: host_memory(),
            eng,
            tail: 0,
            head: 0,
            rsp_q,
        }
    }

    fn submit(&mut self, reqs: &[Request]) {
        for r in reqs {
            self.dma
                .write(FIFO + 64 * self.tail as u64, &r.encode())
                .unwrap();
            self.tail = (self.tail + 1) % N;
        }
        self.eng.bar.store32(dbc::REGS + dbc::REQ_TAIL, self.tail);
    }

    /// Service and consume responses; returns how many arrived.
    fn drain(&mut self) -> usize {
        self.eng.service(&mut self.dma, Instant::now());
        let t = self.eng.bar.load32(dbc::REGS + dbc::RSP_TAIL);
        let mut n = 0;
        while self.head != t {
            let st = self
                .dma
                .read_u32(self.rsp_q + 4 * self.head as u64)
                .unwrap()
                >> 16;
            assert_eq!(st, 0, "response status");
            self.head = (self.head + 1) % N;
            n += 1;
        }
        self.eng.bar.store32(dbc::REGS + dbc::RSP_HEAD, self.head);
        n
    }
}

fn transfer(dir: u8, len: u32, host_off: u64) -> Request {
    let dev = dbc::DDR_BASE;
    let (src, dst) = if dir == 1 {
        (DATA + host_off, dev)
    } else {
        (dev, DATA + host_off)
    };
    Request {
        cmd: 0x18 | dir,
        src,
        dst,
        len,
        ..Default::default()
    }
}

/// Requests per second for `len`-byte transfers in batches of `batch`.
fn rate(len: u32, batch: usize, t: Duration) -> (f64, f64) {
    let mut h = Host::new();
    let reqs: Vec<Request> = (0..batch)
        .map(|i| transfer(1 + (i % 2) as u8, len, 0))
        .collect();
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < t {
        h.submit(&reqs);
        let mut got = 0;
        while got < batch {
            got += h.drain();
        }
        done += batch as u64;
    }
    let s = start.elapsed().as_secs_f64();
    (done as f64 / s, done as f64 * len as f64 / s / 1e9)
}

/// Inferences per second: input, doorbell, stand-in, semaphore wait, output.
fn inferences(t: Duration) -> f64 {
    let mut h = Host::new();
    let w = Workload {
        version_minor: 0,
        input_offset: 0,
        output_offset: 0x1000,
        doorbell_offset: 0,
        done_sem: 0,
        latency_ns: 0,
        constants_len: 64 * 64 + 256,
        layers: vec![Layer {
            in_features: 64,
            out_features: 64,
            weights_offset: 0,
            bias_offset: 64 * 64,
            multiplier: 1,
            shift: 7,
            activation: 1,
        }],
    };
    let constants: Vec<u8> = (0..w.constants_len).map(|i| (i % 7) as u8).collect();
    let mut c = constants;
    c[4096..].fill(0);
    h.eng.bind(
        0,
        Some(Program {
            workload: Arc::new(w),
            constants: Arc::new(c),
        }),
    );
    let mut input = transfer(1, 64, 0);
    input.db_addr = dbc::MCID_BASE;
    input.db_attr = 0x80;
    input.db_data = 1;
    let mut output = transfer(2, 64, 4096);
    output.src = dbc::DDR_BASE + 0x1000;
    output.sem = [
        sem::cmd(sem::WAIT_GE, 0, 1, true),
        sem::cmd(sem::DEC, 0, 0, false),
        0,
        0,
    ];
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < t {
        h.submit(&[input, output]);
        let mut got = 0;
        while got < 2 {
            got += h.drain();
        }
        done += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Run the benchmark and print the figures.
pub fn run(t: Duration) {
    println!("aic100-emu bench: DMA bridge model without QEMU, {t:?} per figure, FIFO of {N}");
    for (len, batch) in [(64u32, 1usize), (64, 32), (4096, 32)] {
        let (r, g) = rate(len, batch, t);
        println!(
            "  {len:>8} B requests, batches of {batch:>3}: {r:>12.0} requests/s  {g:>7.2} GB/s"
        );
    }
    for len in [1u32 << 20, 4 << 20, 16 << 20] {
        let (r, g) = rate(len, 2, t);
        println!("  {len:>8} B requests, batches of   2: {r:>12.0} requests/s  {g:>7.2} GB/s");
    }
    println!(
        "  inference pairs (64 B in, 64x64 int8 layer, 64 B out): {:>10.0} inferences/s",
        inferences(t)
    );
}
