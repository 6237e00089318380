// SPDX-License-Identifier: GPL-2.0-only

//! SSR (sub-system restart): the card tells the host that the workload of a DMA bridge channel
//! crashed, and restarts the sub-system that ran it.
//!
//! The card sends, on QAIC_SSR, a sequence of events for the channel: BEFORE_SHUTDOWN,
//! AFTER_SHUTDOWN, BEFORE_POWER_UP, AFTER_POWER_UP. The host answers each with an event response
//! echoing it. At BEFORE_SHUTDOWN the host releases the channel: its requests complete, its
//! buffer objects are detached, its queues are freed; WAIT_BO on it fails with `EPIPE` until the
//! sub-system is back. The sysfs file `dbc<N>_state` follows the sequence (2 to 5) and reads 0
//! again after AFTER_POWER_UP, each change announced with a uevent.
//!
//! Between BEFORE_POWER_UP and AFTER_POWER_UP the card may offer a crash dump of the
//! sub-system (DEBUG_TRANSFER_INFO). This driver declines it (a NACK): the card goes on without.
//!
//! Messages are little-endian: a 12-byte header (command, total length, channel id), then the
//! command's body. Those from the card arrive in softirq context; they are handled in order, in
//! process context, on a work queue of the bound channel.

use kernel::{
    alloc::{
        KVVec,
        VVec, //
    },
    devcoredump::dev_coredumpv,
    device::{
        self,
        Bound,
        Core, //
    },
    mhi::{
        self,
        Buffer,
        Channels,
        Direction, //
    },
    new_mutex,
    prelude::*,
    sync::{
        aref::ARef,
        Arc,
        Mutex, //
    },
    workqueue::OwnedQueue,
};

use crate::{
    accel::QaicDevice,
    card::{
        Card,
        DbcState, //
    },
    dma_bridge::NUM_DBC,
};

/// Largest message outside a crash dump download.
pub(crate) const MSG_MAX: usize = 32;
/// Capacity of the receive buffer, which carries the pieces of a crash dump: 64 KiB less the
/// bookkeeping header of the C driver's buffers, whose requests the card expects.
pub(crate) const CHUNK: usize = 65488;
/// Most bytes asked for in one MEMORY_READ: what fits the buffer after the 16-byte header.
pub(crate) const READ_MAX: u64 = (CHUNK - 16) as u64;
/// Largest crash dump the host downloads; a bigger one is refused.
pub(crate) const DUMP_MAX: usize = 256 << 20;
/// Size of a dump table entry.
const ENTRY: usize = 64;
/// Size of the dump file's header.
const FILE_HEADER: usize = 32;
/// Magic number of the dump file.
const FILE_MAGIC: u64 = 0x1234_5678_90ab_cdef;

/// Commands.
pub(crate) mod cmd {
    pub(crate) const DEBUG_TRANSFER_INFO: u32 = 0x001;
    pub(crate) const DEBUG_TRANSFER_INFO_RSP: u32 = 0x002;
    pub(crate) const MEMORY_READ: u32 = 0x004;
    pub(crate) const MEMORY_READ_RSP: u32 = 0x008;
    pub(crate) const DEBUG_TRANSFER_DONE: u32 = 0x010;
    pub(crate) const DEBUG_TRANSFER_DONE_RSP: u32 = 0x020;
    pub(crate) const SSR_EVENT: u32 = 0x100;
    pub(crate) const SSR_EVENT_RSP: u32 = 0x200;
}

/// Events of SSR_EVENT.
pub(crate) mod event {
    pub(crate) const NACK: u32 = 0x1;
    pub(crate) const BEFORE_SHUTDOWN: u32 = 0x2;
    pub(crate) const AFTER_SHUTDOWN: u32 = 0x4;
    pub(crate) const BEFORE_POWER_UP: u32 = 0x8;
    pub(crate) const AFTER_POWER_UP: u32 = 0x10;
}

