// SPDX-License-Identifier: GPL-2.0-only

//! `DRM_IOCTL_QAIC_MANAGE` messages: the user format, the wire format of the control protocol,
//! and the translation between them. Pure logic: pinning user memory, allocating DMA bridge
//! queues and the channel bookkeeping are the caller's, reached through [`EncodeOps`] and
//! [`DecodeOps`].
//!
//! A user message is `count` transactions (`{type, len}` header, then a body), `len` bytes in
//! all, in the CPU's byte order. [`encode_request`] checks it and builds the wire message: a
//! 32-byte header and one wire transaction per user transaction (a DEACTIVATE has none), all
//! little-endian, cut into the pieces the control channel sends as one chained transfer each
//! ([`Wire::pieces`]). A DMA transfer whose address/size list does not fit in one 64 KiB message
//! is chunked: the card answers each message but the last with a DMA_XFER_CONT
//! ([`Reply::Continue`]) and [`encode_continuation`] builds the next one. [`decode_response`]
//! checks the card's answer and translates it back into the user format.
//!
//! The checks, their order (the first failure wins) and their error codes are those of the C
//! `qaic` driver, which encodes and decodes transaction by transaction: a rule of transaction 1
//! is checked before the framing of transaction 2, and side effects (a DEACTIVATE giving up its
//! channel, an ACTIVATE answer assigning one) happen as the transactions are reached.
//!
//! # Differences from the C driver
//!
//! Where the C driver misbehaves on input that user space or a correct card cannot depend on,
//! this module refuses the input cleanly instead:
//!
//! - A second DMA_XFER in one message is refused (`EINVAL`): the C driver keeps one byte count
//!   per ioctl, so it would describe the second buffer starting at an offset into it.
//! - A second ACTIVATE in one message is refused (`EINVAL`): the C driver keeps one queue buffer
//!   per ioctl, so it would leak the first.
//! - A user DMA_XFER, ACTIVATE or DEACTIVATE shorter than its structure (32, 24, 16 bytes) is
//!   refused (`EINVAL`): the C driver reads the missing fields from the bytes that follow.
//! - A card answer's transactions must lie within the header's `len` (the C driver checks 32
//!   bytes too loosely and reads past the message); the header's `len` must be at least 32 (the
//!   C driver accepts 8). An ACTIVATE_FROM_DEV or STATUS_FROM_DEV shorter than 24 bytes is
//!   refused (`EINVAL`): the C driver reads its fields past the transaction. In all these cases
//!   the C driver ends in `EINVAL` too, unless a transaction read from the wrong bytes fails or
//!   acts first.
//! - A DMA_XFER_CONT is only accepted while a chunked transfer is under way. The C driver also
//!   accepts `{chunk 0, 0 bytes}` for a request without a chunked transfer and then sends the
//!   whole request again; here that is `EINVAL`. An answer to an abort message is never taken
//!   as a continuation (the C driver would resume the transfer it just aborted).

#![allow(
    dead_code,
    reason = "the MANAGE ioctl is not wired yet: the KUnit suite is the only user"
)]

use crate::dma_bridge::NUM_DBC;
use kernel::{
    crc32::{
        crc32_ieee,
        crc32_le, //
    },
    page::PAGE_SIZE,
    prelude::*,
};

/// Largest user message, in both directions (`QAIC_MANAGE_MAX_MSG_LENGTH`); also the largest
/// message the card sends.
pub(crate) const MAX_USER_LEN: usize = 4096;

/// Largest host-to-card message (`QAIC_MANAGE_WIRE_MSG_LENGTH`).
pub(crate) const MAX_WIRE_LEN: usize = 65536;

/// Largest piece of a wire message ([`Wire::pieces`]): the control client's transfer buffers.
pub(crate) const TRE_LEN: usize = 4096;

/// `magic_number` of every message: "QAIC" in little-endian byte order.
const MAGIC: u32 = 0x4349_4151;

/// Size of the message header.
const HDR_LEN: usize = 32;

/// Size of a transaction header (`type`, `len`), user and wire alike.
const TRANS_HDR_LEN: usize = 8;

/// Largest number of transactions in a user message: as many headers as fit in its buffer.
const MAX_COUNT: u32 = (MAX_USER_LEN / TRANS_HDR_LEN) as u32;

/// `partition_id` of user requests: no partition.
const NO_PARTITION: u32 = u32::MAX;

/// `partition_id` of TERMINATE messages: the C driver leaves that header field zeroed.
const TERMINATE_PARTITION: u32 = 0;

/// Transaction types.
mod trans {
    /// Opaque NNC command, user to host.
    pub(super) const PASSTHROUGH_FROM_USR: u32 = 1;
    /// Opaque NNC answer, card to host (and host to user).
    pub(super) const PASSTHROUGH_FROM_DEV: u32 = 3;
    /// Opaque NNC command, host to card.
    pub(super) const PASSTHROUGH_TO_DEV: u32 = 4;
    /// DMA transfer from user memory, user to host.
    pub(super) const DMA_XFER_FROM_USR: u32 = 5;
    /// DMA transfer as a bus address/size list, host to card.
    pub(super) const DMA_XFER_TO_DEV: u32 = 6;
    /// Activate a DMA bridge channel, user to host.
    pub(super) const ACTIVATE_FROM_USR: u32 = 7;
    /// Activation result, card to host (and host to user).
    pub(super) const ACTIVATE_FROM_DEV: u32 = 8;
    /// Activate a DMA bridge channel with these queues, host to card.
    pub(super) const ACTIVATE_TO_DEV: u32 = 9;
    /// Give up a DMA bridge channel, user to host (no wire transaction).
    pub(super) const DEACTIVATE_FROM_USR: u32 = 10;
    /// A DMA bridge channel was released (or not), card to host.
    pub(super) const DEACTIVATE_FROM_DEV: u32 = 11;
    /// Status request, user to host.
    pub(super) const STATUS_FROM_USR: u32 = 12;
    /// Status, card to host (and host to user).
    pub(super) const STATUS_FROM_DEV: u32 = 14;
    /// Status request, host to card.
    pub(super) const STATUS_TO_DEV: u32 = 15;
    /// Release everything of a user, host to card.
    pub(super) const TERMINATE_TO_DEV: u32 = 17;
    /// Send the next part of a chunked DMA transfer, card to host.
    pub(super) const DMA_XFER_CONT: u32 = 18;
}

/// Size of a user DMA_XFER: header, `tag`, `pad`, `addr`, `size`.
const USR_DMA_LEN: usize = 32;
/// Size of a user ACTIVATE: header, `queue_size`, `eventfd`, `options`, `pad`.
const USR_ACTIVATE_LEN: usize = 24;
/// Size of a user DEACTIVATE: header, `dbc_id`, `pad`.
const USR_DEACTIVATE_LEN: usize = 16;

/// Size of a DMA_XFER_TO_DEV without its pairs: header, `tag`, `count`, `dma_chunk_id`, pad.
const DMA_HDR_LEN: usize = 24;
/// Size of one `{bus address, size}` pair.
const PAIR_LEN: usize = 16;
/// Room the first message of a DMA transfer leaves free after its pairs.
const DMA_RESERVE: usize = 1024;
/// Pairs in the piece that starts a DMA_XFER_TO_DEV (after its 24-byte header).
const FIRST_PIECE_PAIRS: usize = 252;
/// Pairs in each further piece of a DMA_XFER_TO_DEV.
const PIECE_PAIRS: usize = 254;

/// Size of an ACTIVATE_TO_DEV.
const ACTIVATE_TO_DEV_LEN: usize = 40;
/// Size of a STATUS_TO_DEV as sent (its `len` field is the user's, see [`encode_status`]).
const STATUS_TO_DEV_LEN: usize = 8;
/// Size of a TERMINATE_TO_DEV.
const TERMINATE_TO_DEV_LEN: usize = 16;

/// Size of an ACTIVATE_FROM_DEV and of the user structure it becomes.
const ACTIVATE_FROM_DEV_LEN: usize = 24;
/// Size of a DEACTIVATE_FROM_DEV; the parser always steps over exactly this many bytes.
const DEACTIVATE_FROM_DEV_LEN: usize = 16;
/// Size of a STATUS_FROM_DEV and of the user structure it becomes.
const STATUS_FROM_DEV_LEN: usize = 24;

/// Size of a DMA bridge request element and of a response element.
const REQ_ELEM_LEN: u32 = 64;
const RSP_ELEM_LEN: u32 = 4;
/// Gap between the request and the response queue of a DMA bridge channel.
const QUEUE_GAP: u32 = 256;
/// The queue buffer of a DMA bridge channel is a multiple of this.
const QUEUE_ALIGN: u32 = 4096;

/// `status_flags` bit of STATUS_FROM_DEV: the card checks and sends CRCs.
const STATUS_FLAG_CRC: u64 = 1;

