// SPDX-License-Identifier: MIT OR Apache-2.0
//! The DMA bridge and NNC program management, driven as the host drives them: control
//! messages over MHI for loading and activation, request elements in host memory, REQ_TAIL /
//! RSP_HEAD writes in BAR2, responses and MSIs back. No QEMU.

mod common;

use aic100_emu::dbc::{self, sem, Request};
use aic100_emu::dma::Dma;
use aic100_emu::workload::{encode_elf, encode_section, Layer, Workload, SECTION};
use common::*;

const REGS: u64 = 0x20000;

fn w32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn w64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn activate_to_dev(req_q: u64, n: u32) -> Vec<u8> {
    let buf_len = (68 * n + 256).div_ceil(4096) * 4096;
    let mut t = Vec::new();
    for x in [9u32, 40] {
        w32(&mut t, x);
    }
    w64(&mut t, req_q);
    w64(&mut t, req_q + buf_len as u64 - 4 * n as u64);
    for x in [n, n, buf_len, 0] {
        w32(&mut t, x);
    }
    t
}

/// Passthrough carrying an NNC command, with the open runtime's 8 trailing zero bytes.
fn nnc(cmd: &[u8]) -> Vec<u8> {
    let mut c = cmd.to_vec();
    c.resize(c.len() + 8, 0);
    passthrough(&c)
}

fn dma_xfer(tag: u32, chunk: u32, pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut t = Vec::new();
    for x in [
        6u32,
        24 + 16 * pairs.len() as u32,
        tag,
        pairs.len() as u32,
        chunk,
        0,
    ] {
        w32(&mut t, x);
    }
    for &(a, s) in pairs {
        w64(&mut t, a);
        w64(&mut t, s);
    }
    t
}

/// The NNC answer inside the first passthrough of a response.
fn nnc_answer(r: &[u8]) -> Vec<u8> {
    assert_eq!(le32(r, 32), 3, "PASSTHROUGH_FROM_DEV first");
    r[40..32 + le32(r, 36) as usize].to_vec()
}

/// The DMA-bridge host side of one channel.
struct Chan {
    id: u32,
    fifo: u64,
    n: u32,
    tail: u32,
    head: u32,
}

impl Chan {
    fn rsp_q(&self) -> u64 {
        let buf = (68 * self.n as u64 + 256).div_ceil(4096) * 4096;
        self.fifo + buf - 4 * self.n as u64
    }
    fn submit(&mut self, h: &mut Host, reqs: &[Request]) {
        for r in reqs {
            h.dev
                .dma
                .write(self.fifo + 64 * self.tail as u64, &r.encode())
                .unwrap();
            self.tail = (self.tail + 1) % self.n;
        }
        let base = REGS + 0x1000 * self.id as u64;
        h.dev.mmio_write(2, base + 4, 4, self.tail as u64);
        h.dev.run_all();
    }
    fn reg(&self, h: &mut Host, r: u64) -> u32 {
        h.dev.mmio_read(2, REGS + 0x1000 * self.id as u64 + r, 4) as u32
    }
    /// Consume every response: (req_id, status).
    fn drain(&mut self, h: &mut Host) -> Vec<(u16, u16)> {
        let tail = self.reg(h, 0xc);
        let mut out = Vec::new();
        while self.head != tail {
            let v = h
                .dev
                .dma
                .read_u32(self.rsp_q() + 4 * self.head as u64)
                .unwrap();
            out.push((v as u16, (v >> 16) as u16));
            self.head = (self.head + 1) % self.n;
        }
        h.dev
            .mmio_write(2, REGS + 0x1000 * self.id as u64 + 8, 4, self.head as u64);
        h.dev.run_all();
        out
    }
}

fn raw_channel(h: &mut Host, n: u32) -> Chan {
    let fifo = h.alloc(((68 * n + 256).div_ceil(4096) * 4096) as usize + 4096);
    let fifo = fifo.div_ceil(4096) * 4096;
    let r = h
        .control(&control_msg(1, 1, &[activate_to_dev(fifo, n)], true))
        .unwrap();
    assert_eq!(le32(&r, 40), 0, "activate status");
    Chan {
        id: le32(&r, 44),
        fifo,
        n,
        tail: 0,
        head: 0,
    }
}

