// SPDX-License-Identifier: MIT OR Apache-2.0
//! QAIC control protocol and NNC over the MHI CONTROL channels, plus the control service on
//! its own (no MHI): version handshake, CRC, every transaction type, faults.

mod common;

use aic100_emu::control::{self, ControlService, Outcome};
use aic100_emu::dma::{Dma, FakeDma};
use aic100_emu::wire::crc32;
use common::*;

fn crc_ok(r: &[u8]) -> bool {
    let mut z = r.to_vec();
    z[0..4].fill(0);
    crc32(&z) == le32(r, 0)
}

#[test]
fn control_version_handshake_answers_status_5_0_with_crc_flag_and_valid_crc() {
    let mut h = Host::new();
    h.boot_to_amss();
    let req = control_msg(0, 0, &[status_to_dev()], true);
    assert_eq!(req.len(), 40);
    let r = h.control(&req).expect("response");
    assert_eq!(r.len(), 56);
    assert_eq!(le32(&r, 4), 0x4349_4151, "magic");
    assert_eq!(le32(&r, 8), 0, "sequence echoed");
    assert_eq!(le32(&r, 12), 56);
    assert_eq!(le32(&r, 16), 1);
    assert_eq!(le32(&r, 32), 14, "STATUS_FROM_DEV");
    assert_eq!(le32(&r, 36), 24);
    assert_eq!(le32(&r, 40), 5, "major 5, minor 0");
    assert_eq!(le32(&r, 44), 0, "status ok");
    assert_eq!(le64(&r, 48) & 1, 1, "device requires CRC");
    assert!(crc_ok(&r));
}

#[test]
fn control_without_crc_mode_clears_the_flag_and_accepts_zero_crc() {
    let mut o = opts();
    o.crc_required = false;
    let mut h = Host::with_options(o);
    h.boot_to_amss();
    let r = h
        .control(&control_msg(3, 0, &[status_to_dev()], true))
        .unwrap();
    assert_eq!(le64(&r, 48) & 1, 0);
    assert_eq!(le32(&r, 0), 0, "no CRC generated");
    let r = h
        .control(&control_msg(4, 0, &[status_to_dev()], false))
        .unwrap();
    assert_eq!(le32(&r, 8), 4);
}

#[test]
fn control_request_with_a_bad_crc_is_dropped() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut req = control_msg(1, 0, &[status_to_dev()], true);
    req[0] ^= 1;
    assert!(h.control(&req).is_none());
    // The channel still works afterwards.
    assert!(h
        .control(&control_msg(2, 0, &[status_to_dev()], true))
        .is_some());
}

#[test]
fn control_request_split_over_chained_tres_is_reassembled() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut nnc = 13u32.to_le_bytes().to_vec();
    nnc.resize(16, 0);
    let req = control_msg(7, 5, &[passthrough(&nnc), status_to_dev()], true);
    let (tre, buf) = h.post_dl(11, 4096);
    h.send_ul(10, &req, 20); // absurdly small TREs: 4 chained TREs
    let r = h.wait_dl(11, tre, buf).expect("response");
    assert_eq!(le32(&r, 16), 2);
    assert_eq!(le32(&r, 20), 5, "handle echoed");
}

#[test]
fn nnc_status_passthrough_returns_the_device_info_payload() {
    let mut h = Host::new();
    h.boot_to_amss();
    // As the open runtime sends it: passthrough len 16 + sizeof(req) (8 trailing zero bytes).
    let mut nnc = 13u32.to_le_bytes().to_vec();
    nnc.resize(16, 0);
    let r = h
        .control(&control_msg(9, 1, &[passthrough(&nnc)], true))
        .unwrap();
    assert_eq!(le32(&r, 16), 1);
    assert_eq!(le32(&r, 32), 3, "PASSTHROUGH_FROM_DEV");
    let tlen = le32(&r, 36) as usize;
    assert_eq!(tlen, 8 + 504);
    assert_eq!(tlen % 8, 0);
    assert_eq!(le32(&r, 12) as usize, 32 + tlen);
    let p = &r[40..];
    assert_eq!(le32(p, 0), 14, "STATUS_RESP");
    assert_eq!(le32(p, 4), 0, "status ok");
    let dev = &p[16..];
    assert_eq!(
        u16::from_le_bytes([dev[262], dev[263]]),
        17,
        "NNC protocol 17"
    );
    assert!(crc_ok(&r));
}

