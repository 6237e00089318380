// SPDX-License-Identifier: MIT OR Apache-2.0
//! MANAGE messages: typed builders for the user transactions and a decoder
//! for the device's answer.
//!
//! A MANAGE call carries up to [`QAIC_MANAGE_MAX_MSG_LENGTH`] bytes of
//! transactions, each starting with `{u32 type, u32 len}`. The driver sends
//! them to the device firmware, waits for the answer and writes the answer's
//! transactions back over the same buffer.

use crate::error::{Error, Result};
use crate::uapi::{
    trans, QAIC_DBC_COUNT, QAIC_MANAGE_MAX_MSG_LENGTH, QAIC_MANAGE_MAX_TRANSACTIONS,
};
use crate::wire::{Reader, Writer};

/// Length of a transaction header.
pub const TRANS_HDR_LEN: usize = 8;
/// Length of a DMA transfer transaction.
pub const DMA_XFER_LEN: usize = 32;
/// Length of an activate transaction.
pub const ACTIVATE_LEN: usize = 24;
/// Length of a deactivate transaction.
pub const DEACTIVATE_LEN: usize = 16;
/// Length of a status transaction.
pub const STATUS_LEN: usize = 8;

/// One user transaction of a MANAGE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction<'a> {
    /// Opaque firmware command (NNC, see [`crate::nnc`]); zero-padded to a
    /// multiple of 8 bytes when encoded.
    Passthrough(Vec<u8>),
    /// Hand `data` to the device by DMA; `tag` lets a firmware command of
    /// the same message refer to it.
    DmaXfer {
        /// Tag referenced by the firmware command.
        tag: u32,
        /// The memory to transfer (must stay alive until the call returns,
        /// which the borrow guarantees).
        data: &'a [u8],
    },
    /// Ask for a DMA bridge channel with a queue of `queue_size` elements
    /// (the runtime's "SETUP_VC").
    Activate {
        /// Request/response queue depth in elements.
        queue_size: u32,
        /// Device specific options.
        options: u32,
    },
    /// Release a DMA bridge channel (the runtime's "TEARDOWN_VC").
    Deactivate {
        /// The channel.
        dbc_id: u32,
    },
    /// Query the control protocol version and flags.
    Status,
}

impl Transaction<'_> {
    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Transaction::Passthrough(p) => TRANS_HDR_LEN + p.len().next_multiple_of(8),
            Transaction::DmaXfer { .. } => DMA_XFER_LEN,
            Transaction::Activate { .. } => ACTIVATE_LEN,
            Transaction::Deactivate { .. } => DEACTIVATE_LEN,
            Transaction::Status => STATUS_LEN,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let len = self.encoded_len();
        let mut w = Writer::new(len);
        w.u32(4, len as u32);
        match self {
            Transaction::Passthrough(p) => w
                .u32(0, trans::PASSTHROUGH_FROM_USR)
                .bytes(TRANS_HDR_LEN, p),
            Transaction::DmaXfer { tag, data } => w
                .u32(0, trans::DMA_XFER_FROM_USR)
                .u32(8, *tag)
                .u64(16, data.as_ptr() as u64)
                .u64(24, data.len() as u64),
            Transaction::Activate {
                queue_size,
                options,
            } => w
                .u32(0, trans::ACTIVATE_FROM_USR)
                .u32(8, *queue_size)
                .u32(16, *options),
            Transaction::Deactivate { dbc_id } => {
                w.u32(0, trans::DEACTIVATE_FROM_USR).u32(8, *dbc_id)
            }
            Transaction::Status => w.u32(0, trans::STATUS_FROM_USR),
        };
        w.finish()
    }

    /// Checks the rules the driver enforces on this transaction.
    fn validate(&self) -> Result<()> {
        match self {
            Transaction::DmaXfer { data: [], .. } => {
                Err(Error::invalid("DMA transfer of zero bytes"))
            }
            Transaction::Activate { queue_size: 0, .. } => {
                Err(Error::invalid("activate with queue_size 0"))
            }
            Transaction::Deactivate { dbc_id } if *dbc_id >= QAIC_DBC_COUNT => {
                Err(Error::invalid(format!("DBC id {dbc_id} out of range")))
            }
            _ => Ok(()),
        }
    }
}

