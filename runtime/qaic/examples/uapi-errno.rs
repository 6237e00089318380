// SPDX-License-Identifier: MIT OR Apache-2.0
//! Invalid requests against a live device: each must be rejected with the
//! errno the upstream driver returns (uapi specification, validation
//! tables of MANAGE, CREATE_BO, MMAP_BO, ATTACH_SLICE_BO, EXECUTE_BO,
//! PARTIAL_EXECUTE_BO, WAIT_BO, PERF_STATS_BO and DETACH_SLICE_BO).
//!
//! Only checks that need no completed DMA are here (no request reaches the
//! device's data path), so it runs on an emulated card without the compute
//! stand-in. Prints `PASS name` / `FAIL name - why` per check and closes
//! with `N passed, N failed`.
//!
//! Usage: `uapi-errno [NODE]` (default `/dev/accel/accel0`).

mod common;

use common::Report;
use libc::{EFAULT, EINVAL, ENOENT, ENOSPC, EPERM};
use qaic::manage::EncodedManage;
use qaic::uapi::{self, qaic_attach_slice_entry as Entry, qaic_attach_slice_hdr as Hdr, qaic_sem};
use qaic::{Device, Direction, Error, ManageMsg, Slice};

/// A transaction: `{type, len}` header plus `body`.
fn trans(ty: u32, len: u32, body: &[u8]) -> Vec<u8> {
    let mut v = ty.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn raw(bytes: &[u8], len: u32, count: u32) -> EncodedManage {
    EncodedManage::from_raw(bytes, len, count).expect("fits in 4 KiB")
}

fn manage_checks(rep: &mut Report, dev: &Device, other: u32) {
    let status = trans(uapi::trans::STATUS_FROM_USR, 8, &[]);
    let m = |e: &EncodedManage| dev.manage_encoded(e);
    rep.expect_errno("manage-len-over-4k", m(&raw(&status, 4097, 1)), EINVAL);
    rep.expect_errno("manage-count-0", m(&raw(&status, 8, 0)), EINVAL);
    let many = status.repeat(512);
    rep.expect_errno("manage-count-over-512", m(&raw(&many, 4096, 513)), EINVAL);
    rep.expect_errno("manage-len-under-8", m(&raw(&status, 4, 1)), EINVAL);
    rep.expect_errno(
        "manage-trans-len-under-8",
        m(&raw(&trans(12, 4, &[0; 4]), 8, 1)),
        EINVAL,
    );
    rep.expect_errno(
        "manage-trans-beyond-len",
        m(&raw(&trans(12, 16, &[0; 8]), 8, 1)),
        EINVAL,
    );
    rep.expect_errno(
        "manage-unknown-type",
        m(&raw(&trans(99, 8, &[]), 8, 1)),
        EINVAL,
    );
    rep.expect_errno(
        "manage-device-type-from-user",
        m(&raw(
            &trans(uapi::trans::PASSTHROUGH_FROM_DEV, 8, &[]),
            8,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-len-not-consumed",
        m(&raw(&[status.clone(), vec![0; 8]].concat(), 16, 1)),
        EINVAL,
    );
    rep.expect_errno(
        "manage-passthrough-len-not-multiple-of-8",
        m(&raw(
            &trans(uapi::trans::PASSTHROUGH_FROM_USR, 12, &[13, 0, 0, 0]),
            12,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-activate-queue-size-0",
        m(&raw(
            &trans(uapi::trans::ACTIVATE_FROM_USR, 24, &words(&[0, 0, 0, 0])),
            24,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-activate-pad",
        m(&raw(
            &trans(uapi::trans::ACTIVATE_FROM_USR, 24, &words(&[16, 0, 0, 1])),
            24,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-deactivate-dbc-16",
        m(&raw(
            &trans(uapi::trans::DEACTIVATE_FROM_USR, 16, &words(&[16, 0])),
            16,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-deactivate-pad",
        m(&raw(
            &trans(uapi::trans::DEACTIVATE_FROM_USR, 16, &words(&[other, 1])),
            16,
            1,
        )),
        EINVAL,
    );
    rep.expect_errno(
        "manage-deactivate-not-owner",
        m(&raw(
            &trans(uapi::trans::DEACTIVATE_FROM_USR, 16, &words(&[other, 0])),
            16,
            1,
        )),
        EPERM,
    );
    let dma = |addr: u64, size: u64| {
        let mut body = words(&[1, 0]);
        body.extend_from_slice(&addr.to_le_bytes());
        body.extend_from_slice(&size.to_le_bytes());
        trans(uapi::trans::DMA_XFER_FROM_USR, 32, &body)
    };
    let buf = [0u8; 64];
    rep.expect_errno(
        "manage-dma-size-0",
        m(&raw(&dma(buf.as_ptr() as u64, 0), 32, 1)),
        EINVAL,
    );
    rep.expect_errno(
        "manage-dma-unmapped-address",
        m(&raw(&dma(0x1000, 4096), 32, 1)),
        EFAULT,
    );
    rep.expect_errno(
        "manage-dma-address-overflow",
        m(&raw(&dma(u64::MAX - 16, 4096), 32, 1)),
        EINVAL,
    );
}

fn entry(offset: u64, size: u64) -> Entry {
    Entry {
        size,
        offset,
        dev_addr: 0x10_0000,
        ..Default::default()
    }
}

fn attach_checks(rep: &mut Report, dev: &Device, own: u32, other: u32) {
    let Some(bo) = rep.check("attach-setup-bo", dev.create_bo(8192)) else {
        return;
    };
    let h = bo.handle();
    let hdr = |count: u32, dbc_id: u32, handle: u32, dir: u32| Hdr {
        count,
        dbc_id,
        handle,
        dir,
        size: 0,
    };
    let ok = [entry(0, 8192)];
    let a = |name: &str, rep: &mut Report, hdr: Hdr, e: &[Entry], errno: i32| {
        rep.expect_errno(name, dev.attach_slice_raw(hdr, e), errno);
    };
    a("attach-count-0", rep, hdr(0, own, h, 1), &[], EINVAL);
    a("attach-dir-0", rep, hdr(1, own, h, 0), &ok, EINVAL);
    a("attach-dir-3", rep, hdr(1, own, h, 3), &ok, EINVAL);
    a("attach-data-null", rep, hdr(1, own, h, 1), &[], EINVAL);
    a("attach-dbc-16", rep, hdr(1, 16, h, 1), &ok, EINVAL);
    a(
        "attach-unknown-handle",
        rep,
        hdr(1, own, 0xdead, 1),
        &ok,
        ENOENT,
    );
    a(
        "attach-db-len-4",
        rep,
        hdr(1, own, h, 1),
        &[Entry {
            db_len: 4,
            ..entry(0, 8192)
        }],
        EINVAL,
    );
    let sem = |s: qaic_sem| {
        [Entry {
            sem0: s,
            ..entry(0, 8192)
        }]
    };
    let base = qaic_sem {
        cmd: uapi::QAIC_SEM_INC,
        ..Default::default()
    };
    a(
        "attach-sem-val-13-bits",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem {
            val: 0x1000,
            ..base
        }),
        EINVAL,
    );
    a(
        "attach-sem-index-32",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem { index: 32, ..base }),
        EINVAL,
    );
    a(
        "attach-sem-presync-2",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem { presync: 2, ..base }),
        EINVAL,
    );
    a(
        "attach-sem-pad",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem { pad: 1, ..base }),
        EINVAL,
    );
    a(
        "attach-sem-flags-4",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem { flags: 4, ..base }),
        EINVAL,
    );
    a(
        "attach-sem-cmd-7",
        rep,
        hdr(1, own, h, 1),
        &sem(qaic_sem { cmd: 7, ..base }),
        EINVAL,
    );
    a(
        "attach-slice-beyond-bo",
        rep,
        hdr(1, own, h, 1),
        &[entry(4096, 8192)],
        EINVAL,
    );
    a(
        "attach-slice-overflow",
        rep,
        hdr(1, own, h, 1),
        &[entry(u64::MAX, 2)],
        EINVAL,
    );
    a(
        "attach-dbc-not-owned",
        rep,
        hdr(1, other, h, 1),
        &ok,
        EINVAL,
    );
    a(
        "attach-zero-size-slice-near-end",
        rep,
        hdr(1, own, h, 1),
        &[entry(8192 - 100, 0)],
        EINVAL,
    );
    let pre = qaic_sem {
        cmd: uapi::QAIC_SEM_WAIT_EQUAL,
        presync: 1,
        ..Default::default()
    };
    a(
        "attach-two-presync",
        rep,
        hdr(1, own, h, 1),
        &[Entry {
            sem0: pre,
            sem1: pre,
            ..entry(0, 8192)
        }],
        EINVAL,
    );
    a(
        "attach-doorbell-misaligned",
        rep,
        hdr(1, own, h, 1),
        &[Entry {
            db_len: 32,
            db_addr: 0x2,
            db_data: 1,
            ..entry(0, 8192)
        }],
        EINVAL,
    );
    // more DMA pieces than the channel's 64 queue elements
    if let Some(big) = rep.check("attach-setup-big-bo", dev.create_bo(65 * 4096)) {
        let many: Vec<Entry> = (0..65).map(|i| entry(i * 4096, 4096)).collect();
        a(
            "attach-more-pieces-than-queue",
            rep,
            hdr(65, own, big.handle(), 1),
            &many,
            ENOSPC,
        );
    }
    // after all the refusals the object is still unsliced and attachable
    rep.check(
        "attach-valid-after-refusals",
        dev.attach_slice_raw(hdr(1, own, h, 1), &ok),
    );
    rep.expect_errno(
        "attach-already-sliced",
        dev.attach_slice_raw(hdr(1, own, h, 1), &ok),
        EINVAL,
    );
    rep.check(
        "detach-valid",
        dev.detach_slice_raw(uapi::qaic_detach_slice { handle: h, pad: 0 }),
    );
    drop(bo);
}

fn submit_checks(rep: &mut Report, dev: &Device, own: u32, other: u32) {
    let (Some(mut sliced), Some(plain)) = (
        rep.check("submit-setup-bo", dev.create_bo(8192)),
        rep.check("submit-setup-bo2", dev.create_bo(4096)),
    ) else {
        return;
    };
    if rep
        .check(
            "submit-setup-attach",
            sliced.attach(
                own,
                Direction::FromDevice,
                &[Slice::new(0, 8192, 0x10_0000)],
            ),
        )
        .is_none()
    {
        return;
    }
    let e = |handle: u32| uapi::qaic_execute_entry { handle, dir: 2 };
    let (s, p) = (sliced.handle(), plain.handle());
    rep.expect_errno("execute-data-null", dev.execute_raw(1, own, &[]), EFAULT);
    rep.expect_errno("execute-dbc-16", dev.execute_raw(1, 16, &[e(s)]), EINVAL);
    rep.expect_errno(
        "execute-dbc-not-owned",
        dev.execute_raw(1, other, &[e(s)]),
        EPERM,
    );
    rep.expect_errno(
        "execute-unknown-handle",
        dev.execute_raw(1, own, &[e(0xdead)]),
        ENOENT,
    );
    rep.expect_errno(
        "execute-not-sliced",
        dev.execute_raw(1, own, &[e(p)]),
        EINVAL,
    );
    rep.expect_errno(
        "execute-listed-twice",
        dev.execute_raw(2, own, &[e(s), e(s)]),
        EINVAL,
    );
    let pe = |handle: u32, resize: u64| uapi::qaic_partial_execute_entry {
        handle,
        dir: 2,
        resize,
    };
    rep.expect_errno(
        "partial-execute-count-0",
        dev.partial_execute_raw(0, own, &[]),
        EINVAL,
    );
    rep.expect_errno(
        "partial-execute-resize-over-size",
        dev.partial_execute_raw(1, own, &[pe(s, 8193)]),
        EINVAL,
    );
    rep.expect_errno(
        "partial-execute-dbc-not-owned",
        dev.partial_execute_raw(1, other, &[pe(s, 0)]),
        EPERM,
    );
    // the failed submissions left nothing queued: the object detaches (not EBUSY)
    rep.check("failed-execute-left-nothing-queued", sliced.detach());
    rep.check(
        "submit-setup-reattach",
        sliced.attach(
            own,
            Direction::FromDevice,
            &[Slice::new(0, 8192, 0x10_0000)],
        ),
    );

    let w = |handle: u32, dbc_id: u32| uapi::qaic_wait {
        handle,
        timeout: 10,
        dbc_id,
        pad: 0,
    };
    rep.expect_errno("wait-dbc-16", dev.wait_raw(w(s, 16)), EINVAL);
    rep.expect_errno("wait-dbc-not-owned", dev.wait_raw(w(s, other)), EPERM);
    rep.expect_errno("wait-unknown-handle", dev.wait_raw(w(0xdead, own)), ENOENT);
    rep.check("wait-never-submitted-returns", dev.wait_raw(w(s, own)));

    let ps = |handle: u32| uapi::qaic_perf_stats_entry {
        handle,
        ..Default::default()
    };
    rep.check("perf-stats-count-0", dev.perf_stats_raw(own, &mut []));
    rep.expect_errno(
        "perf-stats-dbc-16",
        dev.perf_stats_raw(16, &mut [ps(s)]),
        EINVAL,
    );
    rep.expect_errno(
        "perf-stats-unknown-handle",
        dev.perf_stats_raw(own, &mut [ps(0xdead)]),
        ENOENT,
    );
    rep.expect_errno(
        "perf-stats-not-sliced",
        dev.perf_stats_raw(own, &mut [ps(p)]),
        EINVAL,
    );
    rep.expect_errno(
        "perf-stats-wrong-dbc",
        dev.perf_stats_raw(other, &mut [ps(s)]),
        EINVAL,
    );
    let mut one = [uapi::qaic_perf_stats_entry { pad: 0x55, ..ps(s) }];
    rep.check("perf-stats-sliced", dev.perf_stats_raw(own, &mut one));
    rep.ensure(
        "perf-stats-pad-copied-back",
        one[0].pad == 0x55,
        format!("pad {:#x}", one[0].pad),
    );

    rep.expect_errno(
        "detach-pad",
        dev.detach_slice_raw(uapi::qaic_detach_slice { handle: s, pad: 1 }),
        EINVAL,
    );
    rep.expect_errno(
        "detach-unknown-handle",
        dev.detach_slice_raw(uapi::qaic_detach_slice {
            handle: 0xdead,
            pad: 0,
        }),
        ENOENT,
    );
    rep.expect_errno(
        "detach-not-sliced",
        dev.detach_slice_raw(uapi::qaic_detach_slice { handle: p, pad: 0 }),
        EINVAL,
    );
}

fn bo_checks(rep: &mut Report, dev: &Device) {
    let c = |size: u64, pad: u32| {
        dev.create_bo_raw(uapi::qaic_create_bo {
            size,
            handle: 0,
            pad,
        })
    };
    rep.expect_errno("create-bo-pad", c(4096, 1), EINVAL);
    rep.expect_errno("create-bo-size-0", c(0, 0), EINVAL);
    rep.expect_errno("create-bo-size-wraps", c(u64::MAX, 0), EINVAL);
    if let Some(h) = rep.check("create-bo-raw", c(1, 0)) {
        rep.check(
            "mmap-bo-pad-not-checked",
            dev.mmap_bo_raw(uapi::qaic_mmap_bo {
                handle: h,
                pad: 7,
                offset: 0,
            }),
        );
        rep.check("gem-close", dev.gem_close_raw(h));
        rep.expect_errno("mmap-bo-closed-handle", dev.mmap_offset_raw(h), ENOENT);
    }
}

fn main() {
    let mut rep = Report::default();
    let node = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/dev/accel/accel0".into());
    let Some(dev) = rep.check("open", Device::open(node)) else {
        rep.finish()
    };
    bo_checks(&mut rep, &dev);
    let act = dev.manage(&ManageMsg::new().activate(64, 0)).and_then(|r| {
        r.activate()
            .ok_or_else(|| Error::Protocol("no activate answer".into()))
    });
    let Some(act) = rep.check("setup-activate-channel", act) else {
        rep.finish()
    };
    let (own, other) = (act.dbc_id, (act.dbc_id + 1) % uapi::QAIC_DBC_COUNT);
    manage_checks(&mut rep, &dev, other);
    attach_checks(&mut rep, &dev, own, other);
    submit_checks(&mut rep, &dev, own, other);
    // No DEACTIVATE here: without the firmware's deactivate command the device never confirms it,
    // and the driver would keep the channel busy for good. Closing the file releases it.
    rep.finish();
}