/// A message from the card the host acts on, outside a download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Message {
    /// SSR_EVENT for channel `dbc`.
    Event { dbc: u32, event: u32 },
    /// DEBUG_TRANSFER_INFO: the card offers a crash dump of channel `dbc`'s sub-system,
    /// described by the table of `len` bytes at device address `addr`.
    DumpOffer { dbc: u32, addr: u64, len: u64 },
    /// DEBUG_TRANSFER_DONE_RSP: the card says whether the dump it sent is valid (`ret == 0`).
    DumpDone { dbc: u32, ret: u32 },
}

fn le32(b: &[u8], off: usize) -> Option<u32> {
    let bytes = b.get(off..off + 4)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from(le32(b, off)?) | (u64::from(le32(b, off + 4)?) << 32))
}

/// Decodes a message from the card outside a download: `None` for what the host ignores (a
/// length past [`MSG_MAX`] or past the transfer, an unknown channel, a command it does not act
/// on).
pub(crate) fn decode(msg: &[u8]) -> Option<Message> {
    let cmd = le32(msg, 0)?;
    let len = usize::try_from(le32(msg, 4)?).ok()?;
    let dbc = le32(msg, 8)?;
    if len > MSG_MAX || len > msg.len() || dbc as usize >= NUM_DBC {
        return None;
    }
    let msg = &msg[..len];
    match cmd {
        cmd::SSR_EVENT => Some(Message::Event {
            dbc,
            event: le32(msg, 12)?,
        }),
        cmd::DEBUG_TRANSFER_INFO => Some(Message::DumpOffer {
            dbc,
            addr: le64(msg, 16)?,
            len: le64(msg, 24)?,
        }),
        cmd::DEBUG_TRANSFER_DONE_RSP => Some(Message::DumpDone {
            dbc,
            ret: le32(msg, 12)?,
        }),
        _ => None,
    }
}

/// A 16-byte message: `cmd` for channel `dbc` with `value` (an event, a return code, or 0).
pub(crate) fn response(cmd: u32, dbc: u32, value: u32) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[0..4].copy_from_slice(&cmd.to_le_bytes());
    m[4..8].copy_from_slice(&16u32.to_le_bytes());
    m[8..12].copy_from_slice(&dbc.to_le_bytes());
    m[12..16].copy_from_slice(&value.to_le_bytes());
    m
}

/// MEMORY_READ of `len` bytes at device address `addr` for channel `dbc`.
pub(crate) fn memory_read(dbc: u32, addr: u64, len: u64) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&cmd::MEMORY_READ.to_le_bytes());
    m[4..8].copy_from_slice(&32u32.to_le_bytes());
    m[8..12].copy_from_slice(&dbc.to_le_bytes());
    m[16..24].copy_from_slice(&addr.to_le_bytes());
    m[24..32].copy_from_slice(&len.to_le_bytes());
    m
}

/// What the host does about an SSR event: the new state of the channel, if it changes, whether
/// the channel is released first, the response to send, and whether the channel is idle after.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Action {
    pub(crate) release: bool,
    pub(crate) state: Option<DbcState>,
    pub(crate) reply: [u8; 16],
    pub(crate) then_idle: bool,
}

/// Decides what to do about SSR event `event` of channel `dbc`.
pub(crate) fn event_action(dbc: u32, event: u32) -> Action {
    let state = match event {
        event::BEFORE_SHUTDOWN => Some(DbcState::BeforeShutdown),
        event::AFTER_SHUTDOWN => Some(DbcState::AfterShutdown),
        event::BEFORE_POWER_UP => Some(DbcState::BeforePowerUp),
        event::AFTER_POWER_UP => Some(DbcState::AfterPowerUp),
        _ => None,
    };
    Action {
        release: event == event::BEFORE_SHUTDOWN,
        state,
        reply: response(cmd::SSR_EVENT_RSP, dbc, event),
        then_idle: event == event::AFTER_POWER_UP,
    }
}

/// A crash dump being downloaded: first its table, then the regions the table lists, into the
/// dump file (header, table, regions).
pub(crate) struct Download {
    dbc: u32,
    tbl_addr: u64,
    tbl_len: u64,
    table: KVVec<u8>,
    /// Base and length of each region, once the table is in.
    regions: KVec<(u64, u64)>,
    /// The region being read and how much of it is in.
    region: usize,
    offset: u64,
    /// The file: vmalloc memory, which devcoredump frees with `vfree()`.
    file: VVec<u8>,
    /// Bytes asked for by the last MEMORY_READ.
    asked: u64,
}