fn xfer(id: u16, dir: u8, host: u64, dev: u64, len: u32) -> Request {
    let (src, dst) = if dir == 1 { (host, dev) } else { (dev, host) };
    Request {
        req_id: id,
        cmd: 0x18 | dir,
        src,
        dst,
        len,
        ..Default::default()
    }
}

#[test]
fn dbc_bulk_transfers_move_data_both_ways_and_respond_in_order() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut c = raw_channel(&mut h, 16);
    assert_eq!(c.reg(&mut h, 0), 0, "REQ_HEAD reset at activate");
    let ddr = dbc::DDR_BASE + c.id as u64 * dbc::WINDOW;
    let src = h.alloc(100_000);
    let dst = h.alloc(100_000);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 253) as u8).collect();
    h.dev.dma.write(src, &data).unwrap();
    // Two pieces in, one back out; only the last piece of each "slice" has a response.
    let mut a = xfer(7, 1, src, ddr + 10, 60_000);
    a.cmd &= !0x10;
    let b = xfer(7, 1, src + 60_000, ddr + 60_010, 40_000);
    let back = xfer(8, 2, dst, ddr + 10, 100_000);
    c.submit(&mut h, &[a, b, back]);
    assert_eq!(c.reg(&mut h, 0), 3, "REQ_HEAD advanced past every request");
    assert_eq!(c.drain(&mut h), vec![(7, 0), (8, 0)]);
    assert_eq!(h.dev.dma.read_vec(dst, 100_000).unwrap(), data);
    // MSI vector = DBC + 1.
    assert!(h.dev.irq.raised.contains(&(c.id + 1)));
}

#[test]
fn dbc_msi_only_when_the_response_fifo_turns_non_empty_unless_forced() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut c = raw_channel(&mut h, 16);
    let v = c.id + 1;
    let count = |h: &Host| h.dev.irq.raised.iter().filter(|&&x| x == v).count();
    let z = |id| Request {
        req_id: id,
        cmd: 0x18,
        ..Default::default()
    };
    c.submit(&mut h, &[z(1), z(2), z(3)]);
    assert_eq!(count(&h), 1, "one MSI for three responses");
    c.submit(&mut h, &[z(4)]);
    assert_eq!(count(&h), 1, "FIFO not drained: no MSI");
    let mut forced = z(5);
    forced.cmd |= 0x80;
    c.submit(&mut h, &[forced]);
    assert_eq!(count(&h), 2, "force-MSI bit");
    assert_eq!(c.drain(&mut h).len(), 5);
    c.submit(&mut h, &[z(6)]);
    assert_eq!(count(&h), 3, "empty -> non-empty again");
}

#[test]
fn dbc_full_response_fifo_holds_requests_until_the_host_consumes() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut c = raw_channel(&mut h, 4);
    let z = |id| Request {
        req_id: id,
        cmd: 0x18,
        ..Default::default()
    };
    c.submit(&mut h, &[z(1), z(2), z(3)]);
    assert_eq!(c.reg(&mut h, 0xc), 3, "three responses: capacity N-1");
    c.submit(&mut h, &[z(4)]);
    assert_eq!(c.reg(&mut h, 0), 3, "fourth request waits for room");
    assert_eq!(c.drain(&mut h), vec![(1, 0), (2, 0), (3, 0)]);
    assert_eq!(c.reg(&mut h, 0), 0, "then completes (REQ_HEAD wrapped)");
    assert_eq!(c.drain(&mut h), vec![(4, 0)]);
}

