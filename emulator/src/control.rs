// SPDX-License-Identifier: MIT OR Apache-2.0
//! QAIC control protocol (NNC wire protocol, version 5.0), device (QSM) side.
//!
//! One request message arrives per UL transfer on QAIC_CONTROL (channel 10); one response
//! message goes back per DL transfer (channel 11). This module parses a request, performs its
//! transactions (status, passthrough to the NNC command protocol, DMA transfers into emulated
//! device memory, DBC activation, terminate) and encodes the response. Encodings are this
//! crate's own, written from `control-protocol.md`.

use crate::dbc::Program;
use crate::dma::Dma;
use crate::nnc;
use crate::wire::{crc32, u32_at, u64_at, Writer};
use log::{debug, error, info, warn};
use std::collections::HashMap;

/// Header magic ("QAIC").
pub const MAGIC: u32 = 0x4349_4151;
/// Message header length.
pub const HDR_LEN: usize = 32;
/// Largest device-to-host message (the host's DL buffer).
pub const MAX_RESP: usize = 4096;
/// Largest host-to-device message.
pub const MAX_REQ: usize = 65536;
/// Control protocol version implemented.
pub const PROTO_MAJOR: u16 = 5;
/// Control protocol minor version implemented.
pub const PROTO_MINOR: u16 = 0;
/// Number of DMA bridge channels.
pub const NUM_DBC: usize = 16;
/// Capacity of the emulated device memory that DMA transfers land in.
pub const DEVMEM_CAPACITY: u64 = 256 << 20;

/// Transaction type codes.
pub mod tt {
    /// Passthrough, device to host.
    pub const PASSTHROUGH_FROM_DEV: u32 = 3;
    /// Passthrough, host to device.
    pub const PASSTHROUGH_TO_DEV: u32 = 4;
    /// DMA transfer description, host to device.
    pub const DMA_XFER_TO_DEV: u32 = 6;
    /// Activate answer.
    pub const ACTIVATE_FROM_DEV: u32 = 8;
    /// Activate request.
    pub const ACTIVATE_TO_DEV: u32 = 9;
    /// Deactivate notice, device to host.
    pub const DEACTIVATE_FROM_DEV: u32 = 11;
    /// Status answer.
    pub const STATUS_FROM_DEV: u32 = 14;
    /// Status request.
    pub const STATUS_TO_DEV: u32 = 15;
    /// Terminate answer.
    pub const TERMINATE_FROM_DEV: u32 = 16;
    /// Terminate request.
    pub const TERMINATE_TO_DEV: u32 = 17;
    /// DMA continuation request, device to host.
    pub const DMA_XFER_CONT: u32 = 18;
    /// Validate-partition answer.
    pub const VALIDATE_PARTITION_FROM_DEV: u32 = 19;
    /// Validate-partition request.
    pub const VALIDATE_PARTITION_TO_DEV: u32 = 20;
}

/// Status values in ACTIVATE_FROM_DEV and friends.
pub mod st {
    /// Success.
    pub const OK: u32 = 0;
    /// No free DMA bridge channel.
    pub const NO_RESOURCE: u32 = 1;
    /// Malformed request.
    pub const INVALID: u32 = 2;
    /// The NNC ACTIVATE of the same message failed; the channel was not assigned.
    pub const ACTIVATION_FAILED: u32 = 3;
}

/// Parsed message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// CRC field.
    pub crc: u32,
    /// Sequence number.
    pub seq: u32,
    /// Total length.
    pub len: u32,
    /// Transaction count.
    pub count: u32,
    /// User handle.
    pub handle: u32,
    /// Partition id.
    pub partition: u32,
}

/// Parse a message header.
pub fn parse_header(m: &[u8]) -> Option<Header> {
    if m.len() < HDR_LEN || u32_at(m, 4)? != MAGIC {
        return None;
    }
    Some(Header {
        crc: u32_at(m, 0)?,
        seq: u32_at(m, 8)?,
        len: u32_at(m, 12)?,
        count: u32_at(m, 16)?,
        handle: u32_at(m, 20)?,
        partition: u32_at(m, 24)?,
    })
}

/// CRC of a message as the protocol defines it (over `len` bytes with the CRC field zeroed).
pub fn message_crc(m: &[u8]) -> u32 {
    let mut v = m.to_vec();
    v[0..4].fill(0);
    crc32(&v)
}

