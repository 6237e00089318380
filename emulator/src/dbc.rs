// SPDX-License-Identifier: MIT OR Apache-2.0
//! The DMA bridge: 16 channels (DBCs) in BAR2, their request/response FIFOs in host memory,
//! bulk transfers between host memory and emulated device memory, semaphores, doorbells,
//! response elements with interrupt moderation, and the compute stand-in
//! ([`crate::workload`]) started by doorbells. Written from `dma-bridge.md`.
//!
//! Register transport: BAR2 is backed by [`Bar2`], a memfd that QEMU maps straight into the
//! guest, so the host's register reads cost nothing; the device notices REQ_TAIL and RSP_HEAD
//! writes by looking at the registers ([`DbcEngine::service`]: called after trapped BAR2
//! writes and periodically by the worker thread while a channel is active).

use crate::dma::{Dma, DmaFault};
use crate::workload::Workload;
use log::{debug, error, info, warn};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Number of channels.
pub const NUM_DBC: usize = 16;
/// Offset of channel 0's register block in BAR2.
pub const REGS: usize = 0x20000;
/// Distance between register blocks.
pub const STRIDE: usize = 0x1000;
/// Request FIFO head (device-owned).
pub const REQ_HEAD: usize = 0x0;
/// Request FIFO tail (host-owned).
pub const REQ_TAIL: usize = 0x4;
/// Response FIFO head (host-owned).
pub const RSP_HEAD: usize = 0x8;
/// Response FIFO tail (device-owned).
pub const RSP_TAIL: usize = 0xc;
/// Request element size.
pub const REQ_LEN: u64 = 64;
/// Response element size.
pub const RSP_LEN: u64 = 4;
/// Size of each device-memory window of an activation.
pub const WINDOW: u64 = 0x1000_0000;
/// Base of DBC 0's DDR window (DBC n: `+ n * WINDOW`).
pub const DDR_BASE: u64 = 0x1_0000_0000;
/// Base of DBC 0's MCID window (DBC n: `+ n * WINDOW`).
pub const MCID_BASE: u64 = 0x20_0000_0000;
/// Device memory page.
pub const PAGE: u64 = 64 << 10;
/// Most device memory the data path may hold.
pub const DEVMEM_LIMIT: u64 = 1 << 30;
/// Semaphores per channel.
pub const NUM_SEM: usize = 32;

/// Response status values (emulator's choice; the host only logs non-zero values).
pub mod status {
    /// Success.
    pub const OK: u16 = 0;
    /// Host memory not reachable (bus address outside DMA-mapped memory).
    pub const HOST_FAULT: u16 = 1;
    /// Device address outside the channel's windows, or device memory exhausted.
    pub const DEV_ADDR: u16 = 2;
    /// Illegal command (transfer type 3, linked-list mode, reserved semaphore or doorbell
    /// encoding).
    pub const BAD_CMD: u16 = 3;
}

/// BAR2 backing store: a memfd mapping shared with QEMU (and through it with the guest), or
/// plain memory for tests. Accessed only with atomic 32-bit operations or byte copies.
pub struct Bar2 {
    ptr: *mut u8,
    len: usize,
    fd: Option<File>,
    heap: Option<Box<[AtomicU32]>>,
}

// SAFETY: the mapping lives as long as the Bar2; all accesses are atomics or bounds-checked
// byte copies.
unsafe impl Send for Bar2 {}

impl Bar2 {
    /// Plain memory (tests, benchmark).
    pub fn heap(len: usize) -> Bar2 {
        let mut heap: Box<[AtomicU32]> = (0..len / 4).map(|_| AtomicU32::new(0)).collect();
        Bar2 {
            ptr: heap.as_mut_ptr() as *mut u8,
            len,
            fd: None,
            heap: Some(heap),
        }
    }

