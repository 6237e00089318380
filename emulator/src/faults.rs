// SPDX-License-Identifier: MIT OR Apache-2.0
//! Fault-injection and inspection commands of the `--control` socket.
//!
//! The socket takes one command per line and answers one line, `ok ...` or `error ...`:
//!
//! | command | effect |
//! |---------|--------|
//! | `delay-response MS` | delay every control (QAIC_CONTROL) response by MS milliseconds (0 = off) |
//! | `drop-next-response [N]` | drop the next N (default 1) control responses |
//! | `garble-next-response [N]` | corrupt the next N control responses (bad CRC / payload) |
//! | `fail-next-bhi` | reject the next BHI image load with an error status |
//! | `ras ce\|ue\|uenf [SOURCE]` | send a RAS report on QAIC_STATUS (source 0..6, default 0) |
//! | `ras-bad FIELD [SOURCE]` | send a malformed CE report: FIELD = magic, version, type, len, errtype |
//! | `ssr DBC [dump\|nodump] [STEP_MS]` | crash the workload on activated DBC and run the SSR events (default dump; STEP_MS between events) |
//! | `ssr-status` | progress and outcome of the last SSR, dump bytes served, expected dump file |
//! | `timesync-status` | periodic timesync messages received: count, offset, skew, intervals |
//! | `bootlog-status` | the boot log of the last SBL boot: messages, bytes, CRC-32 |
//! | `sys-err` | enter MHI SYS_ERR and interrupt the host |
//! | `sys-err-at-image ID` | enter SYS_ERR when the SBL starts loading Sahara image ID (once) |
//! | `stall-at-image ID` | the SBL stops answering when it starts loading Sahara image ID (once; until a reset) |
//! | `surprise-remove` | the device disappears: all-ones reads, no DMA, no MSI |
//! | `status` | one line with EE, MHI state and counters |
//! | `log AREAS` | change the enabled log areas |
//! | `help` | list the commands |

use crate::device::{Device, Irq};
use crate::dma::Dma;
use std::time::Duration;

/// Parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Delay control responses.
    DelayResponse(u64),
    /// Drop the next N control responses.
    DropNext(u32),
    /// Garble the next N control responses.
    GarbleNext(u32),
    /// Fail the next BHI load.
    FailNextBhi,
    /// Send a RAS report (error type, source).
    Ras(u32, u32),
    /// Send a malformed RAS report (field, source).
    RasBad(String, u32),
    /// Subsystem restart of a DBC (DBC, with dump, ms between events).
    Ssr(usize, bool, u64),
    /// Report SSR state.
    SsrStatus,
    /// Report periodic timesync.
    TimesyncStatus,
    /// Report the boot log sent.
    BootlogStatus,
    /// Enter SYS_ERR.
    SysErr,
    /// Enter SYS_ERR when Sahara starts loading this image.
    SysErrAtImage(u32),
    /// Stop answering Sahara when it starts loading this image.
    StallAtImage(u32),
    /// Surprise removal.
    SurpriseRemove,
    /// Report status.
    Status,
    /// Set log areas.
    Log(String),
    /// Help text.
    Help,
}