#[test]
fn dbc_semaphores_doorbells_and_errors() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut c = raw_channel(&mut h, 32);
    let i = c.id as usize;
    let ddr = dbc::DDR_BASE + c.id as u64 * dbc::WINDOW;
    let mcid = dbc::MCID_BASE + c.id as u64 * dbc::WINDOW;
    let host = h.alloc(64);
    h.dev.dma.write(host, &[0xab; 64]).unwrap();
    // INIT 5, INC, DEC, DEC -> 4 (post-sync, in slot order)
    let mut r = xfer(1, 1, host, ddr, 64);
    r.sem = [
        sem::cmd(sem::INIT, 3, 5, false),
        sem::cmd(sem::INC, 3, 0, false),
        sem::cmd(sem::DEC, 3, 0, false),
        sem::cmd(sem::DEC, 3, 0, false),
    ];
    c.submit(&mut h, &[r]);
    assert_eq!(h.dev.dbc.ch[i].sems[3], 4);
    // A pre-sync WAIT_EQ 6 blocks the channel (FIFO order), later requests too.
    let mut w = xfer(2, 2, host, ddr, 64);
    w.sem[1] = sem::cmd(sem::WAIT_EQ, 3, 6, true);
    let mut p = xfer(3, 1, host, ddr + 64, 64);
    p.sem[0] = sem::cmd(sem::WAIT_P, 4, 0, true);
    c.submit(&mut h, &[w, p]);
    assert_eq!(c.drain(&mut h), vec![(1, 0)]);
    assert_eq!(c.reg(&mut h, 0), 1, "blocked at the wait");
    h.dev.dbc.ch[i].sems[3] = 6;
    h.dev.dbc.ch[i].sems[4] = 2;
    h.dev.run_all();
    assert_eq!(c.drain(&mut h), vec![(2, 0), (3, 0)]);
    assert_eq!(h.dev.dbc.ch[i].sems[4], 1, "P decremented");
    // Doorbells of 32, 16 and 8 bits land in device memory (MCID window).
    let out = h.alloc(8);
    for (k, attr) in [(0u64, 0x80u8), (4, 0x81), (6, 0x82)] {
        let mut d = Request {
            req_id: 10 + k as u16,
            cmd: 0x18,
            db_addr: mcid + 0x100 + k,
            db_attr: attr,
            db_data: 0x1122_3344,
            ..Default::default()
        };
        d.sem = [0; 4];
        c.submit(&mut h, &[d]);
    }
    c.submit(&mut h, &[xfer(20, 2, out, mcid + 0x100, 8)]);
    assert_eq!(
        h.dev.dma.read_vec(out, 8).unwrap(),
        vec![0x44, 0x33, 0x22, 0x11, 0x44, 0x33, 0x44, 0]
    );
    // Errors: device address outside the windows, unmapped host memory, illegal command.
    let mut bad_cmd = xfer(31, 3, host, ddr, 4);
    bad_cmd.cmd = 0x10 | 0x03;
    c.submit(
        &mut h,
        &[
            xfer(30, 1, host, 0x10, 64),
            xfer(32, 1, 0xdead_0000_0000, ddr, 64),
            bad_cmd,
        ],
    );
    let rs = c.drain(&mut h);
    assert_eq!(
        rs.iter().filter(|r| r.0 >= 30).cloned().collect::<Vec<_>>(),
        vec![(30, 2), (32, 1), (31, 3)]
    );
}

fn example() -> (Workload, Vec<u8>) {
    let mut c = vec![0u8; 208];
    for (k, b) in c[0..128].iter_mut().enumerate() {
        *b = ((k * 37 % 23) as i32 - 11) as i8 as u8;
    }
    for j in 0..8 {
        c[128 + 4 * j..132 + 4 * j].copy_from_slice(&(j as i32 * 50 - 100).to_le_bytes());
    }
    for (k, b) in c[160..192].iter_mut().enumerate() {
        *b = ((k * 11 % 9) as i32 - 4) as i8 as u8;
    }
    for j in 0..4 {
        c[192 + 4 * j..196 + 4 * j].copy_from_slice(&(7 - 5 * j as i32).to_le_bytes());
    }
    let layer = |i, o, w, b, m, s, a| Layer {
        in_features: i,
        out_features: o,
        weights_offset: w,
        bias_offset: b,
        multiplier: m,
        shift: s,
        activation: a,
    };
    let w = Workload {
        version_minor: 0,
        input_offset: 0,
        output_offset: 0x1000,
        doorbell_offset: 0x40,
        done_sem: 2,
        latency_ns: 0,
        constants_len: 208,
        layers: vec![
            layer(16, 8, 0, 128, 1, 4, 1),
            layer(8, 4, 160, 192, 3, 2, 0),
        ],
    };
    (w, c)
}

