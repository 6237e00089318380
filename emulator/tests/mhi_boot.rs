// SPDX-License-Identifier: MIT OR Apache-2.0
//! MHI device side driven by a fake host: registers, BHI, READY/M0, events, command ring,
//! Sahara, mission mode, resets and SYS_ERR.

mod common;

use aic100_emu::dma::Dma;
use aic100_emu::firmware;
use aic100_emu::mhi::{bhi, pkt, reg, Element, TRE_IEOT};
use common::*;

#[test]
fn mhi_power_on_registers_are_pbl_reset_with_offsets_the_host_accepts() {
    let mut h = Host::new();
    let bhioff = h.r32(reg::BHIOFF);
    let chdb = h.r32(reg::CHDBOFF);
    let erdb = h.r32(reg::ERDBOFF);
    assert!(bhioff < 0x1000 && bhioff + bhi::END <= 0x1000);
    assert!(chdb < 0x1000 - 8 * 127, "CHDBOFF range check of the host");
    assert!(erdb < 0x1000 - 8);
    // The blocks do not overlap each other or the MHI control registers.
    assert!(bhioff >= 0xb4 && bhioff + bhi::END <= chdb && chdb + 0x400 <= erdb);
    assert_eq!(h.mhi_state(), 0, "MHI state RESET");
    assert_eq!(h.r32(reg::MHISTATUS) & 4, 0, "no SYSERR");
    assert_eq!(h.ee(), 0, "EE PBL");
    assert_eq!(h.r32(reg::MHIREGLEN), 0x1000);
    // No register the host could poll reads as all-ones (the host's link-down test).
    for off in (0..0x1000).step_by(4) {
        assert_ne!(h.r32(off), 0xffff_ffff, "register {off:#x}");
    }
}

#[test]
fn bhi_load_of_generated_sbl_reports_success_raises_msi_and_boots_sbl_ready() {
    let mut h = Host::new();
    let b = h.bhi();
    assert_ne!(h.r32(b + bhi::SERIALNU), 0);
    let st = h.bhi_load(&firmware::generated_image(firmware::SBL_ID));
    assert_eq!(st >> 30, 2, "STATUS success");
    assert_eq!(h.dev.irq.raised.first(), Some(&0), "MSI on INTVEC 0");
    assert_eq!(h.ee(), 1, "EE SBL");
    assert_eq!(
        h.r32(reg::MHISTATUS),
        (1 << 8) | 1,
        "READY state + READY bit"
    );
    assert_eq!(h.r32(reg::MHICTRL) & 2, 0);
}

#[test]
fn bhi_rejects_a_corrupted_sbl_with_error_status_and_errcode_and_stays_in_pbl() {
    let mut h = Host::new();
    let mut img = firmware::generated_image(firmware::SBL_ID);
    let n = img.len();
    img[n - 3] ^= 0xff;
    let st = h.bhi_load(&img);
    assert_eq!(st >> 30, 3, "STATUS error");
    let b = h.bhi();
    assert_eq!(
        h.r32(b + bhi::ERRCODE),
        firmware::ImageError::BadPayloadCrc as u32
    );
    assert_eq!(h.r32(b + bhi::ERRDBG1), n as u32);
    assert_eq!(h.ee(), 0);
    assert_eq!(
        h.dev.irq.raised,
        vec![0],
        "the host is woken to see the error"
    );
    // A Sahara image in place of the SBL is refused too.
    let st = h.bhi_load(&firmware::generated_image(1));
    assert_eq!(st >> 30, 3);
    assert_eq!(
        h.r32(b + bhi::ERRCODE),
        firmware::ImageError::WrongId as u32
    );
}