#[test]
fn nnc_unknown_command_is_answered_with_undefined_request() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut nnc = 32u32.to_le_bytes().to_vec(); // RESOURCE_INFO: not implemented
    nnc.resize(24, 0);
    let r = h
        .control(&control_msg(2, 1, &[passthrough(&nnc)], true))
        .unwrap();
    assert_eq!(le32(&r, 36), 16);
    assert_eq!(le32(&r, 40), 33, "RESOURCE_INFO_RESP type");
    assert_eq!(le32(&r, 44) as i32, -3, "NNC_STATUS_UNDEFINED_REQUEST");
}

#[test]
fn dma_xfer_reads_every_pair_from_host_memory_into_device_memory() {
    let mut h = Host::new();
    h.boot_to_amss();
    let a = h.alloc(5000);
    let b = h.alloc(3000);
    let data: Vec<u8> = (0..8000u32).map(|i| (i * 7 % 251) as u8).collect();
    h.dev.dma.write(a, &data[..5000]).unwrap();
    h.dev.dma.write(b, &data[5000..]).unwrap();
    let mut t = Vec::new();
    for v in [6u32, 24 + 32, 42, 2, 0, 0] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    for (addr, size) in [(a, 5000u64), (b, 3000)] {
        t.extend_from_slice(&addr.to_le_bytes());
        t.extend_from_slice(&size.to_le_bytes());
    }
    let r = h.control(&control_msg(11, 3, &[t], true)).unwrap();
    assert_eq!(le32(&r, 12), 32, "no transactions in the answer");
    assert_eq!(le32(&r, 16), 0);
    assert_eq!(h.dev.control.devmem.get(3, 42), Some(&data[..]));
}

#[test]
fn dma_xfer_with_a_bad_address_is_logged_and_answered_without_crashing() {
    let mut h = Host::new();
    h.boot_to_amss();
    let mut t = Vec::new();
    for v in [6u32, 40, 1, 1, 0, 0] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    t.extend_from_slice(&0xdead_beef_0000u64.to_le_bytes());
    t.extend_from_slice(&4096u64.to_le_bytes());
    let r = h.control(&control_msg(12, 3, &[t], true)).unwrap();
    assert_eq!(le32(&r, 16), 0);
    assert!(h.dev.control.devmem.get(3, 1).is_none());
}

