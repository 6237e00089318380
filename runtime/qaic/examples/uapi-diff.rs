// SPDX-License-Identifier: MIT OR Apache-2.0
//! Where qaic_rs deliberately differs from the upstream C driver
//! (Documentation/driver.rst, "Differences from the C driver"): one step per
//! difference, each with the result expected from each driver.
//!
//! Prints `PASS name` / `FAIL name - why` per step and closes with
//! `N passed, N failed`.
//!
//! Usage: `uapi-diff NODE DRIVER` with DRIVER `qaic` or `qaic_rs`.
//!
//! The `same-card-import-mappable` step expects a mapping on qaic_rs and a refusal on the C
//! driver.

mod common;

use common::Report;
use libc::{EINVAL, EIO};
use qaic::{Device, Direction, Error, ManageMsg, Slice};
use std::time::Duration;

/// Device address of the emulated card's DDR (the activation's `ddr_base`).
const DDR: u64 = 0x1_0000_0000;

/// Activates a bare channel (no program) and returns its id.
fn channel(dev: &Device) -> qaic::Result<u32> {
    dev.manage(&ManageMsg::new().activate(64, 0))?
        .activate()
        .map(|a| a.dbc_id)
        .ok_or_else(|| Error::Protocol("no activate answer".into()))
}

fn main() {
    let mut rep = Report::default();
    let mut args = std::env::args().skip(1);
    let node = args.next().unwrap_or_else(|| "/dev/accel/accel0".into());
    let rust = args.next().as_deref() == Some("qaic_rs");
    let Some(dev) = rep.check("open", Device::open(node)) else {
        rep.finish()
    };
    let (Some(a), Some(b)) = (
        rep.check("setup-channel-a", channel(&dev)),
        rep.check("setup-channel-b", channel(&dev)),
    ) else {
        rep.finish()
    };

    // EXECUTE_BO of a buffer attached to channel A, on channel B of the same user: upstream
    // queues it on B; qaic_rs refuses it.
    if let Some(mut bo) = rep.check("setup-bo", dev.create_bo(4096)) {
        if rep
            .check(
                "setup-attach",
                bo.attach(a, Direction::ToDevice, &[Slice::new(0, 4096, DDR)]),
            )
            .is_some()
        {
            let r = dev.execute(b, &[&bo]);
            if rust {
                rep.expect_errno("execute-on-another-own-channel", r, EINVAL);
            } else {
                rep.check("execute-on-another-own-channel", r);
                let _ = dev.wait(&bo, b, Some(Duration::from_secs(2)));
            }
        }
    }

    // A request the card answers with an error status (its device address is outside the
    // card's memory): upstream reports success; qaic_rs fails WAIT_BO with EIO.
    if let Some(mut bo) = rep.check("setup-bo-bad-address", dev.create_bo(4096)) {
        let bad = 0xdead_0000_0000;
        if rep
            .check(
                "setup-attach-bad-address",
                bo.attach(a, Direction::ToDevice, &[Slice::new(0, 4096, bad)]),
            )
            .is_some()
            && rep
                .check("setup-execute-bad-address", dev.execute(a, &[&bo]))
                .is_some()
        {
            let r = dev.wait(&bo, a, Some(Duration::from_secs(5)));
            if rust {
                rep.expect_errno("error-status-reported", r, EIO);
            } else {
                rep.check("error-status-reported", r);
            }
        }
    }

    // Two DMA transfers in one MANAGE message: upstream describes the second from an offset into
    // it and the exchange ends in EINVAL; qaic_rs refuses the message before sending it. Same
    // errno from both.
    let (x, y) = (vec![1u8; 4096], vec![2u8; 4096]);
    let r = dev.manage(&ManageMsg::new().dma_xfer(1, &x).dma_xfer(2, &y));
    rep.expect_errno("two-dma-transfers-in-one-message", r, EINVAL);

    // PARTIAL_EXECUTE_BO with nothing to transfer of a slice made of several DMA pieces: upstream
    // builds its one element without the response bit and the buffer never completes; qaic_rs
    // completes it. Only meaningful when the slice has several pieces (the buffer's pages are
    // not contiguous for the card): otherwise both drivers complete it and the step is skipped.
    if let Some(mut bo) = rep.check("setup-bo-multi-piece", dev.create_bo(256 << 10)) {
        if rep
            .check(
                "setup-attach-multi-piece",
                bo.attach(a, Direction::ToDevice, &[Slice::new(0, 256 << 10, DDR)]),
            )
            .is_some()
        {
            let pieces = dev
                .perf_stats(a, &[&bo])
                .ok()
                .and_then(|s| s.first().map(|p| p.num_queue_element))
                .unwrap_or(0);
            if pieces < 2 {
                println!("SKIP partial-execute-multi-piece-completes - {pieces} piece(s) only");
            } else if rep
                .check("setup-partial-execute", dev.partial_execute(a, &[(&bo, 0)]))
                .is_some()
            {
                let r = dev.wait(&bo, a, Some(Duration::from_secs(2)));
                if rust {
                    rep.check("partial-execute-multi-piece-completes", r);
                } else {
                    rep.expect_errno("partial-execute-multi-piece-completes", r, libc::ETIMEDOUT);
                }
            }
        }
    }

    // A dma-buf of this card imported in another open file of the same card: upstream imports it
    // as a new object that cannot be mapped; qaic_rs gets the exporting object back (the DRM
    // core's default import), which can.
    if let Some(bo) = rep.check("setup-bo-for-prime", dev.create_bo(4096)) {
        if let (Some(fd), Some(dev2)) = (
            rep.check("setup-export", dev.export_bo(&bo)),
            rep.check("setup-second-file", Device::open(dev.path())),
        ) {
            use std::os::fd::AsFd;
            if let Some(imp) = rep.check("setup-import", dev2.import_bo(fd.as_fd())) {
                let mapped = imp.bytes().map(|b| b.len());
                if rust {
                    rep.check("same-card-import-mappable", mapped);
                } else {
                    rep.ensure(
                        "same-card-import-mappable",
                        mapped.is_err(),
                        "the imported object was mapped",
                    );
                }
            }
        }
    }
    rep.finish();
}