/// Widens a `u32` (this driver is 64-bit only, so it is exact).
fn usz(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Narrows a length known to be at most [`MAX_WIRE_LEN`].
fn u32_of(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Returns the `N` bytes at `off` in `b`, `EINVAL` if `b` is too short.
fn field<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N]> {
    let end = off.checked_add(N).ok_or(EINVAL)?;
    b.get(off..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(EINVAL)
}

/// Reads a little-endian (wire) `u32`.
fn le32(b: &[u8], off: usize) -> Result<u32> {
    field(b, off).map(u32::from_le_bytes)
}

/// Reads a little-endian (wire) `u64`.
fn le64(b: &[u8], off: usize) -> Result<u64> {
    field(b, off).map(u64::from_le_bytes)
}

/// Reads a CPU-order (user) `u32`.
fn ne32(b: &[u8], off: usize) -> Result<u32> {
    field(b, off).map(u32::from_ne_bytes)
}

/// Reads a CPU-order (user) `u64`.
fn ne64(b: &[u8], off: usize) -> Result<u64> {
    field(b, off).map(u64::from_ne_bytes)
}

/// One DMA-mapped piece of user memory, as the card sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Bus address.
    pub(crate) addr: u64,
    /// Length in bytes.
    pub(crate) len: u64,
}

/// Side effects of encoding, done by the driver (or a mock in the KUnit tests).
///
/// Whatever these calls allocate or map belongs to the implementer, which releases it when the
/// card's answer has been decoded or encoding failed: nothing is handed back through
/// [`Encoded`] but addresses and sizes.
pub(crate) trait EncodeOps {
    /// Pins and DMA-maps (to the device) the user range `[addr, addr + size)`, which does not
    /// wrap, and returns its bus segments in buffer order: at most `max_pairs` (at least 1) of
    /// them, covering a non-empty prefix of the range, all of it if it fits. Zero-length
    /// segments are ignored.
    ///
    /// To fail as the C driver does, pin the whole range even when only `max_pairs` segments
    /// are returned: a page that cannot be pinned anywhere in it is `EFAULT` now, before the
    /// transfer gets a chunk id. Only if the page array for the whole range cannot be allocated
    /// may fewer pages be pinned (the C driver halves the array until it can allocate it);
    /// the rest then goes in continuation messages.
    ///
    /// # Errors
    ///
    /// `EFAULT` if the pages cannot all be pinned, `ENOMEM`.
    fn map_user(&mut self, addr: u64, size: u64, max_pairs: usize) -> Result<KVec<Segment>>;

    /// Allocates the coherent queue buffer of an ACTIVATE: `buf_len` bytes for `queue_size`
    /// elements in each direction. Returns its bus address.
    ///
    /// # Errors
    ///
    /// `ENOMEM`.
    fn alloc_queues(&mut self, queue_size: u32, buf_len: u32) -> Result<u64>;

    /// The user gives up DMA bridge channel `dbc_id` (less than [`NUM_DBC`]): from now on it
    /// cannot use it, even if the rest of the message fails.
    ///
    /// # Errors
    ///
    /// `EPERM` if the channel is not the user's.
    fn deactivate(&mut self, dbc_id: u32) -> Result;

    /// Returns a fresh, non-zero id for a DMA transfer that takes several messages (the C
    /// driver's per-file counter, which skips 0 when it wraps). A zero id makes encoding fail
    /// with `EINVAL`.
    fn next_chunk_id(&mut self) -> u32;
}

/// A wire message: the header, the transactions, and where the pieces it is sent in end.
///
/// Piece 0 of a MANAGE message is the 32-byte header alone and every transaction starts a new
/// piece; no piece is longer than [`TRE_LEN`]. The bytes are a [`KVVec`]: a message can be
/// 64 KiB long and is only read by the CPU.
pub(crate) struct Wire {
    /// The message, header first (always at least [`HDR_LEN`] bytes).
    bytes: KVVec<u8>,
    /// The end of each piece in `bytes`, increasing; the last one is `bytes.len()`.
    ends: KVec<usize>,
    /// The header's `len`: the bytes sent, except after a STATUS whose user `len` is not 8.
    len: usize,
    /// The header's `count`.
    count: u32,
    /// The header's `partition_id`.
    partition: u32,
}

impl Wire {
    /// A message with a zeroed header and no transactions, no piece closed yet.
    fn new(partition: u32) -> Result<Self> {
        let mut bytes = KVVec::new();
        bytes.extend_from_slice(&[0u8; HDR_LEN], GFP_KERNEL)?;
        Ok(Self {
            bytes,
            ends: KVec::new(),
            len: HDR_LEN,
            count: 0,
            partition,
        })
    }

    /// A MANAGE message: header-only piece 0 closed.
    fn new_manage() -> Result<Self> {
        let mut w = Self::new(NO_PARTITION)?;
        w.end_piece()?;
        Ok(w)
    }

    /// Appends `words`, little-endian, to the open piece.
    fn put(&mut self, words: &[u32]) -> Result {
        for w in words {
            self.bytes.extend_from_slice(&w.to_le_bytes(), GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Appends a 64-bit value, little-endian, to the open piece.
    fn put64(&mut self, v: u64) -> Result {
        self.bytes.extend_from_slice(&v.to_le_bytes(), GFP_KERNEL)?;
        Ok(())
    }

    /// Overwrites the `u32` at `off` (which is within the message).
    fn patch(&mut self, off: usize, v: u32) {
        if let Some(dst) = off
            .checked_add(4)
            .and_then(|end| self.bytes.get_mut(off..end))
        {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Closes the open piece, if it has any bytes.
    fn end_piece(&mut self) -> Result {
        let end = self.bytes.len();
        if self.ends.last().copied().unwrap_or(0) < end {
            self.ends.push(end, GFP_KERNEL)?;
        }
        Ok(())
    }

    /// Accounts for one more transaction of `len` bytes in the header.
    fn add_trans(&mut self, len: usize) {
        self.len = self.len.saturating_add(len);
        self.count = self.count.saturating_add(1);
    }

    /// Fills in the header: magic, sequence number `seq`, length, count, `handle`, partition and
    /// padding, then the CRC-32 of the whole message if `crc` (else the CRC field is 0).
    pub(crate) fn seal(&mut self, seq: u32, handle: u32, crc: bool) {
        let words = [
            0,
            MAGIC,
            seq,
            u32_of(self.len),
            self.count,
            handle,
            self.partition,
            0,
        ];
        for (i, w) in words.into_iter().enumerate() {
            self.patch(i * 4, w);
        }
        if crc {
            let sum = crc32_ieee(&self.bytes);
            self.patch(0, sum);
        }
    }

    /// The pieces, in order: the caller queues each as one transfer, all but the last with
    /// CHAIN.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let piece = self.bytes.get(start..end).unwrap_or_default();
            start = end;
            piece
        })
    }

    /// The number of pieces (the transfer descriptors the message needs).
    pub(crate) fn piece_count(&self) -> usize {
        self.ends.len()
    }

    /// The whole message as sent.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Where the DMA transfer of a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DmaProgress {
    /// The user's tag, repeated in every message of the transfer.
    pub(crate) tag: u32,
    /// The user buffer: start address and size.
    pub(crate) addr: u64,
    pub(crate) size: u64,
    /// Bytes described to the card so far.
    pub(crate) sent: u64,
    /// 0 if the whole buffer went in the first message, else the id of the chunked transfer.
    pub(crate) chunk_id: u32,
}

/// The queues an ACTIVATE asked the card to use, for the caller to install when the card
/// answers (through [`DecodeOps::activated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Activation {
    /// Elements in each queue.
    pub(crate) queue_size: u32,
    /// Size of the queue buffer: `round_up(68 * queue_size + 256, 4096)`.
    pub(crate) buf_len: u32,
    /// Bus address of the request queue: the start of the buffer.
    pub(crate) req_q_addr: u64,
    /// Bus address of the response queue: the last `4 * queue_size` bytes of the buffer.
    pub(crate) rsp_q_addr: u64,
}

/// An encoded request: the message to send and what decoding its answer needs.
pub(crate) struct Encoded {
    /// The message; replaced by each continuation.
    pub(crate) wire: Wire,
    /// The message's DMA transfer, if any.
    pub(crate) dma: Option<DmaProgress>,
    /// The message's ACTIVATE, if any.
    pub(crate) activate: Option<Activation>,
}

impl Encoded {
    /// The id of the message's chunked DMA transfer, if it has one.
    pub(crate) fn chunk_id(&self) -> Option<u32> {
        self.dma.map(|d| d.chunk_id).filter(|&id| id != 0)
    }
}

/// Parses and checks the user's `count` transactions in `user` (the ioctl's `len` bytes) and
/// builds the wire message.
///
/// # Errors
///
/// The error code and, if a chunked DMA transfer already got a chunk id, that id: the caller
/// then frees what `ops` allocated and sends [`encode_abort`] for it instead, whose answer is
/// decoded and returned as usual. `EINVAL` (framing, types, field values), `ENOSPC` (the wire
/// message would exceed 64 KiB), `ENOMEM`, `EFAULT`, `EPERM`.
pub(crate) fn encode_request(
    user: &[u8],
    count: u32,
    ops: &mut impl EncodeOps,
) -> Result<Encoded, (Error, Option<u32>)> {
    if user.len() > MAX_USER_LEN || count > MAX_COUNT {
        return Err((EINVAL, None));
    }
    if count == 0 || user.len() < TRANS_HDR_LEN {
        return Err((EINVAL, None));
    }
    let mut enc = Encoded {
        wire: Wire::new_manage().map_err(|e| (e, None))?,
        dma: None,
        activate: None,
    };
    let mut off = 0;
    for _ in 0..count {
        match encode_one(user, off, &mut enc, ops) {
            Ok(next) => off = next,
            Err(e) => return Err((e, enc.chunk_id())),
        }
    }
    if off != user.len() {
        return Err((EINVAL, enc.chunk_id()));
    }
    Ok(enc)
}

/// Encodes the user transaction at `off` and returns the offset of the next one.
fn encode_one(
    user: &[u8],
    off: usize,
    enc: &mut Encoded,
    ops: &mut impl EncodeOps,
) -> Result<usize> {
    // `user.len() >= 8` was checked first.
    if off > user.len().saturating_sub(TRANS_HDR_LEN) {
        return Err(EINVAL);
    }
    let kind = ne32(user, off)?;
    let len = usz(ne32(user, off + 4)?);
    let end = off.checked_add(len).ok_or(EINVAL)?;
    if len < TRANS_HDR_LEN || end > user.len() {
        return Err(EINVAL);
    }
    let t = user.get(off..end).ok_or(EINVAL)?;
    match kind {
        trans::PASSTHROUGH_FROM_USR => encode_passthrough(t, &mut enc.wire)?,
        trans::DMA_XFER_FROM_USR => encode_dma_request(t, enc, ops)?,
        trans::ACTIVATE_FROM_USR => encode_activate(t, enc, ops)?,
        trans::DEACTIVATE_FROM_USR => encode_deactivate(t, ops)?,
        trans::STATUS_FROM_USR => encode_status(t, &mut enc.wire)?,
        _ => return Err(EINVAL),
    }
    Ok(end)
}

/// Returns `EINVAL` if the wire message would grow past [`MAX_WIRE_LEN`] with `more` bytes:
/// `err` otherwise.
fn check_room(wire: &Wire, more: usize, err: Error) -> Result {
    match wire.len.checked_add(more) {
        Some(n) if n <= MAX_WIRE_LEN => Ok(()),
        _ => Err(err),
    }
}

/// PASSTHROUGH: the same bytes as PASSTHROUGH_TO_DEV, one piece (at most [`MAX_USER_LEN`]).
fn encode_passthrough(t: &[u8], wire: &mut Wire) -> Result {
    if t.len() % 8 != 0 {
        return Err(EINVAL);
    }
    check_room(wire, t.len(), ENOSPC)?;
    wire.put(&[trans::PASSTHROUGH_TO_DEV, u32_of(t.len())])?;
    wire.bytes
        .extend_from_slice(t.get(TRANS_HDR_LEN..).unwrap_or_default(), GFP_KERNEL)?;
    wire.end_piece()?;
    wire.add_trans(t.len());
    Ok(())
}

/// STATUS: an 8-byte STATUS_TO_DEV. Quirk kept from the C driver: the transaction's `len` and
/// the message length count the user's `len`, although only 8 bytes are sent.
fn encode_status(t: &[u8], wire: &mut Wire) -> Result {
    check_room(wire, t.len(), ENOSPC)?;
    wire.put(&[trans::STATUS_TO_DEV, u32_of(t.len())])?;
    wire.end_piece()?;
    wire.add_trans(t.len());
    Ok(())
}

/// DEACTIVATE: no wire transaction; the user gives the channel up now.
fn encode_deactivate(t: &[u8], ops: &mut impl EncodeOps) -> Result {
    // Not in the C driver, which reads a short structure's fields from the following bytes.
    if t.len() < USR_DEACTIVATE_LEN {
        return Err(EINVAL);
    }
    let dbc_id = ne32(t, 8)?;
    let pad = ne32(t, 12)?;
    if usz(dbc_id) >= NUM_DBC || pad != 0 {
        return Err(EINVAL);
    }
    ops.deactivate(dbc_id)
}

/// ACTIVATE: allocates the channel's queue buffer and describes it in an ACTIVATE_TO_DEV.
fn encode_activate(t: &[u8], enc: &mut Encoded, ops: &mut impl EncodeOps) -> Result {
    // Neither check is in the C driver: it leaks the first buffer of two ACTIVATEs, and reads a
    // short structure's fields from the following bytes.
    if enc.activate.is_some() || t.len() < USR_ACTIVATE_LEN {
        return Err(EINVAL);
    }
    check_room(&enc.wire, ACTIVATE_TO_DEV_LEN, ENOSPC)?;
    let queue_size = ne32(t, 8)?;
    // `eventfd` at 12 is unused.
    let options = ne32(t, 16)?;
    let pad = ne32(t, 20)?;
    if queue_size == 0 || pad != 0 {
        return Err(EINVAL);
    }
    let fifo = queue_size
        .checked_mul(REQ_ELEM_LEN + RSP_ELEM_LEN)
        .ok_or(EINVAL)?;
    // The C driver's bound: room for the gap and a whole alignment unit.
    fifo.checked_add(QUEUE_GAP + QUEUE_ALIGN).ok_or(EINVAL)?;
    let buf_len = (fifo + QUEUE_GAP + QUEUE_ALIGN - 1) & !(QUEUE_ALIGN - 1);
    let rsp_off = buf_len
        .checked_sub(queue_size.checked_mul(RSP_ELEM_LEN).ok_or(EINVAL)?)
        .ok_or(EINVAL)?;

    let req_q_addr = ops.alloc_queues(queue_size, buf_len)?;
    let rsp_q_addr = req_q_addr.checked_add(u64::from(rsp_off)).ok_or(EINVAL)?;
    let w = &mut enc.wire;
    w.put(&[trans::ACTIVATE_TO_DEV, u32_of(ACTIVATE_TO_DEV_LEN)])?;
    w.put64(req_q_addr)?;
    w.put64(rsp_q_addr)?;
    w.put(&[queue_size, queue_size, buf_len, options])?;
    w.end_piece()?;
    w.add_trans(ACTIVATE_TO_DEV_LEN);
    enc.activate = Some(Activation {
        queue_size,
        buf_len,
        req_q_addr,
        rsp_q_addr,
    });
    Ok(())
}

/// DMA_XFER: the first part of the transfer.
fn encode_dma_request(t: &[u8], enc: &mut Encoded, ops: &mut impl EncodeOps) -> Result {
    // Neither check is in the C driver: it mis-places a second transfer, and reads a short
    // structure's fields from the following bytes.
    if enc.dma.is_some() || t.len() < USR_DMA_LEN {
        return Err(EINVAL);
    }
    // `pad` at 12 is not checked (nor is it by the C driver).
    let mut dma = DmaProgress {
        tag: ne32(t, 8)?,
        addr: ne64(t, 16)?,
        size: ne64(t, 24)?,
        sent: 0,
        chunk_id: 0,
    };
    encode_dma(&mut enc.wire, &mut dma, ops)?;
    enc.dma = Some(dma);
    Ok(())
}

/// Appends a DMA_XFER_TO_DEV describing as much of the rest of `dma` as fits, leaving
/// [`DMA_RESERVE`] bytes of the wire budget free, and advances `dma`. On error `dma` is
/// unchanged.
fn encode_dma(wire: &mut Wire, dma: &mut DmaProgress, ops: &mut impl EncodeOps) -> Result {
    // Room for the header and one pair, or the C driver's ENOMEM.
    check_room(wire, DMA_HDR_LEN + PAIR_LEN, ENOMEM)?;

    let start = dma.addr.checked_add(dma.sent).ok_or(EINVAL)?;
    let remaining = dma.size.checked_sub(dma.sent).ok_or(EINVAL)?;
    if remaining == 0 {
        return Err(EINVAL);
    }
    start.checked_add(remaining).ok_or(EINVAL)?;
    // The C driver also refuses a range whose page span reaches `SIZE_MAX`.
    let page = u64::try_from(PAGE_SIZE).map_err(|_| EINVAL)?;
    match remaining.checked_add(start % page) {
        Some(total) if total != u64::MAX => {}
        _ => return Err(EINVAL),
    }

    // As many pairs as leave DMA_RESERVE bytes free. With at most one DMA_XFER per message this
    // is never 0 (the rest of a user message cannot fill 64 KiB); the C driver would then send
    // one `{0, 0}` pair.
    let max_pairs = MAX_WIRE_LEN
        .checked_sub(wire.len)
        .and_then(|n| n.checked_sub(DMA_HDR_LEN + DMA_RESERVE))
        .map_or(0, |n| n / PAIR_LEN);
    if max_pairs == 0 {
        return Err(ENOMEM);
    }

    let segs = ops.map_user(start, remaining, max_pairs)?;

    let hdr = wire.bytes.len();
    wire.put(&[trans::DMA_XFER_TO_DEV, 0, dma.tag, 0, 0, 0])?;
    let mut pairs = 0usize;
    let mut in_piece = 0usize;
    let mut piece_max = FIRST_PIECE_PAIRS;
    let mut described = 0u64;
    for s in segs.iter().filter(|s| s.len != 0).take(max_pairs) {
        if in_piece == piece_max {
            wire.end_piece()?;
            in_piece = 0;
            piece_max = PIECE_PAIRS;
        }
        wire.put64(s.addr)?;
        wire.put64(s.len)?;
        in_piece += 1;
        pairs += 1;
        described = described.checked_add(s.len).ok_or(EINVAL)?;
    }
    wire.end_piece()?;
    if pairs == 0 {
        // Nothing mapped: `map_user` broke its contract.
        return Err(EFAULT);
    }
    if described > remaining {
        return Err(EINVAL);
    }
    let len = DMA_HDR_LEN + pairs * PAIR_LEN;

    let sent = dma.sent.checked_add(described).ok_or(EINVAL)?;
    let mut chunk_id = dma.chunk_id;
    if chunk_id == 0 && sent < dma.size {
        chunk_id = ops.next_chunk_id();
        if chunk_id == 0 {
            return Err(EINVAL);
        }
    }
    wire.patch(hdr + 4, u32_of(len));
    wire.patch(hdr + 12, u32_of(pairs));
    wire.patch(hdr + 16, chunk_id);
    wire.add_trans(len);
    dma.sent = sent;
    dma.chunk_id = chunk_id;
    Ok(())
}

/// Builds the next message of a chunked DMA transfer, after the card asked for it
/// ([`Reply::Continue`]): one DMA_XFER_TO_DEV with the same tag and chunk id, from
/// `dma.addr + dma.sent`. Only [`EncodeOps::map_user`] is called.
///
/// # Errors
///
/// `EINVAL` (nothing left to send, bad range), `EFAULT`, `ENOMEM`: the caller then sends
/// [`encode_abort`] for `dma.chunk_id`. `dma` is unchanged on error.
pub(crate) fn encode_continuation(dma: &mut DmaProgress, ops: &mut impl EncodeOps) -> Result<Wire> {
    let mut wire = Wire::new_manage()?;
    encode_dma(&mut wire, dma, ops)?;
    Ok(wire)
}

/// Builds the message that abandons chunked DMA transfer `chunk_id`: one DMA_XFER_TO_DEV with
/// no pairs, tag 0. Its answer is decoded with [`decode_response`] as usual; it has neither an
/// ACTIVATE nor a transfer to continue.
pub(crate) fn encode_abort(chunk_id: u32) -> Result<Encoded> {
    let mut wire = Wire::new_manage()?;
    wire.put(&[
        trans::DMA_XFER_TO_DEV,
        u32_of(DMA_HDR_LEN),
        0,
        0,
        chunk_id,
        0,
    ])?;
    wire.end_piece()?;
    wire.add_trans(DMA_HDR_LEN);
    Ok(Encoded {
        wire,
        dma: None,
        activate: None,
    })
}

/// Builds the TERMINATE message for user `handle` (sent when the user closes the device): one
/// 48-byte piece, header and TERMINATE_TO_DEV together, with partition id 0 as the C driver
/// sends it. The caller seals it with the same `handle`.
pub(crate) fn encode_terminate(handle: u32) -> Result<Wire> {
    let mut wire = Wire::new(TERMINATE_PARTITION)?;
    wire.put(&[
        trans::TERMINATE_TO_DEV,
        u32_of(TERMINATE_TO_DEV_LEN),
        handle,
        0,
    ])?;
    wire.end_piece()?;
    wire.add_trans(TERMINATE_TO_DEV_LEN);
    Ok(wire)
}

/// Side effects of decoding, done by the driver (or a mock in the KUnit tests).
pub(crate) trait DecodeOps {
    /// The card activated DMA bridge channel `dbc_id` (less than [`NUM_DBC`]) for the request's
    /// ACTIVATE: install the request's queues on it and give it to the user. From then on the
    /// queue buffer belongs to the channel, whatever the rest of decoding returns.
    fn activated(&mut self, dbc_id: u32) -> Result;

    /// The card released DMA bridge channel `dbc_id` (less than [`NUM_DBC`]) (`ok`): release it
    /// on the host; or refused to (`!ok`): give it back to the user who asked.
    fn deactivated(&mut self, dbc_id: u32, ok: bool) -> Result;
}

/// What to do with the card's answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// The card asks for the next part of the chunked transfer (checked against the progress):
    /// send [`encode_continuation`].
    Continue {
        /// The transfer's chunk id.
        chunk_id: u32,
        /// Bytes the card has received.
        xferred: u64,
    },
    /// The answer, for the user.
    Done(Output),
}

/// An answer in the user format.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Output {
    /// The user transactions (at most [`MAX_USER_LEN`] bytes): copied over the user's buffer,
    /// their length is the ioctl's new `len`.
    pub(crate) data: KVec<u8>,
    /// The ioctl's new `count`: the answer's, DEACTIVATE_FROM_DEV included.
    pub(crate) count: u32,
    /// The card reported a non-zero status: the ioctl fails with `ECANCELED`, but `data` and
    /// `count` are still copied back. Decoding stopped at that transaction.
    pub(crate) canceled: bool,
}

