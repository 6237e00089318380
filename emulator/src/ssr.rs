// SPDX-License-Identifier: MIT OR Apache-2.0
//! Subsystem restart (SSR) of one workload, the device side of QAIC_SSR (UL 6 / DL 7; uapi.md
//! §11.2).
//!
//! A crash of the workload on an activated DBC is announced with the SSR_EVENT sequence
//! BEFORE_SHUTDOWN, AFTER_SHUTDOWN, BEFORE_POWER_UP, [crash dump], AFTER_POWER_UP. The device
//! sends one message and waits for the host's answer before the next one (the host keeps only
//! one 32-byte buffer posted). With a dump, DEBUG_TRANSFER_INFO announces a table of
//! [`NUM_REGIONS`] regions whose contents are fixed by [`dump_regions`]; the host reads table and
//! regions with MEMORY_READ and ends with DEBUG_TRANSFER_DONE, answered with DONE_RSP 0.
//!
//! This module is the protocol state machine only: it turns host messages into device
//! messages and keeps the counters the `ssr-status` command reports. The device
//! (`device.rs`) stops the DBC, sends the messages and arms the response timeout.

use crate::wire::{u32_at, u64_at, Writer};
use log::{info, warn};
use std::fmt;
use std::time::Duration;

/// Message codes (`cmd` of the 12-byte header).
pub mod cmd {
    /// Device announces a crash-dump table.
    pub const DEBUG_TRANSFER_INFO: u32 = 0x001;
    /// Host: 0 = will download, 1 = NACK.
    pub const DEBUG_TRANSFER_INFO_RSP: u32 = 0x002;
    /// Host reads device memory.
    pub const MEMORY_READ: u32 = 0x004;
    /// Device answers a MEMORY_READ.
    pub const MEMORY_READ_RSP: u32 = 0x008;
    /// Host finished the download.
    pub const DEBUG_TRANSFER_DONE: u32 = 0x010;
    /// Device: 0 = the dump is valid.
    pub const DEBUG_TRANSFER_DONE_RSP: u32 = 0x020;
    /// Device SSR event.
    pub const SSR_EVENT: u32 = 0x100;
    /// Host acknowledges an SSR event.
    pub const SSR_EVENT_RSP: u32 = 0x200;
}

/// SSR event values.
pub mod event {
    /// Negative acknowledgement (responses only).
    pub const NACK: u32 = 0x1;
    /// The workload is about to be shut down.
    pub const BEFORE_SHUTDOWN: u32 = 0x2;
    /// The workload is shut down.
    pub const AFTER_SHUTDOWN: u32 = 0x4;
    /// The subsystem is about to power up again.
    pub const BEFORE_POWER_UP: u32 = 0x8;
    /// The subsystem is up again.
    pub const AFTER_POWER_UP: u32 = 0x10;
}

/// How long the device waits for each host answer before it gives up on the host.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Device address of the crash-dump table.
pub const TABLE_ADDR: u64 = 0x1_f000_0000;
/// Number of regions in the dump table.
pub const NUM_REGIONS: usize = 3;
/// Largest MEMORY_READ_RSP payload the device sends; longer reads are answered short and the
/// host asks for the rest (uapi.md §11.2, step 2).
pub const MAX_READ_CHUNK: usize = 0x8000;
/// Same NACK retries for every event before the device gives up.
const MAX_RETRIES: u32 = 2;
/// Magic and version of the file the host publishes through devcoredump.
pub const DUMP_MAGIC: u64 = 0x1234_5678_90ab_cdef;

/// One crash-dump region in device memory.
#[derive(Debug, Clone)]
pub struct Region {
    /// Device address.
    pub base: u64,
    /// Table `desc` (at most 19 bytes, NUL padded).
    pub desc: &'static str,
    /// Table `filename` (at most 19 bytes, NUL padded).
    pub filename: &'static str,
    /// Contents.
    pub data: Vec<u8>,
}