impl Download {
    /// Starts the download of the dump of channel `dbc` whose table is `tbl_len` bytes at
    /// `tbl_addr`: `EINVAL` for a table length of 0 or not a multiple of 64, `EFBIG` for one
    /// too big, `ENOMEM`.
    pub(crate) fn new(dbc: u32, tbl_addr: u64, tbl_len: u64) -> Result<Self> {
        if tbl_len == 0 || tbl_len % ENTRY as u64 != 0 {
            return Err(EINVAL);
        }
        let n = usize::try_from(tbl_len).map_err(|_| EFBIG)?;
        if n > DUMP_MAX {
            return Err(EFBIG);
        }
        Ok(Self {
            dbc,
            tbl_addr,
            tbl_len,
            table: KVVec::with_capacity(n, GFP_KERNEL)?,
            regions: KVec::new(),
            region: 0,
            offset: 0,
            file: VVec::new(),
            asked: 0,
        })
    }

    /// Whether every byte is in.
    pub(crate) fn finished(&self) -> bool {
        self.table.len() as u64 == self.tbl_len && self.region == self.regions.len()
    }

    /// The next MEMORY_READ to send: address and length; `None` once finished.
    pub(crate) fn next_read(&mut self) -> Option<(u64, u64)> {
        let (addr, left) = if (self.table.len() as u64) < self.tbl_len {
            let got = self.table.len() as u64;
            (self.tbl_addr + got, self.tbl_len - got)
        } else {
            let &(base, len) = self.regions.get(self.region)?;
            (base.wrapping_add(self.offset), len - self.offset)
        };
        self.asked = left.min(READ_MAX);
        Some((addr, self.asked))
    }

    /// Takes in a MEMORY_READ_RSP. Anything else, or a piece of another channel, longer than
    /// asked for or than the buffer, or empty, is a protocol error (`EPROTO`); a table with an
    /// empty region too; a dump past [`DUMP_MAX`] is `EFBIG`.
    pub(crate) fn receive(&mut self, msg: &[u8]) -> Result {
        let cmd = le32(msg, 0).ok_or(EPROTO)?;
        let len = usize::try_from(le32(msg, 4).ok_or(EPROTO)?).map_err(|_| EPROTO)?;
        let dbc = le32(msg, 8).ok_or(EPROTO)?;
        if cmd != cmd::MEMORY_READ_RSP || dbc != self.dbc {
            return Err(EPROTO);
        }
        if len <= 16 || len > msg.len() || len > CHUNK || (len - 16) as u64 > self.asked {
            return Err(EPROTO);
        }
        let data = &msg[16..len];
        if (self.table.len() as u64) < self.tbl_len {
            self.table.extend_from_slice(data, GFP_KERNEL)?;
            if self.table.len() as u64 == self.tbl_len {
                self.start_regions()?;
            }
        } else {
            let &(_, rlen) = self.regions.get(self.region).ok_or(EPROTO)?;
            self.file.extend_from_slice(data, GFP_KERNEL)?;
            self.offset += data.len() as u64;
            if self.offset == rlen {
                self.region += 1;
                self.offset = 0;
            }
        }
        Ok(())
    }

    /// The table is in: lists the regions and starts the file with its header and the table.
    fn start_regions(&mut self) -> Result {
        let mut total = FILE_HEADER + self.table.len();
        for e in self.table.chunks_exact(ENTRY) {
            let base = le64(e, 8).ok_or(EPROTO)?;
            let len = le64(e, 16).ok_or(EPROTO)?;
            if len == 0 {
                return Err(EPROTO);
            }
            let l = usize::try_from(len).map_err(|_| EFBIG)?;
            total = total.checked_add(l).ok_or(EFBIG)?;
            self.regions.push((base, len), GFP_KERNEL)?;
        }
        if total > DUMP_MAX {
            return Err(EFBIG);
        }
        let mut file = VVec::with_capacity(total, GFP_KERNEL)?;
        for v in [FILE_MAGIC, 1, total as u64, self.tbl_len] {
            file.extend_from_slice(&v.to_ne_bytes(), GFP_KERNEL)?;
        }
        // The table, its numbers in CPU order.
        for e in self.table.chunks_exact(ENTRY) {
            for off in [0, 8, 16] {
                let v = le64(e, off).ok_or(EPROTO)?;
                file.extend_from_slice(&v.to_ne_bytes(), GFP_KERNEL)?;
            }
            file.extend_from_slice(&e[24..], GFP_KERNEL)?;
        }
        self.file = file;
        Ok(())
    }