    /// A memfd of `len` bytes, mapped here and handed to QEMU for the guest.
    pub fn memfd(len: usize) -> std::io::Result<Bar2> {
        // SAFETY: memfd_create with a static name; result checked.
        let fd = unsafe { libc::memfd_create(c"aic100-bar2".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let f = unsafe { File::from_raw_fd(fd) };
        f.set_len(len as u64)?;
        // SAFETY: shared mapping of our memfd; result checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Bar2 {
            ptr: p as *mut u8,
            len,
            fd: Some(f),
            heap: None,
        })
    }

    /// The memfd to hand to QEMU, if any.
    pub fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        assert!(off.is_multiple_of(4) && off + 4 <= self.len);
        // SAFETY: aligned, in bounds, the memory lives as long as self.
        unsafe { &*(self.ptr.add(off) as *const AtomicU32) }
    }

    /// 32-bit load.
    pub fn load32(&self, off: usize) -> u32 {
        self.word(off).load(Ordering::Acquire)
    }

    /// 32-bit store.
    pub fn store32(&self, off: usize, v: u32) {
        self.word(off).store(v, Ordering::Release)
    }

    /// Little-endian read of `len` (1..=8) bytes (trapped BAR accesses); out of range reads 0.
    pub fn read(&self, off: usize, len: usize) -> u64 {
        let mut b = [0u8; 8];
        if len <= 8 && off.checked_add(len).is_some_and(|e| e <= self.len) {
            if len == 4 && off.is_multiple_of(4) {
                return self.load32(off) as u64;
            }
            // SAFETY: in bounds.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), b.as_mut_ptr(), len) };
        }
        u64::from_le_bytes(b)
    }

    /// Little-endian write of `len` (1..=8) bytes; out of range writes are dropped.
    pub fn write(&self, off: usize, len: usize, v: u64) {
        if len <= 8 && off.checked_add(len).is_some_and(|e| e <= self.len) {
            if len == 4 && off.is_multiple_of(4) {
                return self.store32(off, v as u32);
            }
            let b = v.to_le_bytes();
            // SAFETY: in bounds.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.add(off), len) };
        }
    }

    /// Zero everything.
    pub fn clear(&self) {
        for off in (0..self.len).step_by(4) {
            self.store32(off, 0);
        }
    }
}

impl Drop for Bar2 {
    fn drop(&mut self) {
        if self.heap.is_none() {
            // SAFETY: unmapping our own mapping.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        }
    }
}

/// Emulated device memory: sparse 64 KiB pages, zero until written.
#[derive(Default)]
pub struct DevMem {
    pages: BTreeMap<u64, Box<[u8]>>,
}

static ZERO_PAGE: [u8; PAGE as usize] = [0; PAGE as usize];

impl DevMem {
    /// Bytes allocated.
    pub fn allocated(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// The rest of the page at `addr`, allocated on demand (None: memory exhausted).
    fn page_mut(&mut self, addr: u64) -> Option<&mut [u8]> {
        let (p, off) = (addr / PAGE, (addr % PAGE) as usize);
        if !self.pages.contains_key(&p) && self.allocated() >= DEVMEM_LIMIT {
            return None;
        }
        let pg = self
            .pages
            .entry(p)
            .or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
        Some(&mut pg[off..])
    }

    fn page(&self, addr: u64) -> &[u8] {
        let (p, off) = (addr / PAGE, (addr % PAGE) as usize);
        match self.pages.get(&p) {
            Some(pg) => &pg[off..],
            None => &ZERO_PAGE[off..],
        }
    }

    /// Copy out `buf.len()` bytes at `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let src = self.page(addr + done as u64);
            let n = src.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&src[..n]);
            done += n;
        }
    }

    /// Store `data` at `addr`; false if device memory is exhausted.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let mut done = 0;
        while done < data.len() {
            let Some(dst) = self.page_mut(addr + done as u64) else {
                return false;
            };
            let n = dst.len().min(data.len() - done);
            dst[..n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        true
    }

    /// Forget `[base, base + len)` (page granular; bases are page aligned).
    pub fn discard(&mut self, base: u64, len: u64) {
        let keys: Vec<u64> = self
            .pages
            .range(base / PAGE..(base + len).div_ceil(PAGE))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.pages.remove(&k);
        }
    }
}