#[test]
fn bhi_image_address_outside_host_memory_is_an_error_status_not_a_crash() {
    let mut h = Host::new();
    let b = h.bhi();
    h.w32(b + bhi::IMGADDR_HIGH, 0x7);
    h.w32(b + bhi::IMGADDR_LOW, 0);
    h.w32(b + bhi::IMGSIZE, 4096);
    h.w32(b + bhi::IMGTXDB, 1);
    h.dev.run_all();
    assert_eq!(h.r32(b + bhi::STATUS) >> 30, 3);
    assert_eq!(h.dev.stats.dma_faults, 1);
    assert_eq!(h.ee(), 0);
}

#[test]
fn fail_next_bhi_fault_fails_exactly_one_load() {
    let mut h = Host::new();
    h.dev.faults.fail_bhi = true;
    let img = firmware::generated_image(firmware::SBL_ID);
    assert_eq!(h.bhi_load(&img) >> 30, 3);
    assert_eq!(h.bhi_load(&img) >> 30, 2);
}

#[test]
fn m0_request_posts_m0_state_change_then_ee_sbl_event_with_msi() {
    let mut h = Host::new();
    h.bhi_load(&firmware::generated_image(firmware::SBL_ID));
    h.dev.irq.raised.clear();
    h.init_mmio_and_m0();
    assert_eq!(h.mhi_state(), 2);
    let ev = h.poll_events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0], Element::state_change(2), "M0 first");
    assert_eq!(ev[1], Element::ee_event(1), "then EE SBL");
    assert!(!h.dev.irq.raised.is_empty());
    // The device published its write pointer in the event context.
    assert_eq!(h.dev.dma.read_u64(ECTX + 28).unwrap(), ER + 32);
}

#[test]
fn command_ring_start_completes_with_success_and_marks_the_context_running() {
    let mut h = Host::new();
    h.boot_to_sbl();
    assert_eq!(h.start_channel(12, 32), 1);
    let chcfg = h.dev.dma.read_u32(CTX + 12 * 44).unwrap();
    assert_eq!(chcfg & 0xff, 2, "CHSTATE RUNNING");
    assert!(h.dev.channel_running(12));
    // RESET then forgets the channel.
    let at = h.command(pkt::RESET_CHAN, 12);
    let ev = h.poll_events();
    assert!(ev.iter().any(|e| *e == Element::cmd_completion(at, 1)));
    assert!(!h.dev.channel_running(12));
    assert_eq!(h.dev.dma.read_u32(CTX + 12 * 44).unwrap() & 0xff, 0);
}

#[test]
fn command_completions_come_one_per_command_in_command_order() {
    let mut h = Host::new();
    h.boot_to_sbl();
    for ch in [12usize, 13] {
        let c = CTX + ch as u64 * 44;
        let ring = RINGS + ch as u64 * 0x1000;
        let d = &mut h.dev.dma;
        d.write_u32(c, 1).unwrap();
        d.write_u32(c + 4, if ch.is_multiple_of(2) { 1 } else { 2 })
            .unwrap();
        d.write_u64(c + 12, ring).unwrap();
        d.write_u64(c + 20, 512).unwrap();
        d.write_u64(c + 28, ring).unwrap();
        d.write_u64(c + 36, ring).unwrap();
    }
    // Three commands with one doorbell: START 12, an invalid channel, START 13.
    let a = h.command(pkt::START_CHAN, 12);
    let b = h.command(pkt::START_CHAN, 127);
    let c = h.command(pkt::START_CHAN, 13);
    let ev: Vec<_> = h
        .poll_events()
        .into_iter()
        .filter(|e| e.kind() == pkt::CMD_COMPLETION)
        .collect();
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0], Element::cmd_completion(a, 1));
    assert_eq!(
        ev[1],
        Element::cmd_completion(b, 0x10),
        "invalid channel: UNDEFINED_ERR"
    );
    assert_eq!(ev[2], Element::cmd_completion(c, 1));
}

