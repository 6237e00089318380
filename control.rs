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
    mhi::{
        self,
        Buffer,
        Direction, //
    },
    new_spinlock_irq,
    prelude::*,
    sync::{
        Arc,
        SpinLockIrq, //
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

/// The control channel client driver.
pub(crate) struct ControlDriver;

kernel::mhi_device_table!(
    CONTROL_TABLE,
    <ControlDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_CONTROL"), ())]
);

/// Where the bring-up of a card's control channel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelState {
    /// The STATUS request is out.
    Boot,
    /// The card speaks our protocol: it is online.
    Online { crc: bool },
    /// The card's answer was not acceptable; it stays unusable until it is reset.
    Refused,
}

struct State {
    seq: u32,
    channel: ChannelState,
}

/// A bound control channel.
#[pin_data]
pub(crate) struct Control {
    #[pin]
    state: SpinLockIrq<State>,
}

impl mhi::Driver for ControlDriver {
    type IdInfo = ();
    type Data<'bound> = Control;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &CONTROL_TABLE;
    const BUFFER_SIZE: usize = MAX_RESPONSE;

    fn probe<'bound>(
        _dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        try_pin_init!(Control {
            state <- new_spinlock_irq!(State {
                seq: 0,
                channel: ChannelState::Boot,
            }),
        })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        data: Pin<&Control>,
        _channels: &Arc<mhi::Channels<Self>>,
    ) -> Result {
        let seq = data.state.lock().seq;
        let request = StatusRequest::new(seq);

        // The answer's buffer goes first, so it is there when the card answers.
        let rx = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        dev.queue::<Self>(Direction::FromDevice, rx, false)
            .map_err(|(e, _)| e)?;

        let mut header = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        header.fill(&request.header)?;
        let mut body = Buffer::new(MAX_RESPONSE, GFP_KERNEL)?;
        body.fill(&request.body)?;
        dev.queue::<Self>(Direction::ToDevice, header, true)
            .map_err(|(e, _)| e)?;
        dev.queue::<Self>(Direction::ToDevice, body, false)
            .map_err(|(e, _)| e)?;
        dev_dbg!(dev.as_ref(), "control: STATUS request {} sent\n", seq);
        Ok(())
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&Control>, _buf: Buffer, _status: Result) {
        // Sent (or flushed): the buffer is freed here.
    }

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&Control>, buf: Buffer, status: Result) {
        if status.is_err() {
            return;
        }
        let mut state = data.state.lock();
        if state.channel != ChannelState::Boot {
            return;
        }
        match decode_status(buf.as_slice(), state.seq) {
            Ok(s) => {
                state.channel = ChannelState::Online { crc: s.crc };
                dev_info!(
                    dev.as_ref(),
                    "control protocol {}.{}{}: card online\n",
                    s.major,
                    s.minor,
                    if s.crc { ", with CRCs" } else { "" }
                );
            }
            Err(bad) => {
                state.channel = ChannelState::Refused;
                dev_err!(
                    dev.as_ref(),
                    "card refused, unusable until reset: {:?} (this driver speaks {}.{})\n",
                    bad,
                    PROTOCOL_MAJOR,
                    PROTOCOL_MINOR
                );
            }
        }
        state.seq = state.seq.wrapping_add(1);
    }
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