/// The dump regions of a crash of the workload on `dbc` (deterministic, see emulator.rst):
///
/// 0. `crash-log` / `crash.txt` at 0x1_f010_0000: ASCII text naming the DBC;
/// 1. `nsp-tcm` / `tcm.bin` at 0x1_f020_0000, 100000 bytes: byte `o` =
///    `((o * 2654435761) >> 24) ^ dbc` (32-bit multiply);
/// 2. `dbc-regs` / `dbc.bin` at 0x1_f030_0000, 4096 bytes: byte `o` = `(o & 0xff) ^ 0x5a`.
pub fn dump_regions(dbc: u32) -> Vec<Region> {
    let log = format!(
        "aic100-emu NSP crash report\n\
         DBC {dbc}: workload stopped by an injected subsystem restart\n\
         fault: injected (ssr control command)\n\
         regions: crash.txt tcm.bin dbc.bin\n"
    );
    let tcm = (0..100_000u32)
        .map(|o| ((o.wrapping_mul(2_654_435_761) >> 24) as u8) ^ dbc as u8)
        .collect();
    let regs = (0..4096u32).map(|o| (o & 0xff) as u8 ^ 0x5a).collect();
    vec![
        Region {
            base: 0x1_f010_0000,
            desc: "crash-log",
            filename: "crash.txt",
            data: log.into_bytes(),
        },
        Region {
            base: 0x1_f020_0000,
            desc: "nsp-tcm",
            filename: "tcm.bin",
            data: tcm,
        },
        Region {
            base: 0x1_f030_0000,
            desc: "dbc-regs",
            filename: "dbc.bin",
            data: regs,
        },
    ]
}

/// The dump table (64-byte entries) describing `regions`.
pub fn dump_table(regions: &[Region]) -> Vec<u8> {
    let mut w = Writer::new();
    for r in regions {
        w.u64(0) // save preference: mandatory
            .u64(r.base)
            .u64(r.data.len() as u64)
            .cstr(r.desc, 20)
            .cstr(r.filename, 20);
    }
    w.buf
}

/// The file a host following uapi.md §11.2 publishes for a dump of `dbc`: magic, version 1,
/// file size, table length, the table, then the regions in table order.
pub fn expected_dump_file(dbc: u32) -> Vec<u8> {
    let regions = dump_regions(dbc);
    let table = dump_table(&regions);
    let size = 32 + table.len() + regions.iter().map(|r| r.data.len()).sum::<usize>();
    let mut w = Writer::new();
    w.u64(DUMP_MAGIC)
        .u64(1)
        .u64(size as u64)
        .u64(table.len() as u64)
        .bytes(&table);
    for r in &regions {
        w.bytes(&r.data);
    }
    w.buf
}

/// What the device waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No SSR in progress.
    Idle,
    /// SSR_EVENT_RSP for this event.
    Event(u32),
    /// DEBUG_TRANSFER_INFO_RSP.
    Info,
    /// MEMORY_READ or DEBUG_TRANSFER_DONE.
    Download,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Idle => write!(f, "idle"),
            Phase::Event(e) => write!(f, "{}", event_name(*e)),
            Phase::Info => write!(f, "info-rsp"),
            Phase::Download => write!(f, "download"),
        }
    }
}

/// Name of an event value.
pub fn event_name(e: u32) -> &'static str {
    match e {
        event::NACK => "nack",
        event::BEFORE_SHUTDOWN => "before-shutdown",
        event::AFTER_SHUTDOWN => "after-shutdown",
        event::BEFORE_POWER_UP => "before-power-up",
        event::AFTER_POWER_UP => "after-power-up",
        _ => "unknown-event",
    }
}

fn header(w: &mut Writer, cmd: u32, len: u32, dbc: u32) {
    w.u32(cmd).u32(len).u32(dbc);
}

/// An SSR_EVENT message (16 bytes).
pub fn event_msg(dbc: u32, ev: u32) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w, cmd::SSR_EVENT, 16, dbc);
    w.u32(ev);
    w.buf
}

