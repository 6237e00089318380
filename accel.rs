// SPDX-License-Identifier: GPL-2.0-only

//! The DRM compute accelerator device, `/dev/accel/accelN`, and its ioctls.

use kernel::{
    device::{
        self,
        Bound, //
    },
    drm,
    pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            Relaxed, //
        },
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    uapi, //
};

use crate::{
    card::{
        Card,
        UserHandle, //
    },
    data::DbcBar,
    gem::Bo,
};

/// The DRM driver of the card.
pub(crate) struct QaicDrm;

/// The DRM device of a card.
pub(crate) type QaicDevice<Ctx = drm::Normal> = drm::Device<QaicDrm, Ctx>;

/// What the ioctls of a registered device reach: the PCI device, bound as long as the DRM device
/// is registered, and its DMA bridge BAR.
pub(crate) struct Registered<'bound> {
    pub(crate) pdev: &'bound pci::Device<Bound>,
    pub(crate) dbc: &'bound DbcBar<'bound>,
}

/// Per-open state of `/dev/accel/accelN`: a user of the card.
pub(crate) struct QaicFile {
    card: ARef<QaicDevice>,
    handle: UserHandle,
    /// The last chunk id given to a DMA transfer of this user that needs several messages.
    chunk_id: Atomic<u32>,
}

impl QaicFile {
    /// The number by which the card's firmware knows this user.
    pub(crate) fn handle(&self) -> u32 {
        self.handle.get()
    }

    /// A fresh, non-zero chunk id.
    pub(crate) fn next_chunk_id(&self) -> u32 {
        loop {
            let id = self.chunk_id.fetch_add(1, Relaxed).wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }
}

impl drm::file::DriverFile for QaicFile {
    type Driver = QaicDrm;

    fn open(dev: &QaicDevice) -> Result<Pin<KBox<Self>>> {
        let card: &Card = dev;
        card.link.online().ok_or(ENODEV)?;
        Ok(KBox::new(
            Self {
                card: dev.into(),
                handle: UserHandle::new()?,
                chunk_id: Atomic::new(0),
            },
            GFP_KERNEL,
        )?
        .into())
    }
}

impl Drop for QaicFile {
    fn drop(&mut self) {
        crate::control::terminate(&self.card, self.handle.get());
    }
}

// Keep the name of the C driver: user space may check it (DRM_IOCTL_VERSION).
const INFO: drm::DriverInfo = drm::DriverInfo {
    major: 0,
    minor: 0,
    patchlevel: 0,
    name: c"qaic",
    desc: c"Qualcomm Cloud AI Accelerators",
};

#[vtable]
impl drm::Driver for QaicDrm {
    type Data = Card;
    type RegistrationData<'a> = Registered<'a>;
    type File = QaicFile;
    type Object = Bo;
    type ParentDevice<Ctx: device::DeviceContext> = pci::Device<Ctx>;

    const INFO: drm::DriverInfo = INFO;
    const FEAT_COMPUTE_ACCEL: bool = true;

    kernel::declare_drm_ioctls! {
        (QAIC_MANAGE, qaic_manage_msg, 0, manage),
        (QAIC_CREATE_BO, qaic_create_bo, 0, crate::gem::create_bo),
        (QAIC_MMAP_BO, qaic_mmap_bo, 0, crate::gem::mmap_bo),
        (QAIC_ATTACH_SLICE_BO, qaic_attach_slice, 0, crate::data::attach_slice_bo),
        (QAIC_EXECUTE_BO, qaic_execute, 0, crate::data::execute_bo),
        (QAIC_PARTIAL_EXECUTE_BO, qaic_execute, 0, crate::data::partial_execute_bo),
        (QAIC_WAIT_BO, qaic_wait, 0, crate::data::wait_bo),
        (QAIC_PERF_STATS_BO, qaic_perf_stats, 0, crate::data::perf_stats_bo),
        (QAIC_DETACH_SLICE_BO, qaic_detach_slice, 0, crate::data::detach_slice_bo),
    }
}

fn manage(
    dev: &QaicDevice<drm::Registered>,
    reg: &Registered<'_>,
    msg: &mut uapi::qaic_manage_msg,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    crate::control::manage_ioctl(dev, reg.pdev, &file.inner(), msg)
}

/// Reads the `len` bytes at user address `data` of an ioctl argument.
pub(crate) fn copy_from_user(data: u64, len: usize) -> Result<KVec<u8>> {
    let addr = usize::try_from(data).map_err(|_| EFAULT)?;
    let mut buf = KVec::new();
    UserSlice::new(UserPtr::from_addr(addr), len)
        .read_all(&mut buf, crate::dma_bridge::gfp_user_sized())?;
    Ok(buf)
}

/// Writes `bytes` to user address `data` of an ioctl argument.
pub(crate) fn copy_to_user(data: u64, bytes: &[u8]) -> Result {
    let addr = usize::try_from(data).map_err(|_| EFAULT)?;
    UserSlice::new(UserPtr::from_addr(addr), bytes.len())
        .writer()
        .write_slice(bytes)
}