    /// The dump file.
    pub(crate) fn into_file(self) -> VVec<u8> {
        self.file
    }
}

/// The MHI client of QAIC_SSR.
pub(crate) struct SsrDriver;

kernel::mhi_device_table!(
    SSR_TABLE,
    <SsrDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_SSR"), ())]
);

/// A bound QAIC_SSR channel.
#[pin_data]
pub(crate) struct Ssr {
    /// Where the card's messages are handled. First, so that it is destroyed first when the
    /// channel is unbound: destroying it runs what is queued, which uses the other fields.
    queue: OwnedQueue,
    card: ARef<QaicDevice>,
    /// The card's PCI device, where dumps are published.
    pdev: ARef<device::Device>,
    /// The channels, to answer from the work queue, and the download in progress.
    #[pin]
    inner: Mutex<Inner>,
}

struct Inner {
    channels: Option<Arc<Channels<SsrDriver>>>,
    download: Option<Download>,
}

/// What handling a message comes to.
enum Outcome {
    /// Queue the buffer again and send these messages, in order.
    Send(KVec<KVec<u8>>),
    /// The card broke the dump protocol: reset it.
    Reset,
}

fn one(msg: &[u8]) -> Outcome {
    let mut v = KVec::new();
    let mut m = KVec::new();
    if m.extend_from_slice(msg, GFP_KERNEL).is_ok() && v.push(m, GFP_KERNEL).is_ok() {
        Outcome::Send(v)
    } else {
        Outcome::Send(KVec::new())
    }
}

impl Ssr {
    /// Handles the message in `buf` in process context; the buffer goes back to the card.
    fn handle(&self, buf: Buffer) {
        let mut inner = self.inner.lock();
        let Some(channels) = inner.channels.clone() else {
            return;
        };
        let (outcome, restarted) = match inner.download.as_mut() {
            Some(dl) if !dl.finished() => (self.piece(dl, buf.as_slice()), None),
            _ => self.message(&mut inner.download, buf.as_slice()),
        };
        if matches!(outcome, Outcome::Reset) {
            inner.download = None;
        }
        drop(inner);
        // The buffer first: the card answers into it.
        if let Err((e, _)) = channels.queue(Direction::FromDevice, buf, false) {
            dev_warn!(self.pdev, "SSR: cannot queue the receive buffer: {:?}\n", e);
        }
        match outcome {
            Outcome::Reset => {
                dev_err!(
                    self.pdev,
                    "SSR: crash dump protocol error, resetting the card\n"
                );
                channels.soc_reset();
            }
            Outcome::Send(msgs) => {
                for m in msgs.iter() {
                    let sent = Buffer::new(CHUNK, GFP_KERNEL).and_then(|mut b| {
                        b.fill(m)?;
                        channels
                            .queue(Direction::ToDevice, b, false)
                            .map_err(|(e, _)| e)
                    });
                    if let Err(e) = sent {
                        dev_warn!(self.pdev, "SSR: cannot send to the card: {:?}\n", e);
                    }
                }
            }
        }
        // AFTER_POWER_UP is answered: the channel is idle again.
        if let Some(dbc) = restarted {
            let card: &Card = &self.card;
            card.set_state(dbc as usize, DbcState::Idle);
            dev_info!(self.pdev, "SSR: channel {} restarted\n", dbc);
        }
    }