/// A workload bound to an activated channel.
#[derive(Debug, Clone)]
pub struct Program {
    /// The model.
    pub workload: Arc<Workload>,
    /// The constants it reads.
    pub constants: Arc<Vec<u8>>,
}

/// One decoded request element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    /// Request id.
    pub req_id: u16,
    /// Command byte.
    pub cmd: u8,
    /// Source address.
    pub src: u64,
    /// Destination address.
    pub dst: u64,
    /// Length.
    pub len: u32,
    /// Doorbell address.
    pub db_addr: u64,
    /// Doorbell attributes.
    pub db_attr: u8,
    /// Doorbell value.
    pub db_data: u32,
    /// Semaphore commands.
    pub sem: [u32; 4],
}

impl Request {
    /// Decode a 64-byte element.
    pub fn decode(b: &[u8; 64]) -> Request {
        let u32_ = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let u64_ = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        Request {
            req_id: u16::from_le_bytes([b[0], b[1]]),
            cmd: b[3],
            src: u64_(8),
            dst: u64_(16),
            len: u32_(24),
            db_addr: u64_(32),
            db_attr: b[40],
            db_data: u32_(44),
            sem: [u32_(48), u32_(52), u32_(56), u32_(60)],
        }
    }

    /// Encode (tests and the benchmark play the host with it).
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..2].copy_from_slice(&self.req_id.to_le_bytes());
        b[3] = self.cmd;
        b[8..16].copy_from_slice(&self.src.to_le_bytes());
        b[16..24].copy_from_slice(&self.dst.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[32..40].copy_from_slice(&self.db_addr.to_le_bytes());
        b[40] = self.db_attr;
        b[44..48].copy_from_slice(&self.db_data.to_le_bytes());
        for (i, s) in self.sem.iter().enumerate() {
            b[48 + 4 * i..52 + 4 * i].copy_from_slice(&s.to_le_bytes());
        }
        b
    }
}

/// Semaphore command encoding (bit fields of `sem_cmdN`).
pub mod sem {
    /// Command enabled.
    pub const ENABLE: u32 = 1 << 31;
    /// Pre-sync (gates the transfer).
    pub const PRESYNC: u32 = 1 << 22;
    /// Operation codes.
    pub const INIT: u32 = 1;
    /// Increment.
    pub const INC: u32 = 2;
    /// Decrement.
    pub const DEC: u32 = 3;
    /// Wait until equal.
    pub const WAIT_EQ: u32 = 4;
    /// Wait until greater or equal.
    pub const WAIT_GE: u32 = 5;
    /// Wait until > 0, then decrement.
    pub const WAIT_P: u32 = 6;

    /// Encode a command.
    pub fn cmd(op: u32, index: u32, val: u32, presync: bool) -> u32 {
        ENABLE
            | (op << 24)
            | ((index & 31) << 16)
            | (val & 0xfff)
            | if presync { PRESYNC } else { 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Pre,
    Transfer,
    Post,
    Doorbell,
    Respond,
}

#[derive(Debug, Clone)]
struct Cur {
    req: Request,
    stage: Stage,
    sem_idx: usize,
    status: u16,
}

#[derive(Debug)]
struct Compute {
    due: Instant,
    output: Vec<u8>,
}

/// Per-channel counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChanStats {
    /// Requests completed.
    pub requests: u64,
    /// Responses written.
    pub responses: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// MSIs raised.
    pub msis: u64,
    /// Inferences run.
    pub inferences: u64,
    /// Requests completed with a non-zero status.
    pub errors: u64,
}

/// One DMA bridge channel.
#[derive(Debug, Default)]
pub struct Channel {
    /// Assigned to a user (activated).
    pub active: bool,
    req_q: u64,
    rsp_q: u64,
    n: u32,
    req_head: u32,
    rsp_tail: u32,
    /// Semaphores (12-bit values).
    pub sems: [u16; NUM_SEM],
    cur: Option<Cur>,
    computes: VecDeque<Compute>,
    bad_tail: Option<u32>,
    halted: bool,
    /// Base of the DDR window.
    pub ddr_base: u64,
    /// Base of the MCID window.
    pub mcid_base: u64,
    /// The bound workload, if any.
    pub program: Option<Program>,
    /// Counters.
    pub stats: ChanStats,
}

fn in_window(ddr: u64, mcid: u64, addr: u64, len: u64) -> bool {
    let inside =
        |base: u64| addr >= base && addr.checked_add(len).is_some_and(|e| e <= base + WINDOW);
    inside(ddr) || inside(mcid)
}

/// Engine counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    /// Service passes.
    pub services: u64,
}

