// SPDX-License-Identifier: GPL-2.0-only

//! The DMA bridge: its channel registers, the request and response elements, slices of buffer
//! objects turned into requests, and the arithmetic of the rings. Pure logic: mapping memory,
//! reading registers and locking are the caller's.
//!
//! BAR2 holds one 4 KiB register block per DMA bridge channel (DBC), starting at 128 KiB. Each
//! block starts with the request queue head and tail and the response queue head and tail; the
//! queues themselves live in host memory: a request ring of 64-byte [`Request`] elements and a
//! response ring of 4-byte elements ([`decode_response`]), both indexed modulo the queue size
//! `N` chosen at activation ([`Ring`]).
//!
//! ATTACH_SLICE_BO gives the driver the user's slice descriptions; [`parse_entries`] decodes and
//! checks them against the buffer object, and [`build_slice`] cuts each slice along the buffer
//! object's DMA segments and builds its request templates once ([`Slice`]; [`build_slices`] for
//! all of them and the ring-size check). EXECUTE_BO enqueues
//! every template of every slice ([`Slice::full`]), PARTIAL_EXECUTE_BO a shortened list
//! ([`Slice::partial`]); both stamp the submission's request id as the elements are written
//! ([`Elements`]), without allocating.
//!
//! The rules, their order and their error codes are those of the C `qaic` driver
//! (`../shared/spec/dma-bridge.md` §3–5, `uapi.md` §7–8).
//!
//! # Differences from the C driver
//!
//! - PARTIAL_EXECUTE_BO with `resize` at or before a slice's start (or 0) enqueues one element
//!   that moves no data for the slice. The C driver takes that element's `cmd` from the slice's
//!   *first* request, which lacks the response bit when the slice has several DMA pieces: the
//!   card never answers the slice and the buffer object never completes (WAIT_BO times out).
//!   Here the `cmd` is the *last* request's (response bit set) with the transfer type cleared,
//!   so the slice completes; for a slice of one piece both are the same element.
//! - Ring indices the card reports are checked ([`Ring::index`]): all-ones is a dead link
//!   (`ENODEV`, as the C driver), any other value `>= N` is refused with `EIO`. The C driver
//!   computes with such a value and would copy requests outside the ring.
//! - A DMA segment longer than `u32::MAX` bytes, or a bus address that would overflow, is
//!   refused (`EINVAL`). The C driver truncates the length; it cannot happen because the driver
//!   sets a maximum segment size of `u32::MAX`.
//!
//! Kept as in the C driver, deliberately:
//!
//! - The fence a slice of several pieces without a pre-sync semaphore needs is OR-ed into
//!   `sem0` even when `sem0` is a NOP, giving a command word with a fence bit but without the
//!   enable bit. Whether the hardware honours a fence in a disabled slot is not documented; the
//!   cards' firmware has only ever seen this encoding, and moving the fence to another slot (or
//!   enabling a NOP) could change what the semaphore hardware does. So the encoding is kept.
//! - Device addresses are not checked for overflow: `dev_addr` plus a piece's offset wraps, as
//!   in the C driver; the device address space is the card's business.
//! - A slice of size 0 covers `[offset, offset + PAGE_SIZE)` for its requests (their `len` is
//!   the piece length, their transfer type 0), as the C driver.
//! - The user's structures are read in the CPU's byte order, as the C driver does; the
//!   elements are little-endian.

#![allow(
    dead_code,
    reason = "the data path is not wired yet: the KUnit suite is the only user"
)]

use core::num::NonZeroU64;
use kernel::{
    page::PAGE_SIZE,
    prelude::*,
    sizes::{
        SZ_128K,
        SZ_4K, //
    },
};

/// Number of DMA bridge channels of every member of the family.
/// Flags of allocations whose size comes from user space: they may fail (`ENOMEM`), but must
/// not warn in the kernel log when a size is beyond what the allocator can ever give.
pub(crate) fn gfp_user_sized() -> kernel::alloc::Flags {
    GFP_KERNEL | kernel::alloc::flags::__GFP_NOWARN
}

pub(crate) const NUM_DBC: usize = 16;

/// Offset of the register block of DBC 0 in the DMA bridge BAR.
const DBC_BASE: usize = SZ_128K;

/// Distance between the register blocks of two consecutive DBCs.
const DBC_STRIDE: usize = SZ_4K;

/// Size of the part of the DMA bridge BAR the driver maps: up to the end of the last DBC block.
pub(crate) const DBC_BAR_SIZE: usize = DBC_BASE + NUM_DBC * DBC_STRIDE;

/// Returns the offset of the register block of DBC `dbc` in the DMA bridge BAR, or `None` if
/// there is no such channel.
pub(crate) const fn dbc_block(dbc: usize) -> Option<usize> {
    if dbc < NUM_DBC {
        Some(DBC_BASE + dbc * DBC_STRIDE)
    } else {
        None
    }
}

/// Offset in a channel block of REQ_HEAD: the next request the card consumes (host reads).
pub(crate) const REQ_HEAD: usize = 0x0;
/// Offset in a channel block of REQ_TAIL: one past the last request (host reads and writes).
pub(crate) const REQ_TAIL: usize = 0x4;
/// Offset in a channel block of RSP_HEAD: the next response the host consumes (host reads and
/// writes).
pub(crate) const RSP_HEAD: usize = 0x8;
/// Offset in a channel block of RSP_TAIL: one past the last response (host reads).
pub(crate) const RSP_TAIL: usize = 0xc;

/// What a register of a card whose PCIe link is down reads as.
pub(crate) const LINK_DOWN: u32 = u32::MAX;

/// Size of a request element.
pub(crate) const REQ_ELEM_LEN: usize = 64;
/// Size of a response element.
pub(crate) const RSP_ELEM_LEN: usize = 4;
/// Gap between the request and the response ring in a channel's queue buffer.
const QUEUE_GAP: usize = 256;

/// Size of a user `struct qaic_attach_slice_entry`.
pub(crate) const SLICE_ENTRY_LEN: usize = 72;
/// Size of a user `struct qaic_sem`.
const SEM_LEN: usize = 8;

/// Bytes a slice of size 0 covers for its requests (the C driver's `PAGE_SIZE`).
const NO_XFER_SPAN: u64 = PAGE_SIZE as u64;

/// Bits of the `cmd` byte of a request.
mod cmd {
    /// Transfer type: host memory to device memory.
    pub(super) const TO_DEVICE: u8 = 1;
    /// Transfer type: device memory to host memory.
    pub(super) const FROM_DEVICE: u8 = 2;
    /// The transfer type field.
    pub(super) const TYPE: u8 = 3;
    /// Bulk transfer (src, dest, len), always set by the host.
    pub(super) const BULK: u8 = 1 << 3;
    /// Write a response element when this request completes.
    pub(super) const RESPONSE: u8 = 1 << 4;
}

/// The `db_attr` byte of a request.
mod db {
    /// Write the doorbell.
    pub(super) const ENABLE: u8 = 1 << 7;
    /// Width 32 bits.
    pub(super) const W32: u8 = 0;
    /// Width 16 bits.
    pub(super) const W16: u8 = 1;
    /// Width 8 bits.
    pub(super) const W8: u8 = 2;
}

/// Semaphore commands and flags of the uapi (`QAIC_SEM_*`).
mod sem {
    /// Largest command, `QAIC_SEM_WAIT_GT_0`.
    pub(super) const MAX_CMD: u8 = 6;
    /// `QAIC_SEM_OUTSYNCFENCE`: wait for all from-device DMA of the channel.
    pub(super) const OUT_FENCE: u8 = 1;
    /// `QAIC_SEM_INSYNCFENCE`: wait for all to-device DMA of the channel.
    pub(super) const IN_FENCE: u8 = 2;
    /// Largest value.
    pub(super) const MAX_VAL: u16 = 0xfff;
    /// Largest index.
    pub(super) const MAX_INDEX: u8 = 31;
}

/// Offsets of the fields of a request element.
mod req {
    /// `req_id`, 16 bits.
    pub(super) const REQ_ID: usize = 0;
    /// `cmd`, 8 bits (after the 8-bit `seq_id`, always 0).
    pub(super) const CMD: usize = 3;
    /// `src_addr`, 64 bits.
    pub(super) const SRC: usize = 8;
    /// `dest_addr`, 64 bits.
    pub(super) const DEST: usize = 16;
    /// `len`, 32 bits.
    pub(super) const LEN: usize = 24;
    /// `db_addr`, 64 bits.
    pub(super) const DB_ADDR: usize = 32;
    /// `db_attr`, 8 bits.
    pub(super) const DB_ATTR: usize = 40;
    /// `db_data`, 32 bits.
    pub(super) const DB_DATA: usize = 44;
    /// `sem_cmd0`, then `sem_cmd1` to `sem_cmd3`, 32 bits each.
    pub(super) const SEM_CMD: usize = 48;
}

/// Returns the size of a channel's queue buffer for rings of `n` elements, and the offset of
/// the response ring in it: the request ring at 0, at least 256 bytes of gap, the response ring
/// at the end, all in a multiple of 4 KiB. `None` if `n` is 0 or the size overflows.
pub(crate) fn queue_layout(n: u32) -> Option<(usize, usize)> {
    let n = usize::try_from(n).ok().filter(|&n| n != 0)?;
    let rsp = n.checked_mul(RSP_ELEM_LEN)?;
    let used = n
        .checked_mul(REQ_ELEM_LEN)?
        .checked_add(rsp)?
        .checked_add(QUEUE_GAP)?;
    let size = used.checked_next_multiple_of(SZ_4K)?;
    Some((size, size.checked_sub(rsp)?))
}