    /// A piece of the dump being downloaded.
    fn piece(&self, dl: &mut Download, msg: &[u8]) -> Outcome {
        if let Err(e) = dl.receive(msg) {
            dev_err!(self.pdev, "SSR: bad crash dump piece: {:?}\n", e);
            return Outcome::Reset;
        }
        match dl.next_read() {
            Some((addr, len)) => one(&memory_read(dl.dbc, addr, len)),
            None => one(&response(cmd::DEBUG_TRANSFER_DONE, dl.dbc, 0)),
        }
    }

    /// A message outside a download (or while the card checks the dump it sent). Also returns
    /// the channel that is idle again once the answer is out.
    fn message(&self, download: &mut Option<Download>, msg: &[u8]) -> (Outcome, Option<u32>) {
        let card: &Card = &self.card;
        let outcome =
            match decode(msg) {
                None => Outcome::Send(KVec::new()),
                Some(Message::Event { dbc, event }) => {
                    if event == event::AFTER_POWER_UP && download.take().is_some() {
                        dev_warn!(
                            self.pdev,
                            "SSR: channel {} restarted during its dump\n",
                            dbc
                        );
                        return (one(&response(cmd::SSR_EVENT_RSP, dbc, event::NACK)), None);
                    }
                    let act = event_action(dbc, event);
                    match (act.release, act.state) {
                        (true, Some(state)) => card.crashed(dbc as usize, state),
                        (false, Some(state)) => card.set_state(dbc as usize, state),
                        _ => {}
                    }
                    return (one(&act.reply), act.then_idle.then_some(dbc));
                }
                Some(Message::DumpOffer { dbc, addr, len }) => {
                    let ready = card.dbcs.lock().states()[dbc as usize] == DbcState::BeforePowerUp;
                    let started = if ready && download.is_none() {
                        Download::new(dbc, addr, len)
                    } else {
                        Err(EBUSY)
                    };
                    match started {
                        Ok(mut dl) => {
                            let first = dl.next_read();
                            *download = Some(dl);
                            let mut v = KVec::new();
                            let mut push = |m: &[u8]| -> Result {
                                let mut b = KVec::new();
                                b.extend_from_slice(m, GFP_KERNEL)?;
                                v.push(b, GFP_KERNEL)?;
                                Ok(())
                            };
                            let ok = push(&response(cmd::DEBUG_TRANSFER_INFO_RSP, dbc, 0))
                                .and_then(|()| match first {
                                    Some((a, l)) => push(&memory_read(dbc, a, l)),
                                    None => Err(EINVAL),
                                });
                            match ok {
                                Ok(()) => Outcome::Send(v),
                                Err(_) => Outcome::Reset,
                            }
                        }
                        Err(e) => {
                            dev_info!(
                                self.pdev,
                                "SSR: crash dump of channel {} declined: {:?}\n",
                                dbc,
                                e
                            );
                            one(&response(cmd::DEBUG_TRANSFER_INFO_RSP, dbc, 1))
                        }
                    }
                }
                Some(Message::DumpDone { dbc, ret }) => {
                    match download.take() {
                        Some(dl) if dl.dbc == dbc && dl.finished() => {
                            if ret == 0 {
                                let file = dl.into_file();
                                dev_info!(
                                    self.pdev,
                                    "SSR: crash dump of channel {}: {} bytes in devcoredump\n",
                                    dbc,
                                    file.len()
                                );
                                dev_coredumpv(&self.pdev, file);
                            } else {
                                dev_warn!(
                                    self.pdev,
                                    "SSR: the card says the dump of channel {} is bad\n",
                                    dbc
                                );
                            }
                        }
                        other => *download = other,
                    }
                    Outcome::Send(KVec::new())
                }
            };
        (outcome, None)
    }
}

