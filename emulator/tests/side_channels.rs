// SPDX-License-Identifier: MIT OR Apache-2.0
//! The mission-mode side channels driven by a fake host that behaves like the one in uapi.md
//! §11: SSR (events, crash dump, NACKs, a silent host, protocol errors), RAS reports of every
//! source and malformed ones, periodic timesync bookkeeping, the SBL boot log, and the PBL's
//! SYS_ERR after a host-requested SoC reset.

mod common;

use aic100_emu::device::Options;
use aic100_emu::dma::Dma;
use aic100_emu::mhi::{reg, state};
use aic100_emu::ssr::{self, cmd, event};
use common::*;
use std::time::Duration;

/// Host chunk buffer for MEMORY_READ_RSP (64 KiB minus the C driver's bookkeeping header).
const CHUNK_BUF: usize = 65488;

fn activate(req_q: u64, n: u32) -> Vec<u8> {
    let buf_len = (68 * n + 256).div_ceil(4096) * 4096;
    let mut t = Vec::new();
    for v in [9u32, 40] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    t.extend_from_slice(&req_q.to_le_bytes());
    t.extend_from_slice(&(req_q + buf_len as u64 - 4 * n as u64).to_le_bytes());
    for v in [n, n, buf_len, 0] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    t
}

/// Activate a DBC for `handle`; returns its id.
fn activate_dbc(h: &mut Host, seq: u32, handle: u32) -> u32 {
    let r = h
        .control(&control_msg(
            seq,
            handle,
            &[activate(0x4000_0000 + seq as u64 * 0x10000, 64)],
            true,
        ))
        .unwrap();
    assert_eq!(le32(&r, 40), 0, "ACTIVATE status");
    le32(&r, 44)
}

fn msg(c: u32, dbc: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for v in [c, 12 + body.len() as u32, dbc] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(body);
    m
}

fn ssr_host() -> (Host, u32, u32) {
    let mut h = Host::new();
    h.boot_to_amss();
    assert_eq!(h.start_channel(6, 32), 1);
    assert_eq!(h.start_channel(7, 32), 1);
    let a = activate_dbc(&mut h, 1, 7);
    let b = activate_dbc(&mut h, 2, 8);
    (h, a, b)
}

/// Receive one SSR message in a freshly posted 32-byte buffer.
fn recv32(h: &mut Host) -> Vec<u8> {
    h.recv_dl(7, 32).expect("SSR message")
}

fn event_rsp(h: &mut Host, dbc: u32, ev: u32) {
    h.send_ul(6, &msg(cmd::SSR_EVENT_RSP, dbc, &ev.to_le_bytes()), 64);
}

fn expect_event(m: &[u8], dbc: u32, ev: u32) {
    assert_eq!(
        (le32(m, 0), le32(m, 4), le32(m, 8), le32(m, 12)),
        (cmd::SSR_EVENT, 16, dbc, ev),
        "expected event {ev:#x}"
    );
}

