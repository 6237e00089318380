// SPDX-License-Identifier: GPL-2.0-only

//! Buffer objects: shmem-backed GEM objects that user space creates, maps and hands to the card.
//!
//! `DRM_IOCTL_QAIC_CREATE_BO` allocates zeroed pages (the size rounded up to whole pages) and
//! returns a GEM handle; `DRM_IOCTL_QAIC_MMAP_BO` returns the fake offset under which the file
//! maps it. Buffers imported from other drivers (PRIME) are for the card only: they cannot be
//! mapped through this driver. The pages come from shmem and are pinned, and mapped for the card, only once the
//! buffer is attached to a DMA bridge channel.

use kernel::{
    drm::{
        self,
        gem::{
            self,
            shmem::ObjectConfig,
            BaseObject, //
        },
    },
    new_condvar, new_mutex,
    page::PAGE_SIZE,
    prelude::*,
    sync::{
        CondVar,
        Mutex, //
    },
    uapi,
};

use crate::{
    accel::{
        QaicDevice,
        QaicDrm,
        QaicFile,
        Registered, //
    },
    card::Card,
    data::BoState,
};

/// Driver data of a buffer object: its state on the data path.
#[pin_data]
pub(crate) struct BoData {
    #[pin]
    pub(crate) state: Mutex<BoState>,
    /// Notified when a submission of the buffer completes (or is cut short).
    #[pin]
    pub(crate) done: CondVar,
}

impl gem::DriverObject for BoData {
    type Driver = QaicDrm;
    type Args = ();

    // Imported buffers are for the card only, as with the C driver.
    const MMAP_IMPORTED: bool = false;

    fn new(_dev: &drm::Device<QaicDrm>, _size: usize, _args: ()) -> impl PinInit<Self, Error> {
        try_pin_init!(BoData {
            state <- new_mutex!(BoState::default()),
            done <- new_condvar!(),
        })
    }
}

/// A buffer object: shmem-backed GEM object.
pub(crate) type Bo = gem::shmem::Object<BoData>;

/// Returns `size` rounded up to whole pages; `EINVAL` for 0 or a size that wraps.
pub(crate) fn bo_size(size: u64) -> Result<usize> {
    let size = usize::try_from(size).map_err(|_| EINVAL)?;
    match size.checked_next_multiple_of(PAGE_SIZE) {
        Some(0) | None => Err(EINVAL),
        Some(n) => Ok(n),
    }
}

/// `DRM_IOCTL_QAIC_CREATE_BO`.
pub(crate) fn create_bo(
    dev: &QaicDevice<drm::Registered>,
    _reg: &Registered<'_>,
    args: &mut uapi::qaic_create_bo,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    if args.pad != 0 {
        return Err(EINVAL);
    }
    let size = bo_size(args.size)?;
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    // shmem says ENOSPC for a size past what it can ever hold; the uapi says ENOMEM.
    let bo = Bo::new(dev, size, ObjectConfig::default(), ()).map_err(|e| {
        if e == ENOSPC {
            ENOMEM
        } else {
            e
        }
    })?;
    args.handle = bo.create_handle(file)?;
    Ok(0)
}

/// `DRM_IOCTL_QAIC_MMAP_BO`.
pub(crate) fn mmap_bo(
    dev: &QaicDevice<drm::Registered>,
    _reg: &Registered<'_>,
    args: &mut uapi::qaic_mmap_bo,
    file: &drm::File<QaicFile>,
) -> Result<u32> {
    let card: &Card = dev;
    card.link.online().ok_or(ENODEV)?;
    let bo = Bo::lookup_handle(file, args.handle)?;
    // An imported buffer cannot be mapped through this driver: offset 0, as the C driver.
    args.offset = if bo.is_imported() {
        0
    } else {
        bo.create_mmap_offset()?
    };
    Ok(0)
}

#[cfg(CONFIG_DRM_ACCEL_QAIC_RS_KUNIT_TEST)]
#[kernel::prelude::kunit_tests(qaic_rs_gem)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let p = PAGE_SIZE as u64;
        assert_eq!(bo_size(1), Ok(PAGE_SIZE));
        assert_eq!(bo_size(p), Ok(PAGE_SIZE));
        assert_eq!(bo_size(p + 1), Ok(2 * PAGE_SIZE));
        assert_eq!(bo_size(0), Err(EINVAL));
        // Rounding up wraps: refused, as the C driver does.
        assert_eq!(bo_size(u64::MAX), Err(EINVAL));
        assert_eq!(bo_size(u64::MAX - p + 2), Err(EINVAL));
    }
}