#[test]
fn start_with_a_malformed_channel_context_fails_with_an_error_completion() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let c = CTX + 12 * 44;
    h.dev.dma.write_u32(c + 4, 1).unwrap();
    h.dev.dma.write_u64(c + 12, RINGS + 8).unwrap(); // misaligned ring
    h.dev.dma.write_u64(c + 20, 512).unwrap();
    h.dev.dma.write_u64(c + 28, RINGS + 8).unwrap();
    let at = h.command(pkt::START_CHAN, 12);
    let ev = h.poll_events();
    assert!(ev.contains(&Element::cmd_completion(at, 0x10)));
    assert!(!h.dev.channel_running(12));
}

#[test]
fn event_ring_full_holds_events_until_the_host_grants_slots() {
    let mut h = Host::new();
    h.bhi_load(&firmware::generated_image(firmware::SBL_ID));
    h.init_mmio_and_m0();
    // 2 events posted; fill the rest of the 31 granted slots with NOP commands.
    for _ in 0..40 {
        h.command(pkt::NOP, 0);
    }
    h.dev.run_all();
    let rp = h.dev.dma.read_u64(ECTX + 28).unwrap();
    assert_eq!(rp, ER + 512 - 16, "device stops at the grant");
    // Consuming events grants slots; the held completions then arrive, all 40 of them.
    let mut total = 0;
    for _ in 0..5 {
        total += h
            .poll_events()
            .iter()
            .filter(|e| e.kind() == pkt::CMD_COMPLETION)
            .count();
    }
    assert_eq!(total, 40);
}

#[test]
fn sahara_exchange_requests_every_aic100_image_verifies_them_and_enters_amss() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let ids = h.serve_sahara(&|id| Some(firmware::generated_image(id)));
    assert_eq!(ids, vec![1, 2, 4, 5, 6, 8, 9, 10]);
    h.poll_events();
    let ee: Vec<_> = h
        .events
        .iter()
        .filter(|e| e.kind() == pkt::EE_EVENT)
        .collect();
    assert_eq!(ee.last().unwrap().d0 >> 24, 2, "EE AMSS event");
    assert_eq!(h.ee(), 2, "EXECENV already AMSS");
    assert!(
        !h.dev.channel_running(2) && !h.dev.channel_running(3),
        "SBL channels forgotten"
    );
}

#[test]
fn sahara_boot_halts_when_the_host_lacks_an_image() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let ids = h.serve_sahara(&|id| (id != 5).then(|| firmware::generated_image(id)));
    assert_eq!(ids, vec![1, 2, 4, 5]);
    h.poll_events();
    assert_eq!(h.ee(), 1, "stays in SBL");
    assert!(!h
        .events
        .iter()
        .any(|e| e.kind() == pkt::EE_EVENT && e.d0 >> 24 == 2));
}

#[test]
fn sahara_stalls_at_the_chosen_image_until_a_reset() {
    let mut h = Host::new();
    h.dev.faults.stall_at_image = Some(4);
    h.boot_to_sbl();
    let ids = h.serve_sahara(&|id| Some(firmware::generated_image(id)));
    // image 4 was asked for, its data is never answered
    assert_eq!(ids, vec![1, 2, 4]);
    h.poll_events();
    assert_eq!(h.ee(), 1, "stays in SBL");
    assert!(h.dev.faults.sahara_stalled);
    assert_eq!(h.dev.faults.stall_at_image, None, "once");
    // a SoC reset boots normally again
    h.dev.soc_reset();
    assert!(!h.dev.faults.sahara_stalled);
}

#[test]
fn sahara_boot_halts_on_a_corrupted_image() {
    let mut h = Host::new();
    h.boot_to_sbl();
    h.serve_sahara(&|id| {
        let mut img = firmware::generated_image(id);
        if id == 2 {
            img[100] ^= 1;
        }
        Some(img)
    });
    h.poll_events();
    assert_eq!(h.ee(), 1);
}