struct Loaded {
    cid: u32,
    eid: u32,
}

fn load(h: &mut Host, handle: u32, w: &Workload, c: &[u8]) -> Loaded {
    let elf = encode_elf(&[(".text", &[0u8; 16]), (SECTION, &encode_section(w))]);
    // LOAD_CONSTANTS_EX
    let mut ex = Vec::new();
    w32(&mut ex, 15);
    w32(&mut ex, 42);
    ex.extend_from_slice(&[0u8; 64]);
    w32(&mut ex, 24);
    w32(&mut ex, 0);
    w64(&mut ex, c.len() as u64);
    w64(&mut ex, 0);
    ex.extend_from_slice(&[0u8; 8]);
    let r = h
        .control(&control_msg(20, handle, &[nnc(&ex)], true))
        .unwrap();
    let a = nnc_answer(&r);
    assert_eq!((le32(&a, 0), le32(&a, 8)), (2, 0), "LOAD_CONSTANTS_RESP ok");
    let cid = le32(&a, 4);
    assert_ne!(cid, 0);
    // PAYLOAD + DMA in two parts
    let buf = h.alloc(c.len());
    h.dev.dma.write(buf, c).unwrap();
    let half = c.len() as u64 / 2;
    for (k, (off, len)) in [(0u64, half), (half, c.len() as u64 - half)]
        .into_iter()
        .enumerate()
    {
        let mut p = Vec::new();
        for x in [16u32, 42, 100 + k as u32, cid] {
            w32(&mut p, x);
        }
        w64(&mut p, len);
        w64(&mut p, off);
        let r = h
            .control(&control_msg(
                21,
                handle,
                &[nnc(&p), dma_xfer(100 + k as u32, 0, &[(buf + off, len)])],
                true,
            ))
            .unwrap();
        let a = nnc_answer(&r);
        assert_eq!((le32(&a, 0), le32(&a, 4), le32(&a, 8)), (2, cid, 0));
    }
    // LOAD_ELF + DMA
    let eb = h.alloc(elf.len());
    h.dev.dma.write(eb, &elf).unwrap();
    let mut le = Vec::new();
    for x in [3u32, 7, 42, 0] {
        w32(&mut le, x);
    }
    let mut name = b"mlp".to_vec();
    name.resize(64, 0);
    le.extend_from_slice(&name);
    w64(&mut le, elf.len() as u64);
    w64(&mut le, 0);
    let r = h
        .control(&control_msg(
            22,
            handle,
            &[nnc(&le), dma_xfer(7, 0, &[(eb, elf.len() as u64)])],
            true,
        ))
        .unwrap();
    let a = nnc_answer(&r);
    assert_eq!((le32(&a, 0), le32(&a, 8)), (4, 0), "LOAD_ELF_RESP ok");
    Loaded {
        cid,
        eid: le32(&a, 4),
    }
}

fn activate_req(cid: u32, eid: u32, vc_setup: u32) -> Vec<u8> {
    let mut a = Vec::new();
    for x in [9u32, 42, cid, eid, 0, u32::MAX, vc_setup, u32::MAX, 1, 0] {
        w32(&mut a, x);
    }
    w64(&mut a, 0);
    a
}

