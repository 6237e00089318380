// SPDX-License-Identifier: GPL-2.0-only

//! RAS (reliability, availability, serviceability): the hardware errors the card reports on its
//! QAIC_STATUS channel.
//!
//! In mission mode the card pushes one 104-byte report per error: a 12-byte header (magic
//! `0x55AA`, version, sequence number, type, id, payload length), then where the error comes
//! from (SoC memory, PCIe, DDR, one of two system buses, NSP memory, a temperature sensor), its
//! kind (correctable, uncorrectable, uncorrectable but not fatal), the threshold that made the
//! card report it, and a 64-byte syndrome laid out per source.
//!
//! The host keeps one receive buffer queued. A valid report is logged (rate-limited: a card
//! with a failing DIMM can report many per second) and counted; the counters are the PCI
//! device's sysfs files `ce_count`, `ue_count` and `ue_nonfatal_count`, which exist while the
//! channel is bound and keep counting across card resets. An uncorrectable error is fatal: the
//! host asks for a SoC reset, after which the card boots again.

use core::fmt::{
    self,
    Write as _, //
};
use kernel::{
    device::{
        self,
        attribute::{
            Attribute,
            Show, //
        },
        Bound,
        Core, //
    },
    mhi::{
        self,
        Buffer,
        Direction, //
    },
    new_spinlock,
    prelude::*,
    str::Formatter,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
        SpinLock,
    },
    time::{
        Instant,
        Monotonic, //
    },
};

use crate::{
    accel::QaicDevice,
    card::Card, //
};

/// Size of a report.
pub(crate) const MSG_LEN: usize = 104;
/// The header's magic number.
const MAGIC: u16 = 0x55aa;
/// Payload bytes after the 12-byte header.
const PAYLOAD_LEN: u16 = 92;
/// Offset of the syndrome.
const SYNDROME: usize = 40;

/// The kind of error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrType {
    Correctable,
    Uncorrectable,
    UncorrectableNonFatal,
}

impl ErrType {
    fn name(self) -> &'static str {
        match self {
            Self::Correctable => "correctable",
            Self::Uncorrectable => "uncorrectable",
            Self::UncorrectableNonFatal => "uncorrectable non-fatal",
        }
    }
}

/// Where the error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    SocMemory,
    Pcie,
    Ddr,
    SystemBus1,
    SystemBus2,
    NspMemory,
    Temperature,
    /// A source this driver does not know: counted, not logged.
    Unknown(u32),
}

impl Source {
    fn from_raw(v: u32) -> Self {
        match v {
            0 => Self::SocMemory,
            1 => Self::Pcie,
            2 => Self::Ddr,
            3 => Self::SystemBus1,
            4 => Self::SystemBus2,
            5 => Self::NspMemory,
            6 => Self::Temperature,
            v => Self::Unknown(v),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SocMemory => "SoC memory",
            Self::Pcie => "PCIe",
            Self::Ddr => "DDR",
            Self::SystemBus1 => "system bus 1",
            Self::SystemBus2 => "system bus 2",
            Self::NspMemory => "NSP memory",
            Self::Temperature => "temperature sensor",
            Self::Unknown(_) => "unknown source",
        }
    }
}

/// Why a message is not a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    Length(usize),
    Magic(u16),
    Version(u16),
    /// Not an asynchronous (pushed) report.
    Type(u8),
    PayloadLen(u16),
    ErrType(u32),
}

impl kernel::fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length(n) => write!(f, "{n} bytes instead of {MSG_LEN}"),
            Self::Magic(m) => write!(f, "magic {m:#06x}"),
            Self::Version(v) => write!(f, "version {v}"),
            Self::Type(t) => write!(f, "message type {t}"),
            Self::PayloadLen(l) => write!(f, "payload length {l}"),
            Self::ErrType(t) => write!(f, "error type {t}"),
        }
    }
}

/// A valid report.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    pub(crate) source: Source,
    pub(crate) err_type: ErrType,
    pub(crate) threshold: u32,
    syndrome: &'a [u8],
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from(le32(b, off)) | (u64::from(le32(b, off + 4)) << 32)
}

