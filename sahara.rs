// SPDX-License-Identifier: GPL-2.0-only

//! Host side of the Sahara protocol, with which the SBL pulls the runtime firmware of the card.
//!
//! While the card runs its secondary boot loader (SBL), it asks the host for the images it needs
//! over the MHI channel pair 2/3 (`QAIC_RS_SAHARA`). The host never speaks first: every host packet
//! answers one device packet. The exchange for one image is
//!
//! - device HELLO, host HELLO_RESP (the device may say HELLO again before each image);
//! - device READ_DATA(image, offset, length), host answers with exactly `length` raw bytes of the
//!   image file, repeated until the device has the whole image;
//! - device END_OF_IMAGE(image, status), host DONE if the status is 0; device DONE_RESP.
//!
//! This file is only the protocol: it decodes what the device sends, decides the answer, and
//! encodes the host packets. It does no I/O and loads no firmware. The MHI client that owns the
//! channels feeds every received packet to [`Sahara::on_message`] and carries out the returned
//! [`Action`]:
//!
//! - [`Action::Send`]: queue the encoded [`Reply`] (see [`Reply::encode`]).
//! - [`Action::Read`]: unless it already holds image `image`, load the file `path` (on failure,
//!   call [`Sahara::load_failed`] and send RESET); then get the bytes to send with
//!   [`read_range`] (on error, send RESET) and queue them as one chained transfer, cut by
//!   [`pieces`].
//! - [`Action::Release`]: drop the loaded image, then queue `reply` if there is one.
//! - [`Action::Reset`]: log the reason and queue [`Reply::Reset`].
//! - [`Action::Nothing`]: nothing to send.
//! - `Err(BadPacket)`: log it and send nothing; the packet is ignored and the state is unchanged.
//!
//! Only one image is open at a time: [`Sahara`] keeps its id from the first READ_DATA for it until
//! the device closes it with END_OF_IMAGE, and answers a READ_DATA for another image in between
//! with RESET. So the image the client holds is always the one [`Action::Read`] names, or none.
//!
//! Memory-dump mode (MEM_DEBUG64, which a crashed device uses to push a RAM dump to the host) is
//! not supported: it is answered with RESET, which tells the device that the host discards the
//! dump.
//!
//! The packet layouts, codes and host rules are those of the project's Sahara datasheet
//! (`spec/sahara.md`); the AIC100 image table is its section 4.1.

use core::ops::Range;

use kernel::{
    num::casts::{
        u32_as_usize,
        FromSafeCast, //
    },
    prelude::*,
};

/// Sahara command codes (the `cmd` field of every packet).
mod cmd {
    /// HELLO, device to host: opens the exchange.
    pub(super) const HELLO: u32 = 0x01;
    /// HELLO_RESP, host to device.
    pub(super) const HELLO_RESP: u32 = 0x02;
    /// READ_DATA, device to host: asks for a piece of an image (32-bit offset and length).
    pub(super) const READ_DATA: u32 = 0x03;
    /// END_OF_IMAGE, device to host: the device is done with an image.
    pub(super) const END_OF_IMAGE: u32 = 0x04;
    /// DONE, host to device: answers a successful END_OF_IMAGE.
    pub(super) const DONE: u32 = 0x05;
    /// DONE_RESP, device to host: answers DONE.
    pub(super) const DONE_RESP: u32 = 0x06;
    /// RESET, host to device: the host refuses a request.
    pub(super) const RESET: u32 = 0x07;
    /// RESET_RESP, device to host: answers RESET.
    pub(super) const RESET_RESP: u32 = 0x08;
    /// MEM_DEBUG64, device to host: offers a memory dump.
    pub(super) const MEM_DEBUG64: u32 = 0x10;
    /// Highest code the protocol defines (WRITE_DATA).
    pub(super) const LAST: u32 = 0x14;
}

/// Size of the header common to all packets: `cmd` and `length`.
const HEADER_LEN: usize = 8;

/// Length of HELLO and of HELLO_RESP.
const HELLO_LEN: usize = 0x30;

/// Length of READ_DATA.
const READ_DATA_LEN: usize = 0x14;

/// Length of END_OF_IMAGE.
const END_OF_IMAGE_LEN: usize = 0x10;

/// Length of MEM_DEBUG64.
const MEM_DEBUG64_LEN: usize = 0x18;

/// Length of DONE and of RESET: the header alone.
const DONE_LEN: usize = HEADER_LEN;

/// The only protocol version the host speaks, in HELLO and HELLO_RESP.
const VERSION: u32 = 2;

/// Size of a memory-dump table entry: MEM_DEBUG64 announces a table of whole entries.
const DUMP_TABLE_ENTRY_LEN: u64 = 64;

/// Largest Sahara packet, and the size of every host transfer buffer: the MHI MTU.
pub(crate) const MAX_PACKET_SIZE: usize = 0xffff;

/// Largest READ_DATA request of a non-streaming device (AIC100, AIC080). The host answers it
/// with one chained transfer of at most [`TX_BUFFERS`] pieces.
pub(crate) const MAX_READ_LEN: u32 = 0x80000;

/// Number of [`MAX_PACKET_SIZE`] transfer buffers the host needs to queue the answer to the
/// largest READ_DATA at once: the device consumes the pieces only once it has the last one.
pub(crate) const TX_BUFFERS: usize = u32_as_usize(MAX_READ_LEN).div_ceil(MAX_PACKET_SIZE);

static_assert!(TX_BUFFERS == 9);

/// An image the device may ask for: a Sahara image id and the firmware file that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Image {
    /// The Sahara image id.
    pub(crate) id: u32,
    /// The file name for the firmware loader.
    pub(crate) path: &'static CStr,
}

/// The images of the AIC100 and AIC080. Every other id is invalid.
pub(crate) static AIC100_IMAGES: [Image; 8] = [
    Image {
        id: 1,
        path: c"qcom/aic100/fw1.bin",
    },
    Image {
        id: 2,
        path: c"qcom/aic100/fw2.bin",
    },
    Image {
        id: 4,
        path: c"qcom/aic100/fw4.bin",
    },
    Image {
        id: 5,
        path: c"qcom/aic100/fw5.bin",
    },
    Image {
        id: 6,
        path: c"qcom/aic100/fw6.bin",
    },
    Image {
        id: 8,
        path: c"qcom/aic100/fw8.bin",
    },
    Image {
        id: 9,
        path: c"qcom/aic100/fw9.bin",
    },
    Image {
        id: 10,
        path: c"qcom/aic100/fw10.bin",
    },
];

/// Returns the firmware file of AIC100 image `id`, or `None` if there is no such image.
pub(crate) fn aic100_image_path(id: u32) -> Option<&'static CStr> {
    AIC100_IMAGES.iter().find(|i| i.id == id).map(|i| i.path)
}

