// SPDX-License-Identifier: MIT OR Apache-2.0
//! The emulated AIC100 device: MHI register file (BAR0), BHI, execution environments, the MHI
//! state machine, context arrays, command/event/transfer rings and the per-channel services
//! (Sahara in SBL; control, timesync, SSR, RAS in mission mode).
//!
//! The device is a plain state machine: the vfio-user thread feeds it register accesses
//! ([`Device::mmio_read`], [`Device::mmio_write`]); everything the device does on its own
//! (DMA, events, MSIs, boot stages) is queued as work and performed by [`Device::run`], which a
//! worker thread calls (tests call [`Device::run_all`]). All host memory accesses go through
//! [`Dma`]; a fault is logged and answered (error status, error event or SYS_ERR), never a panic.

use crate::control::{ControlService, Outcome};
use crate::dbc::{Bar2, DbcEngine};
use crate::dma::{Dma, DmaFault};
use crate::firmware;
use crate::mhi::{self, bhi, code, ee, layout, pkt, reg, state, Element, Ring, CTX_SIZE, EL_SIZE};
use crate::pci::PciConfig;
use crate::sahara::{self, SaharaDevice};
use log::{debug, error, info, warn};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Interrupt delivery (MSI vectors).
pub trait Irq: Send {
    /// Signal MSI `vector`; false if it could not be delivered (not enabled by the host).
    fn raise(&mut self, vector: u32) -> bool;
}

/// Channel numbers the device serves.
pub mod ch {
    /// Sahara UL.
    pub const SAHARA_UL: usize = 2;
    /// Sahara DL.
    pub const SAHARA_DL: usize = 3;
    /// SSR UL.
    pub const SSR_UL: usize = 6;
    /// SSR DL.
    pub const SSR_DL: usize = 7;
    /// Control UL.
    pub const CONTROL_UL: usize = 10;
    /// Control DL.
    pub const CONTROL_DL: usize = 11;
    /// Boot log DL.
    pub const LOGGING_DL: usize = 13;
    /// RAS (QAIC_STATUS) DL.
    pub const STATUS_DL: usize = 15;
    /// Boot timesync DL.
    pub const TIMESYNC_DL: usize = 21;
    /// Boot timesync UL.
    pub const TIMESYNC_UL: usize = 20;
    /// Periodic timesync UL.
    pub const TIMESYNC_PERIODIC_UL: usize = 22;
}

/// Device options (command line knobs).
#[derive(Debug, Clone)]
pub struct Options {
    /// Advertise a single MSI vector.
    pub single_msi: bool,
    /// Device requires (and checks) control-message CRCs.
    pub crc_required: bool,
    /// Control protocol version the device reports (5.0; other values test the host's check).
    pub control_version: (u16, u16),
    /// BHI serial number.
    pub serial: u32,
    /// Reference firmware images to compare received images with.
    pub firmware_dir: Option<PathBuf>,
    /// Time the emulated SBL needs after a successful BHI load before announcing READY.
    pub sbl_boot_delay: Duration,
    /// Time between the end of Sahara and the mission-mode announcement.
    pub amss_boot_delay: Duration,
    /// Compute latency of the stand-in, overriding the workloads' nominal latency.
    pub compute_latency: Option<Duration>,
    /// After a SoC reset requested by the host, the PBL reports it with MHI SYS_ERR (the MHI
    /// core then re-boots the card); without it the card waits silently in PBL.
    pub reset_syserr: bool,
    /// How long an SSR waits for each host answer.
    pub ssr_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            single_msi: false,
            crc_required: true,
            control_version: (crate::control::PROTO_MAJOR, crate::control::PROTO_MINOR),
            serial: 0x5a10_0001,
            firmware_dir: None,
            sbl_boot_delay: Duration::from_millis(5),
            amss_boot_delay: Duration::from_millis(5),
            compute_latency: None,
            reset_syserr: false,
            ssr_timeout: crate::ssr::RESPONSE_TIMEOUT,
        }
    }
}

/// Fault injection state (driven by the control socket).
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Delay every control response by this much.
    pub delay_response: Duration,
    /// Drop the next N control responses.
    pub drop_next: u32,
    /// Corrupt the next N control responses.
    pub garble_next: u32,
    /// Fail the next BHI image load.
    pub fail_bhi: bool,
    /// Enter SYS_ERR when Sahara starts loading this image (then forget it).
    pub sys_err_at_image: Option<u32>,
    /// Stop answering Sahara when it starts loading this image (then forget it).
    pub stall_at_image: Option<u32>,
    /// Sahara stalled (`stall_at_image`): host packets are dropped until the next reset.
    pub sahara_stalled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    BhiLoad,
    BootSbl,
    MhiReset,
    EnterM0,
    EnterM3,
    CmdDoorbell,
    ChanDoorbell(usize),
    ErDoorbell,
    EnterAmss(u32),
    SendDl(usize, Vec<u8>),
    SysErr,
    DbcService,
    SsrTimeout(u64),
    PblSysErr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChState {
    Disabled,
    Running,
    Stopped,
}

#[derive(Debug, Clone)]
struct Chan {
    state: ChState,
    ul: bool,
    ring: Ring,
    rp: u64,
    wp: u64,
    db_hi: u32,
    partial: Vec<u8>,
    discard: bool,
    pending: VecDeque<Vec<u8>>,
}

/// Offset of the first DMA bridge channel register block in BAR2.
pub const DBC_REGS: usize = 0x20000;
/// Size of one DBC register block.
pub const DBC_STRIDE: usize = 0x1000;

/// Largest UL message the device accepts (Sahara data is at most 512 KiB, control 64 KiB).
pub const MAX_UL_MESSAGE: usize = 1 << 20;