/// The SSR engine: one SSR at a time, plus counters for inspection.
#[derive(Debug, Clone)]
pub struct Ssr {
    /// What the device waits for.
    pub phase: Phase,
    /// DBC of the current (or last) SSR.
    pub dbc: u32,
    /// The current (or last) SSR offers a crash dump.
    pub dump: bool,
    /// SSRs started.
    pub runs: u64,
    /// Outcome of the last SSR: `none`, `running`, `complete`, `timeout-<phase>`,
    /// `nack-<phase>`, `aborted`.
    pub outcome: String,
    /// Events sent (including retries) in the last SSR.
    pub events_sent: u32,
    /// Events the host acknowledged with an echo in the last SSR.
    pub events_acked: u32,
    /// NACKs received in the last SSR (events and DEBUG_TRANSFER_INFO).
    pub nacks: u32,
    /// The host's answer to DEBUG_TRANSFER_INFO: `-` none, `ack`, `nack`.
    pub info_answer: &'static str,
    /// MEMORY_READ requests served in the last SSR.
    pub mem_reads: u32,
    /// Payload bytes sent in MEMORY_READ_RSPs in the last SSR (table and regions).
    pub bytes_served: u64,
    /// DEBUG_TRANSFER_DONE received in the last SSR.
    pub done: bool,
    /// Malformed or unexpected host messages (all SSRs).
    pub protocol_errors: u64,
    /// Host answers that never came (all SSRs).
    pub timeouts: u64,
    /// Bumped whenever the device starts waiting anew; a timeout armed earlier is stale.
    pub generation: u64,
    retries: u32,
    regions: Vec<Region>,
    table: Vec<u8>,
}

impl Default for Ssr {
    fn default() -> Self {
        Ssr {
            phase: Phase::Idle,
            dbc: 0,
            dump: false,
            runs: 0,
            outcome: "none".into(),
            events_sent: 0,
            events_acked: 0,
            nacks: 0,
            info_answer: "-",
            mem_reads: 0,
            bytes_served: 0,
            done: false,
            protocol_errors: 0,
            timeouts: 0,
            generation: 0,
            retries: 0,
            regions: Vec::new(),
            table: Vec::new(),
        }
    }
}