/// The `mode` field of HELLO, which HELLO_RESP echoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The device wants images.
    ImageTxPending,
    /// The device has all its images.
    ImageTxComplete,
    /// The device offers a memory dump.
    MemoryDebug,
}

impl Mode {
    /// Decodes a `mode` field. The command mode (3) is not one the host supports.
    fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::ImageTxPending),
            1 => Some(Self::ImageTxComplete),
            2 => Some(Self::MemoryDebug),
            _ => None,
        }
    }

    /// Returns the value of the `mode` field.
    fn raw(self) -> u32 {
        match self {
            Self::ImageTxPending => 0,
            Self::ImageTxComplete => 1,
            Self::MemoryDebug => 2,
        }
    }
}

/// A device packet, decoded and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    /// HELLO (its version is [`VERSION`]).
    Hello {
        /// Oldest protocol version the device can fall back to (not checked).
        version_compat: u32,
        /// Largest packet the device handles (not checked).
        max_length: u32,
        /// What the device wants.
        mode: Mode,
    },
    /// READ_DATA.
    ReadData {
        /// Image id.
        image: u32,
        /// Byte offset in the image file.
        offset: u32,
        /// Number of bytes wanted.
        len: u32,
    },
    /// END_OF_IMAGE.
    EndOfImage {
        /// Image id.
        image: u32,
        /// 0 on success.
        status: u32,
    },
    /// DONE_RESP (its body, if any, is not looked at).
    DoneResp,
    /// RESET_RESP (its body, if any, is not looked at).
    ResetResp,
    /// MEM_DEBUG64, with a non-empty table of whole entries.
    MemDebug64 {
        /// Device address of the dump table.
        table_address: u64,
        /// Size of the dump table in bytes.
        table_length: u64,
    },
}

/// Why a device packet is ignored: the host logs it and sends nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadPacket {
    /// Fewer bytes than a packet header.
    Short {
        /// Bytes received.
        received: usize,
    },
    /// More bytes than the host receive buffer holds.
    Oversized {
        /// Bytes received.
        received: usize,
    },
    /// A command code the protocol does not define.
    UnknownCommand(u32),
    /// A command the protocol defines but the host does not accept from the device (a host to
    /// device command, or an optional one such as READ_DATA64).
    UnsupportedCommand(u32),
    /// The `length` field is not the number of bytes received.
    LengthMismatch {
        /// Command code.
        cmd: u32,
        /// The `length` field.
        length: u32,
        /// Bytes received.
        received: usize,
    },
    /// The `length` field is not the length of this command.
    WrongLength {
        /// Command code.
        cmd: u32,
        /// The `length` field.
        length: u32,
    },
    /// HELLO with a protocol version other than [`VERSION`].
    BadVersion(u32),
    /// HELLO with a mode the host does not support.
    BadMode(u32),
    /// MEM_DEBUG64 with an empty table, or one that is not made of whole entries.
    BadTableLength(u64),
    /// END_OF_IMAGE for an image other than the open one.
    NotOpen {
        /// Image id in the packet.
        image: u32,
        /// The open image.
        open: u32,
    },
}

impl From<BadPacket> for Error {
    fn from(_: BadPacket) -> Self {
        EPROTO
    }
}

/// Why the host answers RESET: it refuses the device's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResetReason {
    /// READ_DATA for an image while another one is open.
    ImageBusy {
        /// The open image.
        open: u32,
        /// The image asked for.
        requested: u32,
    },
    /// READ_DATA for an id that is not in the image table.
    UnknownImage(u32),
    /// The firmware file of the image could not be loaded (see [`Sahara::load_failed`]).
    ImageUnavailable(u32),
    /// READ_DATA for more than [`MAX_READ_LEN`] bytes.
    TooLong {
        /// Bytes asked for.
        len: u32,
    },
    /// READ_DATA starting at or past the end of the image.
    OffsetPastEnd {
        /// Offset asked for.
        offset: u32,
        /// Size of the image.
        size: usize,
    },
    /// READ_DATA ending past the end of the image.
    EndPastEnd {
        /// Offset asked for.
        offset: u32,
        /// Bytes asked for.
        len: u32,
        /// Size of the image.
        size: usize,
    },
    /// MEM_DEBUG64: the host does not take memory dumps, it discards them.
    DumpDiscarded {
        /// Size of the offered dump table in bytes.
        table_length: u64,
    },
}

/// A host packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// HELLO_RESP: version 2, compatible version 2, status success, the mode of the HELLO.
    HelloResp(Mode),
    /// DONE: answers a successful END_OF_IMAGE.
    Done,
    /// RESET: the host refuses the last request.
    Reset,
}

impl Reply {
    /// Returns the size of the packet in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Self::HelloResp(_) => HELLO_LEN,
            Self::Done | Self::Reset => DONE_LEN,
        }
    }

    /// Writes the packet, little-endian, at the start of `buf` and returns the bytes written.
    /// The reserved bytes of HELLO_RESP are written as zeroes.
    ///
    /// # Errors
    ///
    /// [`EMSGSIZE`] if `buf` is shorter than [`Reply::len`].
    pub(crate) fn encode(self, buf: &mut [u8]) -> Result<&[u8]> {
        let len = self.len();
        let length = u32::try_from(len).map_err(|_| EMSGSIZE)?;
        // The words after the header; the rest of the packet is zero.
        let body: &[u32] = match self {
            Self::HelloResp(mode) => &[VERSION, VERSION, 0, mode.raw()],
            Self::Done | Self::Reset => &[],
        };
        let cmd = match self {
            Self::HelloResp(_) => cmd::HELLO_RESP,
            Self::Done => cmd::DONE,
            Self::Reset => cmd::RESET,
        };
        let out = buf.get_mut(..len).ok_or(EMSGSIZE)?;
        out.fill(0);
        let words = Iterator::chain([cmd, length].into_iter(), body.iter().copied());
        for (dst, w) in out.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        Ok(out)
    }
}

/// Returns the little-endian `u32` at byte `off` of `msg`, if `msg` is long enough.
fn le32(msg: &[u8], off: usize) -> Option<u32> {
    msg.get(off..)?
        .first_chunk()
        .copied()
        .map(u32::from_le_bytes)
}

/// Returns the little-endian `u64` at byte `off` of `msg`, if `msg` is long enough.
fn le64(msg: &[u8], off: usize) -> Option<u64> {
    msg.get(off..)?
        .first_chunk()
        .copied()
        .map(u64::from_le_bytes)
}

/// Returns the fixed length of a device command, or why the host does not take it.
fn expected_len(cmd: u32) -> Result<usize, BadPacket> {
    match cmd {
        cmd::HELLO => Ok(HELLO_LEN),
        cmd::READ_DATA => Ok(READ_DATA_LEN),
        cmd::END_OF_IMAGE => Ok(END_OF_IMAGE_LEN),
        cmd::MEM_DEBUG64 => Ok(MEM_DEBUG64_LEN),
        _ if (1..=cmd::LAST).contains(&cmd) => Err(BadPacket::UnsupportedCommand(cmd)),
        _ => Err(BadPacket::UnknownCommand(cmd)),
    }
}