/// Builder of a MANAGE request.
///
/// ```
/// use qaic::manage::ManageMsg;
/// let elf = vec![0u8; 100];
/// let msg = ManageMsg::new().passthrough(&[1, 0, 0, 0]).dma_xfer(7, &elf);
/// let enc = msg.encode().unwrap();
/// assert_eq!((enc.len(), enc.count()), (16 + 32, 2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManageMsg<'a> {
    transactions: Vec<Transaction<'a>>,
}

impl<'a> ManageMsg<'a> {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends any transaction.
    pub fn push(mut self, t: Transaction<'a>) -> Self {
        self.transactions.push(t);
        self
    }

    /// Appends a passthrough (firmware command) transaction.
    pub fn passthrough(self, payload: &[u8]) -> Self {
        self.push(Transaction::Passthrough(payload.to_vec()))
    }

    /// Appends a DMA transfer of `data`.
    pub fn dma_xfer(self, tag: u32, data: &'a [u8]) -> Self {
        self.push(Transaction::DmaXfer { tag, data })
    }

    /// Appends an activate transaction.
    pub fn activate(self, queue_size: u32, options: u32) -> Self {
        self.push(Transaction::Activate {
            queue_size,
            options,
        })
    }

    /// Appends a deactivate transaction.
    pub fn deactivate(self, dbc_id: u32) -> Self {
        self.push(Transaction::Deactivate { dbc_id })
    }

    /// Appends a status transaction.
    pub fn status(self) -> Self {
        self.push(Transaction::Status)
    }

    /// The transactions so far.
    pub fn transactions(&self) -> &[Transaction<'a>] {
        &self.transactions
    }

    /// Checks the message against the driver's rules (count, total length,
    /// per-transaction values), so mistakes are reported without a
    /// round trip to the device.
    pub fn validate(&self) -> Result<()> {
        let n = self.transactions.len();
        if n == 0 {
            return Err(Error::invalid("MANAGE message without transactions"));
        }
        if n > QAIC_MANAGE_MAX_TRANSACTIONS as usize {
            return Err(Error::invalid(format!(
                "{n} transactions, at most {QAIC_MANAGE_MAX_TRANSACTIONS}"
            )));
        }
        let total: usize = self.transactions.iter().map(Transaction::encoded_len).sum();
        if total > QAIC_MANAGE_MAX_MSG_LENGTH {
            return Err(Error::invalid(format!(
                "MANAGE message of {total} bytes, at most {QAIC_MANAGE_MAX_MSG_LENGTH}"
            )));
        }
        self.transactions.iter().try_for_each(Transaction::validate)
    }

    /// Encodes the message into a full-size buffer. Only fails if it does
    /// not fit; use [`ManageMsg::validate`] for the driver's other rules.
    pub fn encode(&self) -> Result<EncodedManage> {
        let mut buf = Box::new([0u8; QAIC_MANAGE_MAX_MSG_LENGTH]);
        let mut off = 0;
        for t in &self.transactions {
            let b = t.encode();
            let end = off + b.len();
            if end > QAIC_MANAGE_MAX_MSG_LENGTH {
                return Err(Error::invalid(format!(
                    "MANAGE message longer than {QAIC_MANAGE_MAX_MSG_LENGTH} bytes"
                )));
            }
            buf[off..end].copy_from_slice(&b);
            off = end;
        }
        Ok(EncodedManage {
            buf,
            len: off as u32,
            count: self.transactions.len() as u32,
        })
    }
}

/// An encoded MANAGE request: the 4 KiB buffer handed to the driver plus
/// the `len` and `count` of the ioctl argument.
#[derive(Clone)]
pub struct EncodedManage {
    pub(crate) buf: Box<[u8; QAIC_MANAGE_MAX_MSG_LENGTH]>,
    pub(crate) len: u32,
    pub(crate) count: u32,
}