/// Encode a complete message from a header template and transactions.
pub fn encode(seq: u32, handle: u32, partition: u32, trans: &[Vec<u8>], with_crc: bool) -> Vec<u8> {
    let body: usize = trans.iter().map(Vec::len).sum();
    let mut w = Writer::new();
    w.u32(0)
        .u32(MAGIC)
        .u32(seq)
        .u32((HDR_LEN + body) as u32)
        .u32(trans.len() as u32)
        .u32(handle)
        .u32(partition)
        .u32(0);
    for t in trans {
        w.bytes(t);
    }
    if with_crc {
        let c = crc32(&w.buf);
        w.patch_u32(0, c);
    }
    w.buf
}

/// Owner of an activated DMA bridge channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbcOwner {
    /// User handle that activated it.
    pub handle: u32,
    /// Request queue bus address.
    pub req_q: u64,
    /// Response queue bus address.
    pub rsp_q: u64,
    /// Queue elements.
    pub nelem: u32,
    /// Options word from the host.
    pub options: u32,
}

/// Emulated device memory holding DMA-transferred buffers, keyed by (handle, tag).
#[derive(Default, Debug)]
pub struct DeviceMemory {
    bufs: HashMap<(u32, u32), Vec<u8>>,
    used: u64,
}

impl DeviceMemory {
    /// Contents for (handle, tag).
    pub fn get(&self, handle: u32, tag: u32) -> Option<&[u8]> {
        self.bufs.get(&(handle, tag)).map(Vec::as_slice)
    }
    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.used
    }
    /// Remove and return the contents for (handle, tag).
    pub fn take(&mut self, handle: u32, tag: u32) -> Option<Vec<u8>> {
        let v = self.bufs.remove(&(handle, tag))?;
        self.used -= v.len() as u64;
        Some(v)
    }
    fn release_handle(&mut self, handle: u32) {
        let before = self.bufs.len();
        self.bufs.retain(|(h, _), _| *h != handle);
        self.used = self.bufs.values().map(|v| v.len() as u64).sum();
        if before != self.bufs.len() {
            debug!(target: "control", "released {} device buffers of handle {handle}", before - self.bufs.len());
        }
    }
}

#[derive(Debug, Clone)]
struct Chunked {
    tag: u32,
    received: u64,
    expected: Option<u64>,
}

/// Result of handling one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this response.
    Respond(Vec<u8>),
    /// Drop the request without an answer (why).
    Drop(String),
}

/// Device-side control service state.
pub struct ControlService {
    /// Whether the device declares (and enforces) CRCs.
    pub crc_required: bool,
    /// Control protocol version reported by STATUS (5.0 unless a test wants a mismatch).
    pub version: (u16, u16),
    /// DMA bridge channel assignment.
    pub dbcs: [Option<DbcOwner>; NUM_DBC],
    /// Emulated device memory.
    pub devmem: DeviceMemory,
    chunks: HashMap<(u32, u32), Chunked>,
    /// Serial number reported in NNC STATUS.
    pub serial: String,
    /// Requests handled.
    pub requests: u64,
    /// DBCs assigned by the last request (the device sets them up).
    pub newly_activated: Vec<usize>,
    /// Workloads bound to (or unbound from) DBCs by the last request.
    pub bind: Vec<(usize, Option<Program>)>,
    /// DBCs released by the last request (the device stops them).
    pub released: Vec<usize>,
    /// A DBC under subsystem restart: not assigned until the SSR ends.
    pub ssr_blocked: Option<usize>,
    /// NNC program management.
    pub qsm: nnc::Qsm,
    deferred: HashMap<(u32, u32), Vec<Trans>>,
}

struct Ctx {
    handle: u32,
}

/// A transaction kept for later: (type, bytes).
type Trans = (u32, Vec<u8>);

/// Outcome of one DMA_XFER_TO_DEV.
enum Xfer {
    /// The transfer is complete (or was aborted).
    Done,
    /// More data expected: answer with this DMA_XFER_CONT.
    More(u32, Vec<u8>),
}