/// The direction of a buffer object's DMA, as ATTACH_SLICE_BO gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Host to device (`DMA_TO_DEVICE`, 1): the card reads the buffer object.
    ToDevice,
    /// Device to host (`DMA_FROM_DEVICE`, 2): the card writes the buffer object.
    FromDevice,
}

impl Dir {
    /// Decodes the uapi's `dir` (1 to device, 2 from device); anything else is `EINVAL`.
    pub(crate) fn from_uapi(dir: u32) -> Result<Self> {
        match dir {
            1 => Ok(Self::ToDevice),
            2 => Ok(Self::FromDevice),
            _ => Err(EINVAL),
        }
    }

    /// The request's transfer type for this direction.
    fn xfer(self) -> u8 {
        match self {
            Self::ToDevice => cmd::TO_DEVICE,
            Self::FromDevice => cmd::FROM_DEVICE,
        }
    }

    /// The semaphore flag that fences all DMA of this direction.
    fn fence(self) -> u8 {
        match self {
            Self::ToDevice => sem::IN_FENCE,
            Self::FromDevice => sem::OUT_FENCE,
        }
    }
}

/// Returns the `N` bytes at `off` in `b`, `EINVAL` if `b` is too short.
fn field<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N]> {
    let end = off.checked_add(N).ok_or(EINVAL)?;
    b.get(off..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(EINVAL)
}

/// A user semaphore command (`struct qaic_sem`, 8 bytes, CPU byte order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sem {
    /// Value, 12 bits.
    pub(crate) val: u16,
    /// Semaphore index, 0..=31.
    pub(crate) index: u8,
    /// 1: pre-sync (gates the DMA), 0: post-sync.
    pub(crate) presync: u8,
    /// Command, `QAIC_SEM_NOP` (0) to `QAIC_SEM_WAIT_GT_0` (6).
    pub(crate) cmd: u8,
    /// `QAIC_SEM_INSYNCFENCE` and/or `QAIC_SEM_OUTSYNCFENCE`.
    pub(crate) flags: u8,
    /// Must be 0.
    pub(crate) pad: u16,
}

impl Sem {
    /// Decodes a `struct qaic_sem`.
    fn decode(b: [u8; SEM_LEN]) -> Self {
        let [v0, v1, index, presync, cmd, flags, p0, p1] = b;
        Self {
            val: u16::from_ne_bytes([v0, v1]),
            index,
            presync,
            cmd,
            flags,
            pad: u16::from_ne_bytes([p0, p1]),
        }
    }

    /// Whether the uapi allows this semaphore command (`uapi.md` §7.2 row 9).
    fn is_valid(&self) -> bool {
        self.val <= sem::MAX_VAL
            && self.index <= sem::MAX_INDEX
            && self.presync <= 1
            && self.pad == 0
            && self.flags & !(sem::IN_FENCE | sem::OUT_FENCE) == 0
            && self.cmd <= sem::MAX_CMD
    }

    /// Encodes the command as a request's `sem_cmdN` word: value in bits 11:0, index 20:16,
    /// pre-sync 22, command 26:24, fences 30:29, enabled (command not NOP) 31.
    pub(crate) fn encode(&self) -> u32 {
        self.encode_with(0)
    }

    /// Encodes the command with the extra fence `flags` OR-ed into its own.
    fn encode_with(&self, flags: u8) -> u32 {
        u32::from(self.val & sem::MAX_VAL)
            | u32::from(self.index & sem::MAX_INDEX) << 16
            | u32::from(self.presync & 1) << 22
            | u32::from(self.cmd & 7) << 24
            | u32::from((self.flags | flags) & 3) << 29
            | u32::from(self.cmd != 0) << 31
    }
}

/// A user slice description (`struct qaic_attach_slice_entry`, 72 bytes, CPU byte order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SliceEntry {
    /// Bytes of the slice; 0 moves no data (semaphores, doorbell and response only).
    pub(crate) size: u64,
    /// The four semaphore commands, `sem0` to `sem3`.
    pub(crate) sems: [Sem; 4],
    /// Device address the slice is copied to or from.
    pub(crate) dev_addr: u64,
    /// Doorbell address, device address space.
    pub(crate) db_addr: u64,
    /// Doorbell value.
    pub(crate) db_data: u32,
    /// Doorbell width in bits: 32, 16, 8, or 0 for no doorbell.
    pub(crate) db_len: u32,
    /// Start of the slice in the buffer object.
    pub(crate) offset: u64,
}

impl SliceEntry {
    /// Decodes one entry; `EINVAL` if `b` is shorter than an entry.
    fn decode(b: &[u8]) -> Result<Self> {
        let u64_at = |off| field(b, off).map(u64::from_ne_bytes);
        let u32_at = |off| field(b, off).map(u32::from_ne_bytes);
        let sem_at = |off| field(b, off).map(Sem::decode);
        Ok(Self {
            size: u64_at(0)?,
            sems: [sem_at(8)?, sem_at(16)?, sem_at(24)?, sem_at(32)?],
            dev_addr: u64_at(40)?,
            db_addr: u64_at(48)?,
            db_data: u32_at(56)?,
            db_len: u32_at(60)?,
            offset: u64_at(64)?,
        })
    }

    /// The checks of `uapi.md` §7.2 row 9 against a buffer object of `bo_size` bytes: doorbell
    /// width, the four semaphores, the slice within the buffer object.
    fn check(&self, bo_size: u64) -> Result {
        if !matches!(self.db_len, 0 | 8 | 16 | 32) || !self.sems.iter().all(Sem::is_valid) {
            return Err(EINVAL);
        }
        match self.offset.checked_add(self.size) {
            Some(end) if end <= bo_size => Ok(()),
            _ => Err(EINVAL),
        }
    }

    /// The `db_attr` byte of the slice's last request.
    fn db_attr(&self) -> u8 {
        match self.db_len {
            32 => db::ENABLE | db::W32,
            16 => db::ENABLE | db::W16,
            8 => db::ENABLE | db::W8,
            _ => 0,
        }
    }
}

/// Returns the size of `count` user slice entries, `EINVAL` if `count` is 0 or the size
/// overflows (`uapi.md` §7.2 rows 1 and 2).
pub(crate) fn entries_len(count: u32) -> Result<usize> {
    if count == 0 {
        return Err(EINVAL);
    }
    usize::try_from(count)
        .ok()
        .and_then(|c| c.checked_mul(SLICE_ENTRY_LEN))
        .ok_or(EINVAL)
}

/// Decodes the `count` slice entries in `raw` (the user's array, exactly [`entries_len`] bytes)
/// and checks each, in order, against a buffer object of `bo_size` bytes (`uapi.md` §7.2 row 9).
///
/// # Errors
///
/// `EINVAL` for a bad `count`, a `raw` of the wrong size or an entry that breaks a rule;
/// `ENOMEM`.
pub(crate) fn parse_entries(raw: &[u8], count: u32, bo_size: u64) -> Result<KVec<SliceEntry>> {
    if raw.len() != entries_len(count)? {
        return Err(EINVAL);
    }
    let mut entries = KVec::with_capacity(raw.len() / SLICE_ENTRY_LEN, gfp_user_sized())?;
    for b in raw.chunks_exact(SLICE_ENTRY_LEN) {
        let entry = SliceEntry::decode(b)?;
        entry.check(bo_size)?;
        entries.push(entry, GFP_KERNEL)?;
    }
    Ok(entries)
}

/// A request element: 64 bytes, little-endian, as the card reads it from the request ring.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 2 | `req_id` |
/// | 2 | 1 | `seq_id` (0) |
/// | 3 | 1 | `cmd`: transfer type 1:0, bulk 3, response 4 |
/// | 8 | 8 | `src_addr` |
/// | 16 | 8 | `dest_addr` |
/// | 24 | 4 | `len` |
/// | 32 | 8 | `db_addr` |
/// | 40 | 1 | `db_attr`: width 1:0, enable 7 |
/// | 44 | 4 | `db_data` |
/// | 48 | 4 × 4 | `sem_cmd0` to `sem_cmd3` |
///
/// Every other byte is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request([u8; REQ_ELEM_LEN]);

impl Request {
    /// An element of zeroes.
    const fn zeroed() -> Self {
        Self([0; REQ_ELEM_LEN])
    }

    /// The element's bytes, ready to be copied into the request ring.
    pub(crate) fn as_bytes(&self) -> &[u8; REQ_ELEM_LEN] {
        &self.0
    }

    /// Writes `v` at `off`; the offsets are constants within the element.
    fn put<const N: usize>(&mut self, off: usize, v: [u8; N]) {
        for (d, s) in self.0.iter_mut().skip(off).zip(v) {
            *d = s;
        }
    }