#[test]
fn nnc_program_lifecycle_runs_inferences_through_the_dbc() {
    let mut h = Host::new();
    h.boot_to_amss();
    let (w, c) = example();
    let l = load(&mut h, 5, &w, &c);
    let n = 64u32;
    let fifo = h.alloc(8192 + 4096).div_ceil(4096) * 4096;
    let r = h
        .control(&control_msg(
            30,
            5,
            &[
                nnc(&activate_req(l.cid, l.eid, 1)),
                activate_to_dev(fifo, n),
            ],
            true,
        ))
        .unwrap();
    assert_eq!(le32(&r, 16), 2, "passthrough + ACTIVATE_FROM_DEV");
    let a = nnc_answer(&r);
    assert_eq!((le32(&a, 0), le32(&a, 4)), (10, 0), "ACTIVATE_RESP ok");
    let aid = le32(&a, 8);
    let vc = le32(&a, 12);
    let (ddr, mcid) = (le64(&a, 16), le64(&a, 32));
    let off = 32 + le32(&r, 36) as usize;
    assert_eq!(le32(&r, off), 8, "ACTIVATE_FROM_DEV");
    assert_eq!((le32(&r, off + 8), le32(&r, off + 12)), (0, vc), "same DBC");
    let mut ch = Chan {
        id: vc,
        fifo,
        n,
        tail: 0,
        head: 0,
    };
    let inb = h.alloc(16);
    let outb = h.alloc(4);
    for k in 0..3u16 {
        let x: Vec<u8> = (0..16)
            .map(|i: i32| (i * 9 - 70 + k as i32 * 31) as i8 as u8)
            .collect();
        h.dev.dma.write(inb, &x).unwrap();
        let mut input = xfer(2 * k, 1, inb, ddr, 16);
        input.db_addr = mcid + 0x40;
        input.db_attr = 0x80;
        input.db_data = k as u32;
        let mut output = xfer(2 * k + 1, 2, outb, ddr + 0x1000, 4);
        output.sem = [
            sem::cmd(sem::WAIT_GE, 2, 1, true),
            sem::cmd(sem::DEC, 2, 0, false),
            0,
            0,
        ];
        ch.submit(&mut h, &[input, output]);
        assert_eq!(ch.drain(&mut h), vec![(2 * k, 0), (2 * k + 1, 0)]);
        assert_eq!(h.dev.dma.read_vec(outb, 4).unwrap(), w.compute(&c, &x));
        assert_eq!(h.dev.dbc.ch[vc as usize].sems[2], 0);
    }
    assert_eq!(h.dev.dbc.ch[vc as usize].stats.inferences, 3);
    // In use: unloads refused.
    let unload = |ty: u32, id: u32| {
        let mut u = Vec::new();
        w32(&mut u, ty);
        w32(&mut u, id);
        u
    };
    let r = h
        .control(&control_msg(31, 5, &[nnc(&unload(7, l.eid))], true))
        .unwrap();
    assert_eq!(le32(&nnc_answer(&r), 4) as i32, -9, "ELF in use");
    // DEACTIVATE with teardown: DEACTIVATE_FROM_DEV names the DBC, the channel stops.
    let mut d = Vec::new();
    for x in [11u32, aid, 1, 0] {
        w32(&mut d, x);
    }
    let r = h.control(&control_msg(32, 5, &[nnc(&d)], true)).unwrap();
    assert_eq!(le32(&r, 16), 2);
    assert_eq!(nnc_answer(&r)[..8], [12, 0, 0, 0, 0, 0, 0, 0]);
    let off = 32 + le32(&r, 36) as usize;
    assert_eq!(
        (
            le32(&r, off),
            le32(&r, off + 4),
            le32(&r, off + 8),
            le32(&r, off + 12)
        ),
        (11, 16, 0, vc)
    );
    assert!(!h.dev.dbc.ch[vc as usize].active);
    let before = h.dev.dbc.ch[vc as usize].stats.requests;
    h.dev.mmio_write(2, REGS + 0x1000 * vc as u64 + 4, 4, 1);
    h.dev.run_all();
    assert_eq!(h.dev.dbc.ch[vc as usize].stats.requests, before, "stopped");
    for (ty, id) in [(7, l.eid), (5, l.cid)] {
        let r = h
            .control(&control_msg(33, 5, &[nnc(&unload(ty, id))], true))
            .unwrap();
        assert_eq!(le32(&nnc_answer(&r), 0), ty + 1, "answer type");
        assert_eq!(le32(&nnc_answer(&r), 4), 0, "unloaded");
        let r = h
            .control(&control_msg(34, 5, &[nnc(&unload(ty, id))], true))
            .unwrap();
        assert_eq!(le32(&nnc_answer(&r), 4) as i32, -11, "double unload");
    }
}