/// The 16 channels, their register file and the device memory they move data into.
pub struct DbcEngine {
    /// BAR2 backing store.
    pub bar: Bar2,
    /// Channels.
    pub ch: Vec<Channel>,
    /// Device memory.
    pub mem: DevMem,
    /// Compute latency overriding the workloads' nominal latency.
    pub compute_latency: Option<Duration>,
    last_activity: Option<Instant>,
    /// Counters.
    pub stats: EngineStats,
}

/// What a service pass asks of the device.
#[derive(Debug, Default)]
pub struct Service {
    /// MSI vectors to raise.
    pub msi: Vec<u32>,
    /// Earliest pending compute completion.
    pub next: Option<Instant>,
    /// Something happened (requests, responses, computations).
    pub progress: bool,
}

fn reg(i: usize, r: usize) -> usize {
    REGS + i * STRIDE + r
}

impl DbcEngine {
    /// An engine over `bar`.
    pub fn new(bar: Bar2) -> DbcEngine {
        DbcEngine {
            bar,
            ch: (0..NUM_DBC).map(|_| Channel::default()).collect(),
            mem: DevMem::default(),
            compute_latency: None,
            last_activity: None,
            stats: EngineStats::default(),
        }
    }

    /// Whether a BAR2 offset is a host-written register that needs the device's attention.
    pub fn is_doorbell_reg(off: u64) -> bool {
        let off = off as usize;
        (REGS..REGS + NUM_DBC * STRIDE).contains(&off)
            && matches!((off - REGS) % STRIDE, REQ_TAIL | RSP_HEAD)
    }

    /// True if any channel is active.
    pub fn any_active(&self) -> bool {
        self.ch.iter().any(|c| c.active)
    }

    /// How soon the worker should look at the registers again (None: no channel active).
    pub fn poll_interval(&self, now: Instant) -> Option<Duration> {
        if !self.any_active() {
            return None;
        }
        let idle = self
            .last_activity
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        Some(if idle < Duration::from_millis(20) {
            Duration::from_micros(20)
        } else if idle < Duration::from_millis(500) {
            Duration::from_micros(200)
        } else {
            Duration::from_millis(1)
        })
    }

    /// Set up channel `i` (NNC/control ACTIVATE): queue geometry, indices and semaphores
    /// reset, windows cleared.
    pub fn activate(&mut self, i: usize, req_q: u64, rsp_q: u64, n: u32) {
        self.deactivate(i);
        let c = &mut self.ch[i];
        c.active = true;
        c.req_q = req_q;
        c.rsp_q = rsp_q;
        c.n = n;
        c.ddr_base = DDR_BASE + i as u64 * WINDOW;
        c.mcid_base = MCID_BASE + i as u64 * WINDOW;
        self.last_activity = Some(Instant::now());
        info!(target: "dbc", "DBC {i}: active, {n} elements, request FIFO {req_q:#x}, response FIFO {rsp_q:#x}");
    }

    /// Bind (or unbind) a workload to channel `i`.
    pub fn bind(&mut self, i: usize, p: Option<Program>) {
        if let Some(p) = &p {
            info!(target: "dbc", "DBC {i}: workload {} layers, {} -> {} bytes", p.workload.layers.len(),
                p.workload.input_len(), p.workload.output_len());
        }
        self.ch[i].program = p;
    }