    /// Reads the `N` bytes at `off`; the offsets are constants within the element.
    fn get<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut v = [0; N];
        for (d, s) in v.iter_mut().zip(self.0.iter().skip(off)) {
            *d = *s;
        }
        v
    }

    /// Stamps the submission's request id.
    pub(crate) fn set_req_id(&mut self, id: u16) {
        self.put(req::REQ_ID, id.to_le_bytes());
    }

    /// The request id.
    pub(crate) fn req_id(&self) -> u16 {
        u16::from_le_bytes(self.get(req::REQ_ID))
    }

    /// The `cmd` byte.
    pub(crate) fn cmd(&self) -> u8 {
        let [c] = self.get(req::CMD);
        c
    }

    /// Sets the `cmd` byte.
    fn set_cmd(&mut self, c: u8) {
        self.put(req::CMD, [c]);
    }

    /// The source address.
    pub(crate) fn src(&self) -> u64 {
        u64::from_le_bytes(self.get(req::SRC))
    }

    /// The destination address.
    pub(crate) fn dest(&self) -> u64 {
        u64::from_le_bytes(self.get(req::DEST))
    }

    /// Sets the source and destination addresses.
    fn set_addrs(&mut self, src: u64, dest: u64) {
        self.put(req::SRC, src.to_le_bytes());
        self.put(req::DEST, dest.to_le_bytes());
    }

    /// The transfer length.
    pub(crate) fn len(&self) -> u32 {
        u32::from_le_bytes(self.get(req::LEN))
    }

    /// Sets the transfer length.
    fn set_len(&mut self, len: u32) {
        self.put(req::LEN, len.to_le_bytes());
    }

    /// The doorbell address.
    pub(crate) fn db_addr(&self) -> u64 {
        u64::from_le_bytes(self.get(req::DB_ADDR))
    }

    /// The doorbell attributes.
    pub(crate) fn db_attr(&self) -> u8 {
        let [a] = self.get(req::DB_ATTR);
        a
    }

    /// The doorbell value.
    pub(crate) fn db_data(&self) -> u32 {
        u32::from_le_bytes(self.get(req::DB_DATA))
    }

    /// Semaphore command word `i` (0..4); 0 for any other `i`.
    pub(crate) fn sem_cmd(&self, i: usize) -> u32 {
        if i < 4 {
            u32::from_le_bytes(self.get(req::SEM_CMD.wrapping_add(4usize.wrapping_mul(i))))
        } else {
            0
        }
    }

    /// Sets semaphore command word `i` (0..4); any other `i` is ignored.
    fn set_sem_cmd(&mut self, i: usize, v: u32) {
        if i < 4 {
            self.put(
                req::SEM_CMD.wrapping_add(4usize.wrapping_mul(i)),
                v.to_le_bytes(),
            );
        }
    }
}

/// The request templates of one slice of a buffer object, built at ATTACH_SLICE_BO: one per
/// DMA piece, in order; only the request id is filled in at submission.
#[derive(Debug)]
pub(crate) struct Slice {
    /// One per piece; never empty.
    requests: KVec<Request>,
    /// Start of the slice in the buffer object.
    offset: u64,
    /// Bytes of the slice, 0 for a slice that moves no data.
    size: u64,
}

/// Returns the pieces of `[start, end)` of a buffer object whose DMA segments, in order, are
/// `segments` (bus address, length; empty ones are skipped): (bus address, length) each.
fn pieces(
    segments: &[(u64, u64)],
    start: u64,
    end: u64,
) -> impl Iterator<Item = Result<(u64, u64)>> + '_ {
    let mut pos = 0u64;
    segments.iter().filter_map(move |&(addr, len)| {
        let seg_start = pos;
        let Some(seg_end) = pos.checked_add(len) else {
            return Some(Err(EINVAL));
        };
        pos = seg_end;
        let lo = seg_start.max(start);
        let hi = seg_end.min(end);
        if lo >= hi {
            return None;
        }
        Some(
            addr.checked_add(lo.wrapping_sub(seg_start))
                .map(|a| (a, hi.wrapping_sub(lo)))
                .ok_or(EINVAL),
        )
    })
}

/// Builds the request templates of the slice `entry` of a buffer object mapped for `dir` whose
/// DMA segments, in order, are `segments` (bus address, length) (`dma-bridge.md` §5.2).
///
/// The slice's bytes `[offset, offset + size)` (`[offset, offset + PAGE_SIZE)` for a slice of
/// size 0) are cut along the segments, one request per piece: `cmd` bulk with the direction's
/// transfer type (none for size 0), host and device addresses by direction, the piece's length,
/// and the pre-sync semaphore, if any, in its own slot. The last request also gets the response
/// bit, the doorbell and all four semaphores; when the slice has several pieces and no pre-sync
/// semaphore, `sem0` also fences all DMA of the slice's direction.
///
/// # Errors
///
/// `EINVAL` (`uapi.md` §7.2 row 15, in the C driver's order): the segments do not cover the
/// slice; the doorbell address is not aligned to its width; more than one pre-sync semaphore;
/// a piece longer than `u32::MAX` or a bus address overflow. `ENOMEM`.
pub(crate) fn build_slice(entry: &SliceEntry, dir: Dir, segments: &[(u64, u64)]) -> Result<Slice> {
    let span = if entry.size == 0 {
        NO_XFER_SPAN
    } else {
        entry.size
    };
    let start = entry.offset;
    let end = start.checked_add(span).ok_or(EINVAL)?;
    let mut nents = 0usize;
    let mut covered = 0u64;
    for piece in pieces(segments, start, end) {
        let (_, len) = piece?;
        if len > u64::from(u32::MAX) {
            return Err(EINVAL);
        }
        nents = nents.saturating_add(1);
        covered = covered.saturating_add(len);
    }
    if covered != span {
        return Err(EINVAL);
    }
    // The doorbell address is aligned to the doorbell's width in bytes.
    if NonZeroU64::new(u64::from(entry.db_len / 8)).is_some_and(|w| entry.db_addr % w != 0) {
        return Err(EINVAL);
    }
    let mut presync = entry
        .sems
        .iter()
        .enumerate()
        .filter(|(_, s)| s.presync != 0);
    let pre = presync.next();
    if presync.next().is_some() {
        return Err(EINVAL);
    }

    let xfer = if entry.size == 0 { 0 } else { dir.xfer() };
    let mut requests = KVec::with_capacity(nents, gfp_user_sized())?;
    let mut dev_off = 0u64;
    for piece in pieces(segments, start, end) {
        let (host, len) = piece?;
        let dev = entry.dev_addr.wrapping_add(dev_off);
        let mut r = Request::zeroed();
        r.set_cmd(cmd::BULK | xfer);
        match dir {
            Dir::ToDevice => r.set_addrs(host, dev),
            Dir::FromDevice => r.set_addrs(dev, host),
        }
        r.set_len(u32::try_from(len).map_err(|_| EINVAL)?);
        if let Some((i, s)) = pre {
            r.set_sem_cmd(i, s.encode());
        }
        requests.push(r, GFP_KERNEL)?;
        dev_off = dev_off.wrapping_add(len);
    }

    let several = requests.len() > 1;
    let last = requests.last_mut().ok_or(EINVAL)?;
    last.set_cmd(last.cmd() | cmd::RESPONSE);
    last.put(req::DB_ADDR, entry.db_addr.to_le_bytes());
    last.put(req::DB_ATTR, [entry.db_attr()]);
    last.put(req::DB_DATA, entry.db_data.to_le_bytes());
    let fence = if several && pre.is_none() {
        dir.fence()
    } else {
        0
    };
    for (i, s) in entry.sems.iter().enumerate() {
        last.set_sem_cmd(i, s.encode_with(if i == 0 { fence } else { 0 }));
    }
    Ok(Slice {
        requests,
        offset: entry.offset,
        size: entry.size,
    })
}

/// Builds the slices of all `entries` of a buffer object ([`build_slice`] each, in order: the
/// first failure wins), then checks their DMA pieces together fit in a request ring of `n`
/// elements (`uapi.md` §7.2 rows 15 and 16).
///
/// As in the C driver, `n` pieces are accepted although a ring holds at most `n - 1` elements:
/// such a buffer object can be attached but never executed in full (`EAGAIN`), only partially.
///
/// # Errors
///
/// Those of [`build_slice`]; `ENOSPC` if the slices have more than `n` pieces in all.
pub(crate) fn build_slices(
    entries: &[SliceEntry],
    dir: Dir,
    segments: &[(u64, u64)],
    n: u32,
) -> Result<KVec<Slice>> {
    let mut slices = KVec::with_capacity(entries.len(), gfp_user_sized())?;
    let mut total = 0usize;
    for e in entries {
        let s = build_slice(e, dir, segments)?;
        total = total.saturating_add(s.nents());
        slices.push(s, GFP_KERNEL)?;
    }
    if total > usize::try_from(n).unwrap_or(usize::MAX) {
        return Err(ENOSPC);
    }
    Ok(slices)
}

impl Slice {
    /// The request templates, one per DMA piece (request id 0).
    pub(crate) fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// Number of DMA pieces: what the slice takes of the ring in a full submission, and what
    /// counts against the ring size at attach (`ENOSPC`).
    pub(crate) fn nents(&self) -> usize {
        self.requests.len()
    }

