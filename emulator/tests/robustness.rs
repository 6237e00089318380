// SPDX-License-Identifier: MIT OR Apache-2.0
//! A misbehaving host must never crash the device: random register writes, random ring and
//! context contents, random doorbells and random control messages, from deterministic seeds.

mod common;

use aic100_emu::dma::Dma;
use aic100_emu::mhi::reg;
use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Addresses a host could plausibly point at: inside the fake memory, near it, or far away.
fn addr(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 => CTX + r.below(0x10_0000) / 16 * 16,
        1 => RINGS + r.below(0x10_0000) / 16 * 16,
        2 => DATA + r.below(DATA_SIZE as u64),
        _ => r.next(),
    }
}

fn chaos(seed: u64, steps: usize) {
    let mut r = Rng(seed);
    let mut h = Host::new();
    h.boot_to_amss();
    for _ in 0..steps {
        match r.below(8) {
            // any BAR0 register, including doorbells, MHICTRL, BHI and SoC reset
            0 => {
                let off = r.below(0x1000) & !3;
                let v = r.next() as u32;
                h.w32(off as u32, v);
            }
            // a doorbell with a (mostly) ring-shaped value
            1 => {
                let ch = r.below(128) as u32;
                let v = addr(&mut r);
                h.w64(0x400 + 8 * ch, v);
            }
            2 => {
                let v = addr(&mut r);
                h.w64(reg::CRDB_LOWER, v);
            }
            // garbage in host memory: TREs, commands, contexts, event ring
            3 | 4 => {
                let a = addr(&mut r);
                let mut b = [0u8; 16];
                for x in b.iter_mut() {
                    *x = r.next() as u8;
                }
                let _ = h.dev.dma.write(a, &b);
            }
            // a random control message on the control channel (if it is still running)
            5 => {
                let n = r.below(200) as usize;
                let mut m: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
                if n >= 32 && r.below(2) == 0 {
                    m[4..8].copy_from_slice(&0x4349_4151u32.to_le_bytes());
                    m[12..16].copy_from_slice(&(n as u32).to_le_bytes());
                }
                if h.dev.channel_running(10) {
                    let _ = h.send_ul(10, &m, 64);
                }
            }
            6 => {
                let len = r.below(10) as usize;
                let bar = r.below(6) as u32;
                let off = if r.below(2) == 0 {
                    r.below(0x20_0000)
                } else {
                    r.next()
                };
                if r.below(2) == 0 {
                    let _ = h.dev.mmio_read(bar, off, len);
                } else if bar != 0 || off >= 0x1000 {
                    h.dev.mmio_write(bar, off, len, r.next());
                }
            }
            _ => h.dev.run_all(),
        }
    }
    h.dev.run_all();
    // Still a device: registers answer and never read all-ones unless it was removed.
    let st = h.r32(reg::MHISTATUS);
    assert!(h.dev.is_dead() || st != 0xffff_ffff);
}

#[test]
fn random_host_misbehaviour_never_panics_the_device() {
    for seed in 1..=40u64 {
        chaos(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 400);
    }
}

#[test]
fn zero_length_and_odd_sized_bar_accesses_are_harmless() {
    let mut h = Host::new();
    for len in 0..=8 {
        let _ = h.dev.mmio_read(0, 0x48, len);
        let _ = h.dev.mmio_read(2, 0x1f_fffc, len);
        h.dev.mmio_write(0, 0x100, len, 0);
    }
    h.dev.surprise_remove();
    for len in 0..=8 {
        let _ = h.dev.mmio_read(0, 0x48, len);
    }
}

#[test]
fn mutated_control_messages_never_panic_the_control_service() {
    use aic100_emu::control::{encode, ControlService};
    use aic100_emu::dma::FakeDma;
    let mut mem = FakeDma::new();
    mem.add_region(0x1000, 0x10000);
    let mut svc = ControlService::new(false, "S");
    let mut r = Rng(0x1234_5678_9abc_def1);
    let mut dma = vec![
        6u8, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    dma.extend_from_slice(&0x1000u64.to_le_bytes());
    dma.extend_from_slice(&0x100u64.to_le_bytes());
    let mut nnc = 13u32.to_le_bytes().to_vec();
    nnc.resize(16, 0);
    let base = encode(1, 2, 3, &[status_to_dev(), passthrough(&nnc), dma], false);
    for _ in 0..20_000 {
        let mut m = base.clone();
        for _ in 0..=r.below(6) {
            let i = r.below(m.len() as u64) as usize;
            m[i] = r.next() as u8;
        }
        if r.below(8) == 0 {
            m.truncate(r.below(m.len() as u64) as usize);
        }
        let _ = svc.handle(&m, &mem);
    }
}

#[test]
fn random_packets_never_panic_the_sahara_engine() {
    use aic100_emu::sahara::SaharaDevice;
    let mut r = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..200 {
        let mut s = SaharaDevice::aic100();
        let _ = s.start();
        for _ in 0..50 {
            let n = [0usize, 8, 16, 20, 32, 48, 100][r.below(7) as usize];
            let mut p: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
            if n >= 8 {
                p[0..4].copy_from_slice(&(r.below(9) as u32).to_le_bytes());
                p[4..8].copy_from_slice(&(n as u32).to_le_bytes());
            }
            let _ = s.on_host_packet(&p);
        }
    }
}