/// The (tag, total length) a passthrough NNC command announces for its DMA transfer.
fn announced_dma(payload: &[u8]) -> Option<(u32, u64)> {
    match u32_at(payload, 0)? {
        nnc::id::LOAD_CONSTANTS_REQ | nnc::id::LOAD_CONSTANTS_PAYLOAD_REQ => {
            Some((u32_at(payload, 8)?, u64_at(payload, 16)?))
        }
        nnc::id::LOAD_ELF_REQ => Some((u32_at(payload, 4)?, u64_at(payload, 80)?)),
        _ => None,
    }
}

impl ControlService {
    /// New service.
    pub fn new(crc_required: bool, serial: &str) -> Self {
        ControlService {
            crc_required,
            version: (PROTO_MAJOR, PROTO_MINOR),
            dbcs: Default::default(),
            devmem: DeviceMemory::default(),
            chunks: HashMap::new(),
            serial: serial.into(),
            requests: 0,
            newly_activated: Vec::new(),
            bind: Vec::new(),
            released: Vec::new(),
            ssr_blocked: None,
            qsm: nnc::Qsm::default(),
            deferred: HashMap::new(),
        }
    }

    /// Forget everything (device reset).
    pub fn reset(&mut self) {
        self.dbcs = Default::default();
        self.devmem = DeviceMemory::default();
        self.chunks.clear();
        self.deferred.clear();
        self.qsm.reset();
        self.newly_activated.clear();
        self.bind.clear();
        self.released = (0..NUM_DBC).collect();
        self.ssr_blocked = None;
    }

    /// DBCs assigned.
    pub fn dbcs_in_use(&self) -> usize {
        self.dbcs.iter().filter(|d| d.is_some()).count()
    }