#[test]
fn nnc_misuse_is_answered_with_the_protocol_status_codes() {
    let mut h = Host::new();
    h.boot_to_amss();
    let (w, c) = example();
    let l = load(&mut h, 5, &w, &c);
    let fifo = h.alloc(8192 + 4096).div_ceil(4096) * 4096;
    let st = |r: &[u8], at: usize| le32(&nnc_answer(r), at) as i32;
    // Unknown network / constants.
    let r = h
        .control(&control_msg(
            40,
            5,
            &[nnc(&activate_req(l.cid, 999, 1)), activate_to_dev(fifo, 16)],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -11);
    let off = 32 + le32(&r, 36) as usize;
    assert_ne!(
        le32(&r, off + 8),
        0,
        "SETUP_VC given back: ACTIVATE_FROM_DEV fails"
    );
    assert_eq!(h.dev.control.dbcs_in_use(), 0);
    let r = h
        .control(&control_msg(
            41,
            5,
            &[nnc(&activate_req(999, l.eid, 1)), activate_to_dev(fifo, 16)],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -11);
    // Another user's objects.
    let r = h
        .control(&control_msg(
            42,
            6,
            &[
                nnc(&activate_req(l.cid, l.eid, 1)),
                activate_to_dev(fifo, 16),
            ],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -9);
    // No SETUP_VC in the message.
    let r = h
        .control(&control_msg(
            43,
            5,
            &[nnc(&activate_req(l.cid, l.eid, 1))],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -14);
    // A workload whose constants are too small.
    let r = h
        .control(&control_msg(
            44,
            5,
            &[nnc(&activate_req(0, l.eid, 1)), activate_to_dev(fifo, 16)],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -5);
    // LOAD_ELF without its DMA transfer, with a broken ELF, a short command.
    let mut le = Vec::new();
    for x in [3u32, 9, 42, 0] {
        w32(&mut le, x);
    }
    le.extend_from_slice(&[0u8; 64]);
    w64(&mut le, 64);
    w64(&mut le, 0);
    let r = h.control(&control_msg(45, 5, &[nnc(&le)], true)).unwrap();
    assert_eq!((le32(&nnc_answer(&r), 0), st(&r, 8)), (4, -1));
    let junk = h.alloc(64);
    let r = h
        .control(&control_msg(
            46,
            5,
            &[nnc(&le), dma_xfer(9, 0, &[(junk, 64)])],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 8), -5, "not an ELF");
    let r = h
        .control(&control_msg(47, 5, &[passthrough(&le[..40])], true))
        .unwrap();
    assert_eq!(st(&r, 8), -17, "short LOAD_ELF");
    // Constants announced but never loaded: ACTIVATE refuses them.
    let mut ex = Vec::new();
    w32(&mut ex, 15);
    w32(&mut ex, 42);
    ex.extend_from_slice(&[0u8; 64]);
    w32(&mut ex, 24);
    w32(&mut ex, 0);
    w64(&mut ex, 4096);
    w64(&mut ex, 0);
    ex.extend_from_slice(&[0u8; 8]);
    let r = h.control(&control_msg(48, 5, &[nnc(&ex)], true)).unwrap();
    let cid2 = le32(&nnc_answer(&r), 4);
    let r = h
        .control(&control_msg(
            49,
            5,
            &[
                nnc(&activate_req(cid2, l.eid, 1)),
                activate_to_dev(fifo, 16),
            ],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -6, "incomplete constants");
    // Payload beyond the announced size, unknown DEACTIVATE.
    let mut p = Vec::new();
    for x in [16u32, 42, 1, cid2] {
        w32(&mut p, x);
    }
    w64(&mut p, 16);
    w64(&mut p, 4090);
    let r = h
        .control(&control_msg(
            50,
            5,
            &[nnc(&p), dma_xfer(1, 0, &[(junk, 16)])],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 8), -6);
    let r = h
        .control(&control_msg(
            51,
            5,
            &[nnc(&[11, 0, 0, 0, 77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -11);
    assert_eq!(
        le32(&r, 16),
        1,
        "no DEACTIVATE_FROM_DEV for an unknown activation"
    );
    // TERMINATE of the owner drops everything: the ids are unknown afterwards.
    let mut term = Vec::new();
    for v in [17u32, 16, 5, 0] {
        w32(&mut term, v);
    }
    h.control(&control_msg(52, 5, &[term], true)).unwrap();
    let r = h
        .control(&control_msg(
            53,
            5,
            &[
                nnc(&activate_req(l.cid, l.eid, 1)),
                activate_to_dev(fifo, 16),
            ],
            true,
        ))
        .unwrap();
    assert_eq!(st(&r, 4), -11);
}

#[test]
fn nnc_load_elf_with_a_chunked_dma_transfer_is_answered_after_the_last_piece() {
    let mut h = Host::new();
    h.boot_to_amss();
    let (w, _) = example();
    let elf = encode_elf(&[(SECTION, &encode_section(&w))]);
    let a = h.alloc(elf.len());
    h.dev.dma.write(a, &elf).unwrap();
    let mut le = Vec::new();
    for x in [3u32, 4, 42, 0] {
        w32(&mut le, x);
    }
    le.extend_from_slice(&[0u8; 64]);
    w64(&mut le, elf.len() as u64);
    w64(&mut le, 0);
    let half = 100u64;
    let r = h
        .control(&control_msg(
            60,
            5,
            &[nnc(&le), dma_xfer(4, 3, &[(a, half)])],
            true,
        ))
        .unwrap();
    assert_eq!((le32(&r, 16), le32(&r, 32)), (1, 18), "lone DMA_XFER_CONT");
    assert_eq!((le32(&r, 40), le64(&r, 48)), (3, half));
    let rest = elf.len() as u64 - half;
    let r = h
        .control(&control_msg(
            61,
            5,
            &[dma_xfer(4, 3, &[(a + half, rest)])],
            true,
        ))
        .unwrap();
    let ans = nnc_answer(&r);
    assert_eq!(
        (le32(&ans, 0), le32(&ans, 8)),
        (4, 0),
        "LOAD_ELF_RESP after the last piece"
    );
    assert_ne!(le32(&ans, 4), 0);
}

#[test]
fn compute_latency_delays_the_done_semaphore() {
    use aic100_emu::dbc::{Bar2, DbcEngine, Program};
    use aic100_emu::dma::FakeDma;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let (w, c) = example();
    let mut e = DbcEngine::new(Bar2::heap(2 << 20));
    e.compute_latency = Some(Duration::from_millis(50));
    let mut dma = FakeDma::new();
    dma.add_region(0x1000_0000, 0x10000);
    e.activate(0, 0x1000_0000, 0x1000_0000 + 8192 - 64, 16);
    e.bind(
        0,
        Some(Program {
            workload: Arc::new(w),
            constants: Arc::new(c),
        }),
    );
    let db = Request {
        cmd: 0x18,
        db_addr: dbc::MCID_BASE + 0x40,
        db_attr: 0x80,
        ..Default::default()
    };
    dma.write(0x1000_0000, &db.encode()).unwrap();
    e.bar.store32(0x20004, 1);
    let t0 = Instant::now();
    let s = e.service(&mut dma, t0);
    assert_eq!(s.msi, vec![1]);
    let due = s.next.expect("an inference is pending");
    assert!(due >= t0 + Duration::from_millis(50));
    assert_eq!(e.ch[0].sems[2], 0, "not done before its latency");
    e.service(&mut dma, due);
    assert_eq!(e.ch[0].sems[2], 1, "done semaphore incremented");
}
