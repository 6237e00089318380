// SPDX-License-Identifier: GPL-2.0-only

//! The MHI controller of the card.
//!
//! On the AIC100 BAR0 holds the MHI register space: the MHI control registers, the BHI (boot host
//! interface) window, the channel and event ring doorbells, a mirror of the device QTimer and the
//! SoC reset request register. The driver lends it, with the first interrupt vector, to the MHI
//! core, which boots the card: it downloads the secondary boot loader (SBL) over BHI, then the SBL
//! pulls the rest of the firmware over the Sahara channel and the card enters mission mode
//! (AMSS), where the control and service channels come up.
//!
//! Host-side channel names carry a `QAIC_RS_` prefix. MHI client drivers bind by channel name on
//! any controller, so with the names of the C driver its clients (`qaic_mhi`, `sahara`, ...) would
//! bind to the channels of a card this driver owns, and read our driver data as theirs. The
//! device only knows channel numbers, so the names are free to choose.

use kernel::{
    device::Bound,
    mhi::{
        self,
        Callback,
        ChannelConfig,
        Direction::{
            FromDevice,
            ToDevice, //
        },
        EeMask,
        EventConfig,
        ExecEnv,
        Registers, //
    },
    pci,
    prelude::*,
    sizes::SZ_4K,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

/// Size of the MHI register space, the part of the MHI BAR the driver maps and hands to the MHI
/// core. A smaller BAR cannot be a Cloud AI 100.
pub(crate) const MHI_BAR_SIZE: usize = SZ_4K;

/// The MHI controller registration of a card.
pub(crate) type QaicMhiRegistration<'bound> =
    mhi::Registration<'bound, QaicMhi<'bound>, MHI_BAR_SIZE>;

/// Number of channels of the controller (the size of the channel context array).
const MAX_CHANNELS: u32 = 128;

/// Elements of the transfer ring of most channels.
const RING: u32 = 32;

/// Elements of the control channel rings: NNC requests can be split into many transfers.
const CONTROL_RING: u32 = 128;

const SBL: EeMask = EeMask::SBL;
const AMSS: EeMask = EeMask::AMSS;

/// The channels of the AIC100 (and AIC080), in every execution environment.
static AIC100_CHANNELS: [ChannelConfig; 26] = [
    ChannelConfig::new(c"QAIC_RS_LOOPBACK", 0, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_LOOPBACK", 1, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_SAHARA", 2, ToDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_SAHARA", 3, FromDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_DIAG", 4, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_DIAG", 5, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_SSR", 6, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_SSR", 7, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_QDSS", 8, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_QDSS", 9, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_CONTROL", 10, ToDevice, CONTROL_RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_CONTROL", 11, FromDevice, CONTROL_RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_LOGGING", 12, ToDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_LOGGING", 13, FromDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_STATUS", 14, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_STATUS", 15, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_TELEMETRY", 16, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_TELEMETRY", 17, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_DEBUG", 18, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_DEBUG", 19, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_TIMESYNC", 20, ToDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_TIMESYNC", 21, FromDevice, RING, SBL),
    ChannelConfig::new(c"QAIC_RS_TIMESYNC_PERIODIC", 22, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_TIMESYNC_PERIODIC", 23, FromDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_IPCR", 24, ToDevice, RING, AMSS),
    ChannelConfig::new(c"QAIC_RS_IPCR", 25, FromDevice, RING, AMSS),
];

/// The one event ring: 32 events on vector 0, carrying control as well as transfer events.
static AIC100_EVENTS: [EventConfig; 1] = [EventConfig::new(32, 0).control()];

/// SBL image the MHI core downloads over BHI when the card is in its primary boot loader.
pub(crate) const AIC100_SBL: &CStr = c"qcom/aic100/sbl.bin";

/// Returns the controller description of an AIC100 whose MHI timeout is `timeout_ms` and whose
/// interrupt vector is shared with the DMA bridge channels if `shared_irq`.
pub(crate) fn aic100_config(timeout_ms: u32, shared_irq: bool) -> mhi::ControllerConfig {
    mhi::ControllerConfig {
        name: c"AIC100",
        fw_image: Some(AIC100_SBL),
        shared_irq,
        channels: &AIC100_CHANNELS,
        events: &AIC100_EVENTS,
        max_channels: MAX_CHANNELS,
        timeout_ms,
        buf_len: 0,
    }
}

/// Offset of `SOC_HW_VERSION` in the MHI register space. The hardware value is unreliable (it
/// can read as all ones, which would look like a dead link), so reads are answered in software.
const SOC_HW_VERSION: usize = 0x224;

/// What `SOC_HW_VERSION` reads as.
const SOC_HW_VERSION_VALUE: u32 = 0x6011_0200;

/// The controller driver's side of the MHI controller.
pub(crate) struct QaicMhi<'bound> {
    pdev: &'bound pci::Device<Bound>,
    /// Set once the card reports mission mode; cleared on a system error.
    mission_mode: Atomic<bool>,
}

impl<'bound> QaicMhi<'bound> {
    pub(crate) fn new(pdev: &'bound pci::Device<Bound>) -> Self {
        Self {
            pdev,
            mission_mode: Atomic::new(false),
        }
    }

    /// Returns whether the card has reached mission mode since it was last reset.
    pub(crate) fn in_mission_mode(&self) -> bool {
        self.mission_mode.load(Relaxed)
    }
}

impl mhi::ControllerOps for QaicMhi<'_> {
    fn status(&self, reason: Callback) {
        match reason {
            Callback::EeMissionMode => {
                self.mission_mode.store(true, Relaxed);
                dev_info!(self.pdev, "card in mission mode\n");
            }
            Callback::SysError => {
                self.mission_mode.store(false, Relaxed);
                dev_err!(
                    self.pdev,
                    "card reported a system error, the MHI core resets it\n"
                );
            }
            Callback::FatalError => {
                self.mission_mode.store(false, Relaxed);
                dev_err!(self.pdev, "fatal error reported by the card\n");
            }
            _ => (),
        }
    }

    fn read_reg(&self, regs: &Registers<'_>, offset: usize) -> Result<u32> {
        if offset == SOC_HW_VERSION {
            return Ok(SOC_HW_VERSION_VALUE);
        }
        match regs.read32(offset)? {
            // All ones is what a read returns once the link is down.
            u32::MAX => Err(EIO),
            value => Ok(value),
        }
    }
}

