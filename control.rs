// SPDX-License-Identifier: GPL-2.0-only

//! The QAIC control protocol on the `QAIC_RS_CONTROL` channel pair: the wire format of its
//! messages and, for now, the version handshake that brings a card online once it reaches mission
//! mode.
//!
//! Every message, in both directions, is a 32-byte header followed by `count` transactions, each
//! starting with its type and length. Everything is little-endian. The first message after the
//! channel comes up is a STATUS request; its answer gives the protocol version of the card's
//! firmware and whether it wants CRC-32 checksums on every message.

use kernel::{
    crc32::crc32_ieee,
    device::{
        Bound,
        Core, //
    },
    dma::{
        Coherent,
        DataDirection, //
    },
    mhi::{
        self,
        Buffer,
        Direction, //
    },
    mm::pin::PinnedUserPages,
    new_condvar, new_mutex, new_spinlock_irq,
    page::PAGE_SIZE,
    pci,
    prelude::*,
    scatterlist::{
        Owned,
        SGTable, //
    },
    sync::{
        aref::ARef,
        Arc,
        CondVar,
        CondVarTimeoutResult,
        Mutex,
        SpinLockIrq, //
    },
    time::msecs_to_jiffies,
    uaccess::UserPtr,
    uapi,
};

use crate::{
    accel::{
        QaicDevice,
        QaicFile, //
    },
    card::{
        Card,
        Dbcs, //
    },
    dma_bridge::gfp_user_sized,
    manage::{
        self,
        Reply,
        Segment,
        Wire, //
    },
};

/// `magic_number` of every message: "QAIC" in little-endian byte order.
const MAGIC: u32 = 0x4349_4151;

/// Size of the message header.
const HDR_LEN: usize = 32;

/// The protocol version this driver speaks: the card's major must be equal, its minor not
/// greater.
const PROTOCOL_MAJOR: u16 = 5;
const PROTOCOL_MINOR: u16 = 0;

/// Largest message the card sends; the size of a receive buffer.
pub(crate) const MAX_RESPONSE: usize = 4096;

/// `partition_id` of requests that concern no partition.
const NO_PARTITION: u32 = u32::MAX;

/// Transaction types used here.
mod trans {
    /// Device status, card to host.
    pub(super) const STATUS_FROM_DEV: u32 = 14;
    /// Device status request, host to card.
    pub(super) const STATUS_TO_DEV: u32 = 15;
}

/// Size of a STATUS_TO_DEV transaction (header only).
const STATUS_TO_DEV_LEN: usize = 8;

/// Size of a STATUS_FROM_DEV transaction.
const STATUS_FROM_DEV_LEN: usize = 24;

/// `status_flags` bit: the card checks and sends CRCs.
const STATUS_FLAG_CRC: u64 = 1;

fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Writes a message header for `count` transactions totalling `len` bytes (header included)
/// into `out[..32]`, with a zero CRC.
fn write_header(out: &mut [u8; HDR_LEN], seq: u32, len: u32, count: u32, handle: u32) {
    let words = [0, MAGIC, seq, len, count, handle, NO_PARTITION, 0];
    for (dst, w) in out.chunks_exact_mut(4).zip(words) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
}

/// The bring-up STATUS request: its header and its one transaction, as the two transfers they
/// are sent in. The CRC in the header covers both.
pub(crate) struct StatusRequest {
    pub(crate) header: [u8; HDR_LEN],
    pub(crate) body: [u8; STATUS_TO_DEV_LEN],
}

impl StatusRequest {
    /// Builds the request with sequence number `seq`, from the driver itself (handle 0).
    pub(crate) fn new(seq: u32) -> Self {
        let mut header = [0u8; HDR_LEN];
        // CAST: 40 bytes.
        let len = (HDR_LEN + STATUS_TO_DEV_LEN) as u32;
        write_header(&mut header, seq, len, 1, 0);
        let mut body = [0u8; STATUS_TO_DEV_LEN];
        body[..4].copy_from_slice(&trans::STATUS_TO_DEV.to_le_bytes());
        // CAST: 8 bytes.
        body[4..].copy_from_slice(&(STATUS_TO_DEV_LEN as u32).to_le_bytes());

        let mut whole = [0u8; HDR_LEN + STATUS_TO_DEV_LEN];
        whole[..HDR_LEN].copy_from_slice(&header);
        whole[HDR_LEN..].copy_from_slice(&body);
        header[..4].copy_from_slice(&crc32_ieee(&whole).to_le_bytes());
        Self { header, body }
    }
}