#[test]
fn sbl_boot_log_line_is_sent_on_the_logging_channel() {
    let mut h = Host::new();
    h.boot_to_sbl();
    assert_eq!(h.start_channel(12, 32), 1);
    assert_eq!(h.start_channel(13, 32), 1);
    let line = h.recv_dl(13, 512).expect("boot log line");
    assert!(String::from_utf8(line)
        .unwrap()
        .starts_with("aic100-emu SBL"));
}

#[test]
fn mission_mode_channels_start_and_periodic_timesync_uplink_is_completed() {
    let mut h = Host::new();
    h.boot_to_amss();
    for ch in [6usize, 7, 14, 15, 22, 23] {
        assert_eq!(h.start_channel(ch, 32), 1, "channel {ch}");
    }
    let mut msg = vec![0u8; 24];
    msg[8..16].copy_from_slice(&1234u64.to_le_bytes());
    let tres = h.send_ul(22, &msg, 24);
    let ev = h.poll_events();
    assert!(ev.contains(&Element::tx_event(tres[0], 2, 24, 22)));
    // The QTimer advances (19.2 MHz) and is readable as two halves or one 64-bit read.
    let t1 = h.dev.mmio_read(0, 0xa28, 8);
    std::thread::sleep(std::time::Duration::from_millis(2));
    let t2 = h.dev.mmio_read(0, 0xa28, 8);
    assert!(t2 > t1 + 19_200, "{t1} -> {t2}");
}

#[test]
fn mhi_reset_in_mission_mode_returns_to_ready_and_m0_replays_ee_amss() {
    let mut h = Host::new();
    h.boot_to_amss();
    let c = h.r32(reg::MHICTRL);
    h.w32(reg::MHICTRL, c | 2);
    h.dev.run_all();
    assert_eq!(h.r32(reg::MHICTRL) & 2, 0, "RESET bit self-clears");
    assert_eq!(h.r32(reg::MHISTATUS), (1 << 8) | 1, "READY");
    assert_eq!(h.ee(), 2);
    assert!(!h.dev.channel_running(10));
    // Host power-up again (warm start in AMSS): READY -> M0 -> EE AMSS directly.
    h.events.clear();
    h.init_mmio_and_m0();
    let ev = h.poll_events();
    assert_eq!(ev, vec![Element::state_change(2), Element::ee_event(2)]);
}

#[test]
fn sys_err_raises_msi_and_host_reset_reboots_the_card_from_pbl() {
    let mut h = Host::new();
    h.boot_to_amss();
    h.dev.irq.raised.clear();
    h.dev.trigger_sys_err();
    h.dev.run_all();
    assert_eq!(h.mhi_state(), 0xff);
    assert_ne!(h.r32(reg::MHISTATUS) & 4, 0, "SYSERR bit");
    assert_eq!(h.dev.irq.raised, vec![0]);
    let c = h.r32(reg::MHICTRL);
    h.w32(reg::MHICTRL, c | 2);
    h.dev.run_all();
    assert_eq!(h.r32(reg::MHICTRL) & 2, 0);
    assert_eq!(h.ee(), 0, "back in PBL");
    assert_eq!(h.mhi_state(), 0);
    // And the whole boot works again.
    let mut h2 = h;
    h2.events.clear();
    h2.boot_to_sbl();
}

#[test]
fn soc_reset_register_returns_the_card_to_pbl() {
    let mut h = Host::new();
    h.boot_to_sbl();
    h.w32(reg::SOC_RESET_REQ, 1);
    let _ = h.r32(reg::SOC_RESET_REQ);
    assert_eq!(h.ee(), 0);
    assert_eq!(h.mhi_state(), 0);
}

#[test]
fn surprise_removal_reads_all_ones_and_stops_the_device() {
    let mut h = Host::new();
    h.boot_to_sbl();
    h.dev.surprise_remove();
    assert_eq!(h.r32(reg::MHISTATUS), 0xffff_ffff);
    assert_eq!(h.dev.mmio_read(0, 0xa28, 8), u64::MAX);
    let before = h.dev.stats.events;
    h.command(pkt::NOP, 0);
    h.dev.run_all();
    assert_eq!(h.dev.stats.events, before);
}