/// Checks a message from the card and returns the report it carries.
pub(crate) fn decode(msg: &[u8]) -> core::result::Result<Report<'_>, Invalid> {
    if msg.len() != MSG_LEN {
        return Err(Invalid::Length(msg.len()));
    }
    let magic = le16(msg, 0);
    if magic != MAGIC {
        return Err(Invalid::Magic(magic));
    }
    let version = le16(msg, 2);
    if !(1..=2).contains(&version) {
        return Err(Invalid::Version(version));
    }
    if msg[8] != 0 {
        return Err(Invalid::Type(msg[8]));
    }
    let len = le16(msg, 10);
    if len != PAYLOAD_LEN {
        return Err(Invalid::PayloadLen(len));
    }
    let err_type = match le32(msg, 20) {
        0 => ErrType::Correctable,
        1 => ErrType::Uncorrectable,
        2 => ErrType::UncorrectableNonFatal,
        t => return Err(Invalid::ErrType(t)),
    };
    Ok(Report {
        source: Source::from_raw(le32(msg, 16)),
        err_type,
        threshold: le32(msg, 24),
        syndrome: &msg[SYNDROME..],
    })
}

impl Report<'_> {
    /// Whether the report is worth a log line: the source is known, and a temperature report
    /// names a known threshold. Every valid report is counted either way.
    pub(crate) fn loggable(&self) -> bool {
        match self.source {
            Source::Unknown(_) => false,
            Source::Temperature => le32(self.syndrome, 0) < 3,
            _ => true,
        }
    }
}

/// The report as one log line: kind, source, threshold, then the syndrome's fields.
impl kernel::fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.syndrome;
        let u32s = |f: &mut fmt::Formatter<'_>, name: &str, offs: &[usize]| -> fmt::Result {
            write!(f, " {name}")?;
            for (i, off) in offs.iter().enumerate() {
                let sep = if i == 0 { "=" } else { "," };
                write!(f, "{sep}{:#x}", le32(s, *off))?;
            }
            Ok(())
        };
        write!(
            f,
            "{} error from {} (threshold {}):",
            self.err_type.name(),
            self.source.name(),
            self.threshold
        )?;
        match self.source {
            Source::SocMemory => {
                write!(f, " addresses")?;
                for i in 0..8 {
                    write!(f, " {:#x}", le64(s, 8 * i))?;
                }
                Ok(())
            }
            Source::Pcie => match self.err_type {
                ErrType::Correctable => write!(
                    f,
                    " bad TLP {}, bad DLLP {}, replay rollover {}, replay timeout {}, \
                     receive errors {}, internal {}",
                    le32(s, 0),
                    le32(s, 4),
                    le32(s, 8),
                    le32(s, 12),
                    le32(s, 16),
                    le32(s, 20)
                ),
                ErrType::UncorrectableNonFatal => write!(
                    f,
                    " flow control timeout {}, poisoned TLP {}, ECRC {}, unsupported \
                     request {}, completer abort {}, completion timeout {}",
                    le32(s, 24),
                    le32(s, 28),
                    le32(s, 32),
                    le32(s, 36),
                    le32(s, 40),
                    le32(s, 44)
                ),
                ErrType::Uncorrectable => write!(
                    f,
                    " address {:#x}, index {}{}",
                    le32(s, 48),
                    s[52],
                    if s[53] & 1 != 0 { ", power break" } else { "" }
                ),
            },
            Source::Ddr => {
                write!(
                    f,
                    " instance {}, count {}, irq status {:#x}, error type {}, address {:#x}, \
                     parity {:#x},",
                    le16(s, 48),
                    le32(s, 0),
                    le32(s, 4),
                    le16(s, 50),
                    (u64::from(le16(s, 44)) << 32) | u64::from(le32(s, 40)),
                    le16(s, 46)
                )?;
                u32s(f, "data", &[8, 12, 16, 20, 24, 28, 32, 36])
            }
            Source::SystemBus1 => {
                write!(
                    f,
                    " instance {}, slave {:#x}, error type {}, addresses",
                    s[24],
                    le32(s, 0),
                    le32(s, 4)
                )?;
                for i in 0..8 {
                    write!(f, " {:#x}", le16(s, 8 + 2 * i))?;
                }
                Ok(())
            }
            Source::SystemBus2 => write!(
                f,
                " instance {}, valid {}, word error {}, non-secure {}, opcode {}, error code {}, \
                 transaction type {}, address space {}, operation type {}, len {}, \
                 redirect {}, path {}, ext id {:#x}, address 2 {:#x}:{:#x}, \
                 address 3 {:#x}:{:#x}",
                s[35],
                s[28],
                s[29],
                s[30],
                s[31],
                s[32],
                s[33],
                s[34],
                le16(s, 22),
                le16(s, 24),
                le16(s, 26),
                le16(s, 20),
                le32(s, 16),
                le32(s, 12),
                le32(s, 8),
                le32(s, 4),
                le32(s, 0)
            ),
            Source::NspMemory => {
                write!(f, " NSP {},", s[32])?;
                u32s(f, "addresses", &[0, 4, 8, 12, 16, 20, 24, 28])
            }
            Source::Temperature => {
                let level = match le32(s, 0) {
                    0 => "lower",
                    1 => "upper",
                    _ => "critical",
                };
                write!(
                    f,
                    " {} degrees C, past the {level} threshold",
                    le32(s, 4) as i32
                )
            }
            Source::Unknown(v) => write!(f, " source {v}"),
        }
    }
}