/// Checks the CRC of `msg` over the header's `len` bytes, the CRC field counted as zero.
fn crc_ok(msg: &[u8]) -> bool {
    let (Ok(want), Ok(len)) = (le32(msg, 0), le32(msg, 12)) else {
        return false;
    };
    let len = usz(len);
    let Some(body) = msg.get(..len) else {
        return false;
    };
    let zero = [0u8; 4];
    let head = zero.get(..len.min(4)).unwrap_or_default();
    let rest = body.get(4..).unwrap_or_default();
    !crc32_le(crc32_le(!0, head), rest) == want
}

/// Decodes the card's answer `msg` to the request `enc` (the caller matched magic and sequence
/// number). `msg` holds at least the header's `len` bytes; more are ignored. `crc`: the card
/// uses CRCs.
///
/// # Errors
///
/// `EPIPE` (bad CRC), `EINVAL` (malformed answer, or a DMA_XFER_CONT that does not match the
/// transfer under way), `ENODEV` (the card named a channel that does not exist), `ENOSPC` (the
/// user's output would exceed 4 KiB), or an error of `ops`. Side effects done before the error
/// stay done.
pub(crate) fn decode_response(
    msg: &[u8],
    crc: bool,
    enc: &Encoded,
    ops: &mut impl DecodeOps,
) -> Result<Reply> {
    if crc && !crc_ok(msg) {
        return Err(EPIPE);
    }
    // A lone DMA_XFER_CONT, whatever the lengths say (as the C driver).
    if le32(msg, 16)? == 1 && le32(msg, HDR_LEN)? == trans::DMA_XFER_CONT {
        let chunk_id = le32(msg, HDR_LEN + 8)?;
        let xferred = le64(msg, HDR_LEN + 16)?;
        return match enc.dma {
            Some(d) if d.chunk_id != 0 && d.chunk_id == chunk_id && d.sent == xferred => {
                Ok(Reply::Continue { chunk_id, xferred })
            }
            _ => Err(EINVAL),
        };
    }
    decode_message(msg, Some(enc), ops).map(Reply::Done)
}