/// What the card's STATUS answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) major: u16,
    pub(crate) minor: u16,
    /// Whether the card checks and sends CRCs.
    pub(crate) crc: bool,
}

/// Why an answer to the STATUS request is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadStatus {
    /// Shorter than its header says, or than a header and one STATUS_FROM_DEV.
    Short(usize),
    /// Wrong magic number.
    Magic(u32),
    /// Not the answer to our request.
    Sequence { expected: u32, got: u32 },
    /// The header's length or count does not describe one STATUS_FROM_DEV.
    Framing { len: u32, count: u32 },
    /// The transaction is not a STATUS_FROM_DEV of the right size.
    Transaction { kind: u32, len: u32 },
    /// The card asks for CRCs and the message's CRC is wrong.
    Crc { expected: u32, got: u32 },
    /// The card reports a failure.
    Failed(u32),
    /// The card speaks another version of the protocol.
    Version { major: u16, minor: u16 },
}

/// Checks the card's answer `msg` to the STATUS request number `seq`.
pub(crate) fn decode_status(msg: &[u8], seq: u32) -> Result<Status, BadStatus> {
    let want = HDR_LEN + STATUS_FROM_DEV_LEN;
    let short = BadStatus::Short(msg.len());
    let field = |off| le32(msg, off).ok_or(short);

    let magic = field(4)?;
    if magic != MAGIC {
        return Err(BadStatus::Magic(magic));
    }
    let got = field(8)?;
    if got != seq {
        return Err(BadStatus::Sequence { expected: seq, got });
    }
    let (len, count) = (field(12)?, field(16)?);
    if usize::try_from(len).ok() != Some(want) || count != 1 {
        return Err(BadStatus::Framing { len, count });
    }
    if msg.len() < want {
        return Err(short);
    }
    let (kind, tlen) = (field(HDR_LEN)?, field(HDR_LEN + 4)?);
    if kind != trans::STATUS_FROM_DEV || usize::try_from(tlen).ok() != Some(STATUS_FROM_DEV_LEN) {
        return Err(BadStatus::Transaction { kind, len: tlen });
    }
    let major = le16(msg, HDR_LEN + 8).ok_or(short)?;
    let minor = le16(msg, HDR_LEN + 10).ok_or(short)?;
    let status = field(HDR_LEN + 12)?;
    let flags = le64(msg, HDR_LEN + 16).ok_or(short)?;
    let crc = flags & STATUS_FLAG_CRC != 0;

    if crc {
        let expected = field(0)?;
        let mut copy = [0u8; HDR_LEN + STATUS_FROM_DEV_LEN];
        copy.copy_from_slice(&msg[..want]);
        copy[..4].fill(0);
        let got = crc32_ieee(&copy);
        if got != expected {
            return Err(BadStatus::Crc { expected, got });
        }
    }
    if status != 0 {
        return Err(BadStatus::Failed(status));
    }
    if major != PROTOCOL_MAJOR || minor > PROTOCOL_MINOR {
        return Err(BadStatus::Version { major, minor });
    }
    Ok(Status { major, minor, crc })
}

/// Why the bring-up failed, for the log.
fn refuse(dev: &mhi::Device<Bound>, bad: BadStatus) {
    dev_err!(
        dev.as_ref(),
        "card refused, unusable until reset: {:?} (this driver speaks {}.{})\n",
        bad,
        PROTOCOL_MAJOR,
        PROTOCOL_MINOR
    );
}

/// Where a card's control link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelState {
    /// No control channel: the card is booting, resetting or gone.
    Down,
    /// The STATUS request with this sequence number is out.
    Boot(u32),
    /// The card speaks our protocol: it is online.
    Online { crc: bool },
    /// The card's answer was not acceptable; it stays unusable until it is reset.
    Refused,
}

/// How a request waits for its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A signal ends the wait (`ERESTARTSYS`): user requests.
    Interruptible,
    /// Only the answer, the timeout or the link going down end it: requests whose answer
    /// decides whether memory can be freed (TERMINATE).
    Uninterruptible,
}