    /// Stop channel `i`: no further access to its FIFOs or windows.
    pub fn deactivate(&mut self, i: usize) {
        let (ddr, mcid, was) = {
            let c = &self.ch[i];
            (c.ddr_base, c.mcid_base, c.active)
        };
        if was {
            info!(target: "dbc", "DBC {i}: deactivated ({:?})", self.ch[i].stats);
            self.mem.discard(ddr, WINDOW);
            self.mem.discard(mcid, WINDOW);
        }
        let stats = self.ch[i].stats;
        self.ch[i] = Channel {
            stats,
            ..Default::default()
        };
        for r in [REQ_HEAD, REQ_TAIL, RSP_HEAD, RSP_TAIL] {
            self.bar.store32(reg(i, r), 0);
        }
    }

    /// Device reset: every channel stops, registers and memory are cleared.
    pub fn reset(&mut self) {
        for i in 0..NUM_DBC {
            self.deactivate(i);
        }
        self.mem = DevMem::default();
        self.bar.clear();
    }

    /// Do everything that is possible now: finish due computations, process requests,
    /// write responses. `now` decides which computations are due.
    pub fn service<D: Dma>(&mut self, dma: &mut D, now: Instant) -> Service {
        self.stats.services += 1;
        let mut out = Service::default();
        for i in 0..NUM_DBC {
            if !self.ch[i].active || self.ch[i].halted {
                continue;
            }
            loop {
                let mut moved = self.finish_computes(i, now);
                moved |= self.run_requests(i, dma, now, &mut out.msi);
                if !moved {
                    break;
                }
                out.progress = true;
            }
            if let Some(c) = self.ch[i].computes.front() {
                out.next = Some(out.next.map_or(c.due, |n: Instant| n.min(c.due)));
            }
        }
        if out.progress {
            self.last_activity = Some(now.min(Instant::now()));
        }
        out
    }

    fn finish_computes(&mut self, i: usize, now: Instant) -> bool {
        let mut any = false;
        while self.ch[i].computes.front().is_some_and(|c| c.due <= now) {
            let c = self.ch[i].computes.pop_front().unwrap();
            let ch = &mut self.ch[i];
            let Some(p) = &ch.program else { continue };
            let addr = ch.ddr_base + p.workload.output_offset;
            let s = p.workload.done_sem as usize;
            ch.sems[s] = (ch.sems[s] + 1) & 0xfff;
            ch.stats.inferences += 1;
            if !self.mem.write(addr, &c.output) {
                error!(target: "dbc", "DBC {i}: device memory exhausted writing an inference output");
            }
            debug!(target: "dbc", "DBC {i}: inference done, semaphore {s} = {}", self.ch[i].sems[s]);
            any = true;
        }
        any
    }

    fn run_requests<D: Dma>(
        &mut self,
        i: usize,
        dma: &mut D,
        now: Instant,
        msi: &mut Vec<u32>,
    ) -> bool {
        let mut progress = false;
        loop {
            if self.ch[i].cur.is_none() {
                let c = &mut self.ch[i];
                let tail = self.bar.load32(reg(i, REQ_TAIL));
                if tail >= c.n {
                    if c.bad_tail != Some(tail) {
                        error!(target: "dbc", "DBC {i}: REQ_TAIL {tail} beyond the {}-element FIFO: ignored", c.n);
                        c.bad_tail = Some(tail);
                    }
                    return progress;
                }
                if tail == c.req_head {
                    return progress;
                }
                let mut el = [0u8; 64];
                if let Err(f) = dma.read(c.req_q + REQ_LEN * c.req_head as u64, &mut el) {
                    error!(target: "dbc", "DBC {i}: request FIFO unreadable ({f}): channel halted until the next activation");
                    c.halted = true;
                    return progress;
                }
                let req = Request::decode(&el);
                debug!(target: "dbc", "DBC {i}: request {} {req:x?}", c.req_head);
                c.cur = Some(Cur {
                    req,
                    stage: Stage::Pre,
                    sem_idx: 0,
                    status: status::OK,
                });
            }
            if !self.step(i, dma, now, msi) {
                return progress;
            }
            progress = true;
            let c = &mut self.ch[i];
            let st = c.cur.take().map_or(0, |c| c.status);
            c.stats.requests += 1;
            if st != status::OK {
                c.stats.errors += 1;
            }
            c.req_head = (c.req_head + 1) % c.n;
            self.bar.store32(reg(i, REQ_HEAD), c.req_head);
        }
    }

