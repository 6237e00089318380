// SPDX-License-Identifier: GPL-2.0-only

//! The DMA bridge.
//!
//! BAR2 holds one 4 KiB register block per DMA bridge channel (DBC), starting at 128 KiB. Each
//! block starts with the request queue head and tail and the response queue head and tail; the
//! queues themselves live in host memory.

use kernel::sizes::{
    SZ_128K,
    SZ_4K, //
};

/// Number of DMA bridge channels of every member of the family.
pub(crate) const NUM_DBC: usize = 16;

/// Offset of the register block of DBC 0 in the DMA bridge BAR.
const DBC_BASE: usize = SZ_128K;

/// Distance between the register blocks of two consecutive DBCs.
const DBC_STRIDE: usize = SZ_4K;

/// Size of the part of the DMA bridge BAR the driver maps: up to the end of the last DBC block.
pub(crate) const DBC_BAR_SIZE: usize = DBC_BASE + NUM_DBC * DBC_STRIDE;

/// Returns the offset of the register block of DBC `dbc` in the DMA bridge BAR, or `None` if
/// there is no such channel.
pub(crate) const fn dbc_block(dbc: usize) -> Option<usize> {
    if dbc < NUM_DBC {
        Some(DBC_BASE + dbc * DBC_STRIDE)
    } else {
        None
    }
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_dma_bridge)]
mod tests {
    use super::*;

    #[test]
    fn dbc_blocks_follow_the_bar_layout() {
        // BAR2: DBC i at 128 KiB + i * 4 KiB; the last one ends at 192 KiB.
        assert_eq!(dbc_block(0), Some(0x2_0000));
        assert_eq!(dbc_block(1), Some(0x2_1000));
        assert_eq!(dbc_block(15), Some(0x2_f000));
        assert_eq!(dbc_block(16), None);
        assert_eq!(dbc_block(usize::MAX), None);
        assert_eq!(DBC_BAR_SIZE, 0x3_0000);
    }
}