/// A request waiting for its answer.
struct Waiter {
    seq: u32,
    answer: Option<Buffer>,
}

/// The part of the link that the receive path (softirq context) shares with the senders.
struct Shared {
    /// Sequence number of the next request.
    seq: u32,
    channel: ChannelState,
    /// Bumped every time the link goes down: a waiter from an older generation will never get
    /// its answer.
    generation: u64,
    waiters: KVec<Waiter>,
    /// Receive buffers posted for requests that could not be sent: the next request reuses one
    /// instead of posting its own, so there is always exactly one per request in flight.
    spare_rx: u32,
}

impl Shared {
    fn take(&mut self, seq: u32) -> Option<Buffer> {
        let i = self.waiters.iter().position(|w| w.seq == seq)?;
        let answer = self.waiters.get_mut(i)?.answer.take()?;
        self.forget(seq);
        Some(answer)
    }

    fn forget(&mut self, seq: u32) {
        self.waiters.retain(|w| w.seq != seq);
    }
}

/// Tries before giving up on room in the card's receive ring, and the pause between two.
const ROOM_TRIES: u32 = 20;
const ROOM_PAUSE_MS: u32 = 100;

/// The control link to a card's firmware: requests go out on the `QAIC_RS_CONTROL` channel pair,
/// answers are matched to their requests by sequence number. Several requests can be out at
/// once; the sending of each is serialised.
#[pin_data]
pub(crate) struct Link {
    /// The channels while the control client is bound. Held while a request is queued.
    #[pin]
    sender: Mutex<Option<Arc<mhi::Channels<ControlDriver>>>>,
    #[pin]
    shared: SpinLockIrq<Shared>,
    /// Notified when an answer arrives or the link goes down.
    #[pin]
    answered: CondVar,
}