/// Log rate limit: at most [`RateLimit::BURST`] lines per [`RateLimit::WINDOW_MS`].
pub(crate) struct RateLimit {
    /// Start of the current window, ms.
    start: i64,
    printed: u32,
    suppressed: u32,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Print it, after saying that `n` (if not 0) lines were suppressed before.
    Print {
        suppressed: u32,
    },
    Suppress,
}

impl RateLimit {
    pub(crate) const BURST: u32 = 10;
    pub(crate) const WINDOW_MS: i64 = 5000;

    pub(crate) const fn new() -> Self {
        Self {
            start: i64::MIN,
            printed: 0,
            suppressed: 0,
        }
    }

    /// A line is to be printed at time `now_ms`.
    pub(crate) fn check(&mut self, now_ms: i64) -> Verdict {
        if self.start == i64::MIN || now_ms.saturating_sub(self.start) >= Self::WINDOW_MS {
            self.start = now_ms;
            self.printed = 0;
        }
        if self.printed < Self::BURST {
            self.printed += 1;
            Verdict::Print {
                suppressed: core::mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed = self.suppressed.saturating_add(1);
            Verdict::Suppress
        }
    }
}

/// The RAS counters of a card. They live in the card, so they survive resets of the card.
pub(crate) struct Counters {
    ce: Atomic<u32>,
    ue: Atomic<u32>,
    ue_nonfatal: Atomic<u32>,
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            ce: Atomic::new(0),
            ue: Atomic::new(0),
            ue_nonfatal: Atomic::new(0),
        }
    }

    fn counter(&self, t: ErrType) -> &Atomic<u32> {
        match t {
            ErrType::Correctable => &self.ce,
            ErrType::Uncorrectable => &self.ue,
            ErrType::UncorrectableNonFatal => &self.ue_nonfatal,
        }
    }

    /// Counts one error of kind `t`; the counter stops at `u32::MAX`.
    pub(crate) fn count(&self, t: ErrType) {
        let c = self.counter(t);
        let mut old = c.load(Relaxed);
        while old != u32::MAX {
            match c.cmpxchg(old, old + 1, Relaxed) {
                Ok(_) => break,
                Err(now) => old = now,
            }
        }
    }

    pub(crate) fn get(&self, t: ErrType) -> u32 {
        self.counter(t).load(Relaxed)
    }
}

// ---- sysfs ----------------------------------------------------------------------------------

/// A counter file of the PCI device.
struct CountFile<const T: u8>;

impl<const T: u8> Show for CountFile<T> {
    fn show(dev: &device::Device, f: &mut Formatter<'_>) -> Result {
        let t = match T {
            0 => ErrType::Correctable,
            1 => ErrType::Uncorrectable,
            _ => ErrType::UncorrectableNonFatal,
        };
        let card = crate::card::find(dev).ok_or(ENODEV)?;
        let card: &Card = &card;
        // Printed signed like the C driver does: a saturated counter reads -1.
        writeln!(f, "{}", card.ras.get(t) as i32).map_err(|_| EOVERFLOW)
    }
}

static CE_COUNT: Attribute<CountFile<0>> = Attribute::new(c"ce_count");
static UE_COUNT: Attribute<CountFile<1>> = Attribute::new(c"ue_count");
static UE_NONFATAL_COUNT: Attribute<CountFile<2>> = Attribute::new(c"ue_nonfatal_count");

// ---- the channel client ---------------------------------------------------------------------

/// The MHI client of QAIC_STATUS.
pub(crate) struct RasDriver;

kernel::mhi_device_table!(
    RAS_TABLE,
    <RasDriver as mhi::Driver>::IdInfo,
    [(mhi::DeviceId::new(c"QAIC_RS_STATUS"), ())]
);

