// SPDX-License-Identifier: GPL-2.0-only

//! The MHI BAR.
//!
//! On the AIC100 BAR0 holds the MHI register space: the MHI control registers, the BHI (boot host
//! interface) window, the channel and event ring doorbells, a mirror of the device QTimer and the
//! SoC reset request register. The MHI core owns almost all of it once a controller is registered.

use kernel::sizes::SZ_4K;

/// Size of the MHI register space, the part of the MHI BAR the driver maps and hands to the MHI
/// core. A smaller BAR cannot be a Cloud AI 100.
pub(crate) const MHI_BAR_SIZE: usize = SZ_4K;
