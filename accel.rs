// SPDX-License-Identifier: GPL-2.0-only

//! The DRM compute accelerator device, `/dev/accel/accelN`.

use kernel::{
    device,
    drm::{
        self,
        gem, //
    },
    pci,
    prelude::*, //
};

/// The DRM driver of the card.
pub(crate) struct QaicDrm;

/// The DRM device of a card.
#[expect(dead_code, reason = "the ioctl handlers will take it")]
pub(crate) type QaicDevice<Ctx = drm::Normal> = drm::Device<QaicDrm, Ctx>;

/// Per-open state of `/dev/accel/accelN`.
pub(crate) struct QaicFile;

impl drm::file::DriverFile for QaicFile {
    type Driver = QaicDrm;

    fn open(_dev: &drm::Device<QaicDrm>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::new(Self, GFP_KERNEL)?.into())
    }
}

/// Driver data of a buffer object.
#[pin_data]
pub(crate) struct BoData {}

impl gem::DriverObject for BoData {
    type Driver = QaicDrm;
    type Args = ();

    fn new(_dev: &drm::Device<QaicDrm>, _size: usize, _args: ()) -> impl PinInit<Self, Error> {
        try_pin_init!(BoData {})
    }
}

/// A buffer object: shmem-backed GEM object.
pub(crate) type Bo = gem::shmem::Object<BoData>;

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
    type Data = ();
    type RegistrationData<'a> = ();
    type File = QaicFile;
    type Object = Bo;
    type ParentDevice<Ctx: device::DeviceContext> = pci::Device<Ctx>;

    const INFO: drm::DriverInfo = INFO;
    const IOCTLS: &'static [drm::ioctl::DrmIoctlDescriptor] = &[];
    const FEAT_COMPUTE_ACCEL: bool = true;
}