/// A bound QAIC_STATUS channel.
#[pin_data]
pub(crate) struct Ras {
    card: ARef<QaicDevice>,
    /// When the channel was bound: the time base of `limit`.
    bound: Instant<Monotonic>,
    #[pin]
    limit: SpinLock<RateLimit>,
}

impl mhi::Driver for RasDriver {
    type IdInfo = ();
    type Data<'bound> = Ras;

    const ID_TABLE: mhi::IdTable<Self::IdInfo> = &RAS_TABLE;
    const BUFFER_SIZE: usize = MSG_LEN;

    fn probe<'bound>(
        dev: &'bound mhi::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let card = crate::card::find(dev.controller_device()).ok_or(ENODEV);
        try_pin_init!(Ras {
            card: card?,
            bound: Instant::now(),
            limit <- new_spinlock!(RateLimit::new()),
        })
    }

    fn start(
        dev: &mhi::Device<Core<'_>>,
        _data: Pin<&Ras>,
        _channels: &kernel::sync::Arc<mhi::Channels<Self>>,
    ) -> Result {
        dev.queue::<Self>(
            Direction::FromDevice,
            Buffer::new(MSG_LEN, GFP_KERNEL)?,
            false,
        )
        .map_err(|(e, _)| e)?;
        let pdev = dev.controller_device();
        pdev.create_file(&CE_COUNT)?;
        pdev.create_file(&UE_COUNT)
            .and_then(|()| pdev.create_file(&UE_NONFATAL_COUNT))
            .inspect_err(|_| remove_files(pdev))
    }

    fn unbind<'bound>(dev: &'bound mhi::Device<Core<'_>>, _data: Pin<&Ras>) {
        remove_files(dev.controller_device());
    }

    fn ul_xfer(_dev: &mhi::Device<Bound>, _data: Pin<&Ras>, _buf: Buffer, _status: Result) {}

    fn dl_xfer(dev: &mhi::Device<Bound>, data: Pin<&Ras>, buf: Buffer, status: Result) {
        // A failed transfer (the channel is being reset) ends reception until the next boot.
        if status.is_err() {
            return;
        }
        let pdev = dev.controller_device();
        match decode(buf.as_slice()) {
            Err(why) => dev_warn!(pdev, "RAS: dropped an invalid report: {}\n", why),
            Ok(report) => {
                if report.loggable() {
                    log(pdev, &data, &report);
                }
                let card: &Card = &data.card;
                // An uncorrectable error leaves the card unusable: reset it.
                if report.err_type == ErrType::Uncorrectable {
                    dev_err!(pdev, "RAS: uncorrectable error, resetting the card\n");
                    dev.soc_reset();
                }
                card.ras.count(report.err_type);
            }
        }
        if let Err((e, _)) = dev.queue::<Self>(Direction::FromDevice, buf, false) {
            dev_warn!(pdev, "RAS: cannot queue the receive buffer: {:?}\n", e);
        }
    }
}

fn remove_files(pdev: &device::Device) {
    pdev.remove_file(&CE_COUNT);
    pdev.remove_file(&UE_COUNT);
    pdev.remove_file(&UE_NONFATAL_COUNT);
}

fn log(pdev: &device::Device, ras: &Ras, report: &Report<'_>) {
    let now = ras.bound.elapsed().as_millis();
    let verdict = ras.limit.lock().check(now);
    let Verdict::Print { suppressed } = verdict else {
        return;
    };
    if suppressed > 0 {
        dev_warn!(pdev, "RAS: {} reports not logged\n", suppressed);
    }
    match report.err_type {
        ErrType::Uncorrectable => dev_err!(pdev, "RAS: {}\n", report),
        _ => dev_warn!(pdev, "RAS: {}\n", report),
    }
}

#[kunit_tests(qaic_rs_ras)]
mod tests {
    use super::*;

    /// A report as the card sends it.
    fn report(source: u32, err_type: u32) -> [u8; MSG_LEN] {
        let mut m = [0u8; MSG_LEN];
        m[0..2].copy_from_slice(&0x55aau16.to_le_bytes());
        m[2..4].copy_from_slice(&2u16.to_le_bytes());
        m[4..8].copy_from_slice(&7u32.to_le_bytes());
        m[10..12].copy_from_slice(&92u16.to_le_bytes());
        m[16..20].copy_from_slice(&source.to_le_bytes());
        m[20..24].copy_from_slice(&err_type.to_le_bytes());
        m[24..28].copy_from_slice(&3u32.to_le_bytes());
        m
    }