    /// Start of the slice in the buffer object.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the slice (0: moves no data).
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The elements EXECUTE_BO enqueues for the slice: all its templates.
    pub(crate) fn full(&self) -> Elements<'_> {
        Elements {
            prefix: &self.requests,
            last: None,
        }
    }

    /// The elements PARTIAL_EXECUTE_BO enqueues for the slice when the user asks for the first
    /// `resize` bytes of the buffer object (`dma-bridge.md` §5.3 step 4.3; the caller has
    /// checked `resize` against the buffer object's size):
    ///
    /// - `resize` 0 or at or before the slice's start: one element with the last template's
    ///   semaphores, doorbell and `cmd` (response bit set, transfer type cleared), the first
    ///   template's addresses and length 0;
    /// - `resize` inside the slice, `b` bytes into it: the templates of the pieces before the
    ///   one `b` ends in, unchanged, then the last template with that piece's addresses and the
    ///   bytes of it that are wanted;
    /// - otherwise the whole slice, as [`Slice::full`].
    pub(crate) fn partial(&self, resize: u64) -> Elements<'_> {
        let (Some(first), Some(last)) = (self.requests.first(), self.requests.last()) else {
            return self.full();
        };
        if resize == 0 || resize <= self.offset {
            let mut e = *last;
            e.set_cmd(last.cmd() & !cmd::TYPE);
            e.set_addrs(first.src(), first.dest());
            e.set_len(0);
            return Elements {
                prefix: &[],
                last: Some(e),
            };
        }
        let b = resize.wrapping_sub(self.offset);
        if b >= self.size {
            return self.full();
        }
        let mut left = b;
        for (m, t) in self.requests.iter().enumerate() {
            let len = u64::from(t.len());
            if left > len {
                left = left.wrapping_sub(len);
                continue;
            }
            let mut e = *last;
            e.set_addrs(t.src(), t.dest());
            // `left` is at most the piece's `u32` length.
            e.set_len(u32::try_from(left).unwrap_or(u32::MAX));
            return Elements {
                prefix: self.requests.get(..m).unwrap_or(&[]),
                last: Some(e),
            };
        }
        // Not reached: the pieces add up to the slice's size.
        self.full()
    }
}

/// The elements one slice puts into the request ring in one submission: some of its templates
/// as they are, then maybe one element built for the submission. Element `k` is produced with
/// the request id stamped, by value, so the caller can write it straight into the ring.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Elements<'a> {
    /// Templates used unchanged.
    prefix: &'a [Request],
    /// The element after them, if any.
    last: Option<Request>,
}

impl Elements<'_> {
    /// Number of elements: the ring slots this needs.
    pub(crate) fn len(&self) -> usize {
        self.prefix
            .len()
            .saturating_add(usize::from(self.last.is_some()))
    }

    /// Whether there are no elements (never, for a slice built by [`build_slice`]).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `k` with request id `req_id`, `None` if `k >= len()`.
    pub(crate) fn get(&self, k: usize, req_id: u16) -> Option<Request> {
        let mut r = match self.prefix.get(k) {
            Some(r) => *r,
            None if k == self.prefix.len() => self.last?,
            None => return None,
        };
        r.set_req_id(req_id);
        Some(r)
    }

    /// The elements in order, with request id `req_id`.
    pub(crate) fn iter(&self, req_id: u16) -> impl Iterator<Item = Request> + '_ {
        (0..self.len()).filter_map(move |k| self.get(k, req_id))
    }
}

/// The elements PARTIAL_EXECUTE_BO enqueues for `slice` with `resize`, request id `req_id`
/// stamped, as a vector ([`Slice::partial`] gives them without allocating).
pub(crate) fn partial_requests(slice: &Slice, resize: u64, req_id: u16) -> Result<KVec<Request>> {
    let e = slice.partial(resize);
    let mut v = KVec::with_capacity(e.len(), gfp_user_sized())?;
    for r in e.iter(req_id) {
        v.push(r, GFP_KERNEL)?;
    }
    Ok(v)
}

/// Decodes a response element: (request id, status; 0 is success).
pub(crate) fn decode_response(elem: [u8; RSP_ELEM_LEN]) -> (u16, u16) {
    let [a, b, c, d] = elem;
    (u16::from_le_bytes([a, b]), u16::from_le_bytes([c, d]))
}

/// The index arithmetic of a ring of `N` elements (request or response). The producer owns the
/// tail, the consumer the head; both are in `0..N` and the ring holds at most `N - 1` elements,
/// so `head == tail` means empty.
///
/// Indices read from the card go through [`Ring::index`] first; the other methods never panic,
/// but their results only mean something for indices in `0..N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ring {
    /// `N`.
    n: NonZeroU64,
}

impl Ring {
    /// A ring of `n` elements, `EINVAL` if `n` is 0.
    pub(crate) fn new(n: u32) -> Result<Self> {
        NonZeroU64::new(u64::from(n))
            .map(|n| Self { n })
            .ok_or(EINVAL)
    }

    /// `N`.
    pub(crate) fn size(&self) -> u32 {
        u32::try_from(self.n.get()).unwrap_or(u32::MAX)
    }

    /// Checks an index read from a register: [`LINK_DOWN`] is `ENODEV`, anything else outside
    /// `0..N` is `EIO`.
    pub(crate) fn index(&self, raw: u32) -> Result<u32> {
        if raw == LINK_DOWN {
            Err(ENODEV)
        } else if u64::from(raw) >= self.n.get() {
            Err(EIO)
        } else {
            Ok(raw)
        }
    }

    /// Reduces `v` modulo `N`.
    fn wrap(&self, v: u64) -> u32 {
        u32::try_from(v % self.n).unwrap_or(0)
    }

    /// Elements between `head` and `tail`: `(tail - head) mod N`.
    pub(crate) fn used(&self, head: u32, tail: u32) -> u32 {
        self.wrap(
            u64::from(tail)
                .wrapping_add(self.n.get())
                .wrapping_sub(u64::from(head)),
        )
    }

    /// Free slots for a producer at `tail` while the consumer is at `head`:
    /// `(head - tail - 1) mod N`, the C driver's formula.
    pub(crate) fn free(&self, head: u32, tail: u32) -> u32 {
        let used = self.used(head, tail);
        self.size().saturating_sub(used).saturating_sub(1)
    }

    /// The index `by` elements after `idx`, wrapping at `N`.
    pub(crate) fn advance(&self, idx: u32, by: usize) -> u32 {
        let by = u64::try_from(by).unwrap_or(u64::MAX) % self.n;
        self.wrap(u64::from(idx).wrapping_add(by))
    }

    /// Checks there are `need` free slots at `tail` and returns the tail after them; `EAGAIN`
    /// if the ring is too full.
    pub(crate) fn reserve(&self, head: u32, tail: u32, need: usize) -> Result<u32> {
        if usize::try_from(self.free(head, tail)).unwrap_or(0) < need {
            return Err(EAGAIN);
        }
        Ok(self.advance(tail, need))
    }

    /// The `count` indices from `start` on, wrapping at `N`.
    pub(crate) fn slots(&self, start: u32, count: usize) -> impl Iterator<Item = u32> + '_ {
        (0..count).map(move |k| self.advance(start, k))
    }
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_dma_bridge)]
mod tests {
    use super::*;

    /// Writes `v` at `off` in `b` (test encoders, independent of the code under test).
    fn put(b: &mut [u8], off: usize, v: &[u8]) {
        for (d, s) in b.iter_mut().skip(off).zip(v) {
            *d = *s;
        }
    }

    /// A request element's fields, laid out by [`lay`] from the table of `dma-bridge.md` §3.
    #[derive(Clone, Copy)]
    struct E {
        id: u16,
        cmd: u8,
        src: u64,
        dest: u64,
        len: u32,
        db_addr: u64,
        db_attr: u8,
        db_data: u32,
        sems: [u32; 4],
    }

    /// All zero.
    const Z: E = E {
        id: 0,
        cmd: 0,
        src: 0,
        dest: 0,
        len: 0,
        db_addr: 0,
        db_attr: 0,
        db_data: 0,
        sems: [0; 4],
    };

    /// The 64 bytes of `e`.
    fn lay(e: &E) -> [u8; 64] {
        let mut b = [0u8; 64];
        put(&mut b, 0, &e.id.to_le_bytes());
        put(&mut b, 3, &[e.cmd]);
        put(&mut b, 8, &e.src.to_le_bytes());
        put(&mut b, 16, &e.dest.to_le_bytes());
        put(&mut b, 24, &e.len.to_le_bytes());
        put(&mut b, 32, &e.db_addr.to_le_bytes());
        put(&mut b, 40, &[e.db_attr]);
        put(&mut b, 44, &e.db_data.to_le_bytes());
        for (i, w) in e.sems.iter().enumerate() {
            put(&mut b, 48 + 4 * i, &w.to_le_bytes());
        }
        b
    }

