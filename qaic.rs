// SPDX-License-Identifier: GPL-2.0-only

//! Rust driver for the Qualcomm Cloud AI 100 (AIC100) inference accelerator.
//!
//! The card is a PCIe function with three memory BARs: BAR0 holds the MHI (Modem Host Interface)
//! registers through which the host boots the card and talks to its firmware, BAR2 the sixteen
//! DMA bridge channels (DBC) that carry inference requests, BAR4 is unused. The driver exposes
//! the card as a DRM compute accelerator, `/dev/accel/accelN`, with the user-space ABI of the C
//! `qaic` driver (`include/uapi/drm/qaic_accel.h`).
//!
//! # Definitions
//!
//! - AIC100: Qualcomm Cloud AI 100, PCI device `17cb:a100` (AIC080 `a080` is a smaller part with
//!   the same host interface; AIC200 is `a110`).
//! - DBC: DMA Bridge Channel, one of 16 hardware request/response queue pairs in BAR2.
//! - MHI: Modem Host Interface, the ring-based transport over BAR0 used for boot (BHI, Sahara)
//!   and for the control and service channels in mission mode.
//!
//! # Layout
//!
//! - [`driver`]: PCI binding, probe and teardown.
//! - [`family`]: what differs between the members of the family, and the BAR and interrupt
//!   policies derived from it.
//! - [`mhi`]: the MHI controller, which boots the card.
//! - [`boot`], [`sahara`]: the Sahara channel client that serves the firmware images.
//! - [`bootlog`]: what the card logs while it boots.
//! - [`card`]: what the parts share about a card: channels, users.
//! - [`control`]: the control protocol link, which brings a card online and carries MANAGE
//!   requests.
//! - [`manage`]: MANAGE messages, from the user format to the wire and back.
//! - [`dma_bridge`]: the DMA bridge BAR.
//! - [`accel`]: the DRM accel device.
//! - [`gem`]: buffer objects.
//! - [`data`]: the data path: slices, submission, completion.
//! - [`ras`]: the hardware errors the card reports.
//! - [`ssr`]: restarts of a channel's sub-system after its workload crashed.
//! - [`timesync`]: the card learns the host's time.

mod accel;
mod boot;
mod bootlog;
mod card;
mod control;
mod data;
mod dma_bridge;
mod driver;
mod family;
mod gem;
mod manage;
mod mhi;
mod ras;
mod sahara;
mod ssr;
mod timesync;

use kernel::{
    driver::Registration,
    mhi as kmhi,
    pci,
    prelude::*,
    InPlaceModule, //
};

/// The name of the module, also used for its PCI driver.
const MODULE_NAME: &CStr = <LocalModule as kernel::ModuleMetadata>::NAME;

/// The module: the PCI driver of the cards and the MHI client drivers of their channels.
///
/// Fields drop in declaration order: the PCI driver goes first, which unregisters the MHI
/// controllers and so unbinds the clients before their drivers go. The PCI driver is initialised
/// last.
#[pin_data]
struct QaicModule {
    #[pin]
    _pci: Registration<pci::Adapter<driver::QaicDriver>>,
    #[pin]
    _sahara: Registration<kmhi::Adapter<boot::SaharaDriver>>,
    #[pin]
    _control: Registration<kmhi::Adapter<control::ControlDriver>>,
    #[pin]
    _bootlog: Registration<kmhi::Adapter<bootlog::BootlogDriver>>,
    #[pin]
    _ras: Registration<kmhi::Adapter<ras::RasDriver>>,
    #[pin]
    _ssr: Registration<kmhi::Adapter<ssr::SsrDriver>>,
    #[pin]
    _boot_timesync: Registration<kmhi::Adapter<timesync::BootTimesyncDriver>>,
    #[pin]
    _timesync: Registration<kmhi::Adapter<timesync::PeriodicTimesyncDriver>>,
    _debugfs: card::DebugfsRoot,
    /// Last: frees the global lists once everything else is gone.
    _globals: card::GlobalsGuard,
}

impl InPlaceModule for QaicModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called once, here, before the drivers that use the global state are
        // registered.
        unsafe { card::init_globals() };
        try_pin_init!(Self {
            _globals: card::GlobalsGuard::new(),
            // First: the cards' directories go under it.
            _debugfs: card::DebugfsRoot::new(),
            // The channel clients before the PCI driver: a card probed at once boots straight
            // away, and its SBL channels (boot log, boot timesync) exist only while it boots.
            _sahara <- Registration::new(c"qaic_rs_sahara", module),
            _control <- Registration::new(c"qaic_rs_control", module),
            _bootlog <- Registration::new(c"qaic_rs_bootlog", module),
            _ras <- Registration::new(c"qaic_rs_ras", module),
            _ssr <- Registration::new(c"qaic_rs_ssr", module),
            _boot_timesync <- Registration::new(c"qaic_rs_boot_timesync", module),
            _timesync <- Registration::new(c"qaic_rs_timesync", module),
            _pci <- Registration::new(MODULE_NAME, module),
        })
    }
}

module! {
    type: QaicModule,
    name: "qaic_rs",
    authors: ["The qaic-rs developers"],
    description: "Qualcomm Cloud AI 100 accelerator driver (Rust)",
    license: "GPL",
    params: {
        mhi_timeout_ms: u32 {
            default: 2000,
            description: "MHI timeout (state changes, commands, BHI download), ms; 0: MHI default",
        },
        datapath_polling: u32 {
            default: 0,
            description: "1: find completed requests by polling instead of interrupts",
        },
        control_resp_timeout_s: u32 {
            default: 60,
            description: "Timeout for the card's answer to a control request, seconds",
        },
        timesync_delay_ms: u32 {
            default: 1000,
            description: "Period of the time synchronisation with the card, ms",
        },
    },
}

// The firmware files, for modinfo: built from the SBL of mhi.rs and the image table of sahara.rs,
// so the list cannot drift from what the driver asks for (05-kernel-style compares modinfo with
// the tables).
kernel::module_firmware!(boot::FirmwareModInfo);

/// The `mhi_timeout_ms` module parameter.
fn mhi_timeout_ms() -> u32 {
    module_parameters::mhi_timeout_ms.value()
}

/// The `control_resp_timeout_s` module parameter, in milliseconds.
fn control_resp_timeout_ms() -> u32 {
    module_parameters::control_resp_timeout_s
        .value()
        .saturating_mul(1000)
}

/// The `datapath_polling` module parameter.
fn datapath_polling() -> bool {
    module_parameters::datapath_polling.value() != 0
}

/// The `timesync_delay_ms` module parameter.
fn timesync_delay_ms() -> u32 {
    module_parameters::timesync_delay_ms.value()
}