    /// Handle one request message; `dma` reaches host memory for DMA transfers.
    pub fn handle(&mut self, msg: &[u8], dma: &dyn Dma) -> Outcome {
        self.requests += 1;
        let Some(h) = parse_header(msg) else {
            return Outcome::Drop(format!(
                "{} byte message without a valid header/magic",
                msg.len()
            ));
        };
        let len = h.len as usize;
        if len < HDR_LEN || len > msg.len() || len > MAX_REQ {
            return Outcome::Drop(format!(
                "header length {len} for a {} byte transfer",
                msg.len()
            ));
        }
        if len != msg.len() {
            warn!(target: "control", "seq {}: header length {len} < transfer length {}", h.seq, msg.len());
        }
        let msg = &msg[..len];
        if self.crc_required || h.crc != 0 {
            let c = message_crc(msg);
            if c != h.crc {
                return Outcome::Drop(format!(
                    "seq {}: CRC mismatch (field {:#010x}, computed {c:#010x})",
                    h.seq, h.crc
                ));
            }
        }
        // Split into transactions.
        let mut trans = Vec::new();
        let mut off = HDR_LEN;
        for i in 0..h.count {
            let (Some(ty), Some(tl)) = (u32_at(msg, off), u32_at(msg, off + 4)) else {
                return Outcome::Drop(format!(
                    "seq {}: transaction {i} header beyond message end",
                    h.seq
                ));
            };
            let tl = tl as usize;
            if tl < 8 || off + tl > len {
                return Outcome::Drop(format!(
                    "seq {}: transaction {i} (type {ty}) length {tl} out of bounds",
                    h.seq
                ));
            }
            trans.push((ty, &msg[off..off + tl]));
            off += tl;
        }
        if off != len {
            warn!(target: "control", "seq {}: {} trailing bytes after {} transactions", h.seq, len - off, h.count);
        }
        info!(target: "control", "request seq {} handle {} len {len} count {} types {:?}",
            h.seq, h.handle, h.count, trans.iter().map(|t| t.0).collect::<Vec<_>>());

        let ctx = Ctx { handle: h.handle };
        // DMA transfers first: the NNC commands of the message consume their data.
        let mut rest: Vec<(u32, Vec<u8>)> = Vec::new();
        let mut announced: HashMap<u32, u64> = HashMap::new();
        for &(ty, t) in &trans {
            if ty == tt::PASSTHROUGH_TO_DEV {
                if let Some((tag, len)) = announced_dma(&t[8..]) {
                    announced.insert(tag, len);
                }
            }
        }
        for &(ty, t) in &trans {
            if ty != tt::DMA_XFER_TO_DEV {
                rest.push((ty, t.to_vec()));
            }
        }
        for &(ty, t) in &trans {
            if ty != tt::DMA_XFER_TO_DEV {
                continue;
            }
            match self.dma_xfer(t, &ctx, dma, &announced) {
                Ok(Xfer::More(chunk, cont)) => {
                    // Keep the rest of the message until the transfer is complete.
                    if !rest.is_empty() {
                        self.deferred
                            .insert((h.handle, chunk), std::mem::take(&mut rest));
                    }
                    return Outcome::Respond(encode(
                        h.seq,
                        h.handle,
                        h.partition,
                        &[cont],
                        self.crc_required,
                    ));
                }
                Ok(Xfer::Done) => {
                    let chunk = u32_at(t, 16).unwrap_or(0);
                    if chunk != 0 {
                        if let Some(d) = self.deferred.remove(&(h.handle, chunk)) {
                            for (ty, t) in &d {
                                if *ty == tt::PASSTHROUGH_TO_DEV {
                                    if let Some((tag, len)) = announced_dma(&t[8..]) {
                                        announced.insert(tag, len);
                                    }
                                }
                            }
                            rest.extend(d);
                        }
                    }
                }
                Err(e) => error!(target: "control", "seq {}: DMA transfer failed: {e}", h.seq),
            }
        }
        let mut mctx = nnc::MsgCtx {
            handle: h.handle,
            ..Default::default()
        };
        for tag in announced.keys() {
            if let Some(d) = self.devmem.take(h.handle, *tag) {
                mctx.data.insert(*tag, d);
            }
        }
        // SETUP_VC before the passthroughs: an NNC ACTIVATE reports the channel it set up.
        let mut vc_status = st::OK;
        for (ty, t) in &rest {
            if *ty == tt::ACTIVATE_TO_DEV {
                match self.allocate_dbc(t, &ctx) {
                    Ok(i) if mctx.vc.is_none() => mctx.vc = Some(i),
                    Ok(i) => {
                        warn!(target: "control", "seq {}: second ACTIVATE in one message (DBC {i})", h.seq)
                    }
                    Err(e) => vc_status = e,
                }
            }
        }
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut activate_slot = None;
        for (ty, t) in &rest {
            let ty = *ty;
            match ty {
                tt::STATUS_TO_DEV => out.push(self.status()),
                tt::PASSTHROUGH_TO_DEV => out.push(self.passthrough(&t[8..], &mut mctx)),
                tt::ACTIVATE_TO_DEV => {
                    if activate_slot.is_none() {
                        activate_slot = Some(out.len());
                        out.push(Vec::new());
                    }
                }
                tt::TERMINATE_TO_DEV => out.push(self.terminate(t, h.handle)),
                tt::VALIDATE_PARTITION_TO_DEV => {
                    info!(target: "control", "VALIDATE_PARTITION partition {}", u32_at(t, 8).unwrap_or(0));
                    let mut w = Writer::new();
                    w.u32(tt::VALIDATE_PARTITION_FROM_DEV)
                        .u32(16)
                        .u32(st::OK)
                        .u32(0);
                    out.push(w.buf);
                }
                other => {
                    warn!(target: "control", "seq {}: transaction type {other} is not a host-to-device type; not answered", h.seq)
                }
            }
        }
        if let Some(slot) = activate_slot {
            let (status, dbc) = match mctx.vc {
                Some(i) if mctx.activate_failed && !mctx.vc_claimed => {
                    info!(target: "control", "ACTIVATE: DBC {i} given back, the NNC activation failed");
                    self.dbcs[i] = None;
                    (st::ACTIVATION_FAILED, 0)
                }
                Some(i) => {
                    self.newly_activated.push(i);
                    (st::OK, i as u32)
                }
                None => (vc_status, 0),
            };
            let mut w = Writer::new();
            w.u32(tt::ACTIVATE_FROM_DEV)
                .u32(24)
                .u32(status)
                .u32(dbc)
                .u64(0);
            out[slot] = w.buf;
        }
        self.bind.append(&mut mctx.bind);
        for i in std::mem::take(&mut mctx.teardown) {
            info!(target: "control", "TEARDOWN_VC: DBC {i} released -> DEACTIVATE_FROM_DEV");
            self.dbcs[i] = None;
            self.released.push(i);
            let mut w = Writer::new();
            w.u32(tt::DEACTIVATE_FROM_DEV)
                .u32(16)
                .u32(st::OK)
                .u32(i as u32);
            out.push(w.buf);
        }
        let body: usize = out.iter().map(Vec::len).sum();
        if HDR_LEN + body > MAX_RESP {
            error!(target: "control", "seq {}: response of {} bytes exceeds {MAX_RESP}; sending the transactions that fit", h.seq, HDR_LEN + body);
            let mut total = HDR_LEN;
            out.retain(|t| {
                total += t.len();
                total <= MAX_RESP
            });
        }
        let r = encode(h.seq, h.handle, h.partition, &out, self.crc_required);
        debug!(target: "control", "response seq {} len {} count {}", h.seq, r.len(), out.len());
        Outcome::Respond(r)
    }