impl Link {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            sender <- new_mutex!(None),
            shared <- new_spinlock_irq!(Shared {
                seq: 0,
                channel: ChannelState::Down,
                generation: 0,
                waiters: KVec::new(),
                spare_rx: 0,
            }),
            answered <- new_condvar!(),
        })
    }

    /// Where the link is.
    pub(crate) fn state(&self) -> ChannelState {
        self.shared.lock().channel
    }

    /// Whether the card is online, and if so whether it uses CRCs.
    pub(crate) fn online(&self) -> Option<bool> {
        match self.state() {
            ChannelState::Online { crc } => Some(crc),
            _ => None,
        }
    }

    /// The control channel came up: sends the STATUS request that checks the card's protocol
    /// version. Its answer arrives in [`Link::receive`].
    fn up(
        &self,
        dev: &mhi::Device<Core<'_>>,
        channels: &Arc<mhi::Channels<ControlDriver>>,
    ) -> Result {
        let mut sender = self.sender.lock();
        let seq = {
            let mut shared = self.shared.lock();
            let seq = shared.seq;
            shared.seq = seq.wrapping_add(1);
            shared.channel = ChannelState::Boot(seq);
            shared.spare_rx = 0;
            seq
        };
        *sender = Some(channels.clone());
        let request = StatusRequest::new(seq);

        // The answer's buffer goes first, so it is there when the card answers.
        let rx = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        dev.queue::<ControlDriver>(Direction::FromDevice, rx, false)
            .map_err(|(e, _)| e)?;
        let mut header = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        header.fill(&request.header)?;
        let mut body = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        body.fill(&request.body)?;
        dev.queue::<ControlDriver>(Direction::ToDevice, header, true)
            .map_err(|(e, _)| e)?;
        dev.queue::<ControlDriver>(Direction::ToDevice, body, false)
            .map_err(|(e, _)| e)?;
        dev_dbg!(dev.as_ref(), "control: STATUS request {} sent\n", seq);
        Ok(())
    }

    /// The control channel goes away (card reset or removal): requests still waiting fail with
    /// `EIO`, new ones with `ENODEV`. Returns once no request is being queued any more.
    pub(crate) fn down(&self) {
        let mut sender = self.sender.lock();
        *sender = None;
        let mut shared = self.shared.lock();
        shared.channel = ChannelState::Down;
        shared.generation = shared.generation.wrapping_add(1);
        drop(shared);
        drop(sender);
        self.answered.notify_all();
    }

    /// Hands an answer from the card to the request waiting for it. Returns it if nobody
    /// waits for it (an orphan), or if it is not a message at all.
    fn receive(&self, dev: &mhi::Device<Bound>, buf: Buffer) -> Option<Buffer> {
        let msg = buf.as_slice();
        if le32(msg, 4) != Some(MAGIC) {
            dev_dbg!(
                dev.as_ref(),
                "control: dropped a message without the magic number\n"
            );
            return None;
        }
        let seq = le32(msg, 8)?;
        let mut shared = self.shared.lock();
        if shared.channel == ChannelState::Boot(seq) {
            match decode_status(msg, seq) {
                Ok(s) => {
                    shared.channel = ChannelState::Online { crc: s.crc };
                    drop(shared);
                    dev_info!(
                        dev.as_ref(),
                        "control protocol {}.{}{}: card online\n",
                        s.major,
                        s.minor,
                        if s.crc { ", with CRCs" } else { "" }
                    );
                }
                Err(bad) => {
                    shared.channel = ChannelState::Refused;
                    drop(shared);
                    refuse(dev, bad);
                }
            }
            return None;
        }
        match shared
            .waiters
            .iter_mut()
            .find(|w| w.seq == seq && w.answer.is_none())
        {
            Some(w) => {
                w.answer = Some(buf);
                drop(shared);
                self.answered.notify_all();
                None
            }
            None => Some(buf),
        }
    }

    /// Sends `wire` for user `handle` and waits for the answer, at most `timeout_ms`.
    ///
    /// Errors: `ENODEV` (link not online), `EAGAIN` (no room on the channel for 2 s),
    /// `ETIMEDOUT`, `EIO` (the link went down meanwhile), `ERESTARTSYS` (signal, interruptible
    /// waits only), allocation and queueing errors.
    pub(crate) fn transact(
        &self,
        wire: &mut Wire,
        handle: u32,
        wait: Wait,
        timeout_ms: u32,
    ) -> Result<Buffer> {
        let (seq, generation) = self.send(wire, handle, wait)?;

        let mut left = msecs_to_jiffies(timeout_ms);
        let mut shared = self.shared.lock();
        loop {
            if let Some(answer) = shared.take(seq) {
                return Ok(answer);
            }
            let err = if shared.generation != generation {
                Some(EIO)
            } else if left == 0 {
                Some(ETIMEDOUT)
            } else {
                None
            };
            if let Some(e) = err {
                shared.forget(seq);
                return Err(e);
            }
            left = match wait {
                Wait::Interruptible => {
                    match self.answered.wait_interruptible_timeout(&mut shared, left) {
                        CondVarTimeoutResult::Timeout => 0,
                        CondVarTimeoutResult::Woken { jiffies } => jiffies,
                        CondVarTimeoutResult::Signal { .. } => {
                            // An answer that made it wins over the signal.
                            if let Some(answer) = shared.take(seq) {
                                return Ok(answer);
                            }
                            shared.forget(seq);
                            return Err(ERESTARTSYS);
                        }
                    }
                }
                Wait::Uninterruptible => self.answered.wait_timeout(&mut shared, left),
            };
        }
    }

    /// Queues `wire` with a receive buffer for its answer; returns its sequence number and the
    /// link generation it was sent in. The waiter is registered on success.
    fn send(&self, wire: &mut Wire, handle: u32, wait: Wait) -> Result<(u32, u64)> {
        let pieces = wire.pieces().count();
        let sender = self.sender.lock();
        let channels = sender.as_ref().ok_or(ENODEV)?;

        // Room for the whole message, or the card would see half of it.
        let mut tries = 0;
        while channels.free_descriptors(Direction::ToDevice) < pieces {
            tries += 1;
            if tries > ROOM_TRIES {
                return Err(EAGAIN);
            }
            if wait == Wait::Interruptible && kernel::current!().signal_pending() {
                return Err(ERESTARTSYS);
            }
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(ROOM_PAUSE_MS.into()));
        }

        let (seq, generation, crc, reuse_rx) = {
            let mut shared = self.shared.lock();
            let ChannelState::Online { crc } = shared.channel else {
                return Err(ENODEV);
            };
            let seq = shared.seq;
            shared
                .waiters
                .push(Waiter { seq, answer: None }, GFP_ATOMIC)?;
            shared.seq = seq.wrapping_add(1);
            let reuse_rx = shared.spare_rx > 0;
            if reuse_rx {
                shared.spare_rx -= 1;
            }
            (seq, shared.generation, crc, reuse_rx)
        };
        wire.seal(seq, handle, crc);

        let queued = (|| -> Result {
            if !reuse_rx {
                let rx = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
                channels
                    .queue(Direction::FromDevice, rx, false)
                    .map_err(|(e, _)| e)?;
            }
            let mut left = pieces;
            for piece in wire.pieces() {
                left -= 1;
                let mut b = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
                b.fill(piece)?;
                if let Err((e, _)) = channels.queue(Direction::ToDevice, b, left > 0) {
                    return Err(e);
                }
            }
            Ok(())
        })();
        if let Err(e) = queued {
            let mut shared = self.shared.lock();
            shared.forget(seq);
            // The receive buffer went out (or was reused) but no request will use it.
            shared.spare_rx += 1;
            return Err(e);
        }
        Ok((seq, generation))
    }
}