    /// Apply one semaphore command; false if it blocks.
    fn sem_op(sems: &mut [u16; NUM_SEM], w: u32, status: &mut u16) -> bool {
        let op = (w >> 24) & 7;
        let idx = ((w >> 16) & 31) as usize;
        let val = (w & 0xfff) as u16;
        let s = &mut sems[idx];
        match op {
            0 => {}
            sem::INIT => *s = val,
            sem::INC => *s = (*s + 1) & 0xfff,
            sem::DEC => *s = s.wrapping_sub(1) & 0xfff,
            sem::WAIT_EQ => return *s == val,
            sem::WAIT_GE => return *s >= val,
            sem::WAIT_P => {
                if *s == 0 {
                    return false;
                }
                *s -= 1;
            }
            _ => *status = status::BAD_CMD,
        }
        true
    }

    /// Advance the current request of channel `i`; true when it is complete.
    fn step<D: Dma>(&mut self, i: usize, dma: &mut D, now: Instant, msi: &mut Vec<u32>) -> bool {
        loop {
            let ch = &mut self.ch[i];
            let cur = ch.cur.as_mut().unwrap();
            let r = cur.req;
            match cur.stage {
                Stage::Pre | Stage::Post => {
                    let pre = cur.stage == Stage::Pre;
                    while cur.sem_idx < 4 {
                        let w = r.sem[cur.sem_idx];
                        if w & sem::ENABLE != 0 && ((w & sem::PRESYNC) != 0) == pre {
                            // Wait-type commands leave the semaphore untouched until they pass.
                            if !Self::sem_op(&mut ch.sems, w, &mut cur.status) {
                                return false;
                            }
                        }
                        cur.sem_idx += 1;
                    }
                    cur.sem_idx = 0;
                    cur.stage = if pre {
                        Stage::Transfer
                    } else {
                        Stage::Doorbell
                    };
                }
                Stage::Transfer => {
                    // Requests complete their transfer before the next one starts, so the
                    // to-/from-device fences (sem bits 30/29) always hold here.
                    cur.stage = Stage::Post;
                    let ty = r.cmd & 3;
                    if ty == 0 || r.len == 0 {
                        continue;
                    }
                    if ty == 3 || r.cmd & 0x08 == 0 {
                        warn!(target: "dbc", "DBC {i}: request {} cmd {:#04x} not supported", r.req_id, r.cmd);
                        cur.status = status::BAD_CMD;
                        continue;
                    }
                    let (dev, host) = if ty == 1 {
                        (r.dst, r.src)
                    } else {
                        (r.src, r.dst)
                    };
                    if !in_window(ch.ddr_base, ch.mcid_base, dev, r.len as u64) {
                        warn!(target: "dbc", "DBC {i}: request {} device range {dev:#x}+{:#x} outside the windows", r.req_id, r.len);
                        cur.status = status::DEV_ADDR;
                        continue;
                    }
                    let res = if ty == 1 {
                        to_device(&mut self.mem, dma, host, dev, r.len as u64)
                    } else {
                        from_device(&self.mem, dma, dev, host, r.len as u64)
                    };
                    let ch = &mut self.ch[i];
                    let cur = ch.cur.as_mut().unwrap();
                    match res {
                        Ok(()) => ch.stats.bytes += r.len as u64,
                        Err(Some(f)) => {
                            error!(target: "dbc", "DBC {i}: request {}: {f}", r.req_id);
                            cur.status = status::HOST_FAULT;
                        }
                        Err(None) => {
                            error!(target: "dbc", "DBC {i}: request {}: device memory exhausted", r.req_id);
                            cur.status = status::DEV_ADDR;
                        }
                    }
                }
                Stage::Doorbell => {
                    cur.stage = Stage::Respond;
                    if r.db_attr & 0x80 == 0 {
                        continue;
                    }
                    let width = match r.db_attr & 3 {
                        0 => 4,
                        1 => 2,
                        2 => 1,
                        _ => {
                            cur.status = status::BAD_CMD;
                            continue;
                        }
                    };
                    if !r.db_addr.is_multiple_of(width)
                        || !in_window(ch.ddr_base, ch.mcid_base, r.db_addr, width)
                    {
                        warn!(target: "dbc", "DBC {i}: doorbell {:#x}/{width} outside the windows or misaligned", r.db_addr);
                        cur.status = status::DEV_ADDR;
                        continue;
                    }
                    let bytes = r.db_data.to_le_bytes();
                    if !self.mem.write(r.db_addr, &bytes[..width as usize]) {
                        self.ch[i].cur.as_mut().unwrap().status = status::DEV_ADDR;
                        continue;
                    }
                    self.doorbell(i, r.db_addr, now);
                }
                Stage::Respond => {
                    if r.cmd & 0x10 == 0 {
                        return true;
                    }
                    let head = self.bar.load32(reg(i, RSP_HEAD));
                    if (ch.rsp_tail + 1) % ch.n == head % ch.n {
                        // Response FIFO full: wait for the host to consume.
                        return false;
                    }
                    let mut el = [0u8; 4];
                    el[0..2].copy_from_slice(&r.req_id.to_le_bytes());
                    el[2..4].copy_from_slice(&cur.status.to_le_bytes());
                    if let Err(f) = dma.write(ch.rsp_q + RSP_LEN * ch.rsp_tail as u64, &el) {
                        error!(target: "dbc", "DBC {i}: response FIFO unwritable ({f}): channel halted");
                        ch.halted = true;
                        return false;
                    }
                    let was_empty = head == ch.rsp_tail;
                    ch.rsp_tail = (ch.rsp_tail + 1) % ch.n;
                    self.bar.store32(reg(i, RSP_TAIL), ch.rsp_tail);
                    ch.stats.responses += 1;
                    if was_empty || r.cmd & 0x80 != 0 {
                        ch.stats.msis += 1;
                        msi.push(i as u32 + 1);
                    }
                    return true;
                }
            }
        }
    }