#[test]
fn a_tre_pointing_outside_host_memory_is_completed_with_bad_tre() {
    let mut h = Host::new();
    h.boot_to_amss();
    let ring = RINGS + 10 * 0x1000;
    h.dev
        .dma
        .write(
            ring,
            &Element::tre(0xdead_0000_0000, 64, TRE_IEOT).to_bytes(),
        )
        .unwrap();
    h.w64(0x400 + 8 * 10, ring + 16);
    let ev = h.poll_events();
    assert!(ev.contains(&Element::tx_event(ring, 0x11, 0, 10)));
    assert_eq!(h.dev.stats.dma_faults, 1);
}

#[test]
fn a_doorbell_outside_the_ring_is_ignored() {
    let mut h = Host::new();
    h.boot_to_amss();
    let before = h.dev.stats.events;
    h.w64(0x400 + 8 * 10, 0x1234);
    h.w64(reg::CRDB_LOWER, 0x5678);
    h.dev.run_all();
    assert_eq!(h.dev.stats.events, before);
    assert!(h.dev.channel_running(10));
}

#[test]
fn dl_messages_wait_for_a_host_buffer() {
    let mut h = Host::new();
    h.boot_to_sbl();
    assert_eq!(h.start_channel(2, 32), 1);
    assert_eq!(h.start_channel(3, 32), 1);
    // HELLO was produced at START but no buffer is posted yet: nothing written.
    assert!(!h.poll_events().iter().any(|e| e.kind() == pkt::TX_EVENT));
    let hello = h.recv_dl(3, 0xffff).expect("HELLO once a buffer exists");
    assert_eq!(le32(&hello, 0), 1);
    assert_eq!(hello.len(), 0x30);
}

#[test]
fn wake_doorbell_writes_are_accepted_without_side_effects() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let before = h.dev.stats.events;
    h.w64(0x400 + 8 * 127, 1);
    h.w64(0x400 + 8 * 127, 0);
    h.dev.run_all();
    assert_eq!(h.dev.stats.events, before);
}

#[test]
fn boot_timesync_asks_the_host_for_its_time_and_acks_the_answer() {
    let mut h = Host::new();
    h.boot_to_sbl();
    assert_eq!(h.start_channel(20, 32), 1);
    assert_eq!(h.start_channel(21, 32), 1);
    let cmd = h.recv_dl(21, 8).expect("CMD_TO_HOST");
    assert_eq!(cmd, vec![0xaa, 0x55, 0, 0, 0, 0, 0, 0]);
    let mut req = cmd.clone();
    req[5] = 1; // SYNC_REQ
    req.extend_from_slice(&1_700_000_000u64.to_le_bytes());
    req.extend_from_slice(&5u64.to_le_bytes());
    h.send_ul(20, &req, 24);
    let ack = h.recv_dl(21, 8).expect("ACK_TO_HOST");
    assert_eq!(ack[5], 2);
}

#[test]
fn ras_fault_sends_a_valid_104_byte_report_on_the_status_channel() {
    let mut h = Host::new();
    h.boot_to_amss();
    assert!(
        h.dev.inject_ras(0, 0).is_err(),
        "channel 15 not started yet"
    );
    assert_eq!(h.start_channel(14, 32), 1);
    assert_eq!(h.start_channel(15, 32), 1);
    h.dev.inject_ras(0, 2).unwrap();
    let m = h.recv_dl(15, 104).expect("RAS message");
    assert_eq!(m.len(), 104);
    assert_eq!(u16::from_le_bytes([m[0], m[1]]), 0x55aa, "magic");
    assert_eq!(u16::from_le_bytes([m[2], m[3]]), 1, "version");
    assert_eq!(m[8], 0, "PUSH");
    assert_eq!(u16::from_le_bytes([m[10], m[11]]), 92, "payload length");
    assert_eq!(le32(&m, 16), 2, "source DDR");
    assert_eq!(le32(&m, 20), 0, "correctable");
}