/// Decodes and checks one device packet: `msg` is the whole of one MHI transfer.
///
/// # Errors
///
/// The [`BadPacket`] the packet is ignored for. DONE_RESP and RESET_RESP are taken with any
/// `length` field and any body (the host only looks at their code); every other packet must have
/// its command's exact length, both in the `length` field and in bytes received.
pub(crate) fn decode(msg: &[u8]) -> Result<Packet, BadPacket> {
    let received = msg.len();
    if received > MAX_PACKET_SIZE {
        return Err(BadPacket::Oversized { received });
    }
    let (Some(cmd), Some(length)) = (le32(msg, 0), le32(msg, 4)) else {
        return Err(BadPacket::Short { received });
    };
    match cmd {
        cmd::DONE_RESP => return Ok(Packet::DoneResp),
        cmd::RESET_RESP => return Ok(Packet::ResetResp),
        _ => {}
    }
    let expected = expected_len(cmd)?;
    if usize::from_safe_cast(length) != received {
        return Err(BadPacket::LengthMismatch {
            cmd,
            length,
            received,
        });
    }
    if received != expected {
        return Err(BadPacket::WrongLength { cmd, length });
    }
    // The length is the command's, so every field below is inside `msg`; `Short` is unreachable.
    let short = BadPacket::Short { received };
    let word = |off| le32(msg, off).ok_or(short);
    match cmd {
        cmd::HELLO => {
            let version = word(8)?;
            if version != VERSION {
                return Err(BadPacket::BadVersion(version));
            }
            let raw_mode = word(20)?;
            let mode = Mode::from_raw(raw_mode).ok_or(BadPacket::BadMode(raw_mode))?;
            Ok(Packet::Hello {
                version_compat: word(12)?,
                max_length: word(16)?,
                mode,
            })
        }
        cmd::READ_DATA => Ok(Packet::ReadData {
            image: word(8)?,
            offset: word(12)?,
            len: word(16)?,
        }),
        cmd::END_OF_IMAGE => Ok(Packet::EndOfImage {
            image: word(8)?,
            status: word(12)?,
        }),
        _ => {
            let table_address = le64(msg, 8).ok_or(short)?;
            let table_length = le64(msg, 16).ok_or(short)?;
            if table_length == 0 || table_length % DUMP_TABLE_ENTRY_LEN != 0 {
                return Err(BadPacket::BadTableLength(table_length));
            }
            Ok(Packet::MemDebug64 {
                table_address,
                table_length,
            })
        }
    }
}

/// A READ_DATA the host is to answer with image data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    /// Image id; it is in the image table.
    pub(crate) image: u32,
    /// Firmware file of the image.
    pub(crate) path: &'static CStr,
    /// Byte offset in the image, not yet checked against its size.
    pub(crate) offset: u32,
    /// Number of bytes, not yet checked against the image size or [`MAX_READ_LEN`].
    pub(crate) len: u32,
}

/// What the host does in answer to a device packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send this packet.
    Send(Reply),
    /// Send image data: load the image unless it is already loaded, check the request with
    /// [`read_range`], send the bytes as one chained transfer (see [`pieces`]).
    Read(ReadRequest),
    /// The device is done with the image: release it, then send `reply` if there is one.
    Release {
        /// Image id in END_OF_IMAGE.
        image: u32,
        /// Status in END_OF_IMAGE, 0 on success.
        status: u32,
        /// DONE on success, nothing otherwise.
        reply: Option<Reply>,
    },
    /// Refuse the request: send [`Reply::Reset`], log the reason.
    Reset(ResetReason),
    /// Nothing to send.
    Nothing,
}

/// Host side of one Sahara session (one boot of the SBL) on an AIC100 or AIC080.
///
/// Its only state is the open image: the one the device reads until it sends END_OF_IMAGE.
///
/// TODO: the AIC200 has its own image table and streams READ_DATA answers of any length.
pub(crate) struct Sahara {
    /// The open image, if any.
    open: Option<u32>,
}

impl Sahara {
    /// Creates the host side of a session for an AIC100 or AIC080, with no image open.
    pub(crate) const fn new() -> Self {
        Self { open: None }
    }

    /// Returns the open image, if any.
    #[cfg_attr(
        not(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST),
        expect(dead_code, reason = "only the KUnit tests look at it so far")
    )]
    pub(crate) fn open_image(&self) -> Option<u32> {
        self.open
    }

    /// Handles the device packet `msg` (the whole of one MHI transfer) and returns what to do.
    ///
    /// # Errors
    ///
    /// The [`BadPacket`] the packet is ignored for; the state does not change.
    pub(crate) fn on_message(&mut self, msg: &[u8]) -> Result<Action, BadPacket> {
        match decode(msg)? {
            Packet::Hello { mode, .. } => Ok(Action::Send(Reply::HelloResp(mode))),
            Packet::ReadData { image, offset, len } => Ok(self.read_data(image, offset, len)),
            Packet::EndOfImage { image, status } => {
                if let Some(open) = self.open.filter(|&open| open != image) {
                    return Err(BadPacket::NotOpen { image, open });
                }
                self.open = None;
                Ok(Action::Release {
                    image,
                    status,
                    reply: (status == 0).then_some(Reply::Done),
                })
            }
            Packet::DoneResp | Packet::ResetResp => Ok(Action::Nothing),
            Packet::MemDebug64 { table_length, .. } => {
                Ok(Action::Reset(ResetReason::DumpDiscarded { table_length }))
            }
        }
    }

    /// Answers READ_DATA: opens the image if none is open.
    fn read_data(&mut self, image: u32, offset: u32, len: u32) -> Action {
        match self.open {
            Some(open) if open != image => {
                return Action::Reset(ResetReason::ImageBusy {
                    open,
                    requested: image,
                })
            }
            _ => {}
        }
        let Some(path) = aic100_image_path(image) else {
            return Action::Reset(ResetReason::UnknownImage(image));
        };
        self.open = Some(image);
        Action::Read(ReadRequest {
            image,
            path,
            offset,
            len,
        })
    }

    /// Tells the session that the file of image `image`, just asked for by [`Action::Read`],
    /// could not be loaded: the image is no longer open. Returns the reason to log with the
    /// RESET to send.
    pub(crate) fn load_failed(&mut self, image: u32) -> ResetReason {
        if self.open == Some(image) {
            self.open = None;
        }
        ResetReason::ImageUnavailable(image)
    }
}