impl Ssr {
    /// True while an SSR is in progress.
    pub fn active(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// Start an SSR of `dbc`; returns the first message (BEFORE_SHUTDOWN).
    pub fn start(&mut self, dbc: u32, dump: bool) -> Vec<u8> {
        self.runs += 1;
        self.dbc = dbc;
        self.dump = dump;
        self.outcome = "running".into();
        self.events_sent = 0;
        self.events_acked = 0;
        self.nacks = 0;
        self.info_answer = "-";
        self.mem_reads = 0;
        self.bytes_served = 0;
        self.done = false;
        self.regions = dump_regions(dbc);
        self.table = dump_table(&self.regions);
        info!(target: "ssr", "SSR of DBC {dbc} ({})", if dump { "with crash dump" } else { "no dump" });
        self.send_event(event::BEFORE_SHUTDOWN)
    }

    fn send_event(&mut self, ev: u32) -> Vec<u8> {
        self.phase = Phase::Event(ev);
        self.events_sent += 1;
        self.generation += 1;
        info!(target: "ssr", "DBC {}: SSR_EVENT {}", self.dbc, event_name(ev));
        event_msg(self.dbc, ev)
    }

    fn finish(&mut self, outcome: String) {
        info!(target: "ssr", "DBC {}: SSR ends: {outcome}", self.dbc);
        self.outcome = outcome;
        self.phase = Phase::Idle;
        self.generation += 1;
    }

    fn protocol_error(&mut self, why: String) -> Vec<Vec<u8>> {
        self.protocol_errors += 1;
        warn!(target: "ssr", "host protocol error: {why} (ignored)");
        Vec::new()
    }

    /// The response timeout armed at generation `gen` expired; true if that ended the SSR.
    pub fn timeout(&mut self, gen: u64) -> bool {
        if gen != self.generation || !self.active() {
            return false;
        }
        self.timeouts += 1;
        warn!(target: "ssr", "DBC {}: no host answer in {RESPONSE_TIMEOUT:?} (waiting for {}): SSR abandoned", self.dbc, self.phase);
        let o = format!("timeout-{}", self.phase);
        self.finish(o);
        true
    }

    /// The SSR is cut short by a device reset.
    pub fn abort(&mut self) {
        if self.active() {
            self.finish("aborted".into());
        }
    }

    /// A host message on the SSR UL channel; returns the device messages to send in order.
    pub fn on_host(&mut self, m: &[u8]) -> Vec<Vec<u8>> {
        let (Some(c), Some(len), Some(dbc)) = (u32_at(m, 0), u32_at(m, 4), u32_at(m, 8)) else {
            return self.protocol_error(format!("{}-byte message without a header", m.len()));
        };
        let want = match c {
            cmd::DEBUG_TRANSFER_INFO_RSP | cmd::DEBUG_TRANSFER_DONE | cmd::SSR_EVENT_RSP => 16,
            cmd::MEMORY_READ => 32,
            _ => return self.protocol_error(format!("unknown command {c:#x}")),
        };
        if len as usize != m.len() || m.len() != want {
            return self.protocol_error(format!(
                "command {c:#x}: header length {len}, {} bytes received, {want} expected",
                m.len()
            ));
        }
        if !self.active() {
            return self.protocol_error(format!("command {c:#x} while no SSR is in progress"));
        }
        if dbc != self.dbc {
            return self.protocol_error(format!(
                "command {c:#x} for DBC {dbc}, SSR is on DBC {}",
                self.dbc
            ));
        }
        match (c, self.phase) {
            (cmd::SSR_EVENT_RSP, Phase::Event(ev)) => self.event_rsp(ev, u32_at(m, 12).unwrap()),
            (cmd::DEBUG_TRANSFER_INFO_RSP, Phase::Info) => {
                self.generation += 1;
                if u32_at(m, 12) == Some(0) {
                    self.info_answer = "ack";
                    info!(target: "ssr", "DBC {}: host downloads the crash dump", self.dbc);
                    self.phase = Phase::Download;
                    Vec::new()
                } else {
                    self.info_answer = "nack";
                    self.nacks += 1;
                    info!(target: "ssr", "DBC {}: host declined the crash dump", self.dbc);
                    vec![self.send_event(event::AFTER_POWER_UP)]
                }
            }
            (cmd::MEMORY_READ, Phase::Download) => {
                let (addr, n) = (u64_at(m, 16).unwrap(), u64_at(m, 24).unwrap());
                vec![self.memory_read(addr, n)]
            }
            (cmd::DEBUG_TRANSFER_DONE, Phase::Download) => {
                self.done = true;
                info!(target: "ssr", "DBC {}: dump download done ({} reads, {} bytes)", self.dbc, self.mem_reads, self.bytes_served);
                let mut w = Writer::new();
                header(&mut w, cmd::DEBUG_TRANSFER_DONE_RSP, 16, self.dbc);
                w.u32(0);
                vec![w.buf, self.send_event(event::AFTER_POWER_UP)]
            }
            (c, p) => self.protocol_error(format!("command {c:#x} while waiting for {p}")),
        }
    }

    fn event_rsp(&mut self, ev: u32, answer: u32) -> Vec<Vec<u8>> {
        if answer == event::NACK {
            self.nacks += 1;
            if self.retries < MAX_RETRIES {
                self.retries += 1;
                warn!(target: "ssr", "DBC {}: host NACKed {}: sending it again", self.dbc, event_name(ev));
                return vec![self.send_event(ev)];
            }
            warn!(target: "ssr", "DBC {}: host NACKed {} {} times: giving up", self.dbc, event_name(ev), MAX_RETRIES + 1);
            self.finish(format!("nack-{}", event_name(ev)));
            return Vec::new();
        }
        if answer != ev {
            return self.protocol_error(format!(
                "EVENT_RSP {answer:#x} does not echo {}",
                event_name(ev)
            ));
        }
        self.events_acked += 1;
        self.retries = 0;
        match ev {
            event::BEFORE_SHUTDOWN => vec![self.send_event(event::AFTER_SHUTDOWN)],
            event::AFTER_SHUTDOWN => vec![self.send_event(event::BEFORE_POWER_UP)],
            event::BEFORE_POWER_UP if self.dump => {
                self.phase = Phase::Info;
                self.generation += 1;
                info!(target: "ssr", "DBC {}: DEBUG_TRANSFER_INFO table {TABLE_ADDR:#x}+{}", self.dbc, self.table.len());
                let mut w = Writer::new();
                header(&mut w, cmd::DEBUG_TRANSFER_INFO, 32, self.dbc);
                w.u32(0).u64(TABLE_ADDR).u64(self.table.len() as u64);
                vec![w.buf]
            }
            event::BEFORE_POWER_UP => vec![self.send_event(event::AFTER_POWER_UP)],
            _ => {
                self.finish("complete".into());
                Vec::new()
            }
        }
    }

    /// Device memory as the dump sees it: the table, the regions, zeros elsewhere.
    fn read_mem(&self, addr: u64, out: &mut [u8]) {
        out.fill(0);
        let blocks = std::iter::once((TABLE_ADDR, &self.table[..]))
            .chain(self.regions.iter().map(|r| (r.base, &r.data[..])));
        for (base, data) in blocks {
            let end = base + data.len() as u64;
            let (lo, hi) = (addr.max(base), (addr + out.len() as u64).min(end));
            if lo < hi {
                out[(lo - addr) as usize..(hi - addr) as usize]
                    .copy_from_slice(&data[(lo - base) as usize..(hi - base) as usize]);
            }
        }
    }

    fn memory_read(&mut self, addr: u64, n: u64) -> Vec<u8> {
        self.generation += 1;
        self.mem_reads += 1;
        let n = (n as usize).min(MAX_READ_CHUNK);
        let mut data = vec![0u8; n];
        if addr.checked_add(n as u64).is_some() {
            self.read_mem(addr, &mut data);
        }
        self.bytes_served += n as u64;
        log::debug!(target: "ssr", "MEMORY_READ {addr:#x}+{n}");
        let mut w = Writer::new();
        header(&mut w, cmd::MEMORY_READ_RSP, 16 + n as u32, self.dbc);
        w.u32(0).bytes(&data);
        w.buf
    }

    /// One-line report for the `ssr-status` command.
    pub fn status(&self) -> String {
        let (size, crc) = if self.dump {
            let f = expected_dump_file(self.dbc);
            (f.len(), crate::wire::crc32(&f))
        } else {
            (0, 0)
        };
        format!(
            "runs={} dbc={} dump={} phase={} outcome={} events_sent={} events_acked={} nacks={} info={} mem_reads={} bytes_served={} done={} protocol_errors={} timeouts={} dump_size={size} dump_crc32={crc:08x}",
            self.runs,
            self.dbc,
            self.dump as u8,
            self.phase,
            self.outcome,
            self.events_sent,
            self.events_acked,
            self.nacks,
            self.info_answer,
            self.mem_reads,
            self.bytes_served,
            self.done as u8,
            self.protocol_errors,
            self.timeouts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_file_layout() {
        let f = expected_dump_file(3);
        assert_eq!(u64_at(&f, 0), Some(DUMP_MAGIC));
        assert_eq!(u64_at(&f, 8), Some(1));
        assert_eq!(u64_at(&f, 16), Some(f.len() as u64));
        assert_eq!(u64_at(&f, 24), Some(64 * NUM_REGIONS as u64));
        assert_eq!(u64_at(&f, 32 + 8), Some(0x1_f010_0000));
        assert_eq!(&f[32 + 44..32 + 53], b"crash.txt");
        let text = 32 + 64 * NUM_REGIONS;
        assert!(f[text..].starts_with(b"aic100-emu NSP crash report\nDBC 3:"));
    }
}