/// MEMORY_READ; the answer comes in a chunk buffer posted before.
fn mem_read(h: &mut Host, dbc: u32, addr: u64, len: u64) -> Vec<u8> {
    let (tre, buf) = h.post_dl(7, CHUNK_BUF);
    let mut body = 0u32.to_le_bytes().to_vec();
    body.extend_from_slice(&addr.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    h.send_ul(6, &msg(cmd::MEMORY_READ, dbc, &body), 64);
    let r = h.wait_dl(7, tre, buf).expect("MEMORY_READ_RSP");
    assert_eq!(le32(&r, 0), cmd::MEMORY_READ_RSP);
    assert_eq!(le32(&r, 4) as usize, r.len());
    assert_eq!(le32(&r, 8), dbc);
    assert!(r.len() - 16 <= len as usize);
    r[16..].to_vec()
}

/// Download the dump the way the C host does; returns the file it would publish.
fn download(h: &mut Host, dbc: u32, tbl_addr: u64, tbl_len: u64) -> Vec<u8> {
    let max = (CHUNK_BUF - 16) as u64;
    let mut table = Vec::new();
    while (table.len() as u64) < tbl_len {
        let off = table.len() as u64;
        let d = mem_read(h, dbc, tbl_addr + off, max.min(tbl_len - off));
        table.extend_from_slice(&d);
    }
    let mut file = Vec::new();
    let total: u64 = table.chunks(64).map(|e| le64(e, 16)).sum();
    for v in [ssr::DUMP_MAGIC, 1, 32 + tbl_len + total, tbl_len] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    file.extend_from_slice(&table);
    for e in table.chunks(64) {
        let (base, len) = (le64(e, 8), le64(e, 16));
        let mut got = 0u64;
        while got < len {
            let d = mem_read(h, dbc, base + got, max.min(len - got));
            assert!(!d.is_empty());
            got += d.len() as u64;
            file.extend_from_slice(&d);
        }
    }
    file
}

#[test]
fn ssr_with_crash_dump_runs_every_event_serves_the_dump_and_frees_only_that_dbc() {
    let (mut h, a, b) = ssr_host();
    assert_eq!((a, b), (0, 1));
    assert!(h.dev.dbc.ch[0].active && h.dev.dbc.ch[1].active);
    h.dev.start_ssr(0, true, Duration::ZERO).unwrap();
    assert!(!h.dev.dbc.ch[0].active, "crashed DBC stops at once");
    assert!(h.dev.dbc.ch[1].active, "other DBC unaffected");
    assert!(
        h.dev.start_ssr(1, true, Duration::ZERO).is_err(),
        "one SSR at a time"
    );
    for ev in [
        event::BEFORE_SHUTDOWN,
        event::AFTER_SHUTDOWN,
        event::BEFORE_POWER_UP,
    ] {
        let m = recv32(&mut h);
        expect_event(&m, 0, ev);
        // While the SSR runs, the DBC is not handed out again.
        if ev == event::AFTER_SHUTDOWN {
            assert_eq!(activate_dbc(&mut h, 3, 9), 2);
        }
        event_rsp(&mut h, 0, ev);
    }
    let info = recv32(&mut h);
    assert_eq!(
        (le32(&info, 0), le32(&info, 4), le32(&info, 8)),
        (cmd::DEBUG_TRANSFER_INFO, 32, 0)
    );
    let (tbl_addr, tbl_len) = (le64(&info, 16), le64(&info, 24));
    assert_eq!(tbl_len, 64 * ssr::NUM_REGIONS as u64);
    h.send_ul(6, &msg(cmd::DEBUG_TRANSFER_INFO_RSP, 0, &[0; 4]), 64);
    let file = download(&mut h, 0, tbl_addr, tbl_len);
    assert_eq!(file, ssr::expected_dump_file(0));
    // DONE: the host re-posts its 32-byte buffer first.
    let (tre, buf) = h.post_dl(7, 32);
    h.send_ul(6, &msg(cmd::DEBUG_TRANSFER_DONE, 0, &[0; 4]), 64);
    let done = h.wait_dl(7, tre, buf).unwrap();
    assert_eq!(
        (le32(&done, 0), le32(&done, 4), le32(&done, 12)),
        (cmd::DEBUG_TRANSFER_DONE_RSP, 16, 0)
    );
    let m = recv32(&mut h);
    expect_event(&m, 0, event::AFTER_POWER_UP);
    assert!(h.dev.ssr.active());
    event_rsp(&mut h, 0, event::AFTER_POWER_UP);
    h.poll_events();
    let st = h.dev.ssr.status();
    assert!(st.contains("outcome=complete"), "{st}");
    assert!(st.contains("events_acked=4") && st.contains("info=ack") && st.contains("done=1"));
    let payload = (file.len() - 32) as u64;
    assert!(st.contains(&format!("bytes_served={payload}")), "{st}");
    assert!(st.contains(&format!(
        "dump_crc32={:08x}",
        aic100_emu::wire::crc32(&file)
    )));
    assert!(h.dev.dbc.ch[1].active);
    assert_eq!(h.dev.control.dbcs_in_use(), 2, "DBCs 1 and 2");
    assert_eq!(activate_dbc(&mut h, 4, 10), 0, "DBC 0 free again");
}

#[test]
fn ssr_without_dump_and_with_nacks() {
    let (mut h, _, _) = ssr_host();
    h.dev.start_ssr(1, false, Duration::ZERO).unwrap();
    for ev in [
        event::BEFORE_SHUTDOWN,
        event::AFTER_SHUTDOWN,
        event::BEFORE_POWER_UP,
    ] {
        expect_event(&recv32(&mut h), 1, ev);
        event_rsp(&mut h, 1, ev);
    }
    // AFTER_POWER_UP NACKed twice (host still busy), then acknowledged.
    for _ in 0..2 {
        expect_event(&recv32(&mut h), 1, event::AFTER_POWER_UP);
        event_rsp(&mut h, 1, event::NACK);
    }
    expect_event(&recv32(&mut h), 1, event::AFTER_POWER_UP);
    event_rsp(&mut h, 1, event::AFTER_POWER_UP);
    h.poll_events();
    assert_eq!(h.dev.ssr.outcome, "complete");
    assert_eq!(h.dev.ssr.nacks, 2);
    assert_eq!(h.dev.ssr.mem_reads, 0);

    // A host that declines the dump gets AFTER_POWER_UP right away.
    let d = activate_dbc(&mut h, 5, 11);
    h.dev.start_ssr(d as usize, true, Duration::ZERO).unwrap();
    for ev in [
        event::BEFORE_SHUTDOWN,
        event::AFTER_SHUTDOWN,
        event::BEFORE_POWER_UP,
    ] {
        expect_event(&recv32(&mut h), d, ev);
        event_rsp(&mut h, d, ev);
    }
    assert_eq!(le32(&recv32(&mut h), 0), cmd::DEBUG_TRANSFER_INFO);
    h.send_ul(
        6,
        &msg(cmd::DEBUG_TRANSFER_INFO_RSP, d, &1u32.to_le_bytes()),
        64,
    );
    expect_event(&recv32(&mut h), d, event::AFTER_POWER_UP);
    event_rsp(&mut h, d, event::AFTER_POWER_UP);
    h.poll_events();
    assert_eq!(h.dev.ssr.outcome, "complete");
    assert_eq!(h.dev.ssr.info_answer, "nack");

    // Three NACKs of the same event: the device gives up.
    let d = activate_dbc(&mut h, 6, 12);
    h.dev.start_ssr(d as usize, false, Duration::ZERO).unwrap();
    for _ in 0..3 {
        expect_event(&recv32(&mut h), d, event::BEFORE_SHUTDOWN);
        event_rsp(&mut h, d, event::NACK);
    }
    h.poll_events();
    assert_eq!(h.dev.ssr.outcome, "nack-before-shutdown");
    assert!(h.dev.control.ssr_blocked.is_none());
}

#[test]
fn ssr_gives_up_on_a_silent_host_and_survives_protocol_errors() {
    let mut h = Host::with_options(Options {
        ssr_timeout: std::time::Duration::ZERO,
        ..opts()
    });
    h.boot_to_amss();
    assert_eq!(h.start_channel(6, 32), 1);
    assert_eq!(h.start_channel(7, 32), 1);
    let d = activate_dbc(&mut h, 1, 7);
    h.dev.start_ssr(d as usize, true, Duration::ZERO).unwrap();
    h.poll_events();
    assert_eq!(h.dev.ssr.outcome, "timeout-before-shutdown");
    assert_eq!(h.dev.ssr.timeouts, 1);
    assert!(h.dev.control.ssr_blocked.is_none());
    assert_eq!(activate_dbc(&mut h, 2, 7), d, "DBC free after the timeout");

    // Garbage on the SSR channel: counted and logged, never a panic.
    let mut h = Host::new();
    h.boot_to_amss();
    assert_eq!(h.start_channel(6, 32), 1);
    assert_eq!(h.start_channel(7, 32), 1);
    let d = activate_dbc(&mut h, 1, 7);
    h.send_ul(6, &msg(cmd::SSR_EVENT_RSP, d, &2u32.to_le_bytes()), 64); // no SSR running
    h.poll_events();
    h.dev.start_ssr(d as usize, true, Duration::ZERO).unwrap();
    expect_event(&recv32(&mut h), d, event::BEFORE_SHUTDOWN);
    let bad: Vec<Vec<u8>> = vec![
        vec![1, 2, 3],
        msg(0x4242, d, &[0; 4]),
        msg(cmd::SSR_EVENT_RSP, d + 1, &2u32.to_le_bytes()),
        msg(cmd::SSR_EVENT_RSP, d, &[0; 8]),
        msg(cmd::SSR_EVENT_RSP, d, &4u32.to_le_bytes()),
        msg(cmd::MEMORY_READ, d, &[0; 20]),
        msg(cmd::DEBUG_TRANSFER_DONE, d, &[0; 4]),
        msg(cmd::DEBUG_TRANSFER_INFO_RSP, d, &[0; 4]),
    ];
    for m in &bad {
        h.send_ul(6, m, 64);
    }
    h.poll_events();
    assert_eq!(h.dev.ssr.protocol_errors, 1 + bad.len() as u64);
    assert!(
        h.dev.ssr.active(),
        "still waiting for BEFORE_SHUTDOWN's answer"
    );
    event_rsp(&mut h, d, event::BEFORE_SHUTDOWN);
    expect_event(&recv32(&mut h), d, event::AFTER_SHUTDOWN);
    // A reset in the middle ends the SSR.
    let c = h.r32(reg::MHICTRL);
    h.w32(reg::MHICTRL, c | 2);
    h.dev.run_all();
    assert_eq!(h.dev.ssr.outcome, "aborted");
}

#[test]
fn ssr_is_refused_without_channels_or_activation() {
    let mut h = Host::new();
    h.boot_to_amss();
    let d = activate_dbc(&mut h, 1, 7);
    assert!(
        h.dev.start_ssr(d as usize, true, Duration::ZERO).is_err(),
        "channels 6/7 not started"
    );
    assert_eq!(h.start_channel(6, 32), 1);
    assert_eq!(h.start_channel(7, 32), 1);
    assert!(
        h.dev.start_ssr(5, true, Duration::ZERO).is_err(),
        "DBC 5 not activated"
    );
    assert!(h.dev.start_ssr(99, true, Duration::ZERO).is_err());
    assert!(h.dev.start_ssr(d as usize, true, Duration::ZERO).is_ok());
}

fn ras_host() -> Host {
    let mut h = Host::new();
    h.boot_to_amss();
    assert_eq!(h.start_channel(14, 32), 1);
    assert_eq!(h.start_channel(15, 32), 1);
    h
}

#[test]
fn ras_reports_of_every_source_and_type_are_valid_with_a_syndrome() {
    let mut h = ras_host();
    for src in 0..7u32 {
        for ty in 0..3u32 {
            h.dev.inject_ras(ty, src).unwrap();
            let m = h.recv_dl(15, 104).expect("RAS report");
            assert_eq!(m.len(), 104);
            assert_eq!(u16::from_le_bytes([m[0], m[1]]), 0x55aa);
            assert_eq!(u16::from_le_bytes([m[2], m[3]]), 1);
            assert_eq!((m[8], u16::from_le_bytes([m[10], m[11]])), (0, 92));
            assert_eq!((le32(&m, 16), le32(&m, 20)), (src, ty));
            let syn = &m[40..];
            assert!(syn.iter().any(|&b| b != 0), "source {src} type {ty}");
            match src {
                1 if ty == 0 => assert_eq!(le32(syn, 0), 2, "bad_tlp"),
                1 if ty == 2 => assert_eq!(le32(syn, 28), 1, "poison_tlp"),
                1 => assert_eq!(syn[52], 3, "UE index"),
                5 => assert_eq!(syn[32], 2, "NSP id"),
                6 => assert!(le32(syn, 0) < 3 && (95..=125).contains(&le32(syn, 4))),
                _ => {}
            }
        }
    }
    assert_eq!(h.dev.stats.ras_sent, 21);
}

#[test]
fn malformed_ras_reports_break_exactly_one_field() {
    let mut h = ras_host();
    let good = {
        h.dev.inject_ras(0, 6).unwrap();
        h.recv_dl(15, 104).unwrap()
    };
    for (f, off, want) in [
        ("magic", 0, 0xaa55u32),
        ("version", 2, 3),
        ("type", 8, 2),
        ("len", 10, 88),
        ("errtype", 20, 3),
    ] {
        h.dev.inject_bad_ras(f, 6).unwrap();
        let m = h.recv_dl(15, 104).unwrap();
        let v = match off {
            0 | 2 | 10 => u16::from_le_bytes([m[off], m[off + 1]]) as u32,
            8 => m[8] as u32,
            _ => le32(&m, off),
        };
        assert_eq!(v, want, "{f}");
        assert_eq!(m[40..], good[40..], "{f}: same syndrome");
    }
    assert!(h.dev.inject_bad_ras("crc", 0).is_err());
}

#[test]
fn periodic_timesync_is_counted_with_offset_skew_and_intervals() {
    let mut h = Host::new();
    h.boot_to_amss();
    assert_eq!(h.start_channel(22, 32), 1);
    assert_eq!(h.start_channel(23, 32), 1);
    for i in 0..3 {
        let q = h.dev.mmio_read(0, 0xa28, 8);
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let off = now_us - q * 10 / 192;
        let mut m = vec![0xaa, 0x55, 0, 0, 0, 1, 0, 0];
        m.extend_from_slice(&(off / 1_000_000).to_le_bytes());
        m.extend_from_slice(&(off % 1_000_000).to_le_bytes());
        h.send_ul(22, &m, 24);
        h.poll_events();
        assert_eq!(h.dev.timesync.count, i + 1);
        assert_eq!(h.dev.timesync.last_offset_us, off);
        assert!(
            h.dev.timesync.last_skew_ms.abs() < 100,
            "{:?}",
            h.dev.timesync
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(h.dev.timesync.min_interval_ms >= 20);
    assert!(h.dev.timesync.max_interval_ms >= h.dev.timesync.min_interval_ms);
    h.send_ul(22, &[0xaa, 0x55, 0, 0, 0, 0, 0, 0], 24);
    h.poll_events();
    assert_eq!((h.dev.timesync.count, h.dev.timesync.bad), (3, 1));
}

#[test]
fn sbl_boot_log_is_several_lines_and_matches_what_the_device_reports() {
    let mut h = Host::new();
    h.boot_to_sbl();
    assert_eq!(h.start_channel(12, 32), 1);
    assert_eq!(h.start_channel(13, 32), 1);
    let mut log = Vec::new();
    let mut n = 0;
    while let Some(m) = h.recv_dl(13, 512) {
        log.extend_from_slice(m.strip_suffix(&[0]).unwrap_or(&m));
        n += 1;
    }
    assert_eq!(n, aic100_emu::device::BOOT_LOG.len());
    assert_eq!(h.dev.bootlog.messages as usize, n);
    assert_eq!(log, h.dev.bootlog.text);
    let text = String::from_utf8(log).unwrap();
    assert!(text.starts_with("aic100-emu SBL: boot log start\n"));
    assert!(text.contains(&format!("SBL: serial {:08X},", h.dev.opts.serial)));
    assert_eq!(text.lines().count(), n);
}

#[test]
fn soc_reset_with_reset_syserr_reports_sys_err_from_pbl() {
    let mut h = Host::with_options(Options {
        reset_syserr: true,
        ..opts()
    });
    h.boot_to_amss();
    h.w32(reg::SOC_RESET_REQ, 1);
    h.dev.run_all();
    assert_eq!(h.ee(), 0, "PBL");
    assert_eq!(h.dev.mhi_state(), state::SYS_ERR);
    // Without the option the card waits quietly in PBL.
    let mut h = Host::new();
    h.boot_to_amss();
    h.w32(reg::SOC_RESET_REQ, 1);
    h.dev.run_all();
    assert_eq!(h.dev.mhi_state(), state::RESET);
    let _ = h.dev.dma.read_u32(CTX);
}