impl Default for Chan {
    fn default() -> Self {
        Chan {
            state: ChState::Disabled,
            ul: true,
            ring: Ring {
                base: 0,
                len: EL_SIZE,
            },
            rp: 0,
            wp: 0,
            db_hi: 0,
            partial: Vec::new(),
            discard: false,
            pending: VecDeque::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct EventRing {
    ring: Ring,
    rp: u64,
    grant: u64,
    msivec: u32,
}

#[derive(Debug, Clone, Copy)]
struct CmdRing {
    ring: Ring,
    rp: u64,
}

#[derive(Debug, Default, Clone)]
struct BhiRegs {
    imgaddr: u64,
    imgsize: u32,
    txdb: u32,
    intvec: u32,
    status: u32,
    errcode: u32,
    errdbg: [u32; 3],
}

/// Counters, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// MSIs raised.
    pub msi: u64,
    /// Events written into the event ring.
    pub events: u64,
    /// DMA faults seen.
    pub dma_faults: u64,
    /// BAR accesses.
    pub mmio: u64,
    /// Control responses sent.
    pub control_responses: u64,
    /// RAS reports sent (valid and malformed).
    pub ras_sent: u64,
}

/// What the device saw of the host's periodic timesync (QAIC_TIMESYNC_PERIODIC, UL 22).
#[derive(Debug, Default, Clone)]
pub struct TimesyncLog {
    /// Valid 24-byte SYNC_REQ messages received.
    pub count: u64,
    /// Messages of another length, signature or type.
    pub bad: u64,
    /// The last offset (host UTC minus device QTimer), microseconds.
    pub last_offset_us: u64,
    /// The last offset plus the QTimer at reception minus the emulator's wall clock, ms.
    pub last_skew_ms: i64,
    /// Interval between the last two messages, ms.
    pub last_interval_ms: u64,
    /// Smallest and largest interval seen, ms.
    pub min_interval_ms: u64,
    /// See `min_interval_ms`.
    pub max_interval_ms: u64,
    last_at: Option<Instant>,
}

/// The boot log the device sent in its last SBL boot, as the host should store it.
#[derive(Debug, Default, Clone)]
pub struct BootLog {
    /// Messages sent.
    pub messages: u32,
    /// Concatenation of the messages without one trailing NUL each.
    pub text: Vec<u8>,
}

/// Boot log lines of the emulated SBL (one DL transfer each; `\0` marks a trailing NUL the
/// host strips). `{serial}` and `{images}` are filled in.
pub const BOOT_LOG: &[&str] = &[
    "aic100-emu SBL: boot log start\n",
    "SBL: serial {serial}, SoC hw version 0x60110200\n\0",
    "SBL: DDR training done, 1024 MiB\n",
    "SBL: PCIe link up, MHI ready in EE SBL\n\0",
    "SBL: loading {images} images over Sahara\n",
    "SBL: boot timesync requested\n",
];

/// The emulated device.
pub struct Device<D: Dma, I: Irq> {
    /// Options.
    pub opts: Options,
    /// PCI config space.
    pub pci: PciConfig,
    /// Host memory.
    pub dma: D,
    /// MSI delivery.
    pub irq: I,
    /// Fault injection.
    pub faults: Faults,
    /// Counters.
    pub stats: Stats,
    /// Control service (mission mode).
    pub control: ControlService,
    /// The DMA bridge (BAR2).
    pub dbc: DbcEngine,
    bar4: Vec<u8>,
    // MHI registers
    ee: u32,
    mhi_state: u8,
    mhictrl: u32,
    mhicfg: u32,
    latches: [u32; 0x100 / 4],
    crdb_hi: u32,
    cmd_wp: Option<u64>,
    erdb_hi: u32,
    er_wp: Option<u64>,
    bhi: BhiRegs,
    // rings and channels
    chans: Vec<Chan>,
    er: Option<EventRing>,
    cmd: Option<CmdRing>,
    pending_events: VecDeque<Element>,
    // services
    sahara: SaharaDevice,
    // work
    work: VecDeque<Work>,
    timed: Vec<(Instant, Work)>,
    dead: bool,
    boot_time: Instant,
    ras_seq: u32,
    /// Subsystem restart state and counters.
    pub ssr: crate::ssr::Ssr,
    ssr_armed: u64,
    ssr_step: Duration,
    ssr_deadline: Option<Instant>,
    /// Periodic timesync as received.
    pub timesync: TimesyncLog,
    /// Boot log sent in the last SBL boot.
    pub bootlog: BootLog,
}

const TS_CMD_TO_HOST: u8 = 0;
const TS_SYNC_REQ: u8 = 1;
const TS_ACK_TO_HOST: u8 = 2;

/// 8-byte timesync header (signature 0x55AA, message type at byte 5).
fn timesync_header(msg_type: u8) -> [u8; 8] {
    [0xaa, 0x55, 0, 0, 0, msg_type, 0, 0]
}

/// Header fields `ras-bad` can make invalid.
pub const RAS_BAD_FIELDS: &[&str] = &["magic", "version", "type", "len", "errtype"];

/// The error threshold a report of `source` carries.
fn ras_threshold(source: u32, err_type: u32) -> u32 {
    match (source, err_type) {
        (6, _) => 1,
        (_, 0) => 10,
        _ => 1,
    }
}

/// A 64-byte syndrome in the layout of `source` (uapi.md §11.1) with plausible values; `seq`
/// varies addresses from report to report.
pub fn ras_syndrome(source: u32, err_type: u32, seq: u32) -> [u8; 64] {
    let mut w = crate::wire::Writer::new();
    let addr = 0x8_0000_1000u64 + ((seq as u64 & 0xff) << 12);
    match source {
        // SoC memory: error_address[8] (u64)
        0 => {
            w.u64(addr).u64(addr + 0x40);
        }
        // PCIe: CE counters, UE non-fatal counters, UE address/index/flag
        1 => {
            match err_type {
                0 => w.u32(2).u32(1).u32(0).u32(1).u32(3).u32(7),
                2 => w.zeros(24).u32(0).u32(1).u32(1).u32(0).u32(0).u32(2),
                _ => w.zeros(48).u32(addr as u32).u8(3).u8(0),
            };
        }
        // DDR: count, irq_status, data words, address, parity, instance, DDR error type
        2 => {
            w.u32(1).u32(0x4);
            for i in 0..8u32 {
                w.u32(0xdead_0000 | i);
            }
            w.u32(addr as u32)
                .u16((addr >> 32) as u16)
                .u16(0x3)
                .u16(1)
                .u16(if err_type == 0 { 1 } else { 2 });
        }
        // System bus 1: slave, error type, addr[8] (u16), instance
        3 => {
            w.u32(5).u32(2);
            for i in 0..8u16 {
                w.u16(0x1000 + i);
            }
            w.u8(0);
        }
        // System bus 2
        4 => {
            w.u32(addr as u32)
                .u32((addr >> 32) as u32)
                .u32(0x2000)
                .u32(0)
                .u32(0x11)
                .u16(2)
                .u16(1)
                .u16(64)
                .u16(0)
                .u8(1)
                .u8(0)
                .u8(1)
                .u8(4)
                .u8(3)
                .u8(1)
                .u8(0)
                .u8(1);
        }
        // NSP memory: error_address[8] (u32), NSP id
        5 => {
            for i in 0..8u32 {
                w.u32(0x0200_0000 + 0x40 * i);
            }
            w.u8(2);
        }
        // Temperature sensor: threshold (0 lower, 1 upper, 2 critical), degrees C
        6 => {
            let (th, t) = match err_type {
                0 => (1, 95),
                2 => (1, 105),
                _ => (2, 125),
            };
            w.u32(th).i32(t);
        }
        _ => {}
    }
    let mut out = [0u8; 64];
    out[..w.len()].copy_from_slice(&w.buf);
    out
}

fn hi_lo(hi: u32, lo: u32) -> u64 {
    ((hi as u64) << 32) | lo as u64
}

impl<D: Dma, I: Irq> Device<D, I> {
    /// A device at power-on (PBL, MHI state RESET), BAR2 in plain memory.
    pub fn new(opts: Options, dma: D, irq: I) -> Self {
        Self::with_bar2(
            opts,
            dma,
            irq,
            Bar2::heap(crate::pci::BAR_SIZES[2] as usize),
        )
    }

    /// A device at power-on whose BAR2 lives in `bar2` (a memfd QEMU maps into the guest).
    pub fn with_bar2(opts: Options, dma: D, irq: I, bar2: Bar2) -> Self {
        let mut dbc = DbcEngine::new(bar2);
        dbc.compute_latency = opts.compute_latency;
        let pci = PciConfig::new(opts.single_msi);
        let mut control = ControlService::new(opts.crc_required, &format!("{:08X}", opts.serial));
        control.version = opts.control_version;
        let mut d = Device {
            opts,
            pci,
            dma,
            irq,
            faults: Faults::default(),
            stats: Stats::default(),
            control,
            dbc,
            bar4: vec![0; crate::pci::BAR_SIZES[4] as usize],
            ee: ee::PBL,
            mhi_state: state::RESET,
            mhictrl: 0,
            mhicfg: 0,
            latches: [0; 0x40],
            crdb_hi: 0,
            cmd_wp: None,
            erdb_hi: 0,
            er_wp: None,
            bhi: BhiRegs::default(),
            chans: vec![Chan::default(); mhi::NUM_CHANNELS],
            er: None,
            cmd: None,
            pending_events: VecDeque::new(),
            sahara: SaharaDevice::aic100(),
            work: VecDeque::new(),
            timed: Vec::new(),
            dead: false,
            boot_time: Instant::now(),
            ras_seq: 0,
            ssr: crate::ssr::Ssr::default(),
            ssr_armed: 0,
            ssr_step: Duration::ZERO,
            ssr_deadline: None,
            timesync: TimesyncLog::default(),
            bootlog: BootLog::default(),
        };
        d.soc_reset();
        d
    }

    fn reference_loader(&self) -> SaharaDevice {
        let s = SaharaDevice::aic100();
        match &self.opts.firmware_dir {
            Some(dir) => {
                let dir = dir.clone();
                s.with_reference(Box::new(move |id| {
                    std::fs::read(dir.join(firmware::file_name(id))).ok()
                }))
            }
            None => s,
        }
    }

    /// Full SoC reset: back to PBL, all MHI state forgotten (DMA maps and MSI routes stay).
    pub fn soc_reset(&mut self) {
        info!(target: "mhi", "SoC reset: EE PBL, MHI state RESET");
        self.ee = ee::PBL;
        self.mhi_state = state::RESET;
        self.mhictrl = 0;
        self.mhicfg = (layout::NUM_ER << 16) | mhi::NUM_CHANNELS as u32;
        self.latches = [0; 0x40];
        self.crdb_hi = 0;
        self.cmd_wp = None;
        self.erdb_hi = 0;
        self.er_wp = None;
        self.bhi = BhiRegs::default();
        self.forget_rings();
        self.sahara = self.reference_loader();
        self.faults.sahara_stalled = false;
        self.control.reset();
        self.work.clear();
        self.timed.clear();
        self.dbc.reset();
        self.control.released.clear();
        self.ssr_abort();
        self.boot_time = Instant::now();
    }

    fn forget_rings(&mut self) {
        self.chans = vec![Chan::default(); mhi::NUM_CHANNELS];
        self.er = None;
        self.cmd = None;
        self.pending_events.clear();
        self.cmd_wp = None;
        self.er_wp = None;
    }

    /// Current execution environment.
    pub fn exec_env(&self) -> u32 {
        self.ee
    }

    /// Current MHI state.
    pub fn mhi_state(&self) -> u8 {
        self.mhi_state
    }

    /// True once the device was surprise-removed.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// True if a channel is running.
    pub fn channel_running(&self, ch: usize) -> bool {
        self.chans
            .get(ch)
            .is_some_and(|c| c.state == ChState::Running)
    }

    /// True if work is queued for [`Device::run`].
    pub fn has_work(&self) -> bool {
        !self.work.is_empty() || !self.timed.is_empty()
    }

    fn push(&mut self, w: Work) {
        self.work.push_back(w);
    }

    fn push_after(&mut self, delay: Duration, w: Work) {
        if delay.is_zero() {
            self.work.push_back(w);
        } else {
            self.timed.push((Instant::now() + delay, w));
        }
    }

    fn mhistatus(&self) -> u32 {
        let ready = matches!(
            self.mhi_state,
            state::READY | state::M0 | state::M1 | state::M2 | state::M3
        );
        let syserr = self.mhi_state == state::SYS_ERR;
        ((self.mhi_state as u32) << 8) | ((syserr as u32) << 2) | ready as u32
    }

    fn qtimer(&self) -> u64 {
        // 19.2 MHz
        (self.boot_time.elapsed().as_nanos() * 192 / 10_000) as u64
    }

    // ---------------------------------------------------------------------------------------
    // BAR access

    /// Read from BAR `bar` (0, 2 or 4). Returns the little-endian value of `len` bytes
    /// (accesses are at most 8 bytes; the server splits longer ones).
    pub fn mmio_read(&mut self, bar: u32, off: u64, len: usize) -> u64 {
        self.stats.mmio += 1;
        if len == 0 || len > 8 {
            return 0;
        }
        if self.dead {
            return u64::MAX >> (64 - 8 * len);
        }
        let v = match bar {
            0 => {
                let off = off as u32;
                match len {
                    8 => hi_lo(self.bar0_read32(off.wrapping_add(4)), self.bar0_read32(off)),
                    4 => self.bar0_read32(off) as u64,
                    _ => {
                        let w = self.bar0_read32(off & !3) as u64;
                        (w >> (8 * (off & 3))) & ((1u64 << (8 * len)) - 1)
                    }
                }
            }
            2 => self.dbc.bar.read(off as usize, len),
            4 => {
                let mem = &self.bar4;
                let mut b = [0u8; 8];
                let o = off as usize;
                if o.checked_add(len).is_some_and(|e| e <= mem.len()) && len <= 8 {
                    b[..len].copy_from_slice(&mem[o..o + len]);
                }
                u64::from_le_bytes(b)
            }
            _ => 0,
        };
        debug!(target: "mmio", "BAR{bar} read  {off:#06x}/{len} -> {v:#x}");
        v
    }

    /// Write to BAR `bar`.
    pub fn mmio_write(&mut self, bar: u32, off: u64, len: usize, val: u64) {
        self.stats.mmio += 1;
        debug!(target: "mmio", "BAR{bar} write {off:#06x}/{len} <- {val:#x}");
        if self.dead {
            return;
        }
        match bar {
            0 => {
                let off = off as u32;
                match len {
                    8 => {
                        // High half first, like the host's doorbell order.
                        self.bar0_write32(off.wrapping_add(4), (val >> 32) as u32);
                        self.bar0_write32(off, val as u32);
                    }
                    4 => self.bar0_write32(off, val as u32),
                    _ => warn!(target: "mhi", "ignored {len}-byte write to MHI register {off:#x}"),
                }
            }
            2 => {
                self.dbc.bar.write(off as usize, len, val);
                if DbcEngine::is_doorbell_reg(off) {
                    self.push(Work::DbcService);
                }
            }
            4 => {
                let mem = &mut self.bar4;
                let o = off as usize;
                if o.checked_add(len).is_some_and(|e| e <= mem.len()) && len <= 8 {
                    mem[o..o + len].copy_from_slice(&val.to_le_bytes()[..len]);
                }
            }
            _ => {}
        }
    }

    fn bar0_read32(&mut self, off: u32) -> u32 {
        let b = layout::BHI;
        match off {
            reg::MHIREGLEN => 0x1000,
            reg::MHIVER => 0x0100_0000,
            reg::MHICFG => self.mhicfg,
            reg::CHDBOFF => layout::CHDB,
            reg::ERDBOFF => layout::ERDB,
            reg::BHIOFF => layout::BHI,
            reg::BHIEOFF | reg::DEBUGOFF => 0,
            reg::MHICTRL => self.mhictrl,
            reg::MHISTATUS => self.mhistatus(),
            0x58..=0xa4 => self.latches[(off / 4) as usize],
            reg::SOC_RESET_REQ => 0,
            reg::SOC_HW_VERSION => 0x6011_0200,
            reg::QTIMER_LO => self.qtimer() as u32,
            reg::QTIMER_HI => (self.qtimer() >> 32) as u32,
            o if (b..b + bhi::END).contains(&o) => self.bhi_read(o - b),
            o if (layout::CHDB..layout::CHDB + 8 * mhi::NUM_CHANNELS as u32).contains(&o) => {
                let n = ((o - layout::CHDB) / 8) as usize;
                let c = &self.chans[n];
                if o % 8 == 0 {
                    c.wp as u32
                } else {
                    c.db_hi
                }
            }
            o if o == layout::ERDB => self.er_wp.unwrap_or(0) as u32,
            o if o == layout::ERDB + 4 => self.erdb_hi,
            _ => 0,
        }
    }

    fn bhi_read(&self, o: u32) -> u32 {
        match o {
            bhi::VERSION_MINOR => 0,
            bhi::VERSION_MAJOR => 1,
            bhi::IMGADDR_LOW => self.bhi.imgaddr as u32,
            bhi::IMGADDR_HIGH => (self.bhi.imgaddr >> 32) as u32,
            bhi::IMGSIZE => self.bhi.imgsize,
            bhi::IMGTXDB => self.bhi.txdb,
            bhi::INTVEC => self.bhi.intvec,
            bhi::EXECENV => self.ee,
            bhi::STATUS => self.bhi.status,
            bhi::ERRCODE => self.bhi.errcode,
            0x34 | 0x38 | 0x3c => self.bhi.errdbg[((o - bhi::ERRDBG1) / 4) as usize],
            bhi::SERIALNU => self.opts.serial,
            bhi::SBLANTIROLLVER => 1,
            bhi::NUMSEG => 1,
            o if (bhi::MSMHWID..bhi::OEMPKHASH).contains(&o) => 0x0016_00e1,
            o if (bhi::OEMPKHASH..bhi::END).contains(&o) => 0x5a5a_0000 | o,
            _ => 0,
        }
    }

    fn bar0_write32(&mut self, off: u32, v: u32) {
        let b = layout::BHI;
        match off {
            reg::MHICFG => {
                self.mhicfg = v;
                debug!(target: "mhi", "MHICFG <- {v:#x} (NER {}, NHWER {})", (v >> 16) & 0xff, v >> 24);
            }
            reg::MHICTRL => self.mhictrl_write(v),
            reg::CRDB_LOWER => {
                let wp = hi_lo(self.crdb_hi, v);
                self.cmd_wp = Some(wp);
                debug!(target: "mhi", "command doorbell {wp:#x}");
                self.push(Work::CmdDoorbell);
            }
            reg::CRDB_HIGHER => self.crdb_hi = v,
            0x58..=0xa4 => {
                self.latches[(off / 4) as usize] = v;
            }
            reg::SOC_RESET_REQ => {
                if v & 1 != 0 {
                    info!(target: "mhi", "host requested SoC reset");
                    self.soc_reset();
                    if self.opts.reset_syserr {
                        self.push_after(Duration::from_millis(50), Work::PblSysErr);
                    }
                }
            }
            o if (b..b + bhi::END).contains(&o) => self.bhi_write(o - b, v),
            o if (layout::CHDB..layout::CHDB + 8 * mhi::NUM_CHANNELS as u32).contains(&o) => {
                let n = ((o - layout::CHDB) / 8) as usize;
                if o % 8 == 4 {
                    self.chans[n].db_hi = v;
                } else {
                    let wp = hi_lo(self.chans[n].db_hi, v);
                    if n == mhi::WAKE_DB {
                        debug!(target: "mhi", "device wake <- {wp}");
                        return;
                    }
                    self.chans[n].wp = wp;
                    debug!(target: "mhi", "channel {n} doorbell {wp:#x}");
                    self.push(Work::ChanDoorbell(n));
                }
            }
            o if o == layout::ERDB + 4 => self.erdb_hi = v,
            o if o == layout::ERDB => {
                let wp = hi_lo(self.erdb_hi, v);
                self.er_wp = Some(wp);
                debug!(target: "mhi", "event ring doorbell {wp:#x}");
                self.push(Work::ErDoorbell);
            }
            o if (layout::ERDB..layout::ERDB + 8 * layout::NUM_ER).contains(&o) => {}
            _ => {
                debug!(target: "mhi", "write to read-only/unimplemented register {off:#x} <- {v:#x} ignored")
            }
        }
    }

    fn bhi_write(&mut self, o: u32, v: u32) {
        match o {
            bhi::IMGADDR_LOW => self.bhi.imgaddr = (self.bhi.imgaddr & !0xffff_ffff) | v as u64,
            bhi::IMGADDR_HIGH => {
                self.bhi.imgaddr = (self.bhi.imgaddr & 0xffff_ffff) | ((v as u64) << 32)
            }
            bhi::IMGSIZE => self.bhi.imgsize = v,
            bhi::IMGTXDB => {
                self.bhi.txdb = v;
                info!(target: "bhi", "image doorbell: session {:#x}, image {:#x} size {}", v & 0x3fff_ffff, self.bhi.imgaddr, self.bhi.imgsize);
                self.push(Work::BhiLoad);
            }
            bhi::INTVEC => self.bhi.intvec = v,
            bhi::STATUS => self.bhi.status = v,
            _ => debug!(target: "bhi", "write to BHI +{o:#x} <- {v:#x} ignored"),
        }
    }

    fn mhictrl_write(&mut self, v: u32) {
        self.mhictrl = v;
        let req = ((v >> 8) & 0xff) as u8;
        debug!(target: "mhi", "MHICTRL <- {v:#x} (state {req}, reset {})", (v >> 1) & 1);
        if v & 2 != 0 {
            self.push(Work::MhiReset);
            return;
        }
        match (req, self.mhi_state) {
            (state::M0, state::READY) | (state::M0, state::M3) => self.push(Work::EnterM0),
            (state::M3, state::M0) => self.push(Work::EnterM3),
            (state::M2, _) | (state::RESET, _) => {}
            (r, s) if r == s => {}
            (r, s) => warn!(target: "mhi", "host requested MHI state {r} in state {s}: ignored"),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Work

    /// Perform queued work that is due at `now`; returns when the next timed work is due.
    pub fn run(&mut self, now: Instant) -> Option<Instant> {
        loop {
            let mut i = 0;
            while i < self.timed.len() {
                if self.timed[i].0 <= now {
                    let (_, w) = self.timed.remove(i);
                    self.work.push_back(w);
                } else {
                    i += 1;
                }
            }
            let Some(w) = self.work.pop_front() else {
                break;
            };
            self.do_work(w);
        }
        let t = self.timed.iter().map(|t| t.0).min();
        match (t, self.dbc_next(now)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Perform all queued work, including timed work, regardless of its due time (tests).
    pub fn run_all(&mut self) {
        for _ in 0..100_000 {
            while let Some(w) = self.work.pop_front() {
                self.do_work(w);
            }
            // The DMA bridge: registers as the host left them, computations finished at once.
            if self.dbc.any_active() && !self.dead && self.pci.bus_master() {
                let s = self
                    .dbc
                    .service(&mut self.dma, Instant::now() + Duration::from_secs(3600));
                for v in s.msi {
                    self.raise(v);
                }
                if s.progress {
                    continue;
                }
            }
            if self.timed.is_empty() {
                return;
            }
            let i = (0..self.timed.len())
                .min_by_key(|&i| self.timed[i].0)
                .unwrap();
            let (_, w) = self.timed.remove(i);
            self.work.push_back(w);
        }
        panic!("device work does not settle");
    }

    fn do_work(&mut self, w: Work) {
        if self.dead {
            return;
        }
        // Without bus mastering the device cannot reach host memory (DMA and MSIs are memory
        // writes): such work is dropped, as the transactions would be master-aborted.
        if !self.pci.bus_master() && !matches!(w, Work::BootSbl | Work::MhiReset) {
            warn!(target: "pci", "bus mastering disabled: dropping {w:?}");
            if w == Work::BhiLoad {
                self.bhi.status = bhi::STATUS_ERROR;
                self.bhi.errcode = 0x102;
            }
            return;
        }
        match w {
            Work::BhiLoad => self.bhi_load(),
            Work::BootSbl => {
                if self.ee == ee::PBL && self.bhi.status == bhi::STATUS_SUCCESS {
                    self.ee = ee::SBL;
                    self.mhi_state = state::READY;
                    info!(target: "mhi", "SBL running: EE SBL, MHI state READY");
                }
            }
            Work::MhiReset => self.mhi_reset(),
            Work::EnterM0 => self.enter_m0(),
            Work::EnterM3 => {
                self.mhi_state = state::M3;
                info!(target: "mhi", "M3");
                self.post_event(Element::state_change(state::M3));
            }
            Work::CmdDoorbell => self.process_cmd_ring(),
            Work::ChanDoorbell(n) => self.process_channel(n),
            Work::ErDoorbell => {
                if let (Some(er), Some(wp)) = (self.er.as_mut(), self.er_wp) {
                    if er.ring.contains(wp) {
                        er.grant = wp;
                    } else {
                        error!(target: "mhi", "event ring doorbell {wp:#x} outside the ring: ignored");
                    }
                }
                self.flush_events();
            }
            Work::EnterAmss(tries) => self.enter_amss(tries),
            Work::SendDl(n, msg) => {
                self.chans[n].pending.push_back(msg);
                self.flush_dl(n);
            }
            Work::SysErr => self.sys_err(),
            Work::DbcService => {
                self.dbc_service(Instant::now());
            }
            Work::SsrTimeout(gen) => {
                let due = self.ssr_deadline.is_some_and(|d| Instant::now() >= d);
                if due && self.ssr.timeout(gen) {
                    self.ssr_ended();
                }
            }
            Work::PblSysErr => {
                if self.ee == ee::PBL && self.mhi_state == state::RESET {
                    info!(target: "mhi", "PBL after the SoC reset: reporting it with SYS_ERR");
                    self.sys_err();
                }
            }
        }
    }

    /// Let the DMA bridge do what it can at `now`; returns its next compute deadline.
    pub fn dbc_service(&mut self, now: Instant) -> Option<Instant> {
        if self.dead || !self.pci.bus_master() || !self.dbc.any_active() {
            return None;
        }
        let s = self.dbc.service(&mut self.dma, now);
        for v in s.msi {
            self.raise(v);
        }
        s.next
    }

    /// When the worker should look at the DMA bridge again (register polling and compute
    /// completions), if at all.
    pub fn dbc_next(&mut self, now: Instant) -> Option<Instant> {
        let next = self.dbc_service(now);
        let poll = self.dbc.poll_interval(now).map(|d| now + d);
        match (next, poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn apply_control_changes(&mut self) {
        for i in std::mem::take(&mut self.control.released) {
            self.dbc.deactivate(i);
        }
        for i in std::mem::take(&mut self.control.newly_activated) {
            if let Some(o) = self.control.dbcs[i].clone() {
                self.dbc.activate(i, o.req_q, o.rsp_q, o.nelem);
            }
        }
        for (i, p) in std::mem::take(&mut self.control.bind) {
            if self.dbc.ch[i].active {
                self.dbc.bind(i, p);
            }
        }
    }

    fn raise(&mut self, vector: u32) {
        self.stats.msi += 1;
        if !self.irq.raise(vector) {
            debug!(target: "mhi", "MSI vector {vector} not delivered (not enabled)");
        }
    }

    fn dma_fault(&mut self, what: &str, f: DmaFault) {
        self.stats.dma_faults += 1;
        error!(target: "dma", "{what}: {f}");
    }

    /// Enter SYS_ERR (fault injection or fatal host misbehaviour).
    pub fn trigger_sys_err(&mut self) {
        self.push(Work::SysErr);
    }

    fn sys_err(&mut self) {
        error!(target: "mhi", "entering SYS_ERR (EE {})", self.ee);
        self.mhi_state = state::SYS_ERR;
        let v = self.bhi.intvec;
        self.raise(v);
    }

    /// Surprise removal: the device stops answering (all-ones reads), no DMA, no MSIs.
    pub fn surprise_remove(&mut self) {
        warn!(target: "fault", "surprise removal: the device is gone");
        self.dead = true;
        self.work.clear();
        self.timed.clear();
    }

    fn bhi_load(&mut self) {
        if self.ee != ee::PBL {
            warn!(target: "bhi", "image doorbell outside PBL (EE {}): ignored", self.ee);
            return;
        }
        let (addr, size) = (self.bhi.imgaddr, self.bhi.imgsize as usize);
        let fail = |d: &mut Self, code: u32, why: String| {
            error!(target: "bhi", "image load failed: {why}");
            d.bhi.status = bhi::STATUS_ERROR;
            d.bhi.errcode = code;
            d.bhi.errdbg = [size as u32, addr as u32, (addr >> 32) as u32];
            let v = d.bhi.intvec;
            d.raise(v);
        };
        if size == 0 || size > 16 << 20 {
            return fail(self, 0x100, format!("bad image size {size}"));
        }
        if std::mem::take(&mut self.faults.fail_bhi) {
            return fail(self, 0x200, "injected fault".into());
        }
        let img = match self.dma.read_vec(addr, size) {
            Ok(v) => v,
            Err(f) => {
                self.dma_fault("BHI image read", f);
                return fail(
                    self,
                    0x101,
                    format!("DMA read of {size} bytes at {addr:#x} failed"),
                );
            }
        };
        let mut res = firmware::verify(&img, firmware::SBL_ID);
        if res.is_ok() {
            if let Some(dir) = &self.opts.firmware_dir {
                if let Ok(reference) = std::fs::read(dir.join("sbl.bin")) {
                    if reference != img {
                        res = Err(firmware::ImageError::NotReference);
                    }
                }
            }
        }
        match res {
            Ok(h) => {
                info!(target: "bhi", "SBL image received: {size} bytes, payload CRC {:#010x} verified", h.payload_crc);
                self.bhi.status = bhi::STATUS_SUCCESS;
                self.bhi.errcode = 0;
                let v = self.bhi.intvec;
                self.raise(v);
                let d = self.opts.sbl_boot_delay;
                self.push_after(d, Work::BootSbl);
            }
            Err(e) => fail(self, e as u32, format!("SBL image rejected: {e:?}")),
        }
    }

    fn mhi_reset(&mut self) {
        let was_syserr = self.mhi_state == state::SYS_ERR;
        self.forget_rings();
        self.mhictrl = 0;
        self.bhi.intvec = 0;
        self.work
            .retain(|w| matches!(w, Work::BhiLoad | Work::BootSbl));
        self.timed.retain(|(_, w)| matches!(w, Work::BootSbl));
        if was_syserr {
            info!(target: "mhi", "MHI reset after SYS_ERR: rebooting from PBL");
            let serial = self.opts.serial;
            self.soc_reset();
            self.opts.serial = serial;
            return;
        }
        self.sahara = self.reference_loader();
        self.faults.sahara_stalled = false;
        if self.ee == ee::AMSS {
            self.ssr_abort();
            self.control.reset();
            self.apply_control_changes();
        }
        self.mhi_state = if self.ee == ee::PBL {
            state::RESET
        } else {
            state::READY
        };
        info!(target: "mhi", "MHI reset done: EE {}, state {}", self.ee, self.mhi_state);
    }

    fn read_ctx_ring(&self, ctx: u64) -> Result<(Ring, u64, u64), String> {
        let b = self
            .dma
            .read_vec(ctx, CTX_SIZE as usize)
            .map_err(|f| f.to_string())?;
        let g = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let (base, len, rp, wp) = (g(12), g(20), g(28), g(36));
        let ring =
            Ring::new(base, len).ok_or_else(|| format!("bad ring base {base:#x} len {len:#x}"))?;
        if !ring.contains(rp) {
            return Err(format!("rp {rp:#x} outside ring {base:#x}+{len:#x}"));
        }
        Ok((ring, rp, wp))
    }

    fn enter_m0(&mut self) {
        if self.mhi_state == state::M3 {
            self.mhi_state = state::M0;
            info!(target: "mhi", "M3 -> M0");
            self.post_event(Element::state_change(state::M0));
            return;
        }
        let ecabap = hi_lo(self.latches[0x64 / 4], self.latches[0x60 / 4]);
        let crcbap = hi_lo(self.latches[0x6c / 4], self.latches[0x68 / 4]);
        let er = self.read_ctx_ring(ecabap).and_then(|(ring, rp, wp)| {
            let msivec = self.dma.read_u32(ecabap + 8).map_err(|f| f.to_string())?;
            Ok(EventRing {
                ring,
                rp,
                grant: wp,
                msivec,
            })
        });
        let cmd = self
            .read_ctx_ring(crcbap)
            .map(|(ring, rp, _)| CmdRing { ring, rp });
        match (er, cmd) {
            (Ok(mut er), Ok(cmd)) => {
                if let Some(wp) = self.er_wp.filter(|w| er.ring.contains(*w)) {
                    er.grant = wp;
                }
                info!(target: "mhi", "M0: event ring {:#x}+{:#x} (msi {}), command ring {:#x}+{:#x}",
                    er.ring.base, er.ring.len, er.msivec, cmd.ring.base, cmd.ring.len);
                self.er = Some(er);
                self.cmd = Some(cmd);
                if self.cmd_wp.is_none_or(|w| !cmd.ring.contains(w)) {
                    self.cmd_wp = Some(cmd.rp);
                }
                self.mhi_state = state::M0;
                self.post_event(Element::state_change(state::M0));
                let e = self.ee;
                self.post_event(Element::ee_event(e));
                info!(target: "mhi", "posted M0 and EE {e} events");
                if self.cmd_wp != Some(cmd.rp) {
                    self.push(Work::CmdDoorbell);
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                error!(target: "mhi", "M0 request with unusable contexts ({e}): SYS_ERR");
                self.sys_err();
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Event ring

    fn post_event(&mut self, ev: Element) {
        debug!(target: "mhi", "event {:?} queued", ev);
        self.pending_events.push_back(ev);
        self.flush_events();
    }

    fn flush_events(&mut self) {
        let Some(mut er) = self.er else { return };
        if self.mhi_state == state::SYS_ERR {
            return;
        }
        let ecabap = hi_lo(self.latches[0x64 / 4], self.latches[0x60 / 4]);
        let mut posted = 0;
        while let Some(ev) = self.pending_events.front().copied() {
            if er.rp == er.grant {
                debug!(target: "mhi", "event ring full ({} events waiting)", self.pending_events.len());
                break;
            }
            if let Err(f) = self.dma.write(er.rp, &ev.to_bytes()) {
                self.dma_fault("event ring write", f);
                self.er = None;
                self.sys_err();
                return;
            }
            self.pending_events.pop_front();
            er.rp = er.ring.next(er.rp);
            if let Err(f) = self.dma.write_u64(ecabap + 28, er.rp) {
                self.dma_fault("event context rp update", f);
            }
            posted += 1;
            self.stats.events += 1;
        }
        self.er = Some(er);
        if posted > 0 {
            self.raise(er.msivec);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Command ring

    fn process_cmd_ring(&mut self) {
        let (Some(mut cmd), Some(wp)) = (self.cmd, self.cmd_wp) else {
            warn!(target: "mhi", "command doorbell before M0: ignored until M0");
            return;
        };
        if !cmd.ring.contains(wp) {
            error!(target: "mhi", "command doorbell {wp:#x} outside the command ring: ignored");
            return;
        }
        let crcbap = hi_lo(self.latches[0x6c / 4], self.latches[0x68 / 4]);
        while cmd.rp != wp {
            let at = cmd.rp;
            let mut b = [0u8; 16];
            if let Err(f) = self.dma.read(at, &mut b) {
                self.dma_fault("command ring read", f);
                return;
            }
            let el = Element::from_bytes(&b);
            cmd.rp = cmd.ring.next(cmd.rp);
            self.cmd = Some(cmd);
            let chid = el.chid() as usize;
            let (code, started) = match el.kind() {
                pkt::START_CHAN => self.start_channel(chid),
                pkt::STOP_CHAN => (self.stop_channel(chid), false),
                pkt::RESET_CHAN => (self.reset_channel(chid), false),
                pkt::NOP => (code::SUCCESS, false),
                k => {
                    warn!(target: "mhi", "unknown command type {k:#x} at {at:#x}");
                    (code::UNDEFINED_ERR, false)
                }
            };
            self.post_event(Element::cmd_completion(at, code));
            let _ = self.dma.write_u64(crcbap + 28, cmd.rp);
            if started {
                self.channel_started(chid);
            }
        }
    }

    fn chan_ctx(&self, n: usize) -> u64 {
        hi_lo(self.latches[0x5c / 4], self.latches[0x58 / 4]) + n as u64 * CTX_SIZE
    }

    fn set_ctx_state(&mut self, n: usize, st: u32) {
        let a = self.chan_ctx(n);
        match self.dma.read_u32(a) {
            Ok(v) => {
                let _ = self.dma.write_u32(a, (v & !0xff) | st);
            }
            Err(f) => self.dma_fault("channel context update", f),
        }
    }

    fn start_channel(&mut self, n: usize) -> (u32, bool) {
        if n >= mhi::NUM_CHANNELS || n == mhi::WAKE_DB {
            warn!(target: "mhi", "START for invalid channel {n}");
            return (code::UNDEFINED_ERR, false);
        }
        let a = self.chan_ctx(n);
        let chtype = match self.dma.read_u32(a + 4) {
            Ok(t) => t,
            Err(f) => {
                self.dma_fault("channel context read", f);
                return (code::UNDEFINED_ERR, false);
            }
        };
        let (ring, rp, wp) = match self.read_ctx_ring(a) {
            Ok(r) => r,
            Err(e) => {
                warn!(target: "mhi", "START channel {n}: {e}");
                return (code::UNDEFINED_ERR, false);
            }
        };
        if chtype != 1 && chtype != 2 {
            warn!(target: "mhi", "START channel {n}: bad channel type {chtype}");
            return (code::UNDEFINED_ERR, false);
        }
        let c = &mut self.chans[n];
        c.state = ChState::Running;
        c.ul = chtype == 1;
        c.ring = ring;
        c.rp = rp;
        c.wp = if ring.contains(wp) { wp } else { rp };
        c.partial.clear();
        info!(target: "mhi", "channel {n} ({}) started: ring {:#x}+{:#x}", if c.ul { "UL" } else { "DL" }, ring.base, ring.len);
        self.set_ctx_state(n, mhi::chstate::RUNNING);
        (code::SUCCESS, true)
    }

    fn stop_channel(&mut self, n: usize) -> u32 {
        match self.chans.get_mut(n) {
            Some(c) if c.state != ChState::Disabled => {
                c.state = ChState::Stopped;
                info!(target: "mhi", "channel {n} stopped");
                self.set_ctx_state(n, mhi::chstate::STOP);
                code::SUCCESS
            }
            _ => {
                warn!(target: "mhi", "STOP for channel {n} that is not started");
                code::UNDEFINED_ERR
            }
        }
    }

    fn reset_channel(&mut self, n: usize) -> u32 {
        if n >= mhi::NUM_CHANNELS {
            return code::UNDEFINED_ERR;
        }
        let pending = self.chans[n].pending.len();
        self.chans[n] = Chan::default();
        info!(target: "mhi", "channel {n} reset ({pending} pending messages dropped)");
        self.set_ctx_state(n, mhi::chstate::DISABLED);
        code::SUCCESS
    }

    fn channel_started(&mut self, n: usize) {
        match (self.ee, n) {
            (ee::SBL, ch::SAHARA_DL) => {
                let acts = self.sahara.start();
                self.sahara_actions(acts);
            }
            (ee::SBL, ch::TIMESYNC_DL) => {
                info!(target: "mhi", "boot timesync: asking the host for its time");
                self.queue_dl(ch::TIMESYNC_DL, timesync_header(TS_CMD_TO_HOST).to_vec());
            }
            (ee::SBL, ch::LOGGING_DL) => {
                self.bootlog = BootLog::default();
                for l in BOOT_LOG {
                    let line = l
                        .replace("{serial}", &format!("{:08X}", self.opts.serial))
                        .replace("{images}", &firmware::AIC100_SAHARA_IDS.len().to_string());
                    let b = line.into_bytes();
                    let kept = b.strip_suffix(&[0]).unwrap_or(&b);
                    self.bootlog.text.extend_from_slice(kept);
                    self.bootlog.messages += 1;
                    self.queue_dl(ch::LOGGING_DL, b);
                }
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------------------------------
    // Transfer rings

    fn read_tre(&mut self, at: u64) -> Option<Element> {
        let mut b = [0u8; 16];
        match self.dma.read(at, &mut b) {
            Ok(()) => Some(Element::from_bytes(&b)),
            Err(f) => {
                self.dma_fault("transfer ring read", f);
                None
            }
        }
    }

    fn process_channel(&mut self, n: usize) {
        let c = &self.chans[n];
        if c.state != ChState::Running {
            debug!(target: "mhi", "doorbell on channel {n} that is not running: deferred");
            return;
        }
        if !c.ring.contains(c.wp) {
            error!(target: "mhi", "channel {n} doorbell {:#x} outside its ring: ignored", c.wp);
            return;
        }
        if !c.ul {
            self.flush_dl(n);
            return;
        }
        while self.chans[n].state == ChState::Running && self.chans[n].rp != self.chans[n].wp {
            let at = self.chans[n].rp;
            let Some(tre) = self.read_tre(at) else { return };
            let ring = self.chans[n].ring;
            self.chans[n].rp = ring.next(at);
            let len = tre.d0 & 0xffff;
            match self.dma.read_vec(tre.ptr, len as usize) {
                Ok(_) if self.chans[n].discard => {}
                Ok(data) if self.chans[n].partial.len() + data.len() > MAX_UL_MESSAGE => {
                    error!(target: "mhi", "channel {n}: message longer than {MAX_UL_MESSAGE} bytes: discarded");
                    self.chans[n].partial = Vec::new();
                    self.chans[n].discard = true;
                }
                Ok(data) => self.chans[n].partial.extend_from_slice(&data),
                Err(f) => {
                    self.dma_fault(&format!("channel {n} TRE buffer read"), f);
                    self.chans[n].partial.clear();
                    self.post_event(Element::tx_event(at, code::BAD_TRE, 0, n as u32));
                    continue;
                }
            }
            if tre.d1 & mhi::TRE_CHAIN != 0 {
                continue;
            }
            let msg = std::mem::take(&mut self.chans[n].partial);
            if tre.d1 & (mhi::TRE_IEOT | mhi::TRE_IEOB) != 0 {
                self.post_event(Element::tx_event(at, code::EOT, len, n as u32));
            }
            if std::mem::take(&mut self.chans[n].discard) {
                continue;
            }
            self.ul_message(n, msg);
        }
    }

    fn queue_dl(&mut self, n: usize, msg: Vec<u8>) {
        self.chans[n].pending.push_back(msg);
        self.flush_dl(n);
    }

    fn flush_dl(&mut self, n: usize) {
        loop {
            let c = &self.chans[n];
            if c.state != ChState::Running || c.ul || c.pending.is_empty() || c.rp == c.wp {
                return;
            }
            let at = c.rp;
            let Some(tre) = self.read_tre(at) else { return };
            let cap = (tre.d0 & 0xffff) as usize;
            if cap == 0 {
                // An empty TRE below the doorbell is one the host has not finished writing
                // (no host queues a 0-byte receive buffer): completing it would hand the host
                // a buffer it does not know. Look again shortly.
                warn!(target: "mhi", "channel {n}: TRE {at:#x} is empty, retrying");
                self.push_after(Duration::from_millis(1), Work::ChanDoorbell(n));
                return;
            }
            let ring = self.chans[n].ring;
            self.chans[n].rp = ring.next(at);
            let msg = self.chans[n].pending.pop_front().unwrap();
            let nb = msg.len().min(cap);
            let code = if msg.len() > cap {
                error!(target: "mhi", "channel {n}: {} byte message does not fit the {cap} byte host buffer: truncated", msg.len());
                code::OVERFLOW
            } else {
                code::EOT
            };
            if let Err(f) = self.dma.write(tre.ptr, &msg[..nb]) {
                self.dma_fault(&format!("channel {n} DL buffer write"), f);
                self.post_event(Element::tx_event(at, code::BAD_TRE, 0, n as u32));
                continue;
            }
            debug!(target: "mhi", "channel {n}: {nb} bytes sent into TRE {at:#x}");
            self.post_event(Element::tx_event(at, code, nb as u32, n as u32));
        }
    }

    // ---------------------------------------------------------------------------------------
    // Services

    fn ul_message(&mut self, n: usize, msg: Vec<u8>) {
        match (self.ee, n) {
            (ee::SBL, ch::SAHARA_UL) if self.faults.sahara_stalled => {
                debug!(target: "sahara", "stalled: {} byte host packet dropped", msg.len());
            }
            (ee::SBL, ch::SAHARA_UL) => {
                let acts = self.sahara.on_host_packet(&msg);
                self.sahara_actions(acts);
                if let Some(id) = self.faults.stall_at_image {
                    if self.sahara.loading() == Some(id) {
                        self.faults.stall_at_image = None;
                        self.faults.sahara_stalled = true;
                        warn!(target: "fault", "Sahara stalled as image {id} starts loading");
                    }
                }
                if let Some(id) = self.faults.sys_err_at_image {
                    if self.sahara.loading() == Some(id) {
                        self.faults.sys_err_at_image = None;
                        warn!(target: "fault", "SYS_ERR injected as image {id} starts loading");
                        self.sys_err();
                    }
                }
            }
            (ee::AMSS, ch::CONTROL_UL) => self.control_request(msg),
            (ee::AMSS, ch::SSR_UL) => {
                let out = self.ssr.on_host(&msg);
                self.ssr_send(out);
            }
            (ee::AMSS, ch::TIMESYNC_PERIODIC_UL) => self.periodic_timesync(&msg),
            (_, ch::TIMESYNC_PERIODIC_UL) | (_, ch::TIMESYNC_UL) => {
                let g = |o: usize| crate::wire::u64_at(&msg, o).unwrap_or(0);
                let ty = msg.get(5).copied().unwrap_or(0xff);
                info!(target: "mhi", "timesync on channel {n}: {} bytes, type {ty}, time {}.{:06} s", msg.len(), g(8), g(16));
                if n == ch::TIMESYNC_UL
                    && self.ee == ee::SBL
                    && ty == TS_SYNC_REQ
                    && msg.len() == 24
                {
                    self.queue_dl(ch::TIMESYNC_DL, timesync_header(TS_ACK_TO_HOST).to_vec());
                }
            }
            _ => {
                info!(target: "mhi", "channel {n}: {} byte message consumed (no service in EE {})", msg.len(), self.ee)
            }
        }
    }

    /// Send a RAS report on QAIC_STATUS (channel 15): `err_type` 0 CE, 1 UE, 2 UE non-fatal,
    /// `source` 0..6 (other values are sent as given), with a syndrome typical of the source.
    pub fn inject_ras(&mut self, err_type: u32, source: u32) -> Result<(), String> {
        self.send_ras(err_type, source, None)
    }

    /// Send a RAS report with one header field made invalid (`magic`, `version`, `type`, `len`
    /// or `errtype`); the host must drop it without counting it.
    pub fn inject_bad_ras(&mut self, field: &str, source: u32) -> Result<(), String> {
        if !RAS_BAD_FIELDS.contains(&field) {
            return Err(format!(
                "unknown RAS field '{field}' (one of {})",
                RAS_BAD_FIELDS.join(", ")
            ));
        }
        self.send_ras(0, source, Some(field))
    }

    fn send_ras(&mut self, err_type: u32, source: u32, bad: Option<&str>) -> Result<(), String> {
        if self.ee != ee::AMSS || !self.channel_running(ch::STATUS_DL) {
            return Err("the RAS channel (15) is not running".into());
        }
        self.ras_seq += 1;
        let mut w = crate::wire::Writer::new();
        w.u16(if bad == Some("magic") { 0xaa55 } else { 0x55aa })
            .u16(if bad == Some("version") { 3 } else { 1 })
            .u32(self.ras_seq)
            .u8(if bad == Some("type") { 2 } else { 0 }) // PUSH (2 = RESP)
            .u8(0)
            .u16(if bad == Some("len") { 88 } else { 92 })
            .i32(0)
            .u32(source)
            .u32(if bad == Some("errtype") { 3 } else { err_type })
            .u32(ras_threshold(source, err_type))
            .u32((err_type == 0) as u32)
            .u32((err_type != 0) as u32)
            .u32(32 + source) // interrupt number
            .bytes(&ras_syndrome(source, err_type, self.ras_seq));
        debug_assert_eq!(w.len(), 104);
        match bad {
            Some(f) => warn!(target: "fault", "malformed RAS report ({f}): source {source}"),
            None => warn!(target: "fault", "RAS report: source {source}, error type {err_type}"),
        }
        self.stats.ras_sent += 1;
        self.queue_dl(ch::STATUS_DL, w.buf);
        Ok(())
    }

    /// Crash the workload on activated DBC `dbc` and run the SSR sequence (uapi.md §11.2),
    /// with a crash dump if `dump`; each event and the dump announcement go out `step` after
    /// the host's previous answer (so that a test can watch the host's DBC state).
    pub fn start_ssr(&mut self, dbc: usize, dump: bool, step: Duration) -> Result<(), String> {
        if self.ee != ee::AMSS
            || !self.channel_running(ch::SSR_DL)
            || !self.channel_running(ch::SSR_UL)
        {
            return Err("the SSR channels (6/7) are not running".into());
        }
        if self.ssr.active() {
            return Err(format!("an SSR of DBC {} is in progress", self.ssr.dbc));
        }
        if self.control.dbcs.get(dbc).is_none_or(|d| d.is_none()) {
            return Err(format!("DBC {dbc} is not activated"));
        }
        // The workload dies: its channel stops at once (before the host, told by
        // BEFORE_SHUTDOWN, frees the queues) and its activation is gone; the DBC stays
        // unavailable until the SSR ends.
        warn!(target: "fault", "SSR: workload on DBC {dbc} crashed");
        self.control.dbcs[dbc] = None;
        self.control.qsm.dbc_released(dbc);
        self.dbc.deactivate(dbc);
        self.control.ssr_blocked = Some(dbc);
        self.ssr_step = step;
        let m = self.ssr.start(dbc as u32, dump);
        self.ssr_send(vec![m]);
        Ok(())
    }

    fn ssr_send(&mut self, msgs: Vec<Vec<u8>>) {
        let step = self.ssr_step;
        for m in msgs {
            let c = crate::wire::u32_at(&m, 0);
            if c == Some(crate::ssr::cmd::SSR_EVENT)
                || c == Some(crate::ssr::cmd::DEBUG_TRANSFER_INFO)
            {
                self.push_after(step, Work::SendDl(ch::SSR_DL, m));
            } else {
                self.queue_dl(ch::SSR_DL, m);
            }
        }
        if !self.ssr.active() {
            self.ssr_ended();
        } else if self.ssr.generation != self.ssr_armed {
            self.ssr_armed = self.ssr.generation;
            let t = self.opts.ssr_timeout + step;
            self.ssr_deadline = Some(Instant::now() + t);
            self.push_after(t, Work::SsrTimeout(self.ssr.generation));
        }
    }

    fn ssr_ended(&mut self) {
        self.ssr_deadline = None;
        if let Some(d) = self.control.ssr_blocked.take() {
            info!(target: "ssr", "DBC {d} free again");
        }
    }

    fn ssr_abort(&mut self) {
        self.ssr.abort();
        self.ssr_ended();
    }

    fn periodic_timesync(&mut self, msg: &[u8]) {
        let g = |o: usize| crate::wire::u64_at(msg, o).unwrap_or(0);
        let sig = crate::wire::u16_at(msg, 0).unwrap_or(0);
        let ty = msg.get(5).copied().unwrap_or(0xff);
        if msg.len() != 24 || sig != 0x55aa || ty != TS_SYNC_REQ {
            self.timesync.bad += 1;
            warn!(target: "mhi", "periodic timesync: {} bytes, signature {sig:#x}, type {ty}: not a SYNC_REQ", msg.len());
            return;
        }
        let now = Instant::now();
        let t = &mut self.timesync;
        let offset = g(8).wrapping_mul(1_000_000).wrapping_add(g(16));
        let qtimer_us = (self.boot_time.elapsed().as_nanos() * 192 / 10_000) as u64 * 10 / 192;
        let wall_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        t.count += 1;
        t.last_offset_us = offset;
        t.last_skew_ms = (offset.wrapping_add(qtimer_us).wrapping_sub(wall_us) as i64) / 1000;
        if let Some(prev) = t.last_at {
            let ms = now.duration_since(prev).as_millis() as u64;
            t.last_interval_ms = ms;
            t.min_interval_ms = if t.count == 2 {
                ms
            } else {
                t.min_interval_ms.min(ms)
            };
            t.max_interval_ms = t.max_interval_ms.max(ms);
        }
        t.last_at = Some(now);
        debug!(target: "mhi", "periodic timesync {}: offset {offset} us, skew {} ms", t.count, t.last_skew_ms);
    }

    fn sahara_actions(&mut self, acts: Vec<sahara::Action>) {
        for a in acts {
            match a {
                sahara::Action::Send(p) => self.queue_dl(ch::SAHARA_DL, p),
                sahara::Action::Verified(_) => {}
                sahara::Action::Complete => {
                    let d = self.opts.amss_boot_delay;
                    self.push_after(d, Work::EnterAmss(0));
                }
                sahara::Action::Halted(_) => {} // logged by the Sahara engine
            }
        }
    }

    fn enter_amss(&mut self, tries: u32) {
        if self.ee != ee::SBL {
            return;
        }
        // Let the last Sahara packet, the boot log and the boot timesync request reach the
        // host first (bounded wait): the SBL writes its log before it hands over, and the host
        // resets the SBL channels as soon as it sees EE AMSS, dropping whatever is not yet in
        // its buffers.
        // A host whose boot log client has not started its channel yet (the host creates the
        // SBL clients one after the other while Sahara runs) gets the same bounded wait.
        let sbl_dl = [ch::SAHARA_DL, ch::LOGGING_DL, ch::TIMESYNC_DL];
        let busy = sbl_dl.iter().any(|&n| {
            let c = &self.chans[n];
            c.state == ChState::Running && !c.pending.is_empty()
        }) || self.chans[ch::LOGGING_DL].state != ChState::Running;
        if busy && tries < 100 {
            self.push_after(Duration::from_millis(10), Work::EnterAmss(tries + 1));
            return;
        }
        // The host tears the SBL channels down locally; the device forgets them too.
        for c in self.chans.iter_mut() {
            *c = Chan::default();
        }
        self.ee = ee::AMSS;
        info!(target: "mhi", "mission mode: EE AMSS");
        self.post_event(Element::ee_event(ee::AMSS));
    }

    fn control_request(&mut self, msg: Vec<u8>) {
        let outcome = self.control.handle(&msg, &self.dma);
        // Channels stop before the answer goes out (the host frees their memory when it
        // reads it); new channels start with their indices at 0.
        self.apply_control_changes();
        match outcome {
            Outcome::Drop(why) => warn!(target: "control", "request dropped: {why}"),
            Outcome::Respond(mut r) => {
                if self.faults.drop_next > 0 {
                    self.faults.drop_next -= 1;
                    warn!(target: "fault", "dropping control response ({} bytes)", r.len());
                    return;
                }
                if self.faults.garble_next > 0 {
                    self.faults.garble_next -= 1;
                    let i = r.len() - 1;
                    r[i] ^= 0xa5;
                    if r.len() > 40 {
                        r[40] ^= 0x5a;
                    }
                    warn!(target: "fault", "garbling control response ({} bytes)", r.len());
                }
                self.stats.control_responses += 1;
                let d = self.faults.delay_response;
                if d.is_zero() {
                    self.queue_dl(ch::CONTROL_DL, r);
                } else {
                    warn!(target: "fault", "delaying control response by {d:?}");
                    self.push_after(d, Work::SendDl(ch::CONTROL_DL, r));
                }
            }
        }
    }
}
