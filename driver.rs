// SPDX-License-Identifier: GPL-2.0-only

//! PCI binding: probe brings a card up to the point where user space can open it, dropping the
//! bound data takes it down again.

use kernel::{
    device::{
        Bound,
        Core, //
    },
    dma::{
        Device as _,
        DmaMask, //
    },
    drm,
    irq::{
        self,
        ThreadedRegistration, //
    },
    pci::{
        self,
        IrqType,
        IrqTypes,
        IrqVectorRegistration,
        Vendor, //
    },
    prelude::*,
    sync::aref::ARef, //
};

use crate::{
    accel::{
        QaicDevice,
        QaicDrm,
        Registered, //
    },
    card::{
        Card,
        CardDebugfs, //
    },
    data::{
        DbcBar,
        DbcIrq, //
    },
    dma_bridge::DBC_BAR_SIZE,
    dma_bridge::NUM_DBC,
    family::{
        Family,
        IrqMode,
        AIC080,
        AIC100,
        AIC200,
        WANTED_VECTORS, //
    },
    mhi::{
        QaicMhi,
        QaicMhiRegistration,
        MHI_BAR_SIZE, //
    },
};

/// The PCI driver.
pub(crate) struct QaicDriver;

kernel::pci_device_table!(
    PCI_TABLE,
    <QaicDriver as pci::Driver>::IdInfo,
    [
        (pci::DeviceId::from_id(Vendor::QCOM, 0xa080), &AIC080),
        (pci::DeviceId::from_id(Vendor::QCOM, 0xa100), &AIC100),
        (pci::DeviceId::from_id(Vendor::QCOM, 0xa110), &AIC200),
    ]
);

/// A bound card.
///
/// Fields drop in declaration order, which is the teardown order: user space is cut off first
/// (the DRM registration unplugs the device and waits for running ioctls), then the card is
/// powered down and the MHI controller unregistered (which also unmaps the MHI BAR), then the
/// interrupt vectors are freed, the DMA bridge BAR unmapped, and last the device's bus mastering
/// is turned off and the device disabled.
#[pin_data]
pub(crate) struct Qaic<'bound> {
    _drm: drm::Registration<'bound, QaicDrm>,
    _published: Published<'bound>,
    _debugfs: Pin<KBox<CardDebugfs>>,
    card: ARef<QaicDevice>,
    #[pin]
    mhi: QaicMhiRegistration<'bound>,
    _dbc_irqs: KVec<Pin<KBox<ThreadedRegistration<'bound, DbcIrq<'bound>>>>>,
    irqs: IrqVectorRegistration<'bound>,
    dbc: DbcBar<'bound>,
    family: &'static Family,
    _enabled: pci::Enabled<'bound>,
}

impl pci::Driver for QaicDriver {
    type IdInfo = &'static Family;
    type Data<'bound> = Qaic<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let family: &'static Family = info.copied().ok_or(ENODEV)?;
            if !family.boots {
                // TODO: AIC200 boots over BHIe with its own channel and Sahara image tables.
                dev_err!(pdev, "{} is not supported yet\n", family.name);
                return Err(ENODEV);
            }

            check_bars(pdev, family)?;
            let enabled = pdev
                .enable_mem_and_master()
                .inspect_err(|e| dev_err!(pdev, "cannot enable the device: {:?}\n", e))?;

            // SAFETY: the device is still being probed: no DMA allocation or mapping for it can
            // run concurrently.
            unsafe {
                pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())
                    .inspect_err(|_| dev_err!(pdev, "no 64-bit DMA\n"))?;
                // Every DMA segment must fit the 32-bit length field of a DBC request.
                pdev.dma_set_max_seg_size(u32::MAX);
            }

            let mhi_bar = map_bar::<MHI_BAR_SIZE>(pdev, family.mhi_bar, c"qaic_rs/mhi")?;
            let dbc = map_bar::<DBC_BAR_SIZE>(pdev, family.dbc_bar, c"qaic_rs/dbc")?;
            let irqs = alloc_vectors(pdev)?;

            let unregistered = drm::UnregisteredDevice::<QaicDrm>::new(pdev, Card::new())?;
            let published = Published::new(pdev, &unregistered)?;
            let debugfs = crate::card::debugfs(pdev.as_ref(), &unregistered)?;
            let ddev: ARef<QaicDevice> = (&*unregistered).into();

            let mode = IrqMode::from_vectors(irqs.len())?;
            dev_info!(
                pdev,
                "{} bound: {} interrupt vector(s), {:?} mode\n",
                family.name,
                irqs.len(),
                mode
            );

            let config =
                crate::mhi::aic100_config(crate::mhi_timeout_ms(), mode == IrqMode::Shared);

            Ok(try_pin_init!(Qaic {
                // Resources first: fields are initialised in the order listed here.
                _enabled: enabled,
                irqs,
                dbc,
                family,
                // SAFETY: `irqs` and `dbc` are initialised before this expression is evaluated,
                // live at a pinned stable address and are dropped after `_dbc_irqs` (struct field
                // drop order).
                _dbc_irqs: unsafe {
                    dbc_irqs(
                        pdev,
                        &*core::ptr::from_ref(irqs),
                        &*core::ptr::from_ref(dbc),
                        &ddev,
                        mode == IrqMode::Shared,
                    )?
                },
                // TODO: Use `&irqs` self-referential pin-init syntax once available.
                mhi <- QaicMhiRegistration::new(
                    pdev,
                    mhi_bar,
                    // SAFETY: `irqs` is initialised before this expression is evaluated, lives at
                    // a pinned stable address and is dropped after `mhi` (struct field drop
                    // order).
                    unsafe { &*core::ptr::from_ref(irqs) },
                    1,
                    &config,
                    Ok::<_, Error>(QaicMhi::new(pdev)),
                ),
                // SAFETY: the registration is stored in the bound data, which the driver core
                // drops when the device is unbound; it is never forgotten. `dbc` is initialised
                // before this expression is evaluated, lives at a pinned stable address and is
                // dropped after `_drm` (struct field drop order).
                _drm: unsafe {
                    drm::Registration::new(
                        pdev.as_ref(),
                        unregistered,
                        Registered {
                            pdev,
                            dbc: &*core::ptr::from_ref(dbc),
                        },
                        0,
                    )?
                },
                _published: published,
                _debugfs: debugfs,
                card: ddev.clone(),
                _: {
                    if let Some(accel) = _drm.accel_device() {
                        let card: &Card = &ddev;
                        card.registered(accel)?;
                    }
                    crate::mhi::power_up(&mhi, pdev)
                        .inspect_err(|e| dev_err!(pdev, "cannot power the card up: {:?}\n", e))?;
                },
            }))
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        dev_info!(
            pdev,
            "{} unbinding ({}in mission mode)\n",
            this.family.name,
            if this.mhi.ops().in_mission_mode() {
                ""
            } else {
                "not "
            }
        );
        // Requests waiting for the card fail now (MANAGE with EIO, WAIT_BO with ENODEV) rather
        // than hold up the teardown, which first waits for the ioctls in progress, for their
        // timeout: a card that was surprise-removed answers nothing.
        let card: &Card = &this.card;
        card.link.down();
        card.removed();
        card.unregistered();
    }
}