impl EncodedManage {
    /// Builds a request from raw bytes with arbitrary `len`/`count` values,
    /// e.g. to test how the driver handles malformed messages. `bytes` must
    /// fit in the 4 KiB buffer.
    pub fn from_raw(bytes: &[u8], len: u32, count: u32) -> Result<EncodedManage> {
        let mut buf = Box::new([0u8; QAIC_MANAGE_MAX_MSG_LENGTH]);
        buf.get_mut(..bytes.len())
            .ok_or_else(|| Error::invalid("raw MANAGE buffer larger than 4096 bytes"))?
            .copy_from_slice(bytes);
        Ok(EncodedManage { buf, len, count })
    }
    /// `len` of the ioctl argument.
    pub fn len(&self) -> u32 {
        self.len
    }
    /// Whether the message has no transaction bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// `count` of the ioctl argument.
    pub fn count(&self) -> u32 {
        self.count
    }
    /// The transaction bytes (the first `len` bytes of the buffer).
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..(self.len as usize).min(QAIC_MANAGE_MAX_MSG_LENGTH)]
    }
}

impl std::fmt::Debug for EncodedManage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedManage")
            .field("len", &self.len)
            .field("count", &self.count)
            .finish()
    }
}

/// Answer to an activate transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivateResult {
    /// Zero when the device granted the channel.
    pub status: u32,
    /// The channel now owned by the caller.
    pub dbc_id: u32,
    /// Device specific.
    pub options: u64,
}

/// Answer to a status transaction: the control protocol spoken by the
/// device firmware (Linux 7.3 requires major 5, minor 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolStatus {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Zero on success.
    pub status: u32,
    /// Flags; bit 0 = messages carry a CRC.
    pub status_flags: u64,
}

impl ProtocolStatus {
    /// Whether the device requires CRCs on control messages.
    pub fn crc_required(&self) -> bool {
        self.status_flags & 1 != 0
    }
}

/// One transaction of the device's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseTransaction {
    /// Answer to a passthrough: the firmware's reply payload.
    Passthrough(Vec<u8>),
    /// Answer to an activate transaction.
    Activate(ActivateResult),
    /// Answer to a status transaction.
    Status(ProtocolStatus),
    /// A transaction type this crate does not know.
    Other {
        /// Its type code.
        type_: u32,
        /// The bytes after the header.
        data: Vec<u8>,
    },
}

/// The decoded answer of a MANAGE call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManageResponse {
    /// Transaction count reported by the driver. It may exceed
    /// `transactions.len()`: device deactivate confirmations are counted but
    /// not copied back.
    pub count: u32,
    /// The transactions returned, in order.
    pub transactions: Vec<ResponseTransaction>,
}

impl ManageResponse {
    /// Decodes the first `len` bytes of `buf` as written back by the driver.
    pub fn decode(buf: &[u8], len: u32, count: u32) -> Result<ManageResponse> {
        let len = len as usize;
        let data = buf.get(..len).ok_or_else(|| {
            Error::protocol(format!(
                "answer length {len} exceeds the {} byte buffer",
                buf.len()
            ))
        })?;
        let mut transactions = Vec::new();
        let mut off = 0;
        while off < len {
            let hdr = Reader::new(&data[off..], TRANS_HDR_LEN, "response transaction header")?;
            let (ty, tlen) = (hdr.u32(0)?, hdr.u32(4)? as usize);
            if tlen < TRANS_HDR_LEN || off + tlen > len {
                return Err(Error::protocol(format!(
                    "response transaction at {off} has bad length {tlen}"
                )));
            }
            let body = &data[off..off + tlen];
            let t = match ty {
                trans::PASSTHROUGH_FROM_DEV => {
                    ResponseTransaction::Passthrough(body[TRANS_HDR_LEN..].to_vec())
                }
                trans::ACTIVATE_FROM_DEV => {
                    let r = Reader::new(body, ACTIVATE_LEN, "activate answer")?;
                    ResponseTransaction::Activate(ActivateResult {
                        status: r.u32(8)?,
                        dbc_id: r.u32(12)?,
                        options: r.u64(16)?,
                    })
                }
                trans::STATUS_FROM_DEV => {
                    let r = Reader::new(body, 24, "status answer")?;
                    ResponseTransaction::Status(ProtocolStatus {
                        major: r.u16(8)?,
                        minor: r.u16(10)?,
                        status: r.u32(12)?,
                        status_flags: r.u64(16)?,
                    })
                }
                _ => ResponseTransaction::Other {
                    type_: ty,
                    data: body[TRANS_HDR_LEN..].to_vec(),
                },
            };
            transactions.push(t);
            off += tlen;
        }
        Ok(ManageResponse {
            count,
            transactions,
        })
    }