    /// Whether `got` is exactly the elements `want`, byte for byte.
    fn same(got: &[Request], want: &[E]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| *g.as_bytes() == lay(w))
    }

    /// The user bytes of a `struct qaic_sem`, laid out from `uapi.md` §7.1.
    fn raw_sem(s: &Sem) -> [u8; 8] {
        let mut b = [0u8; 8];
        put(&mut b, 0, &s.val.to_ne_bytes());
        put(&mut b, 2, &[s.index, s.presync, s.cmd, s.flags]);
        put(&mut b, 6, &s.pad.to_ne_bytes());
        b
    }

    /// The user bytes of a `struct qaic_attach_slice_entry`, laid out from `uapi.md` §7.1.
    fn raw_entry(e: &SliceEntry) -> [u8; 72] {
        let mut b = [0u8; 72];
        put(&mut b, 0, &e.size.to_ne_bytes());
        for (i, s) in e.sems.iter().enumerate() {
            put(&mut b, 8 + 8 * i, &raw_sem(s));
        }
        put(&mut b, 40, &e.dev_addr.to_ne_bytes());
        put(&mut b, 48, &e.db_addr.to_ne_bytes());
        put(&mut b, 56, &e.db_data.to_ne_bytes());
        put(&mut b, 60, &e.db_len.to_ne_bytes());
        put(&mut b, 64, &e.offset.to_ne_bytes());
        b
    }

    // Semaphores and their `sem_cmd` words, computed by hand from `dma-bridge.md` §3.3.
    const NOP: Sem = Sem {
        val: 0,
        index: 0,
        presync: 0,
        cmd: 0,
        flags: 0,
        pad: 0,
    };
    /// INC sem 5 by 0x123, post-sync.
    const INC: Sem = Sem {
        val: 0x123,
        index: 5,
        cmd: 2,
        ..NOP
    };
    const INC_W: u32 = 0x8205_0123;
    /// The same with the to-device fence.
    const INC_IN_FENCE_W: u32 = 0xc205_0123;
    /// Pre-sync WAIT_EQUAL sem 31 == 7.
    const PRE: Sem = Sem {
        val: 7,
        index: 31,
        presync: 1,
        cmd: 4,
        ..NOP
    };
    const PRE_W: u32 = 0x845f_0007;
    /// DEC sem 3, to-device fence.
    const DEC_IN: Sem = Sem {
        index: 3,
        cmd: 3,
        flags: 2,
        ..NOP
    };
    const DEC_IN_W: u32 = 0xc303_0000;
    /// INIT sem 0 to 0xfff, from-device fence.
    const INIT_OUT: Sem = Sem {
        val: 0xfff,
        cmd: 1,
        flags: 1,
        ..NOP
    };
    const INIT_OUT_W: u32 = 0xa100_0fff;
    /// Every field at its largest.
    const MAX: Sem = Sem {
        val: 0xfff,
        index: 31,
        presync: 1,
        cmd: 6,
        flags: 3,
        pad: 0,
    };
    const MAX_W: u32 = 0xe65f_0fff;

    /// The DMA segments of the test buffer object (0x5000 bytes): 4 KiB, an empty segment,
    /// 12 KiB, 4 KiB.
    const SEGS: [(u64, u64); 4] = [
        (0x1_0000_0000, 0x1000),
        (0x9_9999_0000, 0),
        (0x2_0000_0000, 0x3000),
        (0x3_0000_5000, 0x1000),
    ];
    const BO_SIZE: u64 = 0x5000;
    /// Device address of the test slices.
    const DEV: u64 = 0xd000_0000;

    /// A slice entry without semaphores or doorbell.
    const ENTRY: SliceEntry = SliceEntry {
        size: 0,
        sems: [NOP; 4],
        dev_addr: DEV,
        db_addr: 0,
        db_data: 0,
        db_len: 0,
        offset: 0,
    };

    /// The three-piece to-device slice `[0x800, 0x4800)` of the partial-execute tests.
    const THREE: SliceEntry = SliceEntry {
        size: 0x4000,
        offset: 0x800,
        sems: [INC, NOP, NOP, DEC_IN],
        db_addr: 0xdb00_0000,
        db_data: 0xcafe_f00d,
        db_len: 32,
        ..ENTRY
    };
    /// Its templates.
    const THREE_REQS: [E; 3] = [
        E {
            cmd: 0x09,
            src: 0x1_0000_0800,
            dest: DEV,
            len: 0x800,
            ..Z
        },
        E {
            cmd: 0x09,
            src: 0x2_0000_0000,
            dest: DEV + 0x800,
            len: 0x3000,
            ..Z
        },
        E {
            cmd: 0x19,
            src: 0x3_0000_5000,
            dest: DEV + 0x3800,
            len: 0x800,
            db_addr: 0xdb00_0000,
            db_attr: 0x80,
            db_data: 0xcafe_f00d,
            sems: [INC_IN_FENCE_W, 0, 0, DEC_IN_W],
            ..Z
        },
    ];

    #[test]
    fn dbc_blocks_follow_the_bar_layout() {
        // BAR2: DBC i at 128 KiB + i * 4 KiB; the last one ends at 192 KiB.
        assert_eq!(dbc_block(0), Some(0x2_0000));
        assert_eq!(dbc_block(1), Some(0x2_1000));
        assert_eq!(dbc_block(15), Some(0x2_f000));
        assert_eq!(dbc_block(16), None);
        assert_eq!(dbc_block(usize::MAX), None);
        assert_eq!(DBC_BAR_SIZE, 0x3_0000);
        assert_eq!((REQ_HEAD, REQ_TAIL, RSP_HEAD, RSP_TAIL), (0, 4, 8, 12));
    }

    #[test]
    fn queue_buffer_layout() {
        // (N, buffer size, response ring offset): round_up(68 N + 256, 4096), size - 4 N.
        let rows: [(u32, Option<(usize, usize)>); 6] = [
            (0, None),
            (1, Some((4096, 4092))),
            (16, Some((4096, 4032))),
            (56, Some((4096, 3872))),
            (57, Some((8192, 7964))),
            (60, Some((8192, 7952))),
        ];
        for (n, want) in rows {
            assert_eq!(queue_layout(n), want);
        }
    }

    #[test]
    fn directions() {
        assert_eq!(Dir::from_uapi(1), Ok(Dir::ToDevice));
        assert_eq!(Dir::from_uapi(2), Ok(Dir::FromDevice));
        for bad in [0, 3, 0x101, u32::MAX] {
            assert_eq!(Dir::from_uapi(bad), Err(EINVAL));
        }
    }

    #[test]
    fn semaphore_encoding() {
        let rows = [
            (NOP, 0),
            (INC, INC_W),
            (PRE, PRE_W),
            (DEC_IN, DEC_IN_W),
            (INIT_OUT, INIT_OUT_W),
            (MAX, MAX_W),
            // A NOP with a fence: fence bit, no enable bit.
            (Sem { flags: 2, ..NOP }, 0x4000_0000),
            // WAIT_GT_0 on sem 1, no value.
            (
                Sem {
                    index: 1,
                    cmd: 6,
                    ..NOP
                },
                0x8601_0000,
            ),
        ];
        for (s, w) in rows {
            assert_eq!(s.encode(), w);
        }
        // A fence added for a multi-piece slice is OR-ed in.
        assert_eq!(INC.encode_with(sem::IN_FENCE), INC_IN_FENCE_W);
        assert_eq!(NOP.encode_with(sem::OUT_FENCE), 0x2000_0000);
        assert_eq!(INIT_OUT.encode_with(sem::OUT_FENCE), INIT_OUT_W);
    }

    #[test]
    fn entries_decode() -> Result {
        // One entry written out byte by byte (little-endian CPU).
        let mut raw = [0u8; 72];
        put(&mut raw, 0, &[0x00, 0x02]); // size 0x200
        put(&mut raw, 8, &[0x23, 0x01, 5, 0, 2, 0]); // sem0: INC
        put(&mut raw, 32, &[7, 0, 31, 1, 4, 0]); // sem3: PRE
        put(&mut raw, 40, &[0, 0, 0, 0xd0]); // dev_addr
        put(&mut raw, 48, &[0x02, 0, 0, 0xdb]); // db_addr
        put(&mut raw, 56, &[0x0d, 0xf0, 0xfe, 0xca, 16]); // db_data, db_len
        put(&mut raw, 64, &[0x00, 0x01]); // offset 0x100
        let want = SliceEntry {
            size: 0x200,
            sems: [INC, NOP, NOP, PRE],
            dev_addr: DEV,
            db_addr: 0xdb00_0002,
            db_data: 0xcafe_f00d,
            db_len: 16,
            offset: 0x100,
        };
        if cfg!(target_endian = "little") {
            let got = parse_entries(&raw, 1, BO_SIZE)?;
            assert!(got[..] == [want]);
        }

        // Several entries, in order.
        let mut raw = KVec::new();
        for e in [want, THREE, ENTRY] {
            raw.extend_from_slice(&raw_entry(&e), GFP_KERNEL)?;
        }
        let got = parse_entries(&raw, 3, BO_SIZE)?;
        assert!(got[..] == [want, THREE, ENTRY]);

        assert_eq!(entries_len(1), Ok(72));
        assert_eq!(entries_len(3), Ok(216));
        assert_eq!(entries_len(0), Err(EINVAL));
        assert_eq!(entries_len(u32::MAX), Ok(72 * u32::MAX as usize));
        Ok(())
    }

    #[test]
    fn entries_rejected() -> Result {
        let bad_sem = |i: usize, s: Sem| {
            let mut e = ENTRY;
            if let Some(slot) = e.sems.get_mut(i) {
                *slot = s;
            }
            e
        };
        // (name, entry, accepted)
        let rows = [
            ("plain", ENTRY, true),
            (
                "db_len 32",
                SliceEntry {
                    db_len: 32,
                    ..ENTRY
                },
                true,
            ),
            (
                "db_len 16",
                SliceEntry {
                    db_len: 16,
                    ..ENTRY
                },
                true,
            ),
            ("db_len 8", SliceEntry { db_len: 8, ..ENTRY }, true),
            ("db_len 1", SliceEntry { db_len: 1, ..ENTRY }, false),
            ("db_len 4", SliceEntry { db_len: 4, ..ENTRY }, false),
            (
                "db_len 24",
                SliceEntry {
                    db_len: 24,
                    ..ENTRY
                },
                false,
            ),
            (
                "db_len 64",
                SliceEntry {
                    db_len: 64,
                    ..ENTRY
                },
                false,
            ),
            (
                "all sems at their largest",
                SliceEntry {
                    sems: [MAX; 4],
                    ..ENTRY
                },
                true,
            ),
            (
                "sem0 val 0x1000",
                bad_sem(0, Sem { val: 0x1000, ..NOP }),
                false,
            ),
            ("sem1 index 32", bad_sem(1, Sem { index: 32, ..NOP }), false),
            (
                "sem2 presync 2",
                bad_sem(2, Sem { presync: 2, ..NOP }),
                false,
            ),
            ("sem3 pad 1", bad_sem(3, Sem { pad: 1, ..NOP }), false),
            (
                "sem0 pad 0x8000",
                bad_sem(0, Sem { pad: 0x8000, ..NOP }),
                false,
            ),
            ("sem1 flags 4", bad_sem(1, Sem { flags: 4, ..NOP }), false),
            (
                "sem2 flags 0x80",
                bad_sem(2, Sem { flags: 0x80, ..NOP }),
                false,
            ),
            ("sem3 cmd 7", bad_sem(3, Sem { cmd: 7, ..NOP }), false),
            ("sem0 cmd 0xff", bad_sem(0, Sem { cmd: 0xff, ..NOP }), false),
            (
                "two presyncs pass here (checked when building)",
                SliceEntry {
                    sems: [PRE, PRE, NOP, NOP],
                    ..ENTRY
                },
                true,
            ),
            (
                "slice ends at the end",
                SliceEntry {
                    offset: 0x4000,
                    size: 0x1000,
                    ..ENTRY
                },
                true,
            ),
            (
                "slice ends past the end",
                SliceEntry {
                    offset: 0x4000,
                    size: 0x1001,
                    ..ENTRY
                },
                false,
            ),
            (
                "size 0 at the end passes here",
                SliceEntry {
                    offset: BO_SIZE,
                    ..ENTRY
                },
                true,
            ),
            (
                "size 0 past the end",
                SliceEntry {
                    offset: BO_SIZE + 1,
                    ..ENTRY
                },
                false,
            ),
            (
                "offset + size overflows",
                SliceEntry {
                    offset: u64::MAX,
                    size: 2,
                    ..ENTRY
                },
                false,
            ),
            (
                "size larger than the BO",
                SliceEntry {
                    size: u64::MAX,
                    ..ENTRY
                },
                false,
            ),
        ];
        for (name, e, ok) in rows {
            // Alone, and after a good entry: the first bad entry fails the call.
            let mut two = KVec::new();
            two.extend_from_slice(&raw_entry(&ENTRY), GFP_KERNEL)?;
            two.extend_from_slice(&raw_entry(&e), GFP_KERNEL)?;
            let alone = parse_entries(&raw_entry(&e), 1, BO_SIZE);
            let second = parse_entries(&two, 2, BO_SIZE);
            let good = match (alone, second) {
                (Ok(a), Ok(b)) => ok && a[..] == [e] && b.len() == 2,
                (Err(a), Err(b)) => !ok && a == EINVAL && b == EINVAL,
                _ => false,
            };
            if !good {
                pr_err!("entry row '{}' failed\n", name);
            }
            assert!(good);
        }

        // Count and length.
        let one = raw_entry(&ENTRY);
        assert_eq!(parse_entries(&one, 0, BO_SIZE).err(), Some(EINVAL));
        assert_eq!(parse_entries(&one, 2, BO_SIZE).err(), Some(EINVAL));
        assert_eq!(parse_entries(&one[..71], 1, BO_SIZE).err(), Some(EINVAL));
        assert_eq!(parse_entries(&[], 1, BO_SIZE).err(), Some(EINVAL));
        Ok(())
    }

    #[test]
    fn one_literal_element() -> Result {
        // The element of a one-piece to-device slice, written out byte by byte.
        let e = SliceEntry {
            size: 0x200,
            offset: 0x100,
            sems: [INC, NOP, NOP, DEC_IN],
            db_addr: 0xdb00_0000,
            db_data: 0xcafe_f00d,
            db_len: 32,
            ..ENTRY
        };
        let s = build_slice(&e, Dir::ToDevice, &SEGS)?;
        let want: [u8; 64] = [
            0x34, 0x12, 0x00, 0x19, 0, 0, 0, 0, // req_id 0x1234, seq_id, cmd, reserved
            0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // src 0x1_0000_0100
            0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00, // dest 0xd000_0000
            0x00, 0x02, 0x00, 0x00, 0, 0, 0, 0, // len 0x200, reserved
            0x00, 0x00, 0x00, 0xdb, 0x00, 0x00, 0x00, 0x00, // db_addr
            0x80, 0, 0, 0, 0x0d, 0xf0, 0xfe, 0xca, // db_attr, reserved, db_data
            0x23, 0x01, 0x05, 0x82, 0, 0, 0, 0, // sem_cmd0 INC, sem_cmd1
            0, 0, 0, 0, 0x00, 0x00, 0x03, 0xc3, // sem_cmd2, sem_cmd3 DEC + fence
        ];
        let got = s.full().get(0, 0x1234);
        assert!(got.map(|r| *r.as_bytes()) == Some(want));
        assert!(s.full().get(1, 0x1234).is_none());
        // The same through the test encoder.
        let e = E {
            id: 0x1234,
            cmd: 0x19,
            src: 0x1_0000_0100,
            dest: DEV,
            len: 0x200,
            db_addr: 0xdb00_0000,
            db_attr: 0x80,
            db_data: 0xcafe_f00d,
            sems: [INC_W, 0, 0, DEC_IN_W],
        };
        assert!(lay(&e) == want);
        // Templates carry request id 0 until stamped.
        assert!(s.requests().first().map(|r| r.req_id()) == Some(0));
        Ok(())
    }

    #[test]
    fn slices_encode() -> Result {
        let rows: [(&str, SliceEntry, Dir, &[E]); 10] = [
            (
                "to device, one piece, doorbell 32",
                SliceEntry {
                    size: 0x200,
                    offset: 0x100,
                    sems: [INC, NOP, NOP, DEC_IN],
                    db_addr: 0xdb00_0000,
                    db_data: 0xcafe_f00d,
                    db_len: 32,
                    ..ENTRY
                },
                Dir::ToDevice,
                &[E {
                    cmd: 0x19,
                    src: 0x1_0000_0100,
                    dest: DEV,
                    len: 0x200,
                    db_addr: 0xdb00_0000,
                    db_attr: 0x80,
                    db_data: 0xcafe_f00d,
                    sems: [INC_W, 0, 0, DEC_IN_W],
                    ..Z
                }],
            ),
            (
                "from device, one whole segment, doorbell 16",
                SliceEntry {
                    size: 0x3000,
                    offset: 0x1000,
                    sems: [NOP, INIT_OUT, NOP, NOP],
                    db_addr: 0xdb00_0002,
                    db_data: 0xbeef,
                    db_len: 16,
                    ..ENTRY
                },
                Dir::FromDevice,
                &[E {
                    cmd: 0x1a,
                    src: DEV,
                    dest: 0x2_0000_0000,
                    len: 0x3000,
                    db_addr: 0xdb00_0002,
                    db_attr: 0x81,
                    db_data: 0xbeef,
                    sems: [0, INIT_OUT_W, 0, 0],
                    ..Z
                }],
            ),
            (
                "to device, three pieces: fence on sem0",
                THREE,
                Dir::ToDevice,
                &THREE_REQS,
            ),
            (
                "from device, three pieces, NOP sem0: fence in a disabled slot, doorbell 8",
                SliceEntry {
                    sems: [NOP, NOP, INC, NOP],
                    db_len: 8,
                    db_addr: 0xdb00_0003,
                    db_data: 0xff,
                    ..THREE
                },
                Dir::FromDevice,
                &[
                    E {
                        cmd: 0x0a,
                        src: DEV,
                        dest: 0x1_0000_0800,
                        len: 0x800,
                        ..Z
                    },
                    E {
                        cmd: 0x0a,
                        src: DEV + 0x800,
                        dest: 0x2_0000_0000,
                        len: 0x3000,
                        ..Z
                    },
                    E {
                        cmd: 0x1a,
                        src: DEV + 0x3800,
                        dest: 0x3_0000_5000,
                        len: 0x800,
                        db_addr: 0xdb00_0003,
                        db_attr: 0x82,
                        db_data: 0xff,
                        sems: [0x2000_0000, 0, INC_W, 0],
                        ..Z
                    },
                ],
            ),
            (
                "pre-sync on every piece, no fence",
                SliceEntry {
                    sems: [INC, NOP, PRE, NOP],
                    ..THREE
                },
                Dir::ToDevice,
                &[
                    E {
                        sems: [0, 0, PRE_W, 0],
                        ..THREE_REQS[0]
                    },
                    E {
                        sems: [0, 0, PRE_W, 0],
                        ..THREE_REQS[1]
                    },
                    E {
                        sems: [INC_W, 0, PRE_W, 0],
                        ..THREE_REQS[2]
                    },
                ],
            ),
            (
                "pre-sync in sem0 of a two-piece slice: no fence added",
                SliceEntry {
                    size: 0x1000,
                    offset: 0x800,
                    sems: [PRE, INC, NOP, NOP],
                    db_len: 0,
                    db_addr: 0x1235,
                    db_data: 5,
                    ..ENTRY
                },
                Dir::FromDevice,
                &[
                    E {
                        cmd: 0x0a,
                        src: DEV,
                        dest: 0x1_0000_0800,
                        len: 0x800,
                        sems: [PRE_W, 0, 0, 0],
                        ..Z
                    },
                    // Doorbell fields are copied even without a doorbell.
                    E {
                        cmd: 0x1a,
                        src: DEV + 0x800,
                        dest: 0x2_0000_0000,
                        len: 0x800,
                        db_addr: 0x1235,
                        db_data: 5,
                        sems: [PRE_W, INC_W, 0, 0],
                        ..Z
                    },
                ],
            ),
            (
                "size 0: one page of bookkeeping, no transfer type",
                SliceEntry {
                    offset: 0x1000,
                    sems: [INC, NOP, NOP, NOP],
                    ..ENTRY
                },
                Dir::ToDevice,
                &[E {
                    cmd: 0x18,
                    src: 0x2_0000_0000,
                    dest: DEV,
                    len: 0x1000,
                    sems: [INC_W, 0, 0, 0],
                    ..Z
                }],
            ),
            (
                "size 0 across two segments: two pieces and the fence",
                SliceEntry {
                    offset: 0x800,
                    ..ENTRY
                },
                Dir::ToDevice,
                &[
                    E {
                        cmd: 0x08,
                        src: 0x1_0000_0800,
                        dest: DEV,
                        len: 0x800,
                        ..Z
                    },
                    E {
                        cmd: 0x18,
                        src: 0x2_0000_0000,
                        dest: DEV + 0x800,
                        len: 0x800,
                        sems: [0x4000_0000, 0, 0, 0],
                        ..Z
                    },
                ],
            ),
            (
                "the whole BO from the device",
                SliceEntry {
                    size: BO_SIZE,
                    ..ENTRY
                },
                Dir::FromDevice,
                &[
                    E {
                        cmd: 0x0a,
                        src: DEV,
                        dest: 0x1_0000_0000,
                        len: 0x1000,
                        ..Z
                    },
                    E {
                        cmd: 0x0a,
                        src: DEV + 0x1000,
                        dest: 0x2_0000_0000,
                        len: 0x3000,
                        ..Z
                    },
                    E {
                        cmd: 0x1a,
                        src: DEV + 0x4000,
                        dest: 0x3_0000_5000,
                        len: 0x1000,
                        sems: [0x2000_0000, 0, 0, 0],
                        ..Z
                    },
                ],
            ),
            (
                "ends exactly at a segment boundary: no empty piece",
                SliceEntry {
                    size: 0x1000,
                    ..ENTRY
                },
                Dir::ToDevice,
                &[E {
                    cmd: 0x19,
                    src: 0x1_0000_0000,
                    dest: DEV,
                    len: 0x1000,
                    ..Z
                }],
            ),
        ];
        // The size-0 rows assume 4 KiB pages (the C driver uses PAGE_SIZE).
        assert_eq!(NO_XFER_SPAN, 0x1000);
        for (name, e, dir, want) in rows {
            let s = build_slice(&e, dir, &SEGS)?;
            let ok = same(s.requests(), want)
                && s.nents() == want.len()
                && s.offset() == e.offset
                && s.size() == e.size;
            if !ok {
                pr_err!("slice row '{}' failed\n", name);
            }
            assert!(ok);
        }
        Ok(())
    }

    /// A row of [`slices_rejected`]: name, entry, segments, the error expected.
    type RejectRow = (
        &'static str,
        SliceEntry,
        &'static [(u64, u64)],
        Option<Error>,
    );

    /// Segments whose second one is longer than a request can say.
    const HUGE: [(u64, u64); 2] = [(0x1000, 0x1000), (0x10_0000_0000, 0x1_0000_0000)];
    /// A segment at the very end of the bus address space.
    const NEAR_END: [(u64, u64); 1] = [(u64::MAX - 0xfff, 0x2000)];

    #[test]
    fn slices_rejected() {
        let rows: [RejectRow; 14] = [
            (
                "size 0 needs a page within the BO",
                SliceEntry {
                    offset: 0x4800,
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "size 0 at the end",
                SliceEntry {
                    offset: BO_SIZE,
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "size 0, last page",
                SliceEntry {
                    offset: 0x4000,
                    ..ENTRY
                },
                &SEGS,
                None,
            ),
            (
                "segments shorter than the slice",
                SliceEntry {
                    size: 0x4001,
                    ..ENTRY
                },
                &SEGS[..3],
                Some(EINVAL),
            ),
            (
                "no segments",
                SliceEntry { size: 1, ..ENTRY },
                &[],
                Some(EINVAL),
            ),
            (
                "doorbell 32 at 2 mod 4",
                SliceEntry {
                    size: 1,
                    db_len: 32,
                    db_addr: 0x1002,
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "doorbell 16 at an odd address",
                SliceEntry {
                    size: 1,
                    db_len: 16,
                    db_addr: 0x1001,
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "doorbell 8 at an odd address",
                SliceEntry {
                    size: 1,
                    db_len: 8,
                    db_addr: 0x1001,
                    ..ENTRY
                },
                &SEGS,
                None,
            ),
            (
                "no doorbell at an odd address",
                SliceEntry {
                    size: 1,
                    db_addr: 0x1001,
                    ..ENTRY
                },
                &SEGS,
                None,
            ),
            (
                "two pre-sync semaphores",
                SliceEntry {
                    size: 1,
                    sems: [NOP, PRE, NOP, PRE],
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "pre-sync NOPs count too",
                SliceEntry {
                    size: 1,
                    sems: [
                        Sem { presync: 1, ..NOP },
                        NOP,
                        NOP,
                        Sem { presync: 1, ..NOP },
                    ],
                    ..ENTRY
                },
                &SEGS,
                Some(EINVAL),
            ),
            (
                "a piece of 4 GiB",
                SliceEntry {
                    size: 0x1_0000_0000,
                    offset: 0x1000,
                    ..ENTRY
                },
                &HUGE,
                Some(EINVAL),
            ),
            (
                "4 GiB - 1 in a huge segment",
                SliceEntry {
                    size: 0xffff_ffff,
                    offset: 0x1000,
                    ..ENTRY
                },
                &HUGE,
                None,
            ),
            (
                "bus address overflows",
                SliceEntry {
                    size: 0x10,
                    offset: 0x1000,
                    ..ENTRY
                },
                &NEAR_END,
                Some(EINVAL),
            ),
        ];
        for (name, e, segs, want) in rows {
            let got = build_slice(&e, Dir::ToDevice, segs).err();
            if got != want {
                pr_err!("rejection row '{}' failed\n", name);
            }
            assert!(got == want);
        }
    }

    #[test]
    fn slices_of_a_bo() -> Result {
        // THREE has 3 pieces, the one-page slice at 0x1000 one: 4 in all.
        let page = SliceEntry {
            size: 0x1000,
            offset: 0x1000,
            ..ENTRY
        };
        let both = [THREE, page];
        let s = build_slices(&both, Dir::ToDevice, &SEGS, 4)?;
        assert_eq!(s.len(), 2);
        assert!(s.first().map(|s| same(s.requests(), &THREE_REQS)) == Some(true));
        assert!(s.get(1).map(|s| s.nents()) == Some(1));
        // As many pieces as ring slots is accepted (C driver), one more is ENOSPC.
        assert_eq!(
            build_slices(&both, Dir::ToDevice, &SEGS, 3).err(),
            Some(ENOSPC)
        );
        assert_eq!(
            build_slices(&both, Dir::ToDevice, &SEGS, 0).err(),
            Some(ENOSPC)
        );
        // A slice that cannot be built fails first, whatever the ring.
        let bad = [
            page,
            SliceEntry {
                db_len: 32,
                db_addr: 1,
                ..page
            },
        ];
        assert_eq!(
            build_slices(&bad, Dir::ToDevice, &SEGS, 0).err(),
            Some(EINVAL)
        );
        assert_eq!(
            build_slices(&[], Dir::ToDevice, &SEGS, 1).map(|s| s.len()),
            Ok(0)
        );
        Ok(())
    }

    /// The requests `Slice::partial` gives, through the vector helper and without allocating.
    fn partial_is(s: &Slice, resize: u64, want: &[E]) -> Result<bool> {
        let v = partial_requests(s, resize, 0x4321)?;
        let e = s.partial(resize);
        let mut w = KVec::new();
        for x in want {
            w.push(E { id: 0x4321, ..*x }, GFP_KERNEL)?;
        }
        Ok(same(&v, &w)
            && e.len() == w.len()
            && e.iter(0x4321).zip(v.iter()).all(|(a, b)| a == *b)
            && e.get(w.len(), 0x4321).is_none())
    }

    #[test]
    fn partial_execute() -> Result {
        let three = build_slice(&THREE, Dir::ToDevice, &SEGS)?;
        let [t0, t1, t2] = THREE_REQS;
        // The element of a slice that moves nothing: the last template's cmd with the response
        // bit (the C driver takes the first template's, without it: never completes),
        // the first template's addresses, length 0.
        let none = E {
            cmd: 0x18,
            src: t0.src,
            dest: t0.dest,
            len: 0,
            ..t2
        };
        let rows: [(&str, u64, &[E]); 12] = [
            ("resize 0", 0, &[none]),
            ("before the slice", 0x400, &[none]),
            ("at the slice's start", 0x800, &[none]),
            (
                "1 byte in",
                0x801,
                &[E {
                    src: t0.src,
                    dest: t0.dest,
                    len: 1,
                    ..t2
                }],
            ),
            (
                "inside piece 0",
                0x900,
                &[E {
                    src: t0.src,
                    dest: t0.dest,
                    len: 0x100,
                    ..t2
                }],
            ),
            (
                "end of piece 0",
                0x1000,
                &[E {
                    src: t0.src,
                    dest: t0.dest,
                    len: 0x800,
                    ..t2
                }],
            ),
            (
                "1 byte into piece 1",
                0x1001,
                &[
                    t0,
                    E {
                        src: t1.src,
                        dest: t1.dest,
                        len: 1,
                        ..t2
                    },
                ],
            ),
            (
                "end of piece 1",
                0x4000,
                &[
                    t0,
                    E {
                        src: t1.src,
                        dest: t1.dest,
                        len: 0x3000,
                        ..t2
                    },
                ],
            ),
            ("inside piece 2", 0x4100, &[t0, t1, E { len: 0x100, ..t2 }]),
            ("1 byte short", 0x47ff, &[t0, t1, E { len: 0x7ff, ..t2 }]),
            ("at the slice's end", 0x4800, &THREE_REQS),
            ("past the slice", BO_SIZE, &THREE_REQS),
        ];
        for (name, resize, want) in rows {
            let ok = partial_is(&three, resize, want)?;
            if !ok {
                pr_err!("partial row '{}' failed\n", name);
            }
            assert!(ok);
        }
        // The fix, spelled out: a multi-piece slice that moves nothing still answers.
        let e = three.partial(0).get(0, 1);
        assert!(e.map(|r| r.cmd() & cmd::RESPONSE != 0) == Some(true));

        // One piece: the C driver's element, response included.
        let one = SliceEntry {
            size: 0x200,
            offset: 0x100,
            sems: [INC, NOP, NOP, NOP],
            db_len: 16,
            db_addr: 0x10,
            db_data: 0x99,
            ..ENTRY
        };
        let s = build_slice(&one, Dir::FromDevice, &SEGS)?;
        let t = E {
            cmd: 0x1a,
            src: DEV,
            dest: 0x1_0000_0100,
            len: 0x200,
            db_addr: 0x10,
            db_attr: 0x81,
            db_data: 0x99,
            sems: [INC_W, 0, 0, 0],
            ..Z
        };
        assert!(partial_is(
            &s,
            0,
            &[E {
                cmd: 0x18,
                len: 0,
                ..t
            }]
        )?);
        assert!(partial_is(
            &s,
            0x100,
            &[E {
                cmd: 0x18,
                len: 0,
                ..t
            }]
        )?);
        assert!(partial_is(&s, 0x101, &[E { len: 1, ..t }])?);
        assert!(partial_is(&s, 0x2ff, &[E { len: 0x1ff, ..t }])?);
        assert!(partial_is(&s, 0x300, &[t])?);

        // Size 0: nothing to cut; at or before the offset the no-transfer element, after it
        // the template.
        let zero = SliceEntry {
            offset: 0x1000,
            ..ENTRY
        };
        let s = build_slice(&zero, Dir::ToDevice, &SEGS)?;
        let t = E {
            cmd: 0x18,
            src: 0x2_0000_0000,
            dest: DEV,
            len: 0x1000,
            ..Z
        };
        assert!(partial_is(&s, 0, &[E { len: 0, ..t }])?);
        assert!(partial_is(&s, 0x1000, &[E { len: 0, ..t }])?);
        assert!(partial_is(&s, 0x1001, &[t])?);
        Ok(())
    }

    #[test]
    fn full_execute_stamps_the_request_id() -> Result {
        let s = build_slice(&THREE, Dir::ToDevice, &SEGS)?;
        let full = s.full();
        assert_eq!(full.len(), 3);
        assert!(!full.is_empty());
        for (k, want) in THREE_REQS.iter().enumerate() {
            let got = full.get(k, 0xfffe).map(|r| *r.as_bytes());
            assert!(
                got == Some(lay(&E {
                    id: 0xfffe,
                    ..*want
                }))
            );
        }
        assert!(full.get(3, 0).is_none());
        assert!(full.get(usize::MAX, 0).is_none());
        assert_eq!(full.iter(7).count(), 3);
        assert!(full.iter(7).all(|r| r.req_id() == 7));
        // The templates themselves are left alone.
        assert!(same(s.requests(), &THREE_REQS));

        // Accessors and set_req_id.
        let mut r = s.requests().last().copied().unwrap_or(Request::zeroed());
        r.set_req_id(0xabcd);
        assert_eq!(r.req_id(), 0xabcd);
        assert_eq!(r.as_bytes()[..2], [0xcd, 0xab]);
        assert_eq!(r.cmd(), 0x19);
        assert_eq!(
            (r.src(), r.dest(), r.len()),
            (0x3_0000_5000, DEV + 0x3800, 0x800)
        );
        assert_eq!(
            (r.db_addr(), r.db_attr(), r.db_data()),
            (0xdb00_0000, 0x80, 0xcafe_f00d)
        );
        assert_eq!(r.sem_cmd(0), INC_IN_FENCE_W);
        assert_eq!(r.sem_cmd(3), DEC_IN_W);
        assert_eq!(r.sem_cmd(4), 0);
        Ok(())
    }

    #[test]
    fn ring_arithmetic() -> Result {
        assert_eq!(Ring::new(0).err(), Some(EINVAL));
        let r = Ring::new(8)?;
        assert_eq!(r.size(), 8);
        // (head, tail, used, free)
        let rows = [
            (0, 0, 0, 7),
            (0, 1, 1, 6),
            (0, 7, 7, 0),
            (3, 2, 7, 0),
            (5, 2, 5, 2),
            (2, 5, 3, 4),
            (7, 0, 1, 6),
            (7, 7, 0, 7),
            (1, 0, 7, 0),
        ];
        for (h, t, used, free) in rows {
            assert_eq!(r.used(h, t), used);
            assert_eq!(r.free(h, t), free);
        }
        // The C driver's formula, for every pair of indices of small rings.
        for n in [1u32, 2, 3, 8, 13] {
            let r = Ring::new(n)?;
            for h in 0..n {
                for t in 0..n {
                    let c =
                        h.wrapping_sub(t)
                            .wrapping_sub(1)
                            .wrapping_add(if h <= t { n } else { 0 });
                    assert_eq!(r.free(h, t), c);
                    assert_eq!(r.free(h, t) + r.used(h, t) + 1, n);
                }
            }
        }
        // The largest ring.
        let big = Ring::new(u32::MAX)?;
        assert_eq!(big.free(0, 0), u32::MAX - 1);
        assert_eq!(big.used(1, 0), u32::MAX - 1);
        assert_eq!(big.advance(u32::MAX - 1, 1), 0);

        // Advancing wraps at N.
        let adv = [
            (0, 0, 0),
            (6, 1, 7),
            (6, 2, 0),
            (6, 3, 1),
            (7, 1, 0),
            (0, 8, 0),
            (5, 17, 6),
        ];
        for (i, by, want) in adv {
            assert_eq!(r.advance(i, by), want);
        }
        assert_eq!(r.advance(0, usize::MAX), 7);
        // Slots of an enqueue that wraps.
        let mut it = r.slots(6, 4);
        assert!(
            [it.next(), it.next(), it.next(), it.next(), it.next()]
                == [Some(6), Some(7), Some(0), Some(1), None]
        );
        assert_eq!(r.slots(3, 0).count(), 0);

        // Reserving: room up to the slot before the head, then EAGAIN.
        assert_eq!(r.reserve(0, 5, 2), Ok(7));
        assert_eq!(r.reserve(0, 5, 3), Err(EAGAIN));
        assert_eq!(r.reserve(3, 6, 4), Ok(2));
        assert_eq!(r.reserve(3, 6, 5), Err(EAGAIN));
        assert_eq!(r.reserve(3, 2, 0), Ok(2));
        assert_eq!(r.reserve(3, 2, 1), Err(EAGAIN));
        assert_eq!(r.reserve(0, 0, 7), Ok(7));
        assert_eq!(r.reserve(0, 0, usize::MAX), Err(EAGAIN));

        // Register values.
        assert_eq!(r.index(0), Ok(0));
        assert_eq!(r.index(7), Ok(7));
        assert_eq!(r.index(8), Err(EIO));
        assert_eq!(r.index(0x8000_0000), Err(EIO));
        assert_eq!(r.index(LINK_DOWN), Err(ENODEV));
        Ok(())
    }

    #[test]
    fn responses_decode() {
        let rows = [
            ([0x00, 0x00, 0x00, 0x00], (0, 0)),
            ([0x34, 0x12, 0x00, 0x00], (0x1234, 0)),
            ([0xff, 0xff, 0x01, 0x00], (0xffff, 1)),
            ([0x01, 0x00, 0x01, 0x80], (1, 0x8001)),
        ];
        for (raw, want) in rows {
            assert_eq!(decode_response(raw), want);
        }
    }
}