/// Decodes an answer nobody waits for any more (its request timed out or was interrupted):
/// only its DEACTIVATE_FROM_DEV transactions count, each releasing its channel whatever its
/// status, since there is no user to give it back to.
///
/// # Errors
///
/// `EINVAL` (malformed answer), `ENODEV` (no such channel), or an error of `ops`; for the log.
pub(crate) fn decode_orphan(msg: &[u8], ops: &mut impl DecodeOps) -> Result {
    decode_message(msg, None, ops).map(|_| ())
}

/// Returns `ENOSPC` if `n` more bytes would take the user's output past [`MAX_USER_LEN`].
fn check_output(out: &KVec<u8>, n: usize) -> Result {
    match out.len().checked_add(n) {
        Some(total) if total <= MAX_USER_LEN => Ok(()),
        _ => Err(ENOSPC),
    }
}

/// Appends `words` in CPU order (the user format) to `out`.
fn put_ne(out: &mut KVec<u8>, words: &[u32]) -> Result {
    for w in words {
        out.extend_from_slice(&w.to_ne_bytes(), GFP_KERNEL)?;
    }
    Ok(())
}

/// Appends zeroes up to `len` bytes after `start` (a user structure whose wire `len` is
/// longer than its fields).
fn pad_to(out: &mut KVec<u8>, start: usize, len: usize) -> Result {
    let end = start.checked_add(len).ok_or(EINVAL)?;
    if out.len() < end {
        out.resize(end, 0, GFP_KERNEL)?;
    }
    Ok(())
}

/// Decodes the transactions of `msg`: for the request `enc`, or an orphan if `None`.
fn decode_message(msg: &[u8], enc: Option<&Encoded>, ops: &mut impl DecodeOps) -> Result<Output> {
    let len = usz(le32(msg, 12)?);
    if !(HDR_LEN..=MAX_USER_LEN).contains(&len) {
        return Err(EINVAL);
    }
    let msg = msg.get(..len).ok_or(EINVAL)?;
    let count = le32(msg, 16)?;
    let mut activation = enc.is_some_and(|e| e.activate.is_some());
    let mut out = Output {
        data: KVec::new(),
        count,
        canceled: false,
    };
    let mut off = HDR_LEN;
    for _ in 0..count {
        if off > len - TRANS_HDR_LEN {
            return Err(EINVAL);
        }
        let kind = le32(msg, off)?;
        let tlen = usz(le32(msg, off + 4)?);
        let end = off.checked_add(tlen).ok_or(EINVAL)?;
        if tlen < TRANS_HDR_LEN || end > len {
            return Err(EINVAL);
        }
        let t = msg.get(off..end).ok_or(EINVAL)?;
        if enc.is_none() {
            // An orphan: only DEACTIVATE_FROM_DEV counts.
            off = match kind {
                trans::DEACTIVATE_FROM_DEV => {
                    decode_deactivate(msg, off, true, ops)?.ok_or(EINVAL)?
                }
                _ => end,
            };
            continue;
        }
        let data = &mut out.data;
        let next = match kind {
            trans::PASSTHROUGH_FROM_DEV => {
                if tlen % 8 != 0 {
                    return Err(EINVAL);
                }
                check_output(data, tlen)?;
                put_ne(data, &[kind, u32_of(tlen)])?;
                data.extend_from_slice(t.get(TRANS_HDR_LEN..).unwrap_or_default(), GFP_KERNEL)?;
                Some(end)
            }
            trans::ACTIVATE_FROM_DEV => {
                // Not in the C driver, which reads the fields of a short one past its end.
                if tlen < ACTIVATE_FROM_DEV_LEN {
                    return Err(EINVAL);
                }
                check_output(data, tlen)?;
                let status = le32(t, 8)?;
                let dbc_id = le32(t, 12)?;
                let options = le64(t, 16)?;
                let start = data.len();
                put_ne(data, &[kind, u32_of(tlen), status, dbc_id])?;
                data.extend_from_slice(&options.to_ne_bytes(), GFP_KERNEL)?;
                pad_to(data, start, tlen)?;
                if !activation {
                    // No ACTIVATE in the request, or its answer came already.
                    return Err(EINVAL);
                }
                if usz(dbc_id) >= NUM_DBC {
                    return Err(ENODEV);
                }
                if status != 0 {
                    None
                } else {
                    ops.activated(dbc_id)?;
                    activation = false;
                    Some(end)
                }
            }
            trans::DEACTIVATE_FROM_DEV => decode_deactivate(msg, off, false, ops)?,
            trans::STATUS_FROM_DEV => {
                // Not in the C driver, which reads the fields of a short one past its end.
                if tlen < STATUS_FROM_DEV_LEN {
                    return Err(EINVAL);
                }
                check_output(data, tlen)?;
                let major = field::<2>(t, 8)?;
                let minor = field::<2>(t, 10)?;
                let status = le32(t, 12)?;
                let flags = le64(t, 16)?;
                let start = data.len();
                put_ne(data, &[trans::STATUS_FROM_DEV, u32_of(tlen)])?;
                data.extend_from_slice(&u16::from_le_bytes(major).to_ne_bytes(), GFP_KERNEL)?;
                data.extend_from_slice(&u16::from_le_bytes(minor).to_ne_bytes(), GFP_KERNEL)?;
                put_ne(data, &[status])?;
                data.extend_from_slice(&flags.to_ne_bytes(), GFP_KERNEL)?;
                pad_to(data, start, tlen)?;
                if status != 0 {
                    None
                } else if flags & STATUS_FLAG_CRC != 0 && !crc_ok(msg) {
                    return Err(EPIPE);
                } else {
                    Some(end)
                }
            }
            _ => return Err(EINVAL),
        };
        match next {
            Some(n) => off = n,
            None => {
                out.canceled = true;
                return Ok(out);
            }
        }
    }
    if off != len {
        return Err(EINVAL);
    }
    Ok(out)
}

/// DEACTIVATE_FROM_DEV at `off` in `msg`: releases the channel (status 0, or an `orphan`), or
/// gives it back to the user (returns `None`: canceled). Returns the offset of the next
/// transaction: always 16 bytes on, whatever the transaction's `len` (as the C driver).
fn decode_deactivate(
    msg: &[u8],
    off: usize,
    orphan: bool,
    ops: &mut impl DecodeOps,
) -> Result<Option<usize>> {
    let end = off.checked_add(DEACTIVATE_FROM_DEV_LEN).ok_or(EINVAL)?;
    // Not in the C driver, which reads the fields past the message.
    if end > msg.len() {
        return Err(EINVAL);
    }
    let status = le32(msg, off + 8)?;
    let dbc_id = le32(msg, off + 12)?;
    if usz(dbc_id) >= NUM_DBC {
        return Err(ENODEV);
    }
    if status != 0 && !orphan {
        ops.deactivated(dbc_id, false)?;
        return Ok(None);
    }
    ops.deactivated(dbc_id, true)?;
    Ok(Some(end))
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_manage)]
mod tests {
    use super::*;

    /// Sequence number and handle the tests seal messages with.
    const SEQ: u32 = 7;
    const HANDLE: u32 = 0x55;
    /// `partition_id` of user requests, as a header word.
    const NP: u32 = u32::MAX;
    /// The mock maps user address `a` at bus address `BUS + a`.
    const BUS: u64 = 0x8000_0000_0000;
    /// The mock's queue buffers start here.
    const QBASE: u64 = 0x1_0005_6000;
    /// The mock's first chunk id.
    const ID: u32 = 5;

