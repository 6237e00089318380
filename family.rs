// SPDX-License-Identifier: GPL-2.0-only

//! Members of the Cloud AI 100 family and the policies derived from their host interface.
//!
//! Everything here is pure: the probe path feeds it what the PCI core reports and acts on the
//! answer, and the KUnit suite at the bottom checks the answers without a device.

use kernel::prelude::*;

use crate::dma_bridge::NUM_DBC;

/// What differs between the members of the family, as far as the host is concerned.
pub(crate) struct Family {
    /// Marketing name, used in log messages.
    pub(crate) name: &'static str,
    /// The exact set of memory BARs the function must expose (bit `n` for BAR `n`).
    pub(crate) bars: u32,
    /// Index of the BAR holding the MHI registers.
    pub(crate) mhi_bar: u32,
    /// Index of the BAR holding the DMA bridge channel registers.
    pub(crate) dbc_bar: u32,
    /// Whether the driver can boot it (the AIC100 boot flow).
    pub(crate) boots: bool,
}

/// Cloud AI 100: BAR0 (MHI), BAR2 (DMA bridge) and BAR4, all 64-bit.
pub(crate) static AIC100: Family = Family {
    name: "AIC100",
    bars: (1 << 0) | (1 << 2) | (1 << 4),
    mhi_bar: 0,
    dbc_bar: 2,
    boots: true,
};

/// Cloud AI 080: a smaller AIC100 with the same host interface.
pub(crate) static AIC080: Family = Family {
    name: "AIC080",
    ..AIC100
};

/// Cloud AI 200: the MHI registers move to BAR1, so BAR0 must be a 32-bit BAR.
///
/// TODO: its boot differs (BHIe instead of BHI for the primary image, a reduced channel table,
/// its own Sahara image table); probe refuses it until that is implemented.
pub(crate) static AIC200: Family = Family {
    name: "AIC200",
    bars: (1 << 0) | (1 << 1) | (1 << 2) | (1 << 4),
    mhi_bar: 1,
    dbc_bar: 2,
    boots: false,
};

/// Mask of the six standard BAR slots in a memory BAR set.
const STD_BARS: u32 = 0x3f;

impl Family {
    /// Checks the memory BARs a function exposes (`found`, bit `n` for BAR `n`) against the set
    /// this member of the family must have.
    ///
    /// # Errors
    ///
    /// [`ENODEV`] if the sets differ: the function is not a card this driver can run.
    pub(crate) fn check_bars(&self, found: u32) -> Result {
        if found & STD_BARS == self.bars {
            Ok(())
        } else {
            Err(ENODEV)
        }
    }
}

/// How the interrupt vectors of a card are shared out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IrqMode {
    /// One vector for MHI and one per DMA bridge channel.
    PerChannel,
    /// A single vector shared by MHI and all channels; the platform could not give more (on x86
    /// that is the case without interrupt remapping).
    Shared,
}

/// Number of vectors the driver asks for first: one for MHI plus one per DMA bridge channel.
/// The PCI core rounds a multi-message MSI request up to a power of two, so the device must offer
/// 32 messages.
// CAST: `NUM_DBC` is 16.
pub(crate) const WANTED_VECTORS: u32 = NUM_DBC as u32 + 1;

/// Vector of the MHI core (BHI and its event ring) in both modes.
pub(crate) const MHI_VECTOR: usize = 0;

impl IrqMode {
    /// Returns the mode matching an allocation of `vectors` interrupt vectors.
    ///
    /// # Errors
    ///
    /// [`EINVAL`] for any count the allocation policy never produces.
    pub(crate) fn from_vectors(vectors: usize) -> Result<Self> {
        match vectors {
            1 => Ok(Self::Shared),
            // CAST: `WANTED_VECTORS` is 17.
            v if v == WANTED_VECTORS as usize => Ok(Self::PerChannel),
            _ => Err(EINVAL),
        }
    }

    /// Returns the vector index the DMA bridge channel `dbc` interrupts on, or `None` if there
    /// is no such channel.
    pub(crate) fn dbc_vector(self, dbc: usize) -> Option<usize> {
        if dbc >= NUM_DBC {
            return None;
        }
        Some(match self {
            Self::PerChannel => dbc + 1,
            Self::Shared => MHI_VECTOR,
        })
    }
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kunit_tests(qaic_rs_family)]
mod tests {
    use super::*;

    #[test]
    fn aic100_needs_exactly_bars_0_2_4() {
        assert_eq!(AIC100.bars, 0x15);
        assert!(AIC100.check_bars(0x15).is_ok());
        // Bits above the six standard BARs are not BARs.
        assert!(AIC100.check_bars(0x15 | 0x40).is_ok());
        // A missing BAR, an extra BAR, or a 32-bit BAR0 (which leaves slot 1 populated).
        assert_eq!(AIC100.check_bars(0x05), Err(ENODEV));
        assert_eq!(AIC100.check_bars(0x1d), Err(ENODEV));
        assert_eq!(AIC100.check_bars(0x17), Err(ENODEV));
        assert_eq!(AIC100.check_bars(0), Err(ENODEV));
    }

    #[test]
    fn family_members_differ_where_the_hardware_does() {
        assert_eq!(AIC080.bars, AIC100.bars);
        assert_eq!((AIC080.mhi_bar, AIC080.dbc_bar), (0, 2));
        assert_eq!(AIC200.bars, 0x17);
        assert_eq!((AIC200.mhi_bar, AIC200.dbc_bar), (1, 2));
        assert!(AIC200.check_bars(0x15).is_err());
        assert!(AIC100.check_bars(0x17).is_err());
    }

    #[test]
    fn irq_mode_follows_the_allocation() {
        assert_eq!(WANTED_VECTORS, 17);
        assert_eq!(IrqMode::from_vectors(17), Ok(IrqMode::PerChannel));
        assert_eq!(IrqMode::from_vectors(1), Ok(IrqMode::Shared));
        for v in [0, 2, 16, 18, 32] {
            assert_eq!(IrqMode::from_vectors(v), Err(EINVAL));
        }
    }

    #[test]
    fn dbc_vectors() {
        for dbc in 0..NUM_DBC {
            assert_eq!(IrqMode::PerChannel.dbc_vector(dbc), Some(dbc + 1));
            assert_eq!(IrqMode::Shared.dbc_vector(dbc), Some(MHI_VECTOR));
        }
        assert_eq!(IrqMode::PerChannel.dbc_vector(NUM_DBC), None);
        assert_eq!(IrqMode::Shared.dbc_vector(NUM_DBC), None);
        // No channel shares the MHI vector in per-channel mode.
        assert!((0..NUM_DBC).all(|d| IrqMode::PerChannel.dbc_vector(d) != Some(MHI_VECTOR)));
    }
}