/// Checks READ_DATA(`offset`, `len`) against an image of `image_size` bytes and returns the byte
/// range of the image to send: it is inside the image and at most [`MAX_READ_LEN`] long. A
/// zero-length request inside the image gives an empty range: nothing is sent.
///
/// # Errors
///
/// The [`ResetReason`] to answer with, checked in this order: [`ResetReason::TooLong`],
/// [`ResetReason::OffsetPastEnd`] (also for `offset == image_size`, even with `len == 0`),
/// [`ResetReason::EndPastEnd`].
pub(crate) fn read_range(
    image_size: usize,
    offset: u32,
    len: u32,
) -> Result<Range<usize>, ResetReason> {
    if len > MAX_READ_LEN {
        return Err(ResetReason::TooLong { len });
    }
    let start = usize::from_safe_cast(offset);
    if start >= image_size {
        return Err(ResetReason::OffsetPastEnd {
            offset,
            size: image_size,
        });
    }
    match start.checked_add(usize::from_safe_cast(len)) {
        Some(end) if end <= image_size => Ok(start..end),
        _ => Err(ResetReason::EndPastEnd {
            offset,
            len,
            size: image_size,
        }),
    }
}

/// One piece of the chained transfer that answers READ_DATA: one transfer buffer's worth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Bytes of the image to put in the buffer, at most [`MAX_PACKET_SIZE`].
    pub(crate) range: Range<usize>,
    /// More pieces follow: queue with MHI `CHAIN`; the last piece is queued with `EOT`.
    pub(crate) chain: bool,
}

/// Cuts the range [`read_range`] returned into the pieces of one chained transfer, in order.
/// A range of at most [`MAX_READ_LEN`] bytes gives at most [`TX_BUFFERS`] pieces; an empty range
/// gives none.
pub(crate) fn pieces(range: Range<usize>) -> Pieces {
    Pieces { rest: range }
}

/// Iterator over the [`Piece`]s of a range, see [`pieces`].
pub(crate) struct Pieces {
    /// The part of the range not yet returned.
    rest: Range<usize>,
}

impl Iterator for Pieces {
    type Item = Piece;

    fn next(&mut self) -> Option<Piece> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.rest.start;
        let end = start.saturating_add(MAX_PACKET_SIZE).min(self.rest.end);
        self.rest.start = end;
        Some(Piece {
            range: start..end,
            chain: end < self.rest.end,
        })
    }
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_sahara)]
mod tests {
    use super::*;