    fn status(&self) -> Vec<u8> {
        let (major, minor) = self.version;
        info!(target: "control", "STATUS -> version {major}.{minor}, CRC {}", if self.crc_required { "required" } else { "off" });
        let mut w = Writer::new();
        w.u32(tt::STATUS_FROM_DEV)
            .u32(24)
            .u16(major)
            .u16(minor)
            .u32(st::OK)
            .u64(self.crc_required as u64);
        w.buf
    }

    fn passthrough(&mut self, payload: &[u8], mctx: &mut nnc::MsgCtx) -> Vec<u8> {
        let mut snap = nnc::DeviceSnapshot {
            serial: self.serial.clone(),
            vc_in_use: self.dbcs_in_use() as u8,
            dram_used: self.devmem.used(),
            ..Default::default()
        };
        self.qsm.fill(&mut snap);
        let r = self.qsm.command(payload, mctx, &snap);
        let mut w = Writer::new();
        w.u32(tt::PASSTHROUGH_FROM_DEV)
            .u32(8 + r.len() as u32)
            .bytes(&r);
        w.buf
    }

    /// SETUP_VC: assign a free DBC; `Err(status)` when the request is malformed or no DBC is
    /// free.
    fn allocate_dbc(&mut self, t: &[u8], ctx: &Ctx) -> Result<usize, u32> {
        let fields = (|| {
            Some((
                u64_at(t, 8)?,
                u64_at(t, 16)?,
                u32_at(t, 24)?,
                u32_at(t, 28)?,
                u32_at(t, 32)?,
                u32_at(t, 36)?,
            ))
        })();
        let Some((req_q, rsp_q, nreq, nrsp, buf_len, options)) = fields.filter(|_| t.len() == 40)
        else {
            return Err(st::INVALID);
        };
        let need = 68u64 * nreq as u64 + 256;
        let valid = nreq != 0
            && nreq == nrsp
            && (buf_len as u64) >= need
            && buf_len % 4096 == 0
            && rsp_q == req_q.wrapping_add(buf_len as u64 - 4 * nrsp as u64);
        if !valid {
            warn!(target: "control", "ACTIVATE: inconsistent queue description req {req_q:#x} rsp {rsp_q:#x} n {nreq}/{nrsp} buf {buf_len}");
            return Err(st::INVALID);
        }
        let blocked = self.ssr_blocked;
        let free = (0..NUM_DBC).find(|&i| self.dbcs[i].is_none() && blocked != Some(i));
        let Some(i) = free else {
            warn!(target: "control", "ACTIVATE: no free DBC");
            return Err(st::NO_RESOURCE);
        };
        self.dbcs[i] = Some(DbcOwner {
            handle: ctx.handle,
            req_q,
            rsp_q,
            nelem: nreq,
            options,
        });
        info!(target: "control", "ACTIVATE: DBC {i} -> handle {} ({nreq} elements, req {req_q:#x}, rsp {rsp_q:#x})", ctx.handle);
        Ok(i)
    }