    /// A call the code under test made to its ops.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Call {
        Map(u64, u64, usize),
        Alloc(u32, u32),
        Deactivate(u32),
        ChunkId,
        Activated(u32),
        Deactivated(u32, bool),
    }

    /// Records every call; maps user memory in `seg`-aligned segments.
    struct Mock {
        calls: KVec<Call>,
        /// Segments end at multiples of this.
        seg: u64,
        /// If not 0, at most this many segments (a page array smaller than the range).
        cap: usize,
        /// Put a zero-length segment before each segment.
        gaps: bool,
        map_err: Option<Error>,
        alloc_err: Option<Error>,
        /// Bitmap of the DBCs the user owns.
        owned: u32,
        /// The next chunk id.
        id: u32,
        /// Error of `activated` and `deactivated`.
        ops_err: Option<Error>,
    }

    impl Mock {
        /// Pages of 4 KiB, no limits, no errors, the user owns every DBC but 9.
        fn new() -> Self {
            Self {
                calls: KVec::new(),
                seg: 4096,
                cap: 0,
                gaps: false,
                map_err: None,
                alloc_err: None,
                owned: 0xffff & !(1 << 9),
                id: ID,
                ops_err: None,
            }
        }

        fn record(&mut self, c: Call) {
            // A lost record makes the calls comparison fail.
            let _ = self.calls.push(c, GFP_KERNEL);
        }
    }

    impl EncodeOps for Mock {
        fn map_user(&mut self, addr: u64, size: u64, max_pairs: usize) -> Result<KVec<Segment>> {
            self.record(Call::Map(addr, size, max_pairs));
            if let Some(e) = self.map_err {
                return Err(e);
            }
            let end = addr.checked_add(size).ok_or(EFAULT)?;
            let limit = if self.cap == 0 {
                max_pairs
            } else {
                self.cap.min(max_pairs)
            };
            let mut v = KVec::new();
            let (mut a, mut n) = (addr, 0usize);
            while a < end && n < limit {
                // The next multiple of `seg` after `a`, without a panicking operation.
                let base = a.saturating_sub(a.checked_rem(self.seg).unwrap_or(0));
                let next = base.saturating_add(self.seg).min(end);
                if self.gaps {
                    v.push(
                        Segment {
                            addr: 0xdead,
                            len: 0,
                        },
                        GFP_KERNEL,
                    )?;
                }
                v.push(
                    Segment {
                        addr: BUS.wrapping_add(a),
                        len: next.saturating_sub(a),
                    },
                    GFP_KERNEL,
                )?;
                n = n.saturating_add(1);
                a = next;
            }
            Ok(v)
        }

        fn alloc_queues(&mut self, queue_size: u32, buf_len: u32) -> Result<u64> {
            self.record(Call::Alloc(queue_size, buf_len));
            match self.alloc_err {
                Some(e) => Err(e),
                None => Ok(QBASE),
            }
        }

        fn deactivate(&mut self, dbc_id: u32) -> Result {
            self.record(Call::Deactivate(dbc_id));
            let bit = 1u32.checked_shl(dbc_id).unwrap_or(0);
            if self.owned & bit == 0 {
                return Err(EPERM);
            }
            self.owned &= !bit;
            Ok(())
        }

        fn next_chunk_id(&mut self) -> u32 {
            self.record(Call::ChunkId);
            let id = self.id;
            self.id = self.id.wrapping_add(1);
            id
        }
    }

    impl DecodeOps for Mock {
        fn activated(&mut self, dbc_id: u32) -> Result {
            self.record(Call::Activated(dbc_id));
            self.ops_err.map_or(Ok(()), Err)
        }

        fn deactivated(&mut self, dbc_id: u32, ok: bool) -> Result {
            self.record(Call::Deactivated(dbc_id, ok));
            self.ops_err.map_or(Ok(()), Err)
        }
    }

    fn lo(v: u64) -> u32 {
        (v & 0xffffffff) as u32
    }

    fn hi(v: u64) -> u32 {
        (v >> 32) as u32
    }

    /// `words` as bytes in CPU order (the user format), cut to `cut` bytes if given.
    fn user(words: &[u32], cut: Option<usize>) -> Result<KVec<u8>> {
        let mut v = KVec::new();
        for w in words {
            v.extend_from_slice(&w.to_ne_bytes(), GFP_KERNEL)?;
        }
        if let Some(n) = cut {
            v.truncate(n);
        }
        Ok(v)
    }

    /// Whether `bytes` are `words`, little-endian (`le`) or in CPU order.
    fn same(bytes: &[u8], words: &[u32], le: bool) -> bool {
        bytes.len() == words.len() * 4
            && bytes.chunks_exact(4).zip(words).all(|(b, w)| {
                let want = if le { w.to_le_bytes() } else { w.to_ne_bytes() };
                b == want
            })
    }

    /// Whether the sealed `wire` (no CRC) has header `len` and `count`, then the pieces `want`.
    fn wire_is(wire: &Wire, len: u32, count: u32, want: &[&[u32]]) -> bool {
        let hdr = [0, MAGIC, SEQ, len, count, HANDLE, NP, 0];
        wire.piece_count() == want.len() + 1
            && wire
                .pieces()
                .zip(Iterator::chain(
                    core::iter::once(&hdr[..]),
                    want.iter().copied(),
                ))
                .all(|(p, w)| same(p, w, true))
    }

    /// Whether every piece fits a transfer buffer and they add up to the message.
    fn pieces_ok(wire: &Wire) -> bool {
        wire.pieces().all(|p| !p.is_empty() && p.len() <= TRE_LEN)
            && wire.pieces().map(<[u8]>::len).sum::<usize>() == wire.as_bytes().len()
    }

    /// What an encoder row expects: the pieces after the header, the header's `len` and
    /// `count`; or the error.
    type EncWant = Result<(&'static [&'static [u32]], u32, u32), (Error, Option<u32>)>;

    /// One row of the encoder table.
    struct EncCase {
        name: &'static str,
        /// The user transactions, as CPU-order words.
        user: &'static [u32],
        /// Cut the user message to this many bytes.
        cut: Option<usize>,
        count: u32,
        /// Adjusts the mock.
        setup: fn(&mut Mock),
        want: EncWant,
        /// The calls the mock must see, in order.
        calls: &'static [Call],
    }

    fn no_setup(_: &mut Mock) {}

    /// Runs an encoder table; returns the number of rows that failed.
    fn run_encode(cases: &[EncCase]) -> Result<usize> {
        let mut failed = 0;
        for c in cases {
            let mut m = Mock::new();
            (c.setup)(&mut m);
            let u = user(c.user, c.cut)?;
            let ok = match (encode_request(&u, c.count, &mut m), &c.want) {
                (Ok(mut enc), Ok((pieces, len, count))) => {
                    enc.wire.seal(SEQ, HANDLE, false);
                    wire_is(&enc.wire, *len, *count, pieces) && pieces_ok(&enc.wire)
                }
                (Err(got), Err(want)) => got == *want,
                (Ok(_), Err(_)) => false,
                (Err(got), Ok(_)) => {
                    pr_err!("encode case '{}': error {:?}\n", c.name, got);
                    false
                }
            };
            let calls_ok = m.calls[..] == *c.calls;
            if !ok || !calls_ok {
                pr_err!(
                    "encode case '{}' failed (result ok: {}, calls ok: {}; calls {:?})\n",
                    c.name,
                    ok,
                    calls_ok,
                    &m.calls[..]
                );
                failed += 1;
            }
        }
        Ok(failed)
    }

    // User transactions.
    const U_STATUS: [u32; 2] = [12, 8];
    const U_PT: [u32; 4] = [1, 16, 0xaabbccdd, 0x11223344];
    const U_ACT: [u32; 6] = [7, 24, 1, 0xeeee, 0x1_0000, 0];
    const U_DEACT: [u32; 4] = [10, 16, 3, 0];
    /// 4 KiB from 0x10800 (two half pages).
    const U_DMA: [u32; 8] = [5, 32, 0x77, 0, 0x10800, 0, 0x1000, 0];

    // Their wire transactions.
    const W_STATUS: [u32; 2] = [15, 8];
    const W_PT: [u32; 4] = [4, 16, 0xaabbccdd, 0x11223344];
    /// ACTIVATE with queue_size 1: buffer 4 KiB, response queue in its last 4 bytes.
    const W_ACT: [u32; 10] = [9, 40, 0x56000, 1, 0x56ffc, 1, 1, 1, 4096, 0x1_0000];
    // Tag, 2 pairs, no chunk id; the first half page, the second.
    const W_DMA: [u32; 14] = [
        6, 56, 0x77, 2, 0, 0, 0x10800, 0x8000, 0x800, 0, 0x11000, 0x8000, 0x800, 0,
    ];
    const MAP_DMA: Call = Call::Map(0x10800, 0x1000, 4028);

    #[test]
    fn encode_each_transaction() {
        // STATUS; PASSTHROUGH; ACTIVATE; DEACTIVATE; DMA_XFER.
        const MIXED: [u32; 24] = [
            12, 8, 1, 16, 0xaabbccdd, 0x11223344, 7, 24, 1, 0xeeee, 0x1_0000, 0, 10, 16, 3, 0, 5,
            32, 0x77, 0, 0x10800, 0, 0x1000, 0,
        ];
        let cases = [
            EncCase {
                name: "status",
                user: &U_STATUS,
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&W_STATUS], 40, 1)),
                calls: &[],
            },
            EncCase {
                name: "status with len 16 counts 16, sends 8",
                user: &[12, 16, 0, 0],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&[15, 16]], 48, 1)),
                calls: &[],
            },
            EncCase {
                name: "passthrough",
                user: &U_PT,
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&W_PT], 48, 1)),
                calls: &[],
            },
            EncCase {
                name: "empty passthrough",
                user: &[1, 8],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&[4, 8]], 40, 1)),
                calls: &[],
            },
            EncCase {
                name: "activate 1 element",
                user: &U_ACT,
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&W_ACT], 72, 1)),
                calls: &[Call::Alloc(1, 4096)],
            },
            EncCase {
                name: "activate 56 elements: 4064 bytes fit in 4 KiB",
                user: &[7, 24, 56, 0, 0, 0],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&[9, 40, 0x56000, 1, 0x56f20, 1, 56, 56, 4096, 0]], 72, 1)),
                calls: &[Call::Alloc(56, 4096)],
            },
            EncCase {
                name: "activate 57 elements: 8 KiB",
                user: &[7, 24, 57, 0, 0, 0],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&[9, 40, 0x56000, 1, 0x57f1c, 1, 57, 57, 8192, 0]], 72, 1)),
                calls: &[Call::Alloc(57, 8192)],
            },
            EncCase {
                name: "activate, largest queue size",
                user: &[7, 24, 63_161_219, 0, 0, 0],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((
                    &[&[
                        9, 40, 0x56000, 1, 0xf0f641f4, 1, 63_161_219, 63_161_219, 0xfffff000, 0,
                    ]],
                    72,
                    1,
                )),
                calls: &[Call::Alloc(63_161_219, 0xfffff000)],
            },
            EncCase {
                name: "deactivate: no wire transaction",
                user: &U_DEACT,
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[], 32, 0)),
                calls: &[Call::Deactivate(3)],
            },
            EncCase {
                name: "dma, two half pages",
                user: &U_DMA,
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[&W_DMA], 88, 1)),
                calls: &[MAP_DMA],
            },
            EncCase {
                name: "dma, pad not checked, empty segments skipped",
                user: &[5, 32, 0x77, 0xffff, 0x10800, 0, 0x1000, 0],
                cut: None,
                count: 1,
                setup: |m| m.gaps = true,
                want: Ok((&[&W_DMA], 88, 1)),
                calls: &[MAP_DMA],
            },
            EncCase {
                name: "dma, one page merged",
                user: &U_DMA,
                cut: None,
                count: 1,
                setup: |m| m.seg = 1 << 40,
                want: Ok((
                    &[&[6, 40, 0x77, 1, 0, 0, 0x10800, 0x8000, 0x1000, 0]],
                    72,
                    1,
                )),
                calls: &[MAP_DMA],
            },
            EncCase {
                name: "dma, fewer pages pinned: chunked",
                user: &U_DMA,
                cut: None,
                count: 1,
                setup: |m| m.cap = 1,
                want: Ok((
                    &[&[6, 40, 0x77, 1, ID, 0, 0x10800, 0x8000, 0x800, 0]],
                    72,
                    1,
                )),
                calls: &[MAP_DMA, Call::ChunkId],
            },
            EncCase {
                name: "transaction longer than its structure",
                user: &[10, 24, 3, 0, 0xffff, 0xffff],
                cut: None,
                count: 1,
                setup: no_setup,
                want: Ok((&[], 32, 0)),
                calls: &[Call::Deactivate(3)],
            },
            EncCase {
                name: "all five",
                user: &MIXED,
                cut: None,
                count: 5,
                setup: no_setup,
                want: Ok((&[&W_STATUS, &W_PT, &W_ACT, &W_DMA], 152, 4)),
                calls: &[
                    Call::Alloc(1, 4096),
                    Call::Deactivate(3),
                    Call::Map(0x10800, 0x1000, 4024),
                ],
            },
        ];
        assert_eq!(run_encode(&cases), Ok(0));
    }

    #[test]
    fn encode_rejections() -> Result {
        const EPERM_THEN_BAD_FRAMING: [u32; 6] = [10, 16, 9, 0, 12, 4];
        const DEACT_THEN_UNKNOWN: [u32; 6] = [10, 16, 3, 0, 99, 8];
        const TWO_ACT: [u32; 12] = [7, 24, 1, 0, 0, 0, 7, 24, 1, 0, 0, 0];
        const TWO_DMA: [u32; 16] = [
            5, 32, 0x77, 0, 0x10800, 0, 0x1000, 0, 5, 32, 0x77, 0, 0x10800, 0, 0x1000, 0,
        ];
        const CHUNKED_THEN_UNKNOWN: [u32; 10] = [5, 32, 0x77, 0, 0x10800, 0, 0x1000, 0, 99, 8];
        const CHUNKED_THEN_TRAILING: [u32; 10] = [5, 32, 0x77, 0, 0x10800, 0, 0x1000, 0, 0, 0];
        const ACT_ENOMEM_THEN_UNKNOWN: [u32; 8] = [7, 24, 1, 0, 0, 0, 99, 8];
        let e = |name, user: &'static [u32], count, want: Error, calls: &'static [Call]| EncCase {
            name,
            user,
            cut: None,
            count,
            setup: no_setup,
            want: Err((want, None)),
            calls,
        };
        let cases = [
            e("count 0", &U_STATUS, 0, EINVAL, &[]),
            e("count 513", &U_STATUS, 513, EINVAL, &[]),
            EncCase {
                cut: Some(4),
                ..e("len 4", &U_STATUS, 1, EINVAL, &[])
            },
            e("transaction len 4", &[12, 4], 1, EINVAL, &[]),
            e("transaction past len", &[12, 16, 0], 1, EINVAL, &[]),
            e("second header past len", &[12, 8, 0], 2, EINVAL, &[]),
            e("bytes left over", &[12, 8, 0, 0], 1, EINVAL, &[]),
            e("type 0", &[0, 8], 1, EINVAL, &[]),
            e("type 99", &[99, 8], 1, EINVAL, &[]),
            e("card type from user", &[3, 8], 1, EINVAL, &[]),
            e("wire type from user", &[4, 8], 1, EINVAL, &[]),
            e("status type 14 from user", &[14, 8], 1, EINVAL, &[]),
            e("passthrough len 12", &[1, 12, 13], 1, EINVAL, &[]),
            e(
                "dma size 0",
                &[5, 32, 1, 0, 0x1000, 0, 0, 0],
                1,
                EINVAL,
                &[],
            ),
            e(
                "dma address wraps",
                &[5, 32, 1, 0, 0xffffffef, 0xffffffff, 0x1000, 0],
                1,
                EINVAL,
                &[],
            ),
            e(
                "dma end is 2^64",
                &[5, 32, 1, 0, 0xfffff000, 0xffffffff, 0x1000, 0],
                1,
                EINVAL,
                &[],
            ),
            e(
                "dma page span reaches SIZE_MAX",
                &[5, 32, 1, 0, 1, 0, 0xfffffffe, 0xffffffff],
                1,
                EINVAL,
                &[],
            ),
            e(
                "dma of the whole address space",
                &[5, 32, 1, 0, 0, 0, 0xffffffff, 0xffffffff],
                1,
                EINVAL,
                &[],
            ),
            e(
                "dma shorter than its structure",
                &[5, 24, 0x77, 0, 0x10800, 0],
                1,
                EINVAL,
                &[],
            ),
            EncCase {
                setup: |m| m.map_err = Some(EFAULT),
                ..e("dma pages not pinned", &U_DMA, 1, EFAULT, &[MAP_DMA])
            },
            EncCase {
                setup: |m| m.map_err = Some(ENOMEM),
                ..e("dma mapping fails", &U_DMA, 1, ENOMEM, &[MAP_DMA])
            },
            EncCase {
                setup: |m| {
                    m.cap = 1;
                    m.id = 0;
                },
                ..e("chunk id 0", &U_DMA, 1, EINVAL, &[MAP_DMA, Call::ChunkId])
            },
            e("second dma", &TWO_DMA, 2, EINVAL, &[MAP_DMA]),
            e(
                "activate queue size 0",
                &[7, 24, 0, 0, 0, 0],
                1,
                EINVAL,
                &[],
            ),
            e("activate pad", &[7, 24, 16, 0, 0, 1], 1, EINVAL, &[]),
            e(
                "activate 68 * size wraps",
                &[7, 24, 0x0f0f0f10, 0, 0, 0],
                1,
                EINVAL,
                &[],
            ),
            e(
                "activate rounding wraps",
                &[7, 24, 63_161_220, 0, 0, 0],
                1,
                EINVAL,
                &[],
            ),
            e(
                "activate shorter than its structure",
                &[7, 16, 1, 0],
                1,
                EINVAL,
                &[],
            ),
            EncCase {
                setup: |m| m.alloc_err = Some(ENOMEM),
                ..e(
                    "activate allocation fails",
                    &U_ACT,
                    1,
                    ENOMEM,
                    &[Call::Alloc(1, 4096)],
                )
            },
            e(
                "second activate",
                &TWO_ACT,
                2,
                EINVAL,
                &[Call::Alloc(1, 4096)],
            ),
            e("deactivate dbc 16", &[10, 16, 16, 0], 1, EINVAL, &[]),
            e("deactivate pad", &[10, 16, 3, 1], 1, EINVAL, &[]),
            e(
                "deactivate shorter than its structure",
                &[10, 8],
                1,
                EINVAL,
                &[],
            ),
            e(
                "deactivate not ours",
                &[10, 16, 9, 0],
                1,
                EPERM,
                &[Call::Deactivate(9)],
            ),
            // Transaction by transaction: 1's own rule is checked before 2's framing.
            e(
                "EPERM in 1 wins over framing in 2",
                &EPERM_THEN_BAD_FRAMING,
                2,
                EPERM,
                &[Call::Deactivate(9)],
            ),
            EncCase {
                setup: |m| m.alloc_err = Some(ENOMEM),
                ..e(
                    "ENOMEM in 1 wins over type in 2",
                    &ACT_ENOMEM_THEN_UNKNOWN,
                    2,
                    ENOMEM,
                    &[Call::Alloc(1, 4096)],
                )
            },
            // The channel given up stays given up.
            e(
                "deactivate, then a bad type",
                &DEACT_THEN_UNKNOWN,
                2,
                EINVAL,
                &[Call::Deactivate(3)],
            ),
            // A chunked transfer got an id: the caller must abort it.
            EncCase {
                setup: |m| m.cap = 1,
                want: Err((EINVAL, Some(ID))),
                ..e(
                    "chunked dma, then a bad type",
                    &CHUNKED_THEN_UNKNOWN,
                    2,
                    EINVAL,
                    &[MAP_DMA, Call::ChunkId],
                )
            },
            EncCase {
                setup: |m| m.cap = 1,
                want: Err((EINVAL, Some(ID))),
                ..e(
                    "chunked dma, then bytes left over",
                    &CHUNKED_THEN_TRAILING,
                    1,
                    EINVAL,
                    &[MAP_DMA, Call::ChunkId],
                )
            },
        ];
        assert_eq!(run_encode(&cases), Ok(0));

        // 4097 bytes is over the limit, whatever they hold.
        let mut m = Mock::new();
        let mut big = KVec::new();
        assert!(big.resize(4097, 0u8, GFP_KERNEL).is_ok());
        assert!(matches!(
            encode_request(&big, 1, &mut m),
            Err((EINVAL, None))
        ));
        Ok(())
    }

    /// A user message: a DMA_XFER of `size` bytes from `addr`, then `rest`.
    fn dma_then(addr: u64, size: u64, rest: &[u32]) -> Result<KVec<u8>> {
        let mut words = KVec::new();
        words.extend_from_slice(
            &[5, 32, 0x77, 0, lo(addr), hi(addr), lo(size), hi(size)],
            GFP_KERNEL,
        )?;
        words.extend_from_slice(rest, GFP_KERNEL)?;
        user(&words, None)
    }

    /// A user transaction of type `kind` and `len` bytes, zero-filled.
    fn blank(kind: u32, len: u32) -> Result<KVec<u32>> {
        let mut v = KVec::new();
        v.extend_from_slice(&[kind, len], GFP_KERNEL)?;
        v.resize(usz(len) / 4, 0, GFP_KERNEL)?;
        Ok(v)
    }

    /// The transfer of 16-byte segments that fills a first message: 4100 segments, of which 4028
    /// fit; the wire message is then 64504 bytes.
    const BIG_ADDR: u64 = 0x10_0000;
    const BIG_SIZE: u64 = 16 * 4100;

    fn big_mock() -> Mock {
        let mut m = Mock::new();
        m.seg = 16;
        m
    }

    #[test]
    fn encode_wire_budget() -> Result {
        // (rest of the message after the big DMA, count, expected error)
        let pt_ok = blank(1, 1032);
        let pt_big = blank(1, 1040);
        let st_ok = blank(12, 1032);
        let st_big = blank(12, 1040);
        let (pt_ok, pt_big, st_ok, st_big) = (pt_ok?, pt_big?, st_ok?, st_big?);
        let mut pt992_act = blank(1, 992)?;
        pt992_act.extend_from_slice(&[7, 24, 1, 0, 0, 0], GFP_KERNEL)?;
        let mut pt1000_act = blank(1, 1000)?;
        pt1000_act.extend_from_slice(&[7, 24, 1, 0, 0, 0], GFP_KERNEL)?;
        let rows: [(&[u32], u32, Option<Error>); 6] = [
            (&pt_ok, 2, None),
            (&pt_big, 2, Some(ENOSPC)),
            (&st_ok, 2, None),
            (&st_big, 2, Some(ENOSPC)),
            (&pt992_act, 3, None),
            (&pt1000_act, 3, Some(ENOSPC)),
        ];
        for (i, (rest, count, want)) in rows.iter().enumerate() {
            let mut m = big_mock();
            let u = dma_then(BIG_ADDR, BIG_SIZE, rest)?;
            let got = encode_request(&u, *count, &mut m);
            let ok = match (got, want) {
                (Ok(enc), None) => enc.wire.len == MAX_WIRE_LEN && pieces_ok(&enc.wire),
                (Err((e, id)), Some(w)) => e == *w && id == Some(ID),
                _ => false,
            };
            if !ok {
                pr_err!("wire budget row {} failed\n", i);
            }
            assert!(ok);
        }

        // No room for one pair: ENOMEM (as the C driver); room for exactly one.
        let mut w = Wire::new_manage()?;
        let mut dma = DmaProgress {
            tag: 1,
            addr: 0x1000,
            size: 0x3000,
            sent: 0,
            chunk_id: 0,
        };
        let mut m = Mock::new();
        w.len = MAX_WIRE_LEN - DMA_HDR_LEN - PAIR_LEN + 1;
        assert_eq!(encode_dma(&mut w, &mut dma, &mut m), Err(ENOMEM));
        // Room for a pair but not for the 1 KiB reserve: the C driver would send a {0, 0}
        // pair; never reached with one DMA_XFER per message.
        w.len = 64473;
        assert_eq!(encode_dma(&mut w, &mut dma, &mut m), Err(ENOMEM));
        assert!(m.calls.is_empty());
        w.len = 64472;
        assert_eq!(encode_dma(&mut w, &mut dma, &mut m), Ok(()));
        assert_eq!(m.calls[..], [Call::Map(0x1000, 0x3000, 1), Call::ChunkId]);
        assert_eq!(dma.sent, 0x1000);
        assert_eq!(dma.chunk_id, ID);
        assert_eq!(w.len, 64472 + 40);
        Ok(())
    }

    #[test]
    fn encode_limits() -> Result {
        // The largest passthrough, 4096 bytes: one piece of exactly a transfer buffer.
        let mut m = Mock::new();
        let mut words = blank(1, 4096)?;
        if let Some(w) = words.get_mut(1023) {
            *w = 0xabcd;
        }
        let u = user(&words, None)?;
        let mut enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
        enc.wire.seal(SEQ, HANDLE, false);
        assert_eq!(enc.wire.piece_count(), 2);
        let p = enc.wire.pieces().nth(1).unwrap_or_default();
        assert_eq!(p.len(), TRE_LEN);
        assert_eq!(le32(p, 0), Ok(4));
        assert_eq!(le32(p, 4), Ok(4096));
        assert_eq!(le32(p, 4092), Ok(0xabcd));
        assert!(pieces_ok(&enc.wire));
        assert_eq!(le32(enc.wire.as_bytes(), 12), Ok(32 + 4096));

        // 512 STATUS transactions, the most a message can have: a piece each.
        let mut words = KVec::new();
        for _ in 0..512 {
            words.extend_from_slice(&U_STATUS, GFP_KERNEL)?;
        }
        let u = user(&words, None)?;
        let mut enc = encode_request(&u, 512, &mut m).map_err(|(e, _)| e)?;
        enc.wire.seal(SEQ, HANDLE, false);
        assert_eq!(enc.wire.piece_count(), 513);
        assert!(enc.wire.pieces().skip(1).all(|p| same(p, &W_STATUS, true)));
        assert_eq!(le32(enc.wire.as_bytes(), 12), Ok(32 + 4096));
        assert_eq!(le32(enc.wire.as_bytes(), 16), Ok(512));
        assert!(m.calls.is_empty());
        Ok(())
    }

    /// Checks the DMA_XFER_TO_DEV of a sealed MANAGE message whose only transaction it is: tag
    /// 0x77, `chunk_id`, and the pairs of the 16-byte segments from `addr` on, `pairs` of them.
    fn big_dma_is(wire: &Wire, chunk_id: u32, addr: u64, pairs: usize) -> bool {
        let tlen = DMA_HDR_LEN + PAIR_LEN * pairs;
        let b = wire.as_bytes();
        let hdr_ok = le32(b, 12) == Ok(u32_of(HDR_LEN + tlen))
            && le32(b, 16) == Ok(1)
            && same(
                b.get(32..56).unwrap_or_default(),
                &[6, u32_of(tlen), 0x77, u32_of(pairs), chunk_id, 0],
                true,
            )
            && b.len() == HDR_LEN + tlen;
        let pairs_ok = (0..pairs).all(|i| {
            let off = 56 + i * 16;
            let a = addr + 16 * i as u64;
            le64(b, off) == Ok(BUS + a) && le64(b, off + 8) == Ok(16)
        });
        // Pieces: the header, 24 + 252 pairs, then 254 pairs each.
        let mut want = KVec::new();
        let _ = want.push(HDR_LEN, GFP_KERNEL);
        let first = pairs.min(FIRST_PIECE_PAIRS);
        let _ = want.push(DMA_HDR_LEN + first * PAIR_LEN, GFP_KERNEL);
        let mut left = pairs - first;
        while left > 0 {
            let n = left.min(PIECE_PAIRS);
            let _ = want.push(n * PAIR_LEN, GFP_KERNEL);
            left -= n;
        }
        let pieces_same = wire.piece_count() == want.len()
            && wire.pieces().zip(want.iter()).all(|(p, n)| p.len() == *n);
        hdr_ok && pairs_ok && pieces_same && pieces_ok(wire)
    }

    /// An answer with `count` transactions `words` (little-endian), header `len` as given or
    /// exact.
    fn answer(count: u32, len: Option<u32>, words: &[u32]) -> Result<KVec<u8>> {
        let len = len.unwrap_or(u32_of(HDR_LEN + 4 * words.len()));
        let mut v = KVec::new();
        let hdr = [0, MAGIC, SEQ, len, count, HANDLE, NP, 0];
        for w in Iterator::chain(hdr.iter(), words.iter()) {
            v.extend_from_slice(&w.to_le_bytes(), GFP_KERNEL)?;
        }
        Ok(v)
    }

    /// Puts the right CRC into answer `msg`.
    fn add_crc(msg: &mut [u8]) {
        if let Some(f) = msg.get_mut(..4) {
            f.fill(0);
        }
        let sum = crc32_ieee(msg);
        if let Some(f) = msg.get_mut(..4) {
            f.copy_from_slice(&sum.to_le_bytes());
        }
    }

    /// A DMA_XFER_CONT answer.
    fn cont(chunk_id: u32, xferred: u64) -> Result<KVec<u8>> {
        answer(1, None, &[18, 24, chunk_id, 0, lo(xferred), hi(xferred)])
    }

    #[test]
    fn chunked_transfer() -> Result {
        // 80000 bytes in 16-byte segments: 4028 pairs, then 972.
        let size = 80000u64;
        let mut m = big_mock();
        let u = dma_then(BIG_ADDR, size, &[])?;
        let mut enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
        enc.wire.seal(SEQ, HANDLE, false);
        assert!(big_dma_is(&enc.wire, ID, BIG_ADDR, 4028));
        // Header, 24 + 252 pairs, 14 pieces of 254 pairs, one of 220.
        assert_eq!(enc.wire.piece_count(), 17);
        assert_eq!(enc.chunk_id(), Some(ID));
        let first = 4028 * 16;
        assert_eq!(
            enc.dma,
            Some(DmaProgress {
                tag: 0x77,
                addr: BIG_ADDR,
                size,
                sent: first,
                chunk_id: ID,
            })
        );
        assert_eq!(
            m.calls[..],
            [Call::Map(BIG_ADDR, size, 4028), Call::ChunkId]
        );

        // The card's DMA_XFER_CONT must name the transfer and the bytes sent.
        for (id, n) in [
            (ID + 1, first),
            (ID, first - 16),
            (ID, first + 16),
            (0, first),
        ] {
            let msg = cont(id, n)?;
            assert_eq!(decode_response(&msg, false, &enc, &mut m), Err(EINVAL));
        }
        let msg = cont(ID, first)?;
        assert_eq!(
            decode_response(&msg, false, &enc, &mut m),
            Ok(Reply::Continue {
                chunk_id: ID,
                xferred: first
            })
        );

        // The second message: the rest, same tag and chunk id.
        m.calls.clear();
        let dma = enc.dma.as_mut().ok_or(EINVAL)?;
        let mut wire = encode_continuation(dma, &mut m)?;
        wire.seal(SEQ + 1, HANDLE, false);
        assert!(big_dma_is(&wire, ID, BIG_ADDR + first, 972));
        assert_eq!(wire.piece_count(), 5);
        assert_eq!(dma.sent, size);
        assert_eq!(
            m.calls[..],
            [Call::Map(BIG_ADDR + first, size - first, 4028)]
        );
        enc.wire = wire;

        // Asked for more after the end: matches, but nothing is left (the caller aborts).
        let msg = cont(ID, size)?;
        assert!(matches!(
            decode_response(&msg, false, &enc, &mut m),
            Ok(Reply::Continue { .. })
        ));
        if let Some(dma) = enc.dma.as_mut() {
            assert!(matches!(encode_continuation(dma, &mut m), Err(EINVAL)));
        }

        // The final answer is decoded as usual.
        let msg = answer(1, None, &[3, 8])?;
        let Reply::Done(out) = decode_response(&msg, false, &enc, &mut m)? else {
            return Err(EINVAL);
        };
        assert!(same(&out.data, &[3, 8], false));

        // A failed continuation leaves the progress as it was.
        let mut dma = DmaProgress {
            tag: 0x77,
            addr: BIG_ADDR,
            size,
            sent: first,
            chunk_id: ID,
        };
        let mut m = big_mock();
        m.map_err = Some(EFAULT);
        assert!(matches!(encode_continuation(&mut dma, &mut m), Err(EFAULT)));
        assert_eq!(dma.sent, first);
        Ok(())
    }

    #[test]
    fn continuation_only_for_a_chunked_transfer() -> Result {
        let mut m = Mock::new();
        let msg = cont(0, 0).unwrap_or_default();
        let msg2 = cont(0, 0x1000).unwrap_or_default();
        // No transfer at all: the C driver would send the whole request again.
        let u = user(&U_STATUS, None).unwrap_or_default();
        let enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
        assert_eq!(decode_response(&msg, false, &enc, &mut m), Err(EINVAL));
        // A transfer sent whole (chunk id 0).
        let u = user(&U_DMA, None).unwrap_or_default();
        let enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
        assert_eq!(enc.chunk_id(), None);
        assert_eq!(decode_response(&msg2, false, &enc, &mut m), Err(EINVAL));
        // An abort message.
        let enc = encode_abort(ID)?;
        let msg3 = cont(ID, 0).unwrap_or_default();
        assert_eq!(decode_response(&msg3, false, &enc, &mut m), Err(EINVAL));
        // A DMA_XFER_CONT among other transactions is not one.
        let msg4 = answer(2, None, &[18, 24, 0, 0, 0, 0, 3, 8])?;
        assert_eq!(decode_response(&msg4, false, &enc, &mut m), Err(EINVAL));
        Ok(())
    }

    #[test]
    fn abort_and_terminate() -> Result {
        let mut enc = encode_abort(0x1234)?;
        enc.wire.seal(SEQ, HANDLE, false);
        assert!(wire_is(&enc.wire, 56, 1, &[&[6, 24, 0, 0, 0x1234, 0]]));
        assert!(enc.dma.is_none() && enc.activate.is_none());

        let mut t = encode_terminate(HANDLE)?;
        t.seal(SEQ, HANDLE, false);
        // One piece, header and transaction, partition 0.
        assert_eq!(t.piece_count(), 1);
        let want = [0, MAGIC, SEQ, 48, 1, HANDLE, 0, 0, 17, 16, HANDLE, 0];
        assert!(t.pieces().all(|p| same(p, &want, true)));
        Ok(())
    }

    #[test]
    fn crc() -> Result {
        // A user STATUS from handle 0 is the bring-up request control.rs builds.
        for seq in [0, 1, 0xdeadbeef] {
            let mut m = Mock::new();
            let u = user(&U_STATUS, None).unwrap_or_default();
            let mut enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
            enc.wire.seal(seq, 0, true);
            let r = crate::control::StatusRequest::new(seq);
            let mut p = enc.wire.pieces();
            assert_eq!(p.next(), Some(&r.header[..]));
            assert_eq!(p.next(), Some(&r.body[..]));
            assert_eq!(p.next(), None);
        }
        // Over the whole message, all pieces; without CRC the field is 0.
        let mut m = Mock::new();
        let u = user(&U_DMA, None).unwrap_or_default();
        let mut enc = encode_request(&u, 1, &mut m).map_err(|(e, _)| e)?;
        enc.wire.seal(SEQ, HANDLE, true);
        let mut copy = KVec::new();
        assert!(copy
            .extend_from_slice(enc.wire.as_bytes(), GFP_KERNEL)
            .is_ok());
        let got = le32(&copy, 0);
        add_crc(&mut copy);
        assert_eq!(got, le32(&copy, 0));
        assert_eq!(copy.len(), 88);
        enc.wire.seal(SEQ, HANDLE, false);
        assert_eq!(le32(enc.wire.as_bytes(), 0), Ok(0));

        // Answers: checked when the card uses CRCs, EPIPE first.
        let mut msg = answer(1, None, &[3, 8]).unwrap_or_default();
        add_crc(&mut msg);
        let enc = encode_abort(1);
        let enc = enc?;
        assert!(matches!(
            decode_response(&msg, true, &enc, &mut m),
            Ok(Reply::Done(_))
        ));
        if let Some(b) = msg.get_mut(33) {
            *b ^= 1;
        }
        assert_eq!(decode_response(&msg, true, &enc, &mut m), Err(EPIPE));
        // Type 3 became 2: only a bad type without CRCs.
        assert_eq!(decode_response(&msg, false, &enc, &mut m), Err(EINVAL));
        let mut c = cont(9, 9).unwrap_or_default();
        add_crc(&mut c);
        if let Some(b) = c.get_mut(40) {
            *b ^= 1;
        }
        assert_eq!(decode_response(&c, true, &enc, &mut m), Err(EPIPE));
        // A header `len` past the bytes received cannot have a good CRC.
        let mut msg = answer(1, Some(48), &[3, 8]).unwrap_or_default();
        add_crc(&mut msg);
        assert_eq!(decode_response(&msg, true, &enc, &mut m), Err(EPIPE));
        Ok(())
    }

    /// What a decoder row expects: the user output (CPU-order words), whether canceled; or the
    /// error.
    type DecWant = Result<(&'static [u32], bool), Error>;

    /// One row of the decoder table.
    struct DecCase {
        name: &'static str,
        count: u32,
        /// The header's `len`, if not exact.
        len: Option<u32>,
        /// The transactions, little-endian words.
        trans: &'static [u32],
        /// The request had an ACTIVATE.
        activate: bool,
        /// Add a good CRC to the answer.
        crc: bool,
        want: DecWant,
        calls: &'static [Call],
    }

    /// Runs a decoder table; returns the number of rows that failed.
    fn run_decode(cases: &[DecCase]) -> Result<usize> {
        let mut failed = 0;
        for c in cases {
            let mut m = Mock::new();
            let mut enc = encode_abort(1)?;
            if c.activate {
                enc.activate = Some(Activation {
                    queue_size: 1,
                    buf_len: 4096,
                    req_q_addr: QBASE,
                    rsp_q_addr: QBASE + 4092,
                });
            }
            let mut msg = answer(c.count, c.len, c.trans)?;
            if c.crc {
                add_crc(&mut msg);
            }
            let ok = match (decode_response(&msg, false, &enc, &mut m), &c.want) {
                (Ok(Reply::Done(out)), Ok((words, canceled))) => {
                    same(&out.data, words, false)
                        && out.count == c.count
                        && out.canceled == *canceled
                }
                (Err(got), Err(want)) => got == *want,
                (got, _) => {
                    pr_err!("decode case '{}': got {:?}\n", c.name, got);
                    false
                }
            };
            let calls_ok = m.calls[..] == *c.calls;
            if !ok || !calls_ok {
                pr_err!(
                    "decode case '{}' failed (result ok: {}, calls ok: {}; calls {:?})\n",
                    c.name,
                    ok,
                    calls_ok,
                    &m.calls[..]
                );
                failed += 1;
            }
        }
        Ok(failed)
    }

    const D_PT: [u32; 4] = [3, 16, 0xa, 0xb];
    const D_ACT: [u32; 6] = [8, 24, 0, 5, 0x1234, 0];
    const D_DEACT: [u32; 4] = [11, 16, 0, 3];
    /// STATUS_FROM_DEV: version 5.0, status 0, no flags.
    const D_STATUS: [u32; 6] = [14, 24, 5, 0, 0, 0];

    #[test]
    fn decode_each_transaction() {
        // PASSTHROUGH; ACTIVATE, DBC 2; DEACTIVATE, DBC 3; STATUS.
        const ALL: [u32; 20] = [
            3, 16, 0xa, 0xb, 8, 24, 0, 2, 0x1234, 0, 11, 16, 0, 3, 14, 24, 5, 0, 0, 0,
        ];
        const ALL_OUT: [u32; 16] = [3, 16, 0xa, 0xb, 8, 24, 0, 2, 0x1234, 0, 14, 24, 5, 0, 0, 0];
        let d =
            |name, count, trans: &'static [u32], want: DecWant, calls: &'static [Call]| DecCase {
                name,
                count,
                len: None,
                trans,
                activate: false,
                crc: false,
                want,
                calls,
            };
        let cases = [
            d("nothing", 0, &[], Ok((&[], false)), &[]),
            d("passthrough", 1, &D_PT, Ok((&D_PT, false)), &[]),
            d("empty passthrough", 1, &[3, 8], Ok((&[3, 8], false)), &[]),
            DecCase {
                activate: true,
                ..d(
                    "activate",
                    1,
                    &D_ACT,
                    Ok((&D_ACT, false)),
                    &[Call::Activated(5)],
                )
            },
            DecCase {
                activate: true,
                ..d(
                    "activate, 32 bytes: zero-padded",
                    1,
                    &[8, 32, 0, 5, 0x1234, 0, 0xffff, 0xffff],
                    Ok((&[8, 32, 0, 5, 0x1234, 0, 0, 0], false)),
                    &[Call::Activated(5)],
                )
            },
            d(
                "deactivate",
                1,
                &D_DEACT,
                Ok((&[], false)),
                &[Call::Deactivated(3, true)],
            ),
            d(
                "deactivate with len 8: 16 bytes anyway",
                1,
                &[11, 8, 0, 3],
                Ok((&[], false)),
                &[Call::Deactivated(3, true)],
            ),
            d("status", 1, &D_STATUS, Ok((&D_STATUS, false)), &[]),
            d(
                "status, version in two u16s, 32 bytes",
                1,
                &[14, 32, 0x00070005, 0, 0x40, 0, 0xffff, 0xffff],
                Ok((&[14, 32, 0x00070005, 0, 0x40, 0, 0, 0], false)),
                &[],
            ),
            DecCase {
                crc: true,
                ..d(
                    "status with the CRC flag and a good CRC",
                    1,
                    &[14, 24, 5, 0, 1, 0],
                    Ok((&[14, 24, 5, 0, 1, 0], false)),
                    &[],
                )
            },
            DecCase {
                activate: true,
                ..d(
                    "all four",
                    4,
                    &ALL,
                    Ok((&ALL_OUT, false)),
                    &[Call::Activated(2), Call::Deactivated(3, true)],
                )
            },
        ];
        assert_eq!(run_decode(&cases), Ok(0));
    }

    #[test]
    fn decode_rejections() -> Result {
        const CANCEL_THEN_DEACT: [u32; 10] = [14, 24, 5, 1, 0, 0, 11, 16, 0, 3];
        const PT_THEN_BAD_DBC: [u32; 10] = [3, 16, 0xa, 0xb, 8, 24, 0, 16, 0, 0];
        const TWO_ACT: [u32; 12] = [8, 24, 0, 5, 0, 0, 8, 24, 0, 6, 0, 0];
        const CONT_AND_MORE: [u32; 8] = [18, 24, 0, 0, 0, 0, 3, 8];
        let d =
            |name, count, trans: &'static [u32], want: DecWant, calls: &'static [Call]| DecCase {
                name,
                count,
                len: None,
                trans,
                activate: false,
                crc: false,
                want,
                calls,
            };
        let e = |name, count, trans, err| d(name, count, trans, Err(err), &[]);
        let cases = [
            DecCase {
                len: Some(24),
                ..e("len 24", 0, &[], EINVAL)
            },
            DecCase {
                len: Some(4097),
                ..e("len 4097", 0, &[], EINVAL)
            },
            DecCase {
                len: Some(48),
                ..e("len past the bytes", 1, &[3, 8], EINVAL)
            },
            e("one transaction short", 2, &[3, 8], EINVAL),
            DecCase {
                len: Some(48),
                ..e("bytes left over", 1, &[3, 8, 0, 0], EINVAL)
            },
            e("transaction len 4", 1, &[3, 4], EINVAL),
            DecCase {
                len: Some(40),
                ..e("transaction past len", 1, &[3, 16, 0, 0], EINVAL)
            },
            e("passthrough len 12", 1, &[3, 12, 0, 0], EINVAL),
            e("type 0", 1, &[0, 8], EINVAL),
            e("user type", 1, &[1, 8], EINVAL),
            e("terminate answer", 1, &[16, 16, 0, 0], EINVAL),
            e("validate partition", 1, &[19, 16, 0, 0], EINVAL),
            e("continuation among others", 2, &CONT_AND_MORE, EINVAL),
            e("activate without an ACTIVATE", 1, &D_ACT, EINVAL),
            DecCase {
                activate: true,
                ..d(
                    "activate twice",
                    2,
                    &TWO_ACT,
                    Err(EINVAL),
                    &[Call::Activated(5)],
                )
            },
            DecCase {
                activate: true,
                ..e("activate dbc 16", 1, &[8, 24, 0, 16, 0, 0], ENODEV)
            },
            DecCase {
                activate: true,
                ..d(
                    "activate failed: canceled, copied",
                    1,
                    &[8, 24, 3, 5, 0, 0],
                    Ok((&[8, 24, 3, 5, 0, 0], true)),
                    &[],
                )
            },
            DecCase {
                activate: true,
                ..e("activate shorter than 24", 1, &[8, 16, 0, 5], EINVAL)
            },
            DecCase {
                activate: true,
                ..e("ENODEV after output", 2, &PT_THEN_BAD_DBC, ENODEV)
            },
            e("deactivate dbc 16", 1, &[11, 16, 0, 16], ENODEV),
            d(
                "deactivate refused: given back, canceled",
                1,
                &[11, 16, 1, 3],
                Ok((&[], true)),
                &[Call::Deactivated(3, false)],
            ),
            d(
                "deactivate with len 24: the parser is 8 bytes off",
                1,
                &[11, 24, 0, 3, 0, 0],
                Err(EINVAL),
                &[Call::Deactivated(3, true)],
            ),
            DecCase {
                len: Some(40),
                ..e(
                    "deactivate with len 8 at the end",
                    1,
                    &[11, 8, 0, 3],
                    EINVAL,
                )
            },
            d(
                "status failed: canceled, copied",
                1,
                &[14, 24, 5, 2, 0, 0],
                Ok((&[14, 24, 5, 2, 0, 0], true)),
                &[],
            ),
            e(
                "status with the CRC flag and a bad CRC",
                1,
                &[14, 24, 5, 0, 1, 0],
                EPIPE,
            ),
            e("status shorter than 24", 1, &[14, 16, 5, 0], EINVAL),
            // Decoding stops at a canceled transaction.
            d(
                "canceled, then a deactivate",
                2,
                &CANCEL_THEN_DEACT,
                Ok((&[14, 24, 5, 1, 0, 0], true)),
                &[],
            ),
        ];
        assert_eq!(run_decode(&cases), Ok(0));

        // The user output is at most 4 KiB (not reachable from a 4 KiB answer).
        let mut out = KVec::new();
        assert!(out.resize(4088, 0u8, GFP_KERNEL).is_ok());
        assert_eq!(check_output(&out, 8), Ok(()));
        assert_eq!(check_output(&out, 16), Err(ENOSPC));

        // Errors of the caller's side effects stop decoding.
        let mut m = Mock::new();
        m.ops_err = Some(EINTR);
        let mut enc = encode_abort(1)?;
        enc.activate = Some(Activation {
            queue_size: 1,
            buf_len: 4096,
            req_q_addr: QBASE,
            rsp_q_addr: QBASE + 4092,
        });
        let msg = answer(1, None, &D_ACT).unwrap_or_default();
        assert_eq!(decode_response(&msg, false, &enc, &mut m), Err(EINTR));
        // Too short to have a header.
        assert_eq!(
            decode_response(msg.get(..15).unwrap_or_default(), false, &enc, &mut m),
            Err(EINVAL)
        );
        Ok(())
    }

    /// An orphan row: header `count` and `len` (if not exact), transactions, result, calls.
    type OrphanRow = (u32, Option<u32>, &'static [u32], Result, &'static [Call]);

    #[test]
    fn orphans() -> Result {
        // A passthrough (skipped), a refused deactivate (released anyway), a failed status (skipped,
        // status not looked at), an unknown type (skipped), a deactivate, an activate (skipped).
        const MIXED: [u32; 26] = [
            3, 16, 0xa, 0xb, 11, 16, 1, 4, 14, 24, 5, 1, 0, 0, 99, 8, 11, 16, 0, 6, 8, 24, 0, 5, 0,
            0,
        ];
        let rows: [OrphanRow; 5] = [
            (
                6,
                None,
                &MIXED,
                Ok(()),
                &[Call::Deactivated(4, true), Call::Deactivated(6, true)],
            ),
            (1, None, &[11, 16, 0, 16], Err(ENODEV), &[]),
            (2, None, &[3, 8], Err(EINVAL), &[]),
            // Header checks still apply, after the side effects.
            (
                1,
                Some(56),
                &[11, 16, 0, 2, 0, 0],
                Err(EINVAL),
                &[Call::Deactivated(2, true)],
            ),
            (1, None, &[3, 4], Err(EINVAL), &[]),
        ];
        for (i, (count, len, trans, want, calls)) in rows.into_iter().enumerate() {
            let mut m = Mock::new();
            let msg = answer(count, len, trans).unwrap_or_default();
            let got = decode_orphan(&msg, &mut m);
            let ok = got == want && m.calls[..] == *calls;
            if !ok {
                pr_err!(
                    "orphan row {}: got {:?}, calls {:?}\n",
                    i,
                    got,
                    &m.calls[..]
                );
            }
            assert!(ok);
        }
        Ok(())
    }
}