/// Registers the interrupt handler of every DMA bridge channel: on vector `id + 1` with one
/// vector per channel, else on the one vector everything shares.
fn dbc_irqs<'bound>(
    pdev: &'bound pci::Device<Bound>,
    irqs: &'bound IrqVectorRegistration<'bound>,
    dbc: &'bound DbcBar<'bound>,
    card: &ARef<QaicDevice>,
    shared: bool,
) -> Result<KVec<Pin<KBox<ThreadedRegistration<'bound, DbcIrq<'bound>>>>>> {
    let mut regs = KVec::with_capacity(NUM_DBC, GFP_KERNEL)?;
    // In polling mode the channels' own vectors stay unrequested, hence masked.
    if crate::datapath_polling() && !shared {
        return Ok(regs);
    }
    for id in 0..NUM_DBC {
        let vector = if shared { 0 } else { id + 1 };
        let request = irqs.index(vector)?.into();
        let handler = DbcIrq {
            card: card.clone(),
            reg: Registered { pdev, dbc },
            id,
        };
        let flags = if shared {
            irq::Flags::SHARED
        } else {
            irq::Flags::TRIGGER_NONE
        };
        // SAFETY: the registration is kept in the bound data until the device is unbound; it
        // is never forgotten.
        let reg = KBox::pin_init(
            unsafe {
                ThreadedRegistration::new(request, flags, c"qaic_rs-dbc", Ok::<_, Error>(handler))
            },
            GFP_KERNEL,
        )?;
        regs.push(reg, GFP_KERNEL)?;
    }
    Ok(regs)
}

/// Keeps the card findable by its control channel client while the PCI device is bound.
struct Published<'bound>(&'bound pci::Device<Bound>);

impl<'bound> Published<'bound> {
    fn new(pdev: &'bound pci::Device<Bound>, ddev: &QaicDevice) -> Result<Self> {
        crate::card::publish(pdev.as_ref(), ddev)?;
        Ok(Self(pdev))
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        crate::card::unpublish(self.0.as_ref());
    }
}

/// Refuses a function whose memory BARs are not the ones its family must have.
fn check_bars(pdev: &pci::Device<Core<'_>>, family: &Family) -> Result {
    let found = pdev.memory_bars();
    family.check_bars(found).inspect_err(|_| {
        dev_err!(
            pdev,
            "{} needs memory BARs {:#x}, the device has {:#x}\n",
            family.name,
            family.bars,
            found
        )
    })
}

/// Maps BAR `index`, refusing one smaller than the `SIZE` bytes the driver accesses.
fn map_bar<'bound, const SIZE: usize>(
    pdev: &'bound pci::Device<Bound>,
    index: u32,
    name: &'static CStr,
) -> Result<pci::Bar<'bound, SIZE>> {
    let len = pdev.resource_len(index)?;
    if len < SIZE as u64 {
        dev_err!(
            pdev,
            "BAR{} is {:#x} bytes, at least {:#x} needed\n",
            index,
            len,
            SIZE
        );
        return Err(ENODEV);
    }
    pdev.iomap_region_sized::<SIZE>(index, name)
        .inspect_err(|e| dev_err!(pdev, "cannot map BAR{}: {:?}\n", index, e))
}

/// Allocates one MSI vector for MHI plus one per DMA bridge channel or, if the platform cannot
/// provide that many, a single vector shared by everything.
fn alloc_vectors<'bound>(
    pdev: &'bound pci::Device<Bound>,
) -> Result<IrqVectorRegistration<'bound>> {
    let msi = IrqTypes::default().with(IrqType::Msi).with(IrqType::MsiX);

    match pdev.alloc_irq_vectors(WANTED_VECTORS, WANTED_VECTORS, msi) {
        Err(e) if e == ENOSPC => {
            dev_info!(
                pdev,
                "{} MSI vectors unavailable, sharing one vector: performance may suffer\n",
                WANTED_VECTORS
            );
            pdev.alloc_irq_vectors(1, 1, msi)
        }
        other => other,
    }
    .inspect_err(|e| dev_err!(pdev, "no MSI interrupt available: {:?}\n", e))
}