    #[test]
    fn valid_reports() {
        let m = report(2, 0);
        let r = decode(&m);
        assert!(r.is_ok());
        if let Ok(r) = r {
            assert_eq!(r.source, Source::Ddr);
            assert_eq!(r.err_type, ErrType::Correctable);
            assert_eq!(r.threshold, 3);
            assert!(r.loggable());
        }
        for (t, want) in [
            (1, ErrType::Uncorrectable),
            (2, ErrType::UncorrectableNonFatal),
        ] {
            let m = report(0, t);
            assert_eq!(decode(&m).map(|r| r.err_type), Ok(want));
        }
        // Version 1 is as good as 2.
        let mut m = report(1, 0);
        m[2] = 1;
        assert!(decode(&m).is_ok());
    }

    #[test]
    fn invalid_reports() {
        let m = report(0, 0);
        assert_eq!(decode(&m[..103]).err(), Some(Invalid::Length(103)));
        let mut bad = m;
        bad[0] = 0xab;
        assert_eq!(decode(&bad).err(), Some(Invalid::Magic(0x55ab)));
        for v in [0u16, 3] {
            let mut bad = m;
            bad[2..4].copy_from_slice(&v.to_le_bytes());
            assert_eq!(decode(&bad).err(), Some(Invalid::Version(v)));
        }
        for t in [1u8, 2] {
            let mut bad = m;
            bad[8] = t;
            assert_eq!(decode(&bad).err(), Some(Invalid::Type(t)));
        }
        let mut bad = m;
        bad[10] = 93;
        assert_eq!(decode(&bad).err(), Some(Invalid::PayloadLen(93)));
        let mut bad = m;
        bad[20] = 3;
        assert_eq!(decode(&bad).err(), Some(Invalid::ErrType(3)));
    }

    #[test]
    fn counted_but_not_logged() {
        // Unknown source: valid, counted, not logged.
        let m = report(7, 0);
        assert_eq!(decode(&m).map(|r| r.loggable()), Ok(false));
        // Temperature with an unknown threshold kind likewise.
        let mut m = report(6, 2);
        m[SYNDROME] = 3;
        assert_eq!(decode(&m).map(|r| r.loggable()), Ok(false));
        m[SYNDROME] = 2;
        assert_eq!(decode(&m).map(|r| r.loggable()), Ok(true));
    }

    #[test]
    fn counters_saturate() {
        let c = Counters::new();
        c.count(ErrType::Uncorrectable);
        c.count(ErrType::Uncorrectable);
        assert_eq!(c.get(ErrType::Uncorrectable), 2);
        assert_eq!(c.get(ErrType::Correctable), 0);
        c.ue_nonfatal.store(u32::MAX - 1, Relaxed);
        c.count(ErrType::UncorrectableNonFatal);
        c.count(ErrType::UncorrectableNonFatal);
        assert_eq!(c.get(ErrType::UncorrectableNonFatal), u32::MAX);
    }

    #[test]
    fn rate_limit() {
        let mut l = RateLimit::new();
        for _ in 0..RateLimit::BURST {
            assert_eq!(l.check(1000), Verdict::Print { suppressed: 0 });
        }
        assert_eq!(l.check(1001), Verdict::Suppress);
        assert_eq!(l.check(5999), Verdict::Suppress);
        // A new window: the first line says how many were not printed.
        assert_eq!(l.check(6000), Verdict::Print { suppressed: 2 });
        assert_eq!(l.check(6001), Verdict::Print { suppressed: 0 });
    }

    #[test]
    fn log_line() {
        let mut m = report(6, 0);
        m[SYNDROME..SYNDROME + 4].copy_from_slice(&1u32.to_le_bytes());
        m[SYNDROME + 4..SYNDROME + 8].copy_from_slice(&(-5i32).to_le_bytes());
        let mut buf = [0u8; 128];
        let mut f = Formatter::new(&mut buf);
        if let Ok(r) = decode(&m) {
            assert!(f.write_fmt(fmt!("{r}")).is_ok());
        }
        let n = f.bytes_written();
        let want = "correctable error from temperature sensor (threshold 3): -5 degrees C, \
                    past the upper threshold";
        assert_eq!(&buf[..n], want.as_bytes());
    }
}