impl mhi::Driver for SsrDriver {
    type IdInfo = ();
    type Data<'bound> = Ssr;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &SSR_TABLE;
    const BUFFER_SIZE: usize = CHUNK;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let card = crate::card::find(dev.controller_device()).ok_or(ENODEV)?;
            Ok(try_pin_init!(Ssr {
                queue: OwnedQueue::new_ordered(c"qaic_rs_ssr")?,
                card,
                pdev: dev.controller_device().into(),
                inner <- new_mutex!(Inner {
                    channels: None,
                    download: None,
                }),
            }))
        })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        data: Pin<&Ssr>,
        channels: &Arc<Channels<Self>>,
    ) -> Result {
        data.inner.lock().channels = Some(channels.clone());
        dev.queue::<Self>(
            Direction::FromDevice,
            Buffer::new(CHUNK, GFP_KERNEL)?,
            false,
        )
        .map_err(|(e, _)| e)
    }

    fn unbind<'bound>(_dev: &'bound mhi::Device<Core<'_>>, data: Pin<&Ssr>) {
        let (channels, download) = {
            let mut inner = data.inner.lock();
            (inner.channels.take(), inner.download.take())
        };
        drop(channels);
        drop(download);
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&Ssr>, _buf: Buffer, _status: Result) {}

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&Ssr>, buf: Buffer, status: Result) {
        if status.is_err() {
            return;
        }
        // Handled in process context, in order; the work item owns the buffer and queues it
        // again. The bound data outlives the work queue, which it owns.
        let ssr: *const Ssr = &*data;
        let this = SsrRef(ssr);
        let spawned = data.queue.try_spawn(GFP_ATOMIC, move || {
            let this = this;
            // SAFETY: see `SsrRef`.
            unsafe { &*this.0 }.handle(buf);
        });
        if spawned.is_err() {
            dev_warn!(
                dev.controller_device(),
                "SSR: out of memory, message lost\n"
            );
        }
    }
}

/// A pointer to the bound data of the channel, for its work items.
///
/// # Invariants
///
/// The [`Ssr`] it points to outlives every work item of its queue: the queue is a field of it,
/// destroyed (after running everything queued) when it is dropped.
struct SsrRef(*const Ssr);

// SAFETY: `Ssr` is `Sync` (its mutable state is behind a mutex), and the pointer is valid for as
// long as the work items that carry it (type invariant).
unsafe impl Send for SsrRef {}

#[kunit_tests(qaic_rs_ssr)]
mod tests {
    use super::*;

    fn msg(cmd: u32, len: u32, dbc: u32, body: u32) -> [u8; 16] {
        let mut m = [0u8; 16];
        m[0..4].copy_from_slice(&cmd.to_le_bytes());
        m[4..8].copy_from_slice(&len.to_le_bytes());
        m[8..12].copy_from_slice(&dbc.to_le_bytes());
        m[12..16].copy_from_slice(&body.to_le_bytes());
        m
    }