#[test]
fn an_oversized_ul_message_is_discarded_but_its_tres_are_completed() {
    let mut h = Host::new();
    h.boot_to_amss();
    let big = vec![0x11u8; aic100_emu::device::MAX_UL_MESSAGE + 100_000];
    let tres = h.send_ul(10, &big, 0xffff);
    let ev = h.poll_events();
    let last = *tres.last().unwrap();
    assert!(ev
        .iter()
        .any(|e| e.kind() == pkt::TX_EVENT && e.ptr == last && e.d0 >> 24 == 2));
    assert_eq!(
        h.dev.control.requests, 0,
        "never reached the control service"
    );
    // The channel still works.
    let r = h.control(&control_msg(1, 0, &[status_to_dev()], true));
    assert!(r.is_some());
}

#[test]
fn without_bus_mastering_the_device_neither_dmas_nor_interrupts() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let events = h.dev.stats.events;
    let msis = h.dev.irq.raised.len();
    h.dev.pci.write(4, &[0x02, 0x00]); // bus master off
    h.command(pkt::NOP, 0);
    h.dev.run_all();
    assert_eq!(h.dev.stats.events, events, "no event written");
    assert_eq!(h.dev.irq.raised.len(), msis, "no MSI");
    // Once mastering is back, the next doorbell processes the ring from where it stopped.
    h.dev.pci.write(4, &[0x06, 0x00]);
    let second = h.command(pkt::NOP, 0);
    let ev: Vec<_> = h
        .poll_events()
        .into_iter()
        .filter(|e| e.kind() == pkt::CMD_COMPLETION)
        .collect();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1], Element::cmd_completion(second, 1));
}

#[test]
fn bhi_load_without_bus_mastering_fails() {
    let mut h = Host::new();
    h.dev.pci.write(4, &[0x02, 0x00]);
    let st = h.bhi_load(&firmware::generated_image(firmware::SBL_ID));
    assert_eq!(st >> 30, 3);
    assert_eq!(h.ee(), 0);
}

#[test]
fn m3_request_suspends_with_a_state_event_and_m0_resumes() {
    let mut h = Host::new();
    h.boot_to_sbl();
    let c = h.r32(reg::MHICTRL);
    h.w32(reg::MHICTRL, (c & !0xff00) | (5 << 8));
    let ev = h.poll_events();
    assert_eq!(ev, vec![Element::state_change(5)]);
    assert_eq!(h.mhi_state(), 5);
    h.w32(reg::MHICTRL, (c & !0xff00) | (2 << 8));
    let ev = h.poll_events();
    assert_eq!(ev, vec![Element::state_change(2)], "M0 again, no EE replay");
    assert_eq!(h.mhi_state(), 2);
}

#[test]
fn stop_channel_pauses_transfers_and_marks_the_context_stopped() {
    let mut h = Host::new();
    h.boot_to_amss();
    let at = h.command(pkt::STOP_CHAN, 10);
    let ev = h.poll_events();
    assert!(ev.contains(&Element::cmd_completion(at, 1)));
    assert_eq!(
        h.dev.dma.read_u32(CTX + 10 * 44).unwrap() & 0xff,
        4,
        "CHSTATE STOP"
    );
    let before = h.dev.control.requests;
    h.send_ul(10, &control_msg(1, 0, &[status_to_dev()], true), 4064);
    h.poll_events();
    assert_eq!(
        h.dev.control.requests, before,
        "stopped channel is not processed"
    );
    // STOP of a channel that never started is an error.
    let at = h.command(pkt::STOP_CHAN, 40);
    assert!(h.poll_events().contains(&Element::cmd_completion(at, 0x10)));
}