/// Powers the card up. A card found in its secondary boot loader (e.g. after a warm reboot of the
/// host) cannot be powered up from there: it is reset to its primary boot loader first, waiting
/// up to 26 seconds for it to get there.
pub(crate) fn power_up(mhi: &QaicMhiRegistration<'_>, pdev: &pci::Device<Bound>) -> Result {
    const RESET_WAIT_S: u32 = 25;

    crate::boot::check_sbl(pdev.as_ref(), AIC100_SBL);
    match mhi.power_up() {
        Err(e) if e == EIO && mhi.exec_env() == ExecEnv::Sbl => {
            dev_info!(pdev, "card left in its boot loader, resetting it\n");
            mhi.soc_reset();
            for _ in 0..=RESET_WAIT_S {
                kernel::time::delay::fsleep(kernel::time::Delta::from_millis(1000));
                if mhi.exec_env() == ExecEnv::Pbl {
                    return mhi.power_up();
                }
            }
            dev_err!(pdev, "card did not come back after a reset\n");
            Err(EIO)
        }
        other => other,
    }
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_mhi)]
mod tests {
    use super::*;

    #[test]
    fn aic100_channels_come_in_pairs() {
        assert_eq!(AIC100_CHANNELS.len(), 26);
        // Channel n sits at index n: UL on the even number, DL on the odd one after it, both
        // with the same name, ring size and execution environments.
        for (i, ch) in AIC100_CHANNELS.iter().enumerate() {
            assert_eq!(ch.number() as usize, i);
        }
        for pair in AIC100_CHANNELS.chunks(2) {
            let (ul, dl) = (&pair[0], &pair[1]);
            assert_eq!(ul.direction(), ToDevice);
            assert_eq!(dl.direction(), FromDevice);
            assert_eq!(ul.name(), dl.name());
            assert_eq!(ul.elements(), dl.elements());
            assert_eq!(ul.exec_envs(), dl.exec_envs());
        }
    }

    #[test]
    fn aic100_boot_channels_and_rings() {
        let sbl: KVec<u32> = {
            let mut v = KVec::new();
            for ch in AIC100_CHANNELS.iter().filter(|c| c.exec_envs() == SBL) {
                assert!(v.push(ch.number(), GFP_KERNEL).is_ok());
            }
            v
        };
        // Sahara, boot log and boot timesync exist in the SBL only; everything else in AMSS.
        assert_eq!(&sbl[..], &[2, 3, 12, 13, 20, 21]);
        assert!(AIC100_CHANNELS
            .iter()
            .all(|c| c.exec_envs() == SBL || c.exec_envs() == AMSS));
        for ch in &AIC100_CHANNELS {
            let control = ch.name() == c"QAIC_RS_CONTROL";
            assert_eq!(ch.elements(), if control { CONTROL_RING } else { RING });
        }
    }

    #[test]
    fn channel_names_cannot_match_c_qaic_clients() {
        // The C driver's clients bind "QAIC_*" names and qrtr binds "IPCR": none of ours may
        // equal one of those.
        for ch in &AIC100_CHANNELS {
            assert!(ch.name().to_bytes().starts_with(b"QAIC_RS_"));
            assert!(ch.name().to_bytes().len() < 32);
        }
    }
}