/// Parse one command line.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut it = line.split_whitespace();
    let cmd = it.next().ok_or("empty command")?;
    let arg = it.next();
    let count = |a: Option<&str>| -> Result<u32, String> {
        a.map_or(Ok(1), |s| s.parse().map_err(|_| format!("bad count '{s}'")))
    };
    let no_arg = |c: Command| {
        if arg.is_some() {
            Err(format!("{cmd} takes no argument"))
        } else {
            Ok(c)
        }
    };
    let c = match cmd {
        "delay-response" => {
            let ms = arg.ok_or("delay-response needs MS")?;
            Command::DelayResponse(ms.parse().map_err(|_| format!("bad milliseconds '{ms}'"))?)
        }
        "drop-next-response" => Command::DropNext(count(arg)?),
        "garble-next-response" => Command::GarbleNext(count(arg)?),
        "fail-next-bhi" => no_arg(Command::FailNextBhi)?,
        "sys-err" => no_arg(Command::SysErr)?,
        "sys-err-at-image" => {
            let id = arg.ok_or("sys-err-at-image needs an image id")?;
            Command::SysErrAtImage(id.parse().map_err(|_| format!("bad image id '{id}'"))?)
        }
        "stall-at-image" => {
            let id = arg.ok_or("stall-at-image needs an image id")?;
            Command::StallAtImage(id.parse().map_err(|_| format!("bad image id '{id}'"))?)
        }
        "ras" => {
            let ty = match arg {
                Some("ce") => 0,
                Some("ue") => 1,
                Some("uenf") => 2,
                _ => return Err("ras needs ce, ue or uenf".into()),
            };
            let src = match it.next() {
                Some(s) => s.parse().map_err(|_| format!("bad RAS source '{s}'"))?,
                None => 0,
            };
            Command::Ras(ty, src)
        }
        "ras-bad" => {
            let f = arg.ok_or("ras-bad needs a field")?;
            if !crate::device::RAS_BAD_FIELDS.contains(&f) {
                return Err(format!("bad RAS field '{f}'"));
            }
            let src = match it.next() {
                Some(s) => s.parse().map_err(|_| format!("bad RAS source '{s}'"))?,
                None => 0,
            };
            Command::RasBad(f.to_string(), src)
        }
        "ssr" => {
            let d = arg.ok_or("ssr needs a DBC")?;
            let dbc = d.parse().map_err(|_| format!("bad DBC '{d}'"))?;
            let dump = match it.next() {
                None | Some("dump") => true,
                Some("nodump") => false,
                Some(o) => return Err(format!("ssr: '{o}' is neither dump nor nodump")),
            };
            let step = match it.next() {
                Some(s) => s.parse().map_err(|_| format!("bad STEP_MS '{s}'"))?,
                None => 0,
            };
            Command::Ssr(dbc, dump, step)
        }
        "ssr-status" => no_arg(Command::SsrStatus)?,
        "timesync-status" => no_arg(Command::TimesyncStatus)?,
        "bootlog-status" => no_arg(Command::BootlogStatus)?,
        "surprise-remove" => no_arg(Command::SurpriseRemove)?,
        "status" => no_arg(Command::Status)?,
        "log" => Command::Log(arg.unwrap_or("").to_string()),
        "help" => no_arg(Command::Help)?,
        other => return Err(format!("unknown command '{other}' (try help)")),
    };
    if it.next().is_some() {
        return Err("too many arguments".into());
    }
    Ok(c)
}