/// The control channel client driver.
pub(crate) struct ControlDriver;

kernel::mhi_device_table!(
    CONTROL_TABLE,
    <ControlDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_CONTROL"), ())]
);

/// A bound control channel: the card it belongs to.
pub(crate) struct Control {
    card: ARef<QaicDevice>,
}

impl mhi::Driver for ControlDriver {
    type IdInfo = ();
    type Data<'bound> = Control;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &CONTROL_TABLE;
    const BUFFER_SIZE: usize = MAX_RESPONSE;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        // The controller's device is the PCI device of the card.
        let card = crate::card::find(dev.controller_device()).ok_or(ENODEV);
        if card.is_err() {
            dev_err!(dev.as_ref(), "control channel of an unknown card\n");
        }
        card.map(|card| Control { card })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        data: Pin<&Control>,
        channels: &Arc<mhi::Channels<Self>>,
    ) -> Result {
        data.card.link.up(dev, channels)
    }

    fn unbind<'bound>(_dev: &'bound mhi::Device<Core<'_>>, data: Pin<&Control>) {
        let card: &Card = &data.card;
        card.link.down();
        // The card forgets everything when its control channel goes: so does the host.
        card.release_channels(None);
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&Control>, _buf: Buffer, _status: Result) {
        // Sent (or flushed): the buffer is freed here.
    }

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&Control>, buf: Buffer, status: Result) {
        if status.is_err() {
            return;
        }
        let card: &Card = &data.card;
        if let Some(orphan) = card.link.receive(dev, buf) {
            // Nobody waits for it any more: only the channels it released matter.
            let mut dbcs = card.dbcs.lock();
            let _ = manage::decode_orphan(orphan.as_slice(), &mut ReleaseAll(&mut dbcs));
        }
    }
}

/// Releases the channels an orphaned answer names, whatever its status.
struct ReleaseAll<'a>(&'a mut Dbcs);

impl manage::DecodeOps for ReleaseAll<'_> {
    fn activated(&mut self, _dbc_id: u32) -> Result {
        Ok(())
    }

    fn deactivated(&mut self, dbc_id: u32, _ok: bool) -> Result {
        self.0.release(dbc_id as usize)
    }
}

// ---- MANAGE ---------------------------------------------------------------------------------

/// A bus address or length as the wire format carries it.
#[allow(
    clippy::useless_conversion,
    reason = "`dma_addr_t` and `resource_size_t` are 32 bits on some configurations"
)]
pub(crate) fn wide<T: Into<u64>>(v: T) -> u64 {
    v.into()
}

/// User memory described to the card by a DMA transfer: pinned and mapped for the device.
type UserMap = Pin<KBox<SGTable<Owned<PinnedUserPages>>>>;

/// What encoding a MANAGE message does to the host: user memory mapped for the card and the
/// queues of an ACTIVATE. Everything it holds is released when it is dropped, except the queues
/// handed over to a channel by [`Decoder`].
struct Encoder<'a> {
    pdev: &'a pci::Device<Bound>,
    card: &'a Card,
    file: &'a QaicFile,
    /// The user memory described by the message being sent.
    maps: KVec<UserMap>,
    /// The queues of the message's ACTIVATE, until the card's answer.
    queues: Option<(Coherent<[u8]>, u32)>,
}