fn activate(req_q: u64, n: u32) -> Vec<u8> {
    let buf_len = (68 * n + 256).div_ceil(4096) * 4096;
    let mut t = Vec::new();
    t.extend_from_slice(&9u32.to_le_bytes());
    t.extend_from_slice(&40u32.to_le_bytes());
    t.extend_from_slice(&req_q.to_le_bytes());
    t.extend_from_slice(&(req_q + buf_len as u64 - 4 * n as u64).to_le_bytes());
    t.extend_from_slice(&n.to_le_bytes());
    t.extend_from_slice(&n.to_le_bytes());
    t.extend_from_slice(&buf_len.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    t
}

#[test]
fn activate_assigns_free_dbcs_until_none_is_left_and_terminate_releases_them() {
    let mut h = Host::new();
    h.boot_to_amss();
    for i in 0..16u32 {
        let r = h
            .control(&control_msg(
                i,
                7,
                &[activate(0x4000_0000 + i as u64 * 0x10000, 64)],
                true,
            ))
            .unwrap();
        assert_eq!(le32(&r, 32), 8, "ACTIVATE_FROM_DEV");
        assert_eq!(le32(&r, 36), 24);
        assert_eq!(le32(&r, 40), 0, "status ok");
        assert_eq!(le32(&r, 44), i, "DBC id");
    }
    let r = h
        .control(&control_msg(16, 8, &[activate(0x5000_0000, 64)], true))
        .unwrap();
    assert_ne!(le32(&r, 40), 0, "no DBC left");
    let mut term = Vec::new();
    for v in [17u32, 16, 7, 0] {
        term.extend_from_slice(&v.to_le_bytes());
    }
    // TERMINATE comes as one TRE holding header and transaction.
    let mut req = control_msg(17, 7, &[term], true);
    req[24..28].copy_from_slice(&0u32.to_le_bytes());
    let c = control::message_crc(&req);
    req[0..4].copy_from_slice(&c.to_le_bytes());
    let r = h.control(&req).unwrap();
    assert_eq!(le32(&r, 32), 16, "TERMINATE_FROM_DEV");
    assert_eq!(le32(&r, 40), 0);
    assert_eq!(h.dev.control.dbcs_in_use(), 0);
    let r = h
        .control(&control_msg(18, 8, &[activate(0x5000_0000, 64)], true))
        .unwrap();
    assert_eq!(le32(&r, 40), 0);
}

#[test]
fn activate_resets_the_assigned_dbc_registers_in_bar2() {
    let mut h = Host::new();
    h.boot_to_amss();
    for off in (0..16).step_by(4) {
        h.dev.mmio_write(2, 0x20000 + off, 4, 0xdead_0000 + off);
        h.dev.mmio_write(2, 0x21000 + off, 4, 0xbeef_0000 + off);
    }
    let r = h
        .control(&control_msg(1, 7, &[activate(0x4000_0000, 64)], true))
        .unwrap();
    assert_eq!(le32(&r, 44), 0, "DBC 0");
    for off in (0..16).step_by(4) {
        assert_eq!(
            h.dev.mmio_read(2, 0x20000 + off, 4),
            0,
            "DBC 0 register {off:#x}"
        );
        assert_eq!(
            h.dev.mmio_read(2, 0x21000 + off, 4),
            0xbeef_0000 + off,
            "DBC 1 untouched"
        );
    }
}

#[test]
fn activate_with_an_inconsistent_queue_layout_is_refused() {
    let mut svc = ControlService::new(true, "S");
    let mut t = activate(0x4000_0000, 64);
    t[16..24].copy_from_slice(&0x4000_0100u64.to_le_bytes()); // wrong response queue address
    let Outcome::Respond(r) = svc.handle(
        &control::encode(1, 1, u32::MAX, &[t], true),
        &FakeDma::new(),
    ) else {
        panic!("expected a response");
    };
    assert_ne!(le32(&r, 40), 0);
    assert_eq!(svc.dbcs_in_use(), 0);
}

#[test]
fn chunked_dma_with_a_declared_total_is_continued_with_dma_xfer_cont() {
    let mut svc = ControlService::new(false, "S");
    let mut mem = FakeDma::new();
    mem.add_region(0x1000, 0x3000);
    mem.write(0x1000, &[0xab; 0x3000]).unwrap();
    svc.expect_chunked(4, 9, 77, 0x3000);
    let piece = |addr: u64, size: u64| {
        let mut t = Vec::new();
        for v in [6u32, 40, 77, 1, 9, 0] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&addr.to_le_bytes());
        t.extend_from_slice(&size.to_le_bytes());
        control::encode(1, 4, u32::MAX, &[t], false)
    };
    let Outcome::Respond(r) = svc.handle(&piece(0x1000, 0x2000), &mem) else {
        panic!()
    };
    assert_eq!(le32(&r, 16), 1);
    assert_eq!(le32(&r, 32), 18, "DMA_XFER_CONT");
    assert_eq!(le32(&r, 40), 9, "chunk id");
    assert_eq!(le64(&r, 48), 0x2000, "bytes so far");
    let Outcome::Respond(r) = svc.handle(&piece(0x3000, 0x1000), &mem) else {
        panic!()
    };
    assert_eq!(le32(&r, 16), 0, "final piece: normal (empty) response");
    assert_eq!(svc.devmem.get(4, 77).map(<[u8]>::len), Some(0x3000));
}

#[test]
fn malformed_control_messages_are_dropped() {
    let mut svc = ControlService::new(false, "S");
    let mem = FakeDma::new();
    // wrong magic
    let mut m = control::encode(1, 0, 0, &[status_to_dev()], false);
    m[4] = 0;
    assert!(matches!(svc.handle(&m, &mem), Outcome::Drop(_)));
    // header longer than the transfer
    let mut m = control::encode(1, 0, 0, &[status_to_dev()], false);
    m[12] = 200;
    assert!(matches!(svc.handle(&m, &mem), Outcome::Drop(_)));
    // transaction running past the end
    let mut t = status_to_dev();
    t[4] = 64;
    let m = control::encode(1, 0, 0, &[t], false);
    assert!(matches!(svc.handle(&m, &mem), Outcome::Drop(_)));
    // too short
    assert!(matches!(svc.handle(&[1, 2, 3], &mem), Outcome::Drop(_)));
}