    /// Writes `words` little-endian into `buf` and returns the packet, cut to `cut` bytes if
    /// given (to make short packets of any size).
    fn pkt<'a>(buf: &'a mut [u8; 64], words: &[u32], cut: Option<usize>) -> &'a [u8] {
        for (dst, w) in buf.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        let n = cut.unwrap_or(words.len() * 4);
        buf.get(..n).unwrap_or_default()
    }

    /// HELLO, version 2, compatible version 1, max length 0x1000, with `mode`.
    fn hello(mode: u32) -> [u32; 12] {
        [cmd::HELLO, 0x30, 2, 1, 0x1000, mode, 0, 0, 0, 0, 0, 0]
    }

    /// READ_DATA.
    fn read(image: u32, offset: u32, len: u32) -> [u32; 5] {
        [cmd::READ_DATA, 0x14, image, offset, len]
    }

    /// END_OF_IMAGE.
    fn eoi(image: u32, status: u32) -> [u32; 4] {
        [cmd::END_OF_IMAGE, 0x10, image, status]
    }

    /// DONE_RESP as the emulator sends it: with a status word, "all images transferred".
    const DONE_RESP: [u32; 3] = [cmd::DONE_RESP, 0x0c, 1];

    /// One row of a decoder table.
    struct DecodeCase<'a> {
        /// What the row checks, printed when it fails.
        name: &'static str,
        /// The packet, as little-endian words.
        words: &'a [u32],
        /// Cut the packet to this many bytes.
        cut: Option<usize>,
        /// The expected result.
        want: Result<Packet, BadPacket>,
    }

    /// Runs a decoder table; returns the number of rows that failed.
    fn run_decode(cases: &[DecodeCase<'_>]) -> usize {
        let mut failed = 0;
        for c in cases {
            let mut buf = [0u8; 64];
            let got = decode(pkt(&mut buf, c.words, c.cut));
            if got != c.want {
                pr_err!(
                    "decode case '{}': got {:?}, want {:?}\n",
                    c.name,
                    got,
                    c.want
                );
                failed += 1;
            }
        }
        failed
    }

    #[test]
    fn decode_valid_packets() {
        use Packet::*;
        let cases = [
            DecodeCase {
                name: "hello, image transfer pending",
                words: &[1, 0x30, 2, 1, 0x1000, 0, 9, 9, 9, 9, 9, 9],
                cut: None,
                want: Ok(Hello {
                    version_compat: 1,
                    max_length: 0x1000,
                    mode: Mode::ImageTxPending,
                }),
            },
            DecodeCase {
                name: "hello, image transfer complete",
                words: &[1, 0x30, 2, 2, 0x400, 1, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Ok(Hello {
                    version_compat: 2,
                    max_length: 0x400,
                    mode: Mode::ImageTxComplete,
                }),
            },
            DecodeCase {
                name: "hello, memory debug",
                words: &[1, 0x30, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Ok(Hello {
                    version_compat: 0,
                    max_length: 0,
                    mode: Mode::MemoryDebug,
                }),
            },
            DecodeCase {
                name: "read data",
                words: &[3, 0x14, 10, 0x1234_5678, 0x8_0000],
                cut: None,
                want: Ok(ReadData {
                    image: 10,
                    offset: 0x1234_5678,
                    len: 0x8_0000,
                }),
            },
            DecodeCase {
                name: "read data of no valid image still decodes",
                words: &[3, 0x14, u32::MAX, u32::MAX, u32::MAX],
                cut: None,
                want: Ok(ReadData {
                    image: u32::MAX,
                    offset: u32::MAX,
                    len: u32::MAX,
                }),
            },
            DecodeCase {
                name: "end of image, failure status",
                words: &[4, 0x10, 6, 0x11],
                cut: None,
                want: Ok(EndOfImage {
                    image: 6,
                    status: 0x11,
                }),
            },
            DecodeCase {
                name: "done resp, header only",
                words: &[6, 8],
                cut: None,
                want: Ok(DoneResp),
            },
            DecodeCase {
                name: "done resp with a status word",
                words: &DONE_RESP,
                cut: None,
                want: Ok(DoneResp),
            },
            DecodeCase {
                name: "done resp, length field not looked at",
                words: &[6, 0xdead, 0],
                cut: None,
                want: Ok(DoneResp),
            },
            DecodeCase {
                name: "reset resp",
                words: &[8, 8],
                cut: None,
                want: Ok(ResetResp),
            },
            DecodeCase {
                name: "memory debug64, 64-bit fields",
                words: &[0x10, 0x18, 0x89ab_cdef, 0x0123_4567, 0x80, 0x1],
                cut: None,
                want: Ok(MemDebug64 {
                    table_address: 0x0123_4567_89ab_cdef,
                    table_length: 0x1_0000_0080,
                }),
            },
        ];
        assert_eq!(run_decode(&cases), 0);
    }

    #[test]
    fn decode_malformed_packets() {
        use BadPacket::*;
        let cases = [
            DecodeCase {
                name: "empty transfer",
                words: &[],
                cut: None,
                want: Err(Short { received: 0 }),
            },
            DecodeCase {
                name: "only a command code",
                words: &[1],
                cut: None,
                want: Err(Short { received: 4 }),
            },
            DecodeCase {
                name: "header missing its last byte",
                words: &[6, 8],
                cut: Some(7),
                want: Err(Short { received: 7 }),
            },
            DecodeCase {
                name: "command 0",
                words: &[0, 8],
                cut: None,
                want: Err(UnknownCommand(0)),
            },
            DecodeCase {
                name: "command past the last defined one",
                words: &[0x15, 8],
                cut: None,
                want: Err(UnknownCommand(0x15)),
            },
            DecodeCase {
                name: "command all ones",
                words: &[u32::MAX, 0x30, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Err(UnknownCommand(u32::MAX)),
            },
            DecodeCase {
                name: "hello resp sent by the device",
                words: &[2, 0x30, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Err(UnsupportedCommand(2)),
            },
            DecodeCase {
                name: "reset sent by the device",
                words: &[7, 8],
                cut: None,
                want: Err(UnsupportedCommand(7)),
            },
            DecodeCase {
                name: "32-bit memory debug",
                words: &[9, 0x10, 0x1000, 0x40],
                cut: None,
                want: Err(UnsupportedCommand(9)),
            },
            DecodeCase {
                name: "command ready",
                words: &[0xb, 8],
                cut: None,
                want: Err(UnsupportedCommand(0xb)),
            },
            DecodeCase {
                name: "read data64",
                words: &[0x12, 0x20, 1, 0, 0, 0, 0x100, 0],
                cut: None,
                want: Err(UnsupportedCommand(0x12)),
            },
            DecodeCase {
                name: "write data, the last defined command",
                words: &[0x14, 8],
                cut: None,
                want: Err(UnsupportedCommand(0x14)),
            },
            DecodeCase {
                name: "hello with the length of read data",
                words: &[1, 0x14, 2, 1, 0x1000],
                cut: None,
                want: Err(WrongLength {
                    cmd: 1,
                    length: 0x14,
                }),
            },
            DecodeCase {
                name: "hello cut short of its length field",
                words: &hello(0),
                cut: Some(0x2c),
                want: Err(LengthMismatch {
                    cmd: 1,
                    length: 0x30,
                    received: 0x2c,
                }),
            },
            DecodeCase {
                name: "hello cut by one byte",
                words: &hello(0),
                cut: Some(0x2f),
                want: Err(LengthMismatch {
                    cmd: 1,
                    length: 0x30,
                    received: 0x2f,
                }),
            },
            DecodeCase {
                name: "hello with a trailing word",
                words: &[1, 0x30, 2, 1, 0x1000, 0, 0, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Err(LengthMismatch {
                    cmd: 1,
                    length: 0x30,
                    received: 0x34,
                }),
            },
            DecodeCase {
                name: "hello, version 1",
                words: &[1, 0x30, 1, 1, 0x1000, 0, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Err(BadVersion(1)),
            },
            DecodeCase {
                name: "hello, version 3, also a bad mode: version checked first",
                words: &[1, 0x30, 3, 2, 0x1000, 7, 0, 0, 0, 0, 0, 0],
                cut: None,
                want: Err(BadVersion(3)),
            },
            DecodeCase {
                name: "hello, command mode",
                words: &hello(3),
                cut: None,
                want: Err(BadMode(3)),
            },
            DecodeCase {
                name: "hello, mode all ones",
                words: &hello(u32::MAX),
                cut: None,
                want: Err(BadMode(u32::MAX)),
            },
            DecodeCase {
                name: "read data, header only",
                words: &[3, 8],
                cut: None,
                want: Err(WrongLength { cmd: 3, length: 8 }),
            },
            DecodeCase {
                name: "read data with a 64-bit length",
                words: &[3, 0x18, 1, 0, 0x100, 0],
                cut: None,
                want: Err(WrongLength {
                    cmd: 3,
                    length: 0x18,
                }),
            },
            DecodeCase {
                name: "read data missing its length word",
                words: &read(1, 0, 0x100),
                cut: Some(0x10),
                want: Err(LengthMismatch {
                    cmd: 3,
                    length: 0x14,
                    received: 0x10,
                }),
            },
            DecodeCase {
                name: "read data, length field all ones",
                words: &[3, u32::MAX, 1, 0, 0x100],
                cut: None,
                want: Err(LengthMismatch {
                    cmd: 3,
                    length: u32::MAX,
                    received: 0x14,
                }),
            },
            DecodeCase {
                name: "read data, length field 0",
                words: &[3, 0, 1, 0, 0x100],
                cut: None,
                want: Err(LengthMismatch {
                    cmd: 3,
                    length: 0,
                    received: 0x14,
                }),
            },
            DecodeCase {
                name: "end of image with the length of read data",
                words: &[4, 0x14, 1, 0, 0],
                cut: None,
                want: Err(WrongLength {
                    cmd: 4,
                    length: 0x14,
                }),
            },
            DecodeCase {
                name: "end of image missing its status",
                words: &eoi(1, 0),
                cut: Some(12),
                want: Err(LengthMismatch {
                    cmd: 4,
                    length: 0x10,
                    received: 12,
                }),
            },
            DecodeCase {
                name: "memory debug64, empty table",
                words: &[0x10, 0x18, 0x1000, 0, 0, 0],
                cut: None,
                want: Err(BadTableLength(0)),
            },
            DecodeCase {
                name: "memory debug64, table not whole entries",
                words: &[0x10, 0x18, 0x1000, 0, 65, 0],
                cut: None,
                want: Err(BadTableLength(65)),
            },
            DecodeCase {
                name: "memory debug64, table length only in the high word",
                words: &[0x10, 0x18, 0x1000, 0, 0x20, 0x1],
                cut: None,
                want: Err(BadTableLength(0x1_0000_0020)),
            },
            DecodeCase {
                name: "memory debug64 with the 32-bit length",
                words: &[0x10, 0x10, 0x1000, 0x40],
                cut: None,
                want: Err(WrongLength {
                    cmd: 0x10,
                    length: 0x10,
                }),
            },
        ];
        assert!(cases.len() >= 30);
        assert_eq!(run_decode(&cases), 0);

        // In a session they are ignored with the same error, and the open image stays open.
        let mut sahara = Sahara::new();
        let mut buf = [0u8; 64];
        assert!(sahara
            .on_message(pkt(&mut buf, &read(1, 0, 4), None))
            .is_ok());
        for c in &cases {
            let got = sahara.on_message(pkt(&mut buf, c.words, c.cut));
            if c.want.is_ok() || got != c.want.map(|_| Action::Nothing) {
                pr_err!("session case '{}': got {:?}\n", c.name, got);
            }
            assert!(got.is_err() && got.err() == c.want.err());
            assert_eq!(sahara.open_image(), Some(1));
        }
    }

    #[test]
    fn decode_oversized_transfer() -> Result {
        // One byte more than the receive buffer: never indexed, refused before the header.
        let mut msg = KVec::from_elem(0u8, MAX_PACKET_SIZE + 1, GFP_KERNEL)?;
        for (dst, w) in msg.chunks_exact_mut(4).zip(hello(0)) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(
            decode(&msg),
            Err(BadPacket::Oversized {
                received: MAX_PACKET_SIZE + 1
            })
        );
        // The largest transfer gets through to the length check.
        assert_eq!(
            decode(msg.get(..MAX_PACKET_SIZE).unwrap_or_default()),
            Err(BadPacket::LengthMismatch {
                cmd: cmd::HELLO,
                length: 0x30,
                received: MAX_PACKET_SIZE,
            })
        );
        Ok(())
    }

    #[test]
    fn host_packets_encode_exactly() {
        // Little-endian bytes of each host packet, as the datasheet lays them out.
        let hello_resp = |mode: u8| {
            let head = [
                2, 0, 0, 0, 0x30, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, mode, 0, 0, 0,
            ];
            let mut b = [0u8; 48];
            for (dst, src) in b.iter_mut().zip(head) {
                *dst = src;
            }
            b
        };
        let cases: [(Reply, &[u8]); 5] = [
            (Reply::HelloResp(Mode::ImageTxPending), &hello_resp(0)),
            (Reply::HelloResp(Mode::ImageTxComplete), &hello_resp(1)),
            (Reply::HelloResp(Mode::MemoryDebug), &hello_resp(2)),
            (Reply::Done, &[5, 0, 0, 0, 8, 0, 0, 0]),
            (Reply::Reset, &[7, 0, 0, 0, 8, 0, 0, 0]),
        ];
        for (reply, want) in cases {
            assert_eq!(reply.len(), want.len());
            // A dirty buffer, larger than the packet: the reserved bytes of HELLO_RESP are
            // cleared, the bytes after the packet are left alone.
            let mut buf = [0xaau8; 64];
            assert_eq!(reply.encode(&mut buf), Ok(want));
            assert!(buf.iter().skip(want.len()).all(|&b| b == 0xaa));
            // Exactly the packet's size is enough, one byte less is not.
            let mut exact = [0u8; 48];
            let mut short = [0u8; 47];
            let (exact, short) = (
                exact.get_mut(..want.len()).unwrap_or_default(),
                short.get_mut(..want.len() - 1).unwrap_or_default(),
            );
            assert_eq!(reply.encode(exact), Ok(want));
            assert_eq!(reply.encode(short), Err(EMSGSIZE));
            assert_eq!(reply.encode(&mut []), Err(EMSGSIZE));
        }
    }

    #[test]
    fn aic100_image_table() {
        let want: [(u32, &CStr); 8] = [
            (1, c"qcom/aic100/fw1.bin"),
            (2, c"qcom/aic100/fw2.bin"),
            (4, c"qcom/aic100/fw4.bin"),
            (5, c"qcom/aic100/fw5.bin"),
            (6, c"qcom/aic100/fw6.bin"),
            (8, c"qcom/aic100/fw8.bin"),
            (9, c"qcom/aic100/fw9.bin"),
            (10, c"qcom/aic100/fw10.bin"),
        ];
        for ((id, path), image) in want.iter().zip(&AIC100_IMAGES) {
            assert_eq!((image.id, image.path), (*id, *path));
            assert_eq!(aic100_image_path(*id), Some(*path));
        }
        for id in [0, 3, 7, 11, 12, 0x100, u32::MAX] {
            assert_eq!(aic100_image_path(id), None);
        }
    }

    /// One row of a [`read_range`] table.
    struct RangeCase {
        /// Size of the image.
        size: usize,
        /// READ_DATA offset.
        offset: u32,
        /// READ_DATA length.
        len: u32,
        /// The expected result.
        want: Result<Range<usize>, ResetReason>,
    }

    #[test]
    fn read_range_edges() {
        use ResetReason::*;
        const MAX: u32 = MAX_READ_LEN;
        const MAXU: usize = u32_as_usize(MAX_READ_LEN);
        const G4: usize = 1 << 32;
        let c = |size, offset, len, want| RangeCase {
            size,
            offset,
            len,
            want,
        };
        let cases = [
            c(100, 0, 100, Ok(0..100)),
            c(100, 99, 1, Ok(99..100)),
            c(100, 0, 1, Ok(0..1)),
            c(100, 0, 0, Ok(0..0)),
            c(100, 99, 0, Ok(99..99)),
            c(
                100,
                100,
                0,
                Err(OffsetPastEnd {
                    offset: 100,
                    size: 100,
                }),
            ),
            c(
                100,
                100,
                1,
                Err(OffsetPastEnd {
                    offset: 100,
                    size: 100,
                }),
            ),
            c(
                100,
                101,
                0,
                Err(OffsetPastEnd {
                    offset: 101,
                    size: 100,
                }),
            ),
            c(
                100,
                u32::MAX,
                1,
                Err(OffsetPastEnd {
                    offset: u32::MAX,
                    size: 100,
                }),
            ),
            c(0, 0, 0, Err(OffsetPastEnd { offset: 0, size: 0 })),
            c(0, 0, 1, Err(OffsetPastEnd { offset: 0, size: 0 })),
            c(
                100,
                99,
                2,
                Err(EndPastEnd {
                    offset: 99,
                    len: 2,
                    size: 100,
                }),
            ),
            c(
                100,
                0,
                101,
                Err(EndPastEnd {
                    offset: 0,
                    len: 101,
                    size: 100,
                }),
            ),
            c(
                100,
                50,
                MAX,
                Err(EndPastEnd {
                    offset: 50,
                    len: MAX,
                    size: 100,
                }),
            ),
            // The largest request, from the start, and up to the very end of the image.
            c(2 * MAXU, 0, MAX, Ok(0..MAXU)),
            c(2 * MAXU, MAX, MAX, Ok(MAXU..2 * MAXU)),
            c(
                MAXU,
                1,
                MAX,
                Err(EndPastEnd {
                    offset: 1,
                    len: MAX,
                    size: MAXU,
                }),
            ),
            // One byte over the non-streaming limit, checked before anything else.
            c(2 * MAXU, 0, MAX + 1, Err(TooLong { len: MAX + 1 })),
            c(2 * MAXU, 0, u32::MAX, Err(TooLong { len: u32::MAX })),
            c(10, 20, MAX + 1, Err(TooLong { len: MAX + 1 })),
            // offset + len does not fit in 32 bits: no wrap-around to a small end.
            c(
                G4,
                0xffff_fff0,
                0x20,
                Err(EndPastEnd {
                    offset: 0xffff_fff0,
                    len: 0x20,
                    size: G4,
                }),
            ),
            c(G4 + 0x10, 0xffff_fff0, 0x20, Ok(0xffff_fff0..G4 + 0x10)),
            c(
                usize::MAX,
                u32::MAX,
                MAX,
                Ok(u32_as_usize(u32::MAX)..u32_as_usize(u32::MAX) + MAXU),
            ),
        ];
        let mut failed = 0;
        for (i, c) in cases.iter().enumerate() {
            let got = read_range(c.size, c.offset, c.len);
            if got != c.want {
                pr_err!("read_range case {i}: got {:?}, want {:?}\n", got, c.want);
                failed += 1;
            }
        }
        assert_eq!(failed, 0);
    }

    #[test]
    fn pieces_of_a_chained_transfer() {
        const P: usize = MAX_PACKET_SIZE;
        let piece = |start: usize, end: usize, chain| Piece {
            range: start..end,
            chain,
        };
        let cases: [(Range<usize>, &[Piece]); 7] = [
            (0..0, &[]),
            (10..10, &[]),
            (5..6, &[piece(5, 6, false)]),
            (0..P, &[piece(0, P, false)]),
            (0..P + 1, &[piece(0, P, true), piece(P, P + 1, false)]),
            (
                7..7 + 2 * P,
                &[piece(7, 7 + P, true), piece(7 + P, 7 + 2 * P, false)],
            ),
            (
                usize::MAX - 3..usize::MAX,
                &[piece(usize::MAX - 3, usize::MAX, false)],
            ),
        ];
        for (range, want) in cases {
            let mut got = pieces(range);
            for w in want {
                assert_eq!(got.next().as_ref(), Some(w));
            }
            assert_eq!(got.next(), None);
        }

        // The largest request fills all nine transfer buffers: eight full, then the 8 left.
        let start = 32;
        let end = start + u32_as_usize(MAX_READ_LEN);
        let mut n = 0;
        let mut next = start;
        for p in pieces(start..end) {
            n += 1;
            assert_eq!(p.range.start, next);
            assert_eq!(p.chain, n < TX_BUFFERS);
            assert_eq!(p.range.len(), if n < TX_BUFFERS { P } else { 8 });
            next = p.range.end;
        }
        assert_eq!((n, next), (TX_BUFFERS, end));
    }

    /// Size of the fake AIC100 images of the session tests (0 for images "not on disk").
    fn image_size(image: u32) -> usize {
        match image {
            1 => 0x10_0000,
            2 => 100,
            10 => 0x800,
            _ => 0,
        }
    }

    /// One packet of a session and what must come of it.
    struct Step<'a> {
        /// The packet, as little-endian words.
        words: &'a [u32],
        /// What [`Sahara::on_message`] must return.
        want: Result<Action, BadPacket>,
        /// The open image afterwards.
        open: Option<u32>,
        /// For a read: what [`read_range`] must say for the fake image.
        range: Option<Result<Range<usize>, ResetReason>>,
    }

    /// Feeds `steps` to `sahara`; returns the number of steps that went wrong.
    fn run_session(sahara: &mut Sahara, steps: &[Step<'_>]) -> usize {
        let mut failed = 0;
        for (i, s) in steps.iter().enumerate() {
            let mut buf = [0u8; 64];
            let got = sahara.on_message(pkt(&mut buf, s.words, None));
            let range = match got {
                Ok(Action::Read(r)) => {
                    if Some(r.path) != aic100_image_path(r.image) {
                        pr_err!(
                            "session step {i}: path {:?} for image {}\n",
                            r.path,
                            r.image
                        );
                        failed += 1;
                    }
                    Some(read_range(image_size(r.image), r.offset, r.len))
                }
                _ => None,
            };
            if got != s.want || sahara.open_image() != s.open || range != s.range {
                pr_err!(
                    "session step {i}: got {:?} open {:?} range {:?}\n",
                    got,
                    sahara.open_image(),
                    range
                );
                failed += 1;
            }
        }
        failed
    }

    /// A step answered with [`Action::Read`] of AIC100 image `image`.
    fn read_step(w: &[u32; 5], range: Result<Range<usize>, ResetReason>) -> Step<'_> {
        let [_, _, image, offset, len] = *w;
        Step {
            words: w,
            want: Ok(Action::Read(ReadRequest {
                image,
                path: aic100_image_path(image).unwrap_or(c""),
                offset,
                len,
            })),
            open: Some(image),
            range: Some(range),
        }
    }

    /// A step answered with `want`, leaving `open` open, with no read.
    fn step(words: &[u32], want: Result<Action, BadPacket>, open: Option<u32>) -> Step<'_> {
        Step {
            words,
            want,
            open,
            range: None,
        }
    }

    #[test]
    fn session_happy_path() {
        let hello_resp = |mode| Ok(Action::Send(Reply::HelloResp(mode)));
        let release = |image, status, reply| {
            Ok(Action::Release {
                image,
                status,
                reply,
            })
        };
        let nothing = Ok(Action::Nothing);
        let done = Some(Reply::Done);
        let (h0, h1, dr) = (hello(0), hello(1), DONE_RESP);
        let (r1a, r1b, r1c, r1d) = (
            read(1, 0, 32),
            read(1, 32, MAX_READ_LEN),
            read(1, 0x8_0020, 0x10_0000 - 0x8_0020),
            read(1, 0x1000, 0x10),
        );
        let (r2a, r2b, r10) = (read(2, 50, 50), read(2, 10, 0), read(10, 0x7ff, 1));
        let (e1, e2, e10) = (eoi(1, 0), eoi(2, 0x10), eoi(10, 0));
        let steps = [
            step(&h0, hello_resp(Mode::ImageTxPending), None),
            // Image 1: its header, then the rest in the largest requests, the last one up to
            // the very end, then a re-read of a piece in the middle.
            read_step(&r1a, Ok(0..32)),
            read_step(&r1b, Ok(32..0x8_0020)),
            read_step(&r1c, Ok(0x8_0020..0x10_0000)),
            read_step(&r1d, Ok(0x1000..0x1010)),
            step(&e1, release(1, 0, done), None),
            step(&dr, nothing, None),
            // Image 2 without a new HELLO; a zero-length read; closed with a failure status:
            // no DONE.
            read_step(&r2a, Ok(50..100)),
            read_step(&r2b, Ok(10..10)),
            step(&e2, release(2, 0x10, None), None),
            // A new HELLO before image 10.
            step(&h0, hello_resp(Mode::ImageTxPending), None),
            read_step(&r10, Ok(0x7ff..0x800)),
            step(&e10, release(10, 0, done), None),
            step(&dr, nothing, None),
            step(&h1, hello_resp(Mode::ImageTxComplete), None),
        ];
        let mut sahara = Sahara::new();
        assert_eq!(sahara.open_image(), None);
        assert_eq!(run_session(&mut sahara, &steps), 0);
    }

    #[test]
    fn session_refusals_and_bad_packets() {
        use ResetReason::*;
        let reset = |why| Ok(Action::Reset(why));
        let done = |image| {
            Ok(Action::Release {
                image,
                status: 0,
                reply: Some(Reply::Done),
            })
        };
        let (r1, r1_long, r1_past, r1_end) = (
            read(1, 0, 0x100),
            read(1, 0, MAX_READ_LEN + 1),
            read(1, 0x10_0000, 1),
            read(1, 0xf_ff00, 0x101),
        );
        let (r2, r0, r3, r11, rnone) = (
            read(2, 0, 100),
            read(0, 0, 4),
            read(3, 0, 4),
            read(11, 0, 4),
            read(u32::MAX, 0, 4),
        );
        let (e1, e2, e5, enone) = (eoi(1, 0), eoi(2, 0), eoi(5, 0), eoi(u32::MAX, 0));
        let bad_hello = [cmd::HELLO, 0x30, 1, 1, 0x1000, 0, 0, 0, 0, 0, 0, 0];
        let short_read = [cmd::READ_DATA, 0x10, 1, 0];
        let dump = [cmd::MEM_DEBUG64, 0x18, 0x1000, 0, 0x40, 0];
        let bad_dump = [cmd::MEM_DEBUG64, 0x18, 0x1000, 0, 0x41, 0];
        let steps = [
            // Reads before any HELLO are served: the host never requires one.
            read_step(&r1, Ok(0..0x100)),
            // Ids outside the table, including the "no image" sentinel of the C driver, are
            // refused whatever is open, and leave the open image open.
            step(
                &r0,
                reset(ImageBusy {
                    open: 1,
                    requested: 0,
                }),
                Some(1),
            ),
            step(
                &rnone,
                reset(ImageBusy {
                    open: 1,
                    requested: u32::MAX,
                }),
                Some(1),
            ),
            // Another image while 1 is open.
            step(
                &r2,
                reset(ImageBusy {
                    open: 1,
                    requested: 2,
                }),
                Some(1),
            ),
            // Range errors are found by the caller; the image stays open.
            read_step(
                &r1_long,
                Err(TooLong {
                    len: MAX_READ_LEN + 1,
                }),
            ),
            read_step(
                &r1_past,
                Err(OffsetPastEnd {
                    offset: 0x10_0000,
                    size: 0x10_0000,
                }),
            ),
            read_step(
                &r1_end,
                Err(EndPastEnd {
                    offset: 0xf_ff00,
                    len: 0x101,
                    size: 0x10_0000,
                }),
            ),
            // Closing another image is ignored.
            step(&e2, Err(BadPacket::NotOpen { image: 2, open: 1 }), Some(1)),
            step(
                &enone,
                Err(BadPacket::NotOpen {
                    image: u32::MAX,
                    open: 1,
                }),
                Some(1),
            ),
            // Malformed packets change nothing.
            step(&bad_hello, Err(BadPacket::BadVersion(1)), Some(1)),
            step(
                &short_read,
                Err(BadPacket::WrongLength {
                    cmd: 3,
                    length: 0x10,
                }),
                Some(1),
            ),
            step(&bad_dump, Err(BadPacket::BadTableLength(0x41)), Some(1)),
            // A memory dump is discarded.
            step(&dump, reset(DumpDiscarded { table_length: 0x40 }), Some(1)),
            step(&[cmd::RESET_RESP, 8], Ok(Action::Nothing), Some(1)),
            step(&e1, done(1), None),
            // With nothing open, unknown ids are refused and nothing opens.
            step(&r0, reset(UnknownImage(0)), None),
            step(&r3, reset(UnknownImage(3)), None),
            step(&r11, reset(UnknownImage(11)), None),
            step(&rnone, reset(UnknownImage(u32::MAX)), None),
            // The device gives up on an image it could not get: END_OF_IMAGE with nothing
            // open is taken, and answered with DONE on success.
            step(&e5, done(5), None),
            step(&enone, done(u32::MAX), None),
            step(&[cmd::DONE_RESP, 8], Ok(Action::Nothing), None),
            read_step(&r2, Ok(0..100)),
        ];
        let mut sahara = Sahara::new();
        assert_eq!(run_session(&mut sahara, &steps), 0);
    }

    #[test]
    fn session_image_that_cannot_be_loaded() {
        let mut sahara = Sahara::new();
        let mut buf = [0u8; 64];
        // Image 5 is in the table but its file is missing: the caller reports it, the image is
        // no longer open, and the device may go on with another one.
        let got = sahara.on_message(pkt(&mut buf, &read(5, 0, 0x20), None));
        assert!(matches!(
            got,
            Ok(Action::Read(ReadRequest { image: 5, .. }))
        ));
        assert_eq!(sahara.open_image(), Some(5));
        assert_eq!(sahara.load_failed(5), ResetReason::ImageUnavailable(5));
        assert_eq!(sahara.open_image(), None);

        let got = sahara.on_message(pkt(&mut buf, &read(6, 0, 0x20), None));
        assert_eq!(
            got,
            Ok(Action::Read(ReadRequest {
                image: 6,
                path: c"qcom/aic100/fw6.bin",
                offset: 0,
                len: 0x20,
            }))
        );
        // A failure reported for an image that is not the open one closes nothing.
        assert_eq!(sahara.load_failed(5), ResetReason::ImageUnavailable(5));
        assert_eq!(sahara.open_image(), Some(6));
        assert_eq!(
            sahara.on_message(pkt(&mut buf, &eoi(6, 0), None)),
            Ok(Action::Release {
                image: 6,
                status: 0,
                reply: Some(Reply::Done)
            })
        );
        assert_eq!(sahara.open_image(), None);
    }

    #[test]
    fn decoded_fields_reach_the_caller() {
        // Every field the host does not check is still decoded where the caller can log it.
        let mut buf = [0u8; 64];
        let hello = match decode(pkt(&mut buf, &hello(2), None)) {
            Ok(Packet::Hello {
                version_compat,
                max_length,
                mode,
            }) => Some((version_compat, max_length, mode)),
            _ => None,
        };
        assert_eq!(hello, Some((1, 0x1000, Mode::MemoryDebug)));
        let dump = match decode(pkt(&mut buf, &[0x10, 0x18, 0x2000, 0, 0x80, 0], None)) {
            Ok(Packet::MemDebug64 {
                table_address,
                table_length,
            }) => Some((table_address, table_length)),
            _ => None,
        };
        assert_eq!(dump, Some((0x2000, 0x80)));
        let release = match Sahara::new().on_message(pkt(&mut buf, &eoi(9, 3), None)) {
            Ok(Action::Release {
                image,
                status,
                reply,
            }) => Some((image, status, reply)),
            _ => None,
        };
        assert_eq!(release, Some((9, 3, None)));
        assert_eq!(Error::from(BadPacket::BadMode(3)), EPROTO);
    }
}