impl Encoder<'_> {
    /// The message went out and was answered: the card is done reading the memory it described.
    fn sent(&mut self) {
        self.maps.clear();
    }

    /// The request is abandoned: what encoding it allocated goes.
    fn abandon(&mut self) {
        self.maps.clear();
        self.queues = None;
    }
}

impl manage::EncodeOps for Encoder<'_> {
    fn map_user(&mut self, addr: u64, size: u64, max_pairs: usize) -> Result<KVec<Segment>> {
        let uaddr = usize::try_from(addr).map_err(|_| EFAULT)?;
        let mut len = usize::try_from(size).map_err(|_| EINVAL)?;
        // Pin the whole range, or as much of it as the array of its pages can be allocated for;
        // what the message cannot describe is described by the next one.
        let pages = loop {
            match PinnedUserPages::pin(UserPtr::from_addr(uaddr), len, false, gfp_user_sized()) {
                Err(e) if e == ENOMEM && len > PAGE_SIZE => len /= 2,
                other => break other?,
            }
        };
        let map = KBox::pin_init(
            SGTable::from_user_pages(
                self.pdev.as_ref(),
                pages,
                DataDirection::ToDevice,
                GFP_KERNEL,
            ),
            GFP_KERNEL,
        )?;

        let mut segments = KVec::new();
        for entry in map.iter().take(max_pairs) {
            segments.push(
                Segment {
                    addr: wide(entry.dma_address()),
                    len: wide(entry.dma_len()),
                },
                GFP_KERNEL,
            )?;
        }
        self.maps.push(map, GFP_KERNEL)?;
        Ok(segments)
    }

    fn alloc_queues(&mut self, queue_size: u32, buf_len: u32) -> Result<u64> {
        if self.queues.is_some() {
            return Err(EINVAL);
        }
        self.card.reap();
        let len = usize::try_from(buf_len).map_err(|_| ENOMEM)?;
        let queues = Coherent::<u8>::zeroed_slice(self.pdev.as_ref(), len, gfp_user_sized())?;
        let addr = wide(queues.dma_address());
        self.queues = Some((queues, queue_size));
        Ok(addr)
    }

    fn deactivate(&mut self, dbc_id: u32) -> Result {
        let id = usize::try_from(dbc_id).map_err(|_| EINVAL)?;
        self.card.dbcs.lock().detach(id, self.file.handle())
    }

    fn next_chunk_id(&mut self) -> u32 {
        self.file.next_chunk_id()
    }
}

/// What the card's answer does to the host: channels activated and released.
struct Decoder<'a, 'e> {
    enc: &'e mut Encoder<'a>,
}

impl manage::DecodeOps for Decoder<'_, '_> {
    fn activated(&mut self, dbc_id: u32) -> Result {
        let (queues, size) = self.enc.queues.take().ok_or(EINVAL)?;
        let id = usize::try_from(dbc_id).map_err(|_| ENODEV)?;
        let user = self.enc.file.handle();
        let queues = Arc::new(queues, GFP_KERNEL)?;
        let installed = self.enc.card.dbcs.lock().install(id, user, queues, size);
        // The card's word is final: whatever the host still had on the channel is gone.
        if let Some(chan) = self.enc.card.chans.get(id) {
            chan.flush();
        }
        // On failure the queues are freed here, outside the lock.
        installed.map_err(|(e, _queues)| e)
    }

    fn deactivated(&mut self, dbc_id: u32, ok: bool) -> Result {
        let id = usize::try_from(dbc_id).map_err(|_| ENODEV)?;
        let released = {
            let mut dbcs = self.enc.card.dbcs.lock();
            if ok {
                dbcs.release(id)
            } else {
                dbcs.give_back(id, self.enc.file.handle());
                return Ok(());
            }
        };
        // In-flight requests complete (with an error), attached buffers are detached.
        if let Some(chan) = self.enc.card.chans.get(id) {
            chan.flush();
        }
        self.enc.card.reap();
        released
    }
}

/// `DRM_IOCTL_QAIC_MANAGE`: sends the user's transactions to the card and gives back its
/// answer.
pub(crate) fn manage_ioctl(
    card: &Card,
    pdev: &pci::Device<Bound>,
    file: &QaicFile,
    msg: &mut uapi::qaic_manage_msg,
) -> Result<u32> {
    let ret = manage(card, pdev, file, msg);
    // An activation or deactivation changed a channel's state (or an orphaned answer did).
    card.announce();
    ret
}