    fn terminate(&mut self, t: &[u8], hdr_handle: u32) -> Vec<u8> {
        let handle = u32_at(t, 8).unwrap_or(hdr_handle);
        let mut released = Vec::new();
        for (i, d) in self.dbcs.iter_mut().enumerate() {
            if d.as_ref().is_some_and(|o| o.handle == handle) {
                *d = None;
                released.push(i);
            }
        }
        for &i in &released {
            self.qsm.dbc_released(i);
        }
        self.released.extend(&released);
        self.qsm.terminate(handle);
        self.devmem.release_handle(handle);
        self.chunks.retain(|(h, _), _| *h != handle);
        self.deferred.retain(|(h, _), _| *h != handle);
        info!(target: "control", "TERMINATE handle {handle}: released DBCs {released:?}");
        let mut w = Writer::new();
        w.u32(tt::TERMINATE_FROM_DEV).u32(16).u32(st::OK).u32(0);
        w.buf
    }

    /// Perform a DMA_XFER_TO_DEV; returns a continuation transaction when more is expected.
    fn dma_xfer(
        &mut self,
        t: &[u8],
        ctx: &Ctx,
        dma: &dyn Dma,
        announced: &HashMap<u32, u64>,
    ) -> Result<Xfer, String> {
        let (Some(tag), Some(count), Some(chunk)) = (u32_at(t, 8), u32_at(t, 12), u32_at(t, 16))
        else {
            return Err("DMA_XFER_TO_DEV shorter than 24 bytes".into());
        };
        if t.len() != 24 + 16 * count as usize {
            return Err(format!(
                "DMA_XFER_TO_DEV length {} does not match {count} pairs",
                t.len()
            ));
        }
        let key = (ctx.handle, tag);
        if count == 0 && chunk != 0 {
            info!(target: "control", "DMA abort: chunk {chunk} of handle {}", ctx.handle);
            if let Some(c) = self.chunks.remove(&(ctx.handle, chunk)) {
                if let Some(old) = self.devmem.bufs.remove(&(ctx.handle, c.tag)) {
                    self.devmem.used -= old.len() as u64;
                }
            }
            return Ok(Xfer::Done);
        }
        let fresh = chunk == 0 || !self.chunks.contains_key(&(ctx.handle, chunk));
        if fresh {
            if let Some(old) = self.devmem.bufs.remove(&key) {
                self.devmem.used -= old.len() as u64;
            }
        }
        let mut moved = 0u64;
        for i in 0..count as usize {
            let addr = u64_at(t, 24 + 16 * i).unwrap();
            let size = u64_at(t, 32 + 16 * i).unwrap();
            if self.devmem.used.saturating_add(size) > DEVMEM_CAPACITY {
                return Err(format!(
                    "device memory full ({} + {size} > {DEVMEM_CAPACITY})",
                    self.devmem.used
                ));
            }
            let data = dma
                .read_vec(addr, size as usize)
                .map_err(|e| e.to_string())?;
            debug!(target: "dma", "DMA_XFER tag {tag}: pair {i} {addr:#x}+{size:#x}");
            self.devmem
                .bufs
                .entry(key)
                .or_default()
                .extend_from_slice(&data);
            self.devmem.used += size;
            moved += size;
        }
        info!(target: "control", "DMA_XFER handle {} tag {tag}: {count} pairs, {moved} bytes into device memory (chunk {chunk}), buffer CRC-32 {:#010x}",
            ctx.handle, crc32(self.devmem.get(ctx.handle, tag).unwrap_or(&[])));
        if chunk == 0 {
            return Ok(Xfer::Done);
        }
        let c = self.chunks.entry((ctx.handle, chunk)).or_insert(Chunked {
            tag,
            received: 0,
            expected: announced.get(&tag).copied(),
        });
        c.received += moved;
        match c.expected {
            Some(exp) if c.received < exp => {
                let mut w = Writer::new();
                w.u32(tt::DMA_XFER_CONT)
                    .u32(24)
                    .u32(chunk)
                    .u32(0)
                    .u64(c.received);
                Ok(Xfer::More(chunk, w.buf))
            }
            _ => {
                // Without a declared total the device takes the message as the last piece.
                self.chunks.remove(&(ctx.handle, chunk));
                Ok(Xfer::Done)
            }
        }
    }

    /// Declare the expected total size of chunked transfer (handle, chunk) (used by NNC load
    /// commands that announce their data length).
    pub fn expect_chunked(&mut self, handle: u32, chunk: u32, tag: u32, total: u64) {
        self.chunks.insert(
            (handle, chunk),
            Chunked {
                tag,
                received: 0,
                expected: Some(total),
            },
        );
    }
}