#[test]
fn message_without_transactions_gets_an_empty_response() {
    let mut svc = ControlService::new(true, "S");
    let Outcome::Respond(r) =
        svc.handle(&control::encode(5, 2, u32::MAX, &[], true), &FakeDma::new())
    else {
        panic!()
    };
    assert_eq!(r.len(), 32);
    assert_eq!(le32(&r, 16), 0);
    assert!(crc_ok(&r));
}

#[test]
fn fault_drop_next_response_drops_exactly_one_response() {
    let mut h = Host::new();
    h.boot_to_amss();
    h.dev.faults.drop_next = 1;
    assert!(h
        .control(&control_msg(1, 0, &[status_to_dev()], true))
        .is_none());
    assert!(h
        .control(&control_msg(2, 0, &[status_to_dev()], true))
        .is_some());
}

#[test]
fn fault_garble_next_response_breaks_its_crc() {
    let mut h = Host::new();
    h.boot_to_amss();
    h.dev.faults.garble_next = 1;
    let r = h
        .control(&control_msg(1, 0, &[status_to_dev()], true))
        .unwrap();
    assert!(!crc_ok(&r));
    let r = h
        .control(&control_msg(2, 0, &[status_to_dev()], true))
        .unwrap();
    assert!(crc_ok(&r));
}

#[test]
fn fault_delay_response_holds_the_response_back() {
    let mut h = Host::new();
    h.boot_to_amss();
    h.dev.faults.delay_response = std::time::Duration::from_millis(30);
    let (tre, buf) = h.post_dl(11, 4096);
    h.send_ul(10, &control_msg(1, 0, &[status_to_dev()], true), 4064);
    let t0 = std::time::Instant::now();
    let now = t0;
    let next = h.dev.run(now);
    assert!(next.is_some(), "response scheduled for later");
    assert_eq!(h.dev.stats.control_responses, 1);
    let rp_before = aic100_emu::dma::Dma::read_u64(&h.dev.dma, ECTX + 28).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(35));
    h.dev.run(std::time::Instant::now());
    let rp_after = aic100_emu::dma::Dma::read_u64(&h.dev.dma, ECTX + 28).unwrap();
    assert_ne!(rp_before, rp_after);
    assert!(h.wait_dl(11, tre, buf).is_some());
}

#[test]
fn dma_xfer_beyond_the_device_memory_capacity_is_refused() {
    let mut svc = ControlService::new(false, "S");
    let mut mem = FakeDma::new();
    mem.add_region(0x1000, 0x1000);
    let pair = |tag: u32, addr: u64, size: u64| {
        let mut t = Vec::new();
        for v in [6u32, 40, tag, 1, 0, 0] {
            t.extend_from_slice(&v.to_le_bytes());
        }
        t.extend_from_slice(&addr.to_le_bytes());
        t.extend_from_slice(&size.to_le_bytes());
        control::encode(1, 4, u32::MAX, &[t], false)
    };
    assert!(matches!(
        svc.handle(&pair(1, 0x1000, 0x100), &mem),
        Outcome::Respond(_)
    ));
    assert_eq!(svc.devmem.used(), 0x100);
    for size in [u64::MAX, u64::MAX - 0x50, control::DEVMEM_CAPACITY] {
        assert!(matches!(
            svc.handle(&pair(2, 0x1000, size), &mem),
            Outcome::Respond(_)
        ));
        assert!(svc.devmem.get(4, 2).is_none());
    }
    assert_eq!(svc.devmem.used(), 0x100);
}

#[test]
fn a_configured_protocol_version_is_reported_for_negative_tests() {
    let mut o = opts();
    o.control_version = (6, 1);
    let mut h = Host::with_options(o);
    h.boot_to_amss();
    let r = h
        .control(&control_msg(0, 0, &[status_to_dev()], true))
        .unwrap();
    assert_eq!(u16::from_le_bytes([r[40], r[41]]), 6);
    assert_eq!(u16::from_le_bytes([r[42], r[43]]), 1);
}