fn manage(
    card: &Card,
    pdev: &pci::Device<Bound>,
    file: &QaicFile,
    msg: &mut uapi::qaic_manage_msg,
) -> Result<u32> {
    let len = usize::try_from(msg.len).map_err(|_| EINVAL)?;
    if len > manage::MAX_USER_LEN {
        return Err(EINVAL);
    }
    let crc = card.link.online().ok_or(ENODEV)?;
    let request = crate::accel::copy_from_user(msg.data, len)?;

    let mut enc = Encoder {
        pdev,
        card,
        file,
        maps: KVec::new(),
        queues: None,
    };
    let timeout = crate::control_resp_timeout_ms();
    let handle = file.handle();

    let mut encoded = match manage::encode_request(&request, msg.count, &mut enc) {
        Ok(e) => e,
        Err((e, None)) => return Err(e),
        // A chunked transfer already has an id: the card is told to forget it, and its answer
        // is the user's.
        Err((_, Some(id))) => {
            enc.abandon();
            manage::encode_abort(id)?
        }
    };

    loop {
        let answer = card
            .link
            .transact(&mut encoded.wire, handle, Wait::Interruptible, timeout);
        // Answered or not, the card is done reading the user memory the message described.
        enc.sent();
        let answer = answer?;
        let reply = manage::decode_response(
            answer.as_slice(),
            crc,
            &encoded,
            &mut Decoder { enc: &mut enc },
        )?;
        match reply {
            Reply::Continue { .. } => {
                let dma = encoded.dma.as_mut().ok_or(EINVAL)?;
                match manage::encode_continuation(dma, &mut enc) {
                    Ok(wire) => encoded.wire = wire,
                    Err(_) => {
                        let id = dma.chunk_id;
                        enc.abandon();
                        encoded = manage::encode_abort(id)?;
                    }
                }
            }
            Reply::Done(out) => {
                crate::accel::copy_to_user(msg.data, &out.data)?;
                // CAST: at most `MAX_USER_LEN` bytes.
                msg.len = out.data.len() as u32;
                msg.count = out.count;
                return if out.canceled { Err(ECANCELED) } else { Ok(0) };
            }
        }
    }
}

/// Tells the card that user `handle` is gone, so that it releases what the user had (the user's
/// file was closed), then releases the user's channels on the host.
pub(crate) fn terminate(card: &Card, handle: u32) {
    if card.link.online().is_some() {
        // The answer says nothing that matters; only that the card is done with the user.
        let _ = manage::encode_terminate(handle).and_then(|mut wire| {
            card.link.transact(
                &mut wire,
                handle,
                Wait::Uninterruptible,
                crate::control_resp_timeout_ms(),
            )
        });
    }
    card.release_channels(Some(handle));
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_control)]
mod tests {
    use super::*;

    /// Builds a STATUS answer: header fields and the transaction as given, CRC filled in when
    /// `with_crc` (and flag bit 0 set accordingly).
    #[expect(clippy::too_many_arguments)]
    fn answer(
        magic: u32,
        seq: u32,
        len: u32,
        count: u32,
        kind: u32,
        tlen: u32,
        version: (u16, u16),
        status: u32,
        with_crc: bool,
    ) -> [u8; 56] {
        let mut m = [0u8; 56];
        let words = [0, magic, seq, len, count, 7, 0xffff_ffff, 0, kind, tlen];
        for (dst, w) in m.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        m[40..42].copy_from_slice(&version.0.to_le_bytes());
        m[42..44].copy_from_slice(&version.1.to_le_bytes());
        m[44..48].copy_from_slice(&status.to_le_bytes());
        m[48..56].copy_from_slice(&u64::from(with_crc).to_le_bytes());
        if with_crc {
            let crc = crc32_ieee(&m);
            m[..4].copy_from_slice(&crc.to_le_bytes());
        }
        m
    }

    fn good(seq: u32, crc: bool) -> [u8; 56] {
        answer(MAGIC, seq, 56, 1, 14, 24, (5, 0), 0, crc)
    }