    fn doorbell(&mut self, i: usize, addr: u64, now: Instant) {
        let ch = &mut self.ch[i];
        let Some(p) = &ch.program else { return };
        let w = &p.workload;
        if addr != ch.mcid_base + w.doorbell_offset {
            return;
        }
        let mut input = vec![0u8; w.input_len()];
        self.mem.read(ch.ddr_base + w.input_offset, &mut input);
        let output = w.compute(&p.constants, &input);
        let lat = self
            .compute_latency
            .unwrap_or(Duration::from_nanos(w.latency_ns as u64));
        let start = ch.computes.back().map_or(now, |c| c.due.max(now));
        debug!(target: "dbc", "DBC {i}: inference started, done in {lat:?}");
        ch.computes.push_back(Compute {
            due: start + lat,
            output,
        });
    }
}

const CHUNK: usize = 256 << 10;

fn to_device<D: Dma>(
    mem: &mut DevMem,
    dma: &mut D,
    host: u64,
    dev: u64,
    len: u64,
) -> Result<(), Option<DmaFault>> {
    let mut done = 0u64;
    while done < len {
        let dst = mem.page_mut(dev + done).ok_or(None)?;
        let n = (dst.len() as u64).min(len - done) as usize;
        dma.read(host + done, &mut dst[..n]).map_err(Some)?;
        done += n as u64;
    }
    Ok(())
}

fn from_device<D: Dma>(
    mem: &DevMem,
    dma: &mut D,
    dev: u64,
    host: u64,
    len: u64,
) -> Result<(), Option<DmaFault>> {
    let mut done = 0u64;
    while done < len {
        let src = mem.page(dev + done);
        let n = (src.len() as u64).min(len - done).min(CHUNK as u64) as usize;
        dma.write(host + done, &src[..n]).map_err(Some)?;
        done += n as u64;
    }
    Ok(())
}