/// Apply a command to the device; returns the answer line (without newline).
pub fn apply<D: Dma, I: Irq>(dev: &mut Device<D, I>, c: Command) -> String {
    match c {
        Command::DelayResponse(ms) => {
            dev.faults.delay_response = Duration::from_millis(ms);
            format!("ok control responses delayed by {ms} ms")
        }
        Command::DropNext(n) => {
            dev.faults.drop_next += n;
            format!("ok dropping the next {} control responses", dev.faults.drop_next)
        }
        Command::GarbleNext(n) => {
            dev.faults.garble_next += n;
            format!("ok garbling the next {} control responses", dev.faults.garble_next)
        }
        Command::FailNextBhi => {
            dev.faults.fail_bhi = true;
            "ok next BHI load fails".into()
        }
        Command::Ras(ty, src) => match dev.inject_ras(ty, src) {
            Ok(()) => "ok RAS report queued".into(),
            Err(e) => format!("error {e}"),
        },
        Command::RasBad(f, src) => match dev.inject_bad_ras(&f, src) {
            Ok(()) => format!("ok malformed RAS report ({f}) queued"),
            Err(e) => format!("error {e}"),
        },
        Command::Ssr(dbc, dump, step) => match dev.start_ssr(dbc, dump, Duration::from_millis(step)) {
            Ok(()) => format!(
                "ok SSR of DBC {dbc} started ({})",
                if dump { "dump" } else { "nodump" }
            ),
            Err(e) => format!("error {e}"),
        },
        Command::SsrStatus => format!("ok {}", dev.ssr.status()),
        Command::TimesyncStatus => {
            let t = &dev.timesync;
            format!(
                "ok periodic={} bad={} last_offset_us={} skew_ms={} interval_ms={} min_interval_ms={} max_interval_ms={}",
                t.count,
                t.bad,
                t.last_offset_us,
                t.last_skew_ms,
                t.last_interval_ms,
                t.min_interval_ms,
                t.max_interval_ms
            )
        }
        Command::BootlogStatus => format!(
            "ok messages={} bytes={} crc32={:08x}",
            dev.bootlog.messages,
            dev.bootlog.text.len(),
            crate::wire::crc32(&dev.bootlog.text)
        ),
        Command::SysErr => {
            dev.trigger_sys_err();
            "ok SYS_ERR raised".into()
        }
        Command::SysErrAtImage(id) => {
            dev.faults.sys_err_at_image = Some(id);
            format!("ok SYS_ERR when image {id} starts loading")
        }
        Command::StallAtImage(id) => {
            dev.faults.stall_at_image = Some(id);
            format!("ok Sahara stalls when image {id} starts loading")
        }
        Command::SurpriseRemove => {
            dev.surprise_remove();
            "ok device removed".into()
        }
        Command::Status => format!(
            "ok ee={} mhi_state={} dead={} msi={} events={} control_requests={} control_responses={} dbcs_in_use={} dma_faults={} mmio={} ras_sent={} ssr={}",
            dev.exec_env(),
            dev.mhi_state(),
            dev.is_dead() as u8,
            dev.stats.msi,
            dev.stats.events,
            dev.control.requests,
            dev.stats.control_responses,
            dev.control.dbcs_in_use(),
            dev.stats.dma_faults,
            dev.stats.mmio,
            dev.stats.ras_sent,
            dev.ssr.outcome
        ),
        Command::Log(spec) => match crate::logging::parse_areas(&spec) {
            Ok(m) => {
                crate::logging::set_mask(m);
                format!("ok log areas '{spec}'")
            }
            Err(e) => format!("error {e}"),
        },
        Command::Help => "ok commands: delay-response MS | drop-next-response [N] | garble-next-response [N] | fail-next-bhi | ras ce|ue|uenf [SOURCE] | ras-bad magic|version|type|len|errtype [SOURCE] | ssr DBC [dump|nodump] [STEP_MS] | ssr-status | timesync-status | bootlog-status | sys-err | sys-err-at-image ID | stall-at-image ID | surprise-remove | status | log AREAS | help".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_commands_parse() {
        assert_eq!(parse("delay-response 250"), Ok(Command::DelayResponse(250)));
        assert_eq!(parse("drop-next-response"), Ok(Command::DropNext(1)));
        assert_eq!(parse("garble-next-response 3"), Ok(Command::GarbleNext(3)));
        assert_eq!(parse(" sys-err "), Ok(Command::SysErr));
        assert_eq!(parse("sys-err-at-image 4"), Ok(Command::SysErrAtImage(4)));
        assert_eq!(parse("stall-at-image 5"), Ok(Command::StallAtImage(5)));
        assert!(parse("stall-at-image").is_err());
        assert!(parse("stall-at-image x").is_err());
        assert!(parse("sys-err-at-image").is_err());
        assert_eq!(parse("surprise-remove"), Ok(Command::SurpriseRemove));
        assert!(parse("delay-response").is_err());
        assert!(parse("delay-response x").is_err());
        assert!(parse("sys-err now").is_err());
        assert!(parse("reboot").is_err());
        assert_eq!(parse("ras ue 6"), Ok(Command::Ras(1, 6)));
        assert_eq!(parse("ras ce"), Ok(Command::Ras(0, 0)));
        assert!(parse("ras bad").is_err());
        assert!(parse("ras ce 1 2").is_err());
        assert!(parse("").is_err());
        assert_eq!(parse("ssr 3"), Ok(Command::Ssr(3, true, 0)));
        assert_eq!(parse("ssr 0 nodump"), Ok(Command::Ssr(0, false, 0)));
        assert_eq!(parse("ssr 2 dump 300"), Ok(Command::Ssr(2, true, 300)));
        assert!(parse("ssr").is_err());
        assert!(parse("ssr 1 maybe").is_err());
        assert_eq!(parse("ras-bad len 2"), Ok(Command::RasBad("len".into(), 2)));
        assert!(parse("ras-bad crc").is_err());
        assert_eq!(parse("ssr-status"), Ok(Command::SsrStatus));
        assert_eq!(parse("timesync-status"), Ok(Command::TimesyncStatus));
        assert_eq!(parse("bootlog-status"), Ok(Command::BootlogStatus));
    }
}