    #[test]
    fn decoding() {
        let m = msg(cmd::SSR_EVENT, 16, 3, event::BEFORE_SHUTDOWN);
        let want = Message::Event {
            dbc: 3,
            event: event::BEFORE_SHUTDOWN,
        };
        assert_eq!(decode(&m), Some(want));
        // A length past the transfer.
        assert_eq!(decode(&msg(cmd::DEBUG_TRANSFER_INFO, 32, 15, 0)[..]), None);
        let mut offer = [0u8; 32];
        offer[..16].copy_from_slice(&msg(cmd::DEBUG_TRANSFER_INFO, 32, 15, 0));
        offer[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        offer[24..32].copy_from_slice(&128u64.to_le_bytes());
        let want = Message::DumpOffer {
            dbc: 15,
            addr: 0x1000,
            len: 128,
        };
        assert_eq!(decode(&offer), Some(want));
        let want = Message::DumpDone { dbc: 2, ret: 0 };
        assert_eq!(
            decode(&msg(cmd::DEBUG_TRANSFER_DONE_RSP, 16, 2, 0)),
            Some(want)
        );
        // Ignored: unknown channel, length past 32, a short event, other commands.
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 16, 16, 2)), None);
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 33, 0, 2)), None);
        assert_eq!(decode(&msg(cmd::SSR_EVENT, 12, 0, 2)), None);
        assert_eq!(decode(&msg(0x40, 16, 0, 0)), None);
        assert_eq!(decode(&[0u8; 8]), None);
    }

    #[test]
    fn actions() {
        let a = event_action(2, event::BEFORE_SHUTDOWN);
        assert!(a.release);
        assert_eq!(a.state, Some(DbcState::BeforeShutdown));
        assert_eq!(
            a.reply,
            msg(cmd::SSR_EVENT_RSP, 16, 2, event::BEFORE_SHUTDOWN)
        );
        assert!(!a.then_idle);
        let a = event_action(2, event::AFTER_POWER_UP);
        assert!(!a.release);
        assert_eq!(a.state, Some(DbcState::AfterPowerUp));
        assert!(a.then_idle);
        // Unknown events are echoed and change nothing.
        let a = event_action(1, 0x40);
        assert_eq!(a.state, None);
        assert_eq!(a.reply, msg(cmd::SSR_EVENT_RSP, 16, 1, 0x40));
    }

    /// A MEMORY_READ_RSP for channel `dbc` carrying `data`.
    fn piece(dbc: u32, data: &[u8]) -> KVec<u8> {
        let mut m = KVec::new();
        let len = 16 + data.len() as u32;
        let _ = m.extend_from_slice(&msg(cmd::MEMORY_READ_RSP, len, dbc, 0), GFP_KERNEL);
        let _ = m.extend_from_slice(data, GFP_KERNEL);
        m
    }

    /// A table entry for a region of `len` bytes at `base`.
    fn entry(base: u64, len: u64) -> [u8; ENTRY] {
        let mut e = [0u8; ENTRY];
        e[8..16].copy_from_slice(&base.to_le_bytes());
        e[16..24].copy_from_slice(&len.to_le_bytes());
        e[24..28].copy_from_slice(b"desc");
        e[44..48].copy_from_slice(b"file");
        e
    }

    #[test]
    fn download() {
        assert_eq!(Download::new(1, 0, 0).err(), Some(EINVAL));
        assert_eq!(Download::new(1, 0, 65).err(), Some(EINVAL));
        let dl = Download::new(1, 0x1000, 128);
        assert!(dl.is_ok());
        let Ok(mut dl) = dl else { return };
        // The table, in two pieces.
        assert_eq!(dl.next_read(), Some((0x1000, 128)));
        let (e0, e1) = (entry(0x8000, 5), entry(0x9000, 3));
        assert!(dl.receive(&piece(1, &e0)).is_ok());
        assert_eq!(dl.next_read(), Some((0x1040, 64)));
        // Another channel's piece, or more than asked for, is a protocol error.
        assert_eq!(dl.receive(&piece(2, &e1)).err(), Some(EPROTO));
        let mut more = [0u8; 65];
        more[..64].copy_from_slice(&e1);
        assert_eq!(dl.receive(&piece(1, &more)).err(), Some(EPROTO));
        assert!(dl.receive(&piece(1, &e1)).is_ok());
        // The regions: the first one short, then the rest.
        assert_eq!(dl.next_read(), Some((0x8000, 5)));
        assert!(dl.receive(&piece(1, b"ab")).is_ok());
        assert_eq!(dl.next_read(), Some((0x8002, 3)));
        assert!(dl.receive(&piece(1, b"cde")).is_ok());
        assert_eq!(dl.next_read(), Some((0x9000, 3)));
        assert!(!dl.finished());
        assert!(dl.receive(&piece(1, b"xyz")).is_ok());
        assert!(dl.finished());
        assert_eq!(dl.next_read(), None);
        let file = dl.into_file();
        assert_eq!(file.len(), 32 + 128 + 8);
        assert_eq!(&file[0..8], &FILE_MAGIC.to_ne_bytes());
        assert_eq!(&file[8..16], &1u64.to_ne_bytes());
        assert_eq!(&file[16..24], &168u64.to_ne_bytes());
        assert_eq!(&file[24..32], &128u64.to_ne_bytes());
        assert_eq!(&file[32 + 8..32 + 16], &0x8000u64.to_ne_bytes());
        assert_eq!(&file[32 + 24..32 + 28], b"desc");
        assert_eq!(&file[160..168], b"abcdexyz");
    }

    #[test]
    fn empty_region() {
        let Ok(mut dl) = Download::new(0, 0, 64) else {
            return;
        };
        let _ = dl.next_read();
        assert_eq!(dl.receive(&piece(0, &entry(0x8000, 0))).err(), Some(EPROTO));
    }
}