    /// Payloads of the passthrough answers, in order.
    pub fn passthroughs(&self) -> impl Iterator<Item = &[u8]> {
        self.transactions.iter().filter_map(|t| match t {
            ResponseTransaction::Passthrough(p) => Some(p.as_slice()),
            _ => None,
        })
    }

    /// The activate answer, if any.
    pub fn activate(&self) -> Option<ActivateResult> {
        self.transactions.iter().find_map(|t| match t {
            ResponseTransaction::Activate(a) => Some(*a),
            _ => None,
        })
    }

    /// The status answer, if any.
    pub fn status(&self) -> Option<ProtocolStatus> {
        self.transactions.iter().find_map(|t| match t {
            ResponseTransaction::Status(s) => Some(*s),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi;
    use std::mem::size_of;

    #[test]
    fn transaction_lengths_match_uapi_structs() {
        assert_eq!(DMA_XFER_LEN, size_of::<uapi::qaic_manage_trans_dma_xfer>());
        assert_eq!(
            ACTIVATE_LEN,
            size_of::<uapi::qaic_manage_trans_activate_to_dev>()
        );
        assert_eq!(
            DEACTIVATE_LEN,
            size_of::<uapi::qaic_manage_trans_deactivate>()
        );
        assert_eq!(
            STATUS_LEN,
            size_of::<uapi::qaic_manage_trans_status_to_dev>()
        );
    }

    #[test]
    fn encodes_every_transaction_type() {
        let data = [0xaau8; 10];
        let msg = ManageMsg::new()
            .passthrough(&[1, 2, 3])
            .dma_xfer(0x55, &data)
            .activate(512, 0x1_0000)
            .deactivate(3)
            .status();
        msg.validate().unwrap();
        let e = msg.encode().unwrap();
        assert_eq!(e.count(), 5);
        assert_eq!(e.len(), 16 + 32 + 24 + 16 + 8);
        let b = e.bytes();
        // passthrough: type 1, len 16, payload padded with zeros
        assert_eq!(
            &b[0..16],
            &[1, 0, 0, 0, 16, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0]
        );
        // dma xfer: type 5, len 32, tag, pad 0, addr, size
        let r = Reader::new(&b[16..48], 32, "t").unwrap();
        assert_eq!(
            (
                r.u32(0).unwrap(),
                r.u32(4).unwrap(),
                r.u32(8).unwrap(),
                r.u32(12).unwrap()
            ),
            (5, 32, 0x55, 0)
        );
        assert_eq!(r.u64(16).unwrap(), data.as_ptr() as u64);
        assert_eq!(r.u64(24).unwrap(), 10);
        // activate: type 7, len 24, queue_size, eventfd 0, options, pad 0
        let r = Reader::new(&b[48..72], 24, "t").unwrap();
        let got: Vec<u32> = (0..6).map(|i| r.u32(i * 4).unwrap()).collect();
        assert_eq!(got, [7, 24, 512, 0, 0x1_0000, 0]);
        // deactivate: type 10, len 16, dbc, pad
        let r = Reader::new(&b[72..88], 16, "t").unwrap();
        let got: Vec<u32> = (0..4).map(|i| r.u32(i * 4).unwrap()).collect();
        assert_eq!(got, [10, 16, 3, 0]);
        // status: type 12, len 8
        assert_eq!(&b[88..96], &[12, 0, 0, 0, 8, 0, 0, 0]);
    }

    #[test]
    fn validation_rules() {
        assert!(ManageMsg::new().validate().is_err());
        assert!(ManageMsg::new().activate(0, 0).validate().is_err());
        assert!(ManageMsg::new().deactivate(16).validate().is_err());
        assert!(ManageMsg::new().deactivate(15).validate().is_ok());
        assert!(ManageMsg::new().dma_xfer(1, &[]).validate().is_err());
        let big = vec![0u8; 4096 - 8];
        assert!(ManageMsg::new().passthrough(&big).validate().is_ok());
        assert!(ManageMsg::new()
            .passthrough(&big)
            .status()
            .validate()
            .is_err());
        assert!(ManageMsg::new()
            .passthrough(&big)
            .status()
            .encode()
            .is_err());
        let mut many = ManageMsg::new();
        for _ in 0..513 {
            many = many.status();
        }
        assert!(many.validate().is_err());
    }

    #[test]
    fn raw_requests() {
        let e = EncodedManage::from_raw(&[1, 2, 3], 100, 0).unwrap();
        assert_eq!((e.len(), e.count()), (100, 0));
        assert_eq!(&e.bytes()[..4], &[1, 2, 3, 0]);
        assert!(EncodedManage::from_raw(&[0; 4097], 1, 1).is_err());
    }

    fn answer(parts: &[Vec<u8>]) -> (Vec<u8>, u32) {
        let mut b: Vec<u8> = parts.concat();
        let len = b.len() as u32;
        b.resize(4096, 0);
        (b, len)
    }

    #[test]
    fn decodes_answers() {
        let pt = Writer::new(16)
            .u32(0, 3)
            .u32(4, 16)
            .u32(8, 14)
            .i32(12, -3)
            .finish();
        let act = Writer::new(24)
            .u32(0, 8)
            .u32(4, 24)
            .u32(8, 0)
            .u32(12, 5)
            .u64(16, 9)
            .finish();
        let st = Writer::new(24)
            .u32(0, 14)
            .u32(4, 24)
            .u16(8, 5)
            .u16(10, 0)
            .u32(12, 0)
            .u64(16, 1)
            .finish();
        let unk = Writer::new(16).u32(0, 99).u32(4, 16).finish();
        let (buf, len) = answer(&[pt, act, st, unk]);
        let r = ManageResponse::decode(&buf, len, 5).unwrap();
        assert_eq!(r.count, 5);
        assert_eq!(r.transactions.len(), 4);
        assert_eq!(
            r.passthroughs().next().unwrap(),
            &[14, 0, 0, 0, 0xfd, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            r.activate(),
            Some(ActivateResult {
                status: 0,
                dbc_id: 5,
                options: 9
            })
        );
        let s = r.status().unwrap();
        assert_eq!((s.major, s.minor, s.status), (5, 0, 0));
        assert!(s.crc_required());
        assert!(matches!(
            r.transactions[3],
            ResponseTransaction::Other { type_: 99, .. }
        ));
    }

    #[test]
    fn rejects_malformed_answers() {
        let short = Writer::new(16).u32(0, 3).u32(4, 4).finish();
        let (buf, len) = answer(&[short]);
        assert!(ManageResponse::decode(&buf, len, 1).is_err());
        let long = Writer::new(16).u32(0, 3).u32(4, 24).finish();
        let (buf, len) = answer(&[long]);
        assert!(ManageResponse::decode(&buf, len, 1).is_err());
        let act = Writer::new(16).u32(0, 8).u32(4, 16).finish();
        let (buf, len) = answer(&[act]);
        assert!(ManageResponse::decode(&buf, len, 1).is_err());
        assert!(ManageResponse::decode(&[0; 16], 32, 1).is_err());
        // an empty answer (e.g. only a deactivate) is fine
        let r = ManageResponse::decode(&[0; 16], 0, 1).unwrap();
        assert_eq!((r.count, r.transactions.len()), (1, 0));
    }
}