    #[test]
    fn status_request_layout() {
        let r = StatusRequest::new(0x0102_0304);
        // crc, magic "QAIC", seq, len 40, count 1, handle 0, partition -1, pad 0
        assert_eq!(&r.header[4..8], b"QAIC");
        assert_eq!(&r.header[8..12], &[4, 3, 2, 1]);
        assert_eq!(&r.header[12..16], &[40, 0, 0, 0]);
        assert_eq!(&r.header[16..20], &[1, 0, 0, 0]);
        assert_eq!(&r.header[20..24], &[0, 0, 0, 0]);
        assert_eq!(&r.header[24..28], &[0xff; 4]);
        assert_eq!(&r.header[28..32], &[0, 0, 0, 0]);
        assert_eq!(&r.body, &[15, 0, 0, 0, 8, 0, 0, 0]);
        // The CRC covers header (with a zero CRC field) and body.
        let mut whole = [0u8; 40];
        whole[..32].copy_from_slice(&r.header);
        whole[32..].copy_from_slice(&r.body);
        whole[..4].fill(0);
        assert_eq!(&r.header[..4], &crc32_ieee(&whole).to_le_bytes());
    }

    #[test]
    fn good_answers() {
        let s = decode_status(&good(3, false), 3);
        assert_eq!(
            s,
            Ok(Status {
                major: 5,
                minor: 0,
                crc: false
            })
        );
        let s = decode_status(&good(3, true), 3);
        assert_eq!(
            s,
            Ok(Status {
                major: 5,
                minor: 0,
                crc: true
            })
        );
        // Trailing bytes after the message (a full receive buffer) are ignored.
        let mut long = [0u8; 64];
        long[..56].copy_from_slice(&good(9, true));
        assert!(decode_status(&long, 9).is_ok());
    }

    #[test]
    fn bad_answers() {
        let cases: [([u8; 56], BadStatus); 9] = [
            (
                answer(0x1234, 0, 56, 1, 14, 24, (5, 0), 0, false),
                BadStatus::Magic(0x1234),
            ),
            (
                answer(MAGIC, 1, 56, 1, 14, 24, (5, 0), 0, false),
                BadStatus::Sequence {
                    expected: 0,
                    got: 1,
                },
            ),
            (
                answer(MAGIC, 0, 48, 1, 14, 24, (5, 0), 0, false),
                BadStatus::Framing { len: 48, count: 1 },
            ),
            (
                answer(MAGIC, 0, 56, 2, 14, 24, (5, 0), 0, false),
                BadStatus::Framing { len: 56, count: 2 },
            ),
            (
                answer(MAGIC, 0, 56, 1, 8, 24, (5, 0), 0, false),
                BadStatus::Transaction { kind: 8, len: 24 },
            ),
            (
                answer(MAGIC, 0, 56, 1, 14, 16, (5, 0), 0, false),
                BadStatus::Transaction { kind: 14, len: 16 },
            ),
            (
                answer(MAGIC, 0, 56, 1, 14, 24, (5, 0), 7, false),
                BadStatus::Failed(7),
            ),
            (
                answer(MAGIC, 0, 56, 1, 14, 24, (6, 0), 0, false),
                BadStatus::Version { major: 6, minor: 0 },
            ),
            (
                answer(MAGIC, 0, 56, 1, 14, 24, (5, 1), 0, true),
                BadStatus::Version { major: 5, minor: 1 },
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(decode_status(&msg, 0), Err(want));
        }
        // Older minor versions than ours do not exist (ours is 0); major 4 is refused.
        assert_eq!(
            decode_status(&answer(MAGIC, 0, 56, 1, 14, 24, (4, 0), 0, false), 0),
            Err(BadStatus::Version { major: 4, minor: 0 })
        );
    }

    #[test]
    fn crc_is_checked_when_the_card_asks_for_it() {
        let mut m = good(0, true);
        m[45] ^= 1; // flip a bit of `status` after the CRC was computed
        assert!(matches!(decode_status(&m, 0), Err(BadStatus::Crc { .. })));
        // Without the flag, a wrong CRC field is not looked at.
        let mut m = good(0, false);
        m[0] = 0x5a;
        assert!(decode_status(&m, 0).is_ok());
    }

    #[test]
    fn short_answers() {
        let m = good(0, false);
        for n in [0, 3, 8, 31, 32, 40, 55] {
            assert!(decode_status(&m[..n], 0).is_err());
        }
        assert_eq!(decode_status(&m[..55], 0), Err(BadStatus::Short(55)));
    }
}
