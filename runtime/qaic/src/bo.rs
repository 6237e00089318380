// SPDX-License-Identifier: MIT OR Apache-2.0
//! Buffer objects and their slicing for the DMA bridge.

use std::sync::OnceLock;
use std::time::Duration;

use crate::device::Device;
use crate::error::{Error, Ioctl, Result};
use crate::ioctl::{self, Mapping};
use crate::uapi;
use std::os::fd::AsFd;

/// Direction of a buffer object's transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Direction {
    /// Host to device (inputs), `DMA_TO_DEVICE`.
    ToDevice = 1,
    /// Device to host (outputs), `DMA_FROM_DEVICE`.
    FromDevice = 2,
}

/// Semaphore operation (`QAIC_SEM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum SemCmd {
    /// No operation.
    #[default]
    Nop = uapi::QAIC_SEM_NOP,
    /// Set the semaphore to the value.
    Init = uapi::QAIC_SEM_INIT,
    /// Increment.
    Inc = uapi::QAIC_SEM_INC,
    /// Decrement.
    Dec = uapi::QAIC_SEM_DEC,
    /// Wait until equal to the value.
    WaitEqual = uapi::QAIC_SEM_WAIT_EQUAL,
    /// Wait until greater than or equal to the value.
    WaitGtEq = uapi::QAIC_SEM_WAIT_GT_EQ,
    /// Wait until greater than zero, then decrement.
    WaitGt0 = uapi::QAIC_SEM_WAIT_GT_0,
}

/// Largest semaphore value (12 bits).
pub const SEM_VAL_MAX: u16 = 0xfff;
/// Largest semaphore index (5 bits).
pub const SEM_INDEX_MAX: u8 = 31;

/// A semaphore operation attached to a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sem {
    /// The operation.
    pub cmd: SemCmd,
    /// Semaphore index, 0..=31.
    pub index: u8,
    /// Operand, 0..=0xfff.
    pub val: u16,
    /// Run before the slice's transfer (at most one per slice) instead of after.
    pub presync: bool,
    /// Wait for the channel's host-to-device DMA first.
    pub in_fence: bool,
    /// Wait for the channel's device-to-host DMA first.
    pub out_fence: bool,
}

impl Sem {
    /// An operation `cmd` on semaphore `index` with operand `val`, run after
    /// the transfer.
    pub fn new(cmd: SemCmd, index: u8, val: u16) -> Sem {
        Sem {
            cmd,
            index,
            val,
            ..Default::default()
        }
    }
    /// Runs the operation before the transfer instead.
    pub fn presync(mut self) -> Sem {
        self.presync = true;
        self
    }
    /// Adds the host-to-device DMA fence.
    pub fn in_fence(mut self) -> Sem {
        self.in_fence = true;
        self
    }
    /// Adds the device-to-host DMA fence.
    pub fn out_fence(mut self) -> Sem {
        self.out_fence = true;
        self
    }

    /// The uapi encoding, after range checks.
    pub fn to_uapi(&self) -> Result<uapi::qaic_sem> {
        if self.val > SEM_VAL_MAX {
            return Err(Error::invalid(format!(
                "semaphore value {:#x} exceeds 12 bits",
                self.val
            )));
        }
        if self.index > SEM_INDEX_MAX {
            return Err(Error::invalid(format!(
                "semaphore index {} exceeds 31",
                self.index
            )));
        }
        let flags = if self.in_fence {
            uapi::QAIC_SEM_INSYNCFENCE
        } else {
            0
        } | if self.out_fence {
            uapi::QAIC_SEM_OUTSYNCFENCE
        } else {
            0
        };
        Ok(uapi::qaic_sem {
            val: self.val,
            index: self.index,
            presync: u8::from(self.presync),
            cmd: self.cmd as u8,
            flags,
            pad: 0,
        })
    }
}

/// Width of a doorbell write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DoorbellWidth {
    /// 8 bits.
    Bits8,
    /// 16 bits.
    Bits16,
    /// 32 bits.
    Bits32,
}

impl DoorbellWidth {
    /// Width in bits (the uapi `db_len`).
    pub fn bits(self) -> u32 {
        match self {
            DoorbellWidth::Bits8 => 8,
            DoorbellWidth::Bits16 => 16,
            DoorbellWidth::Bits32 => 32,
        }
    }
}

/// A doorbell written by the device after a slice completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Doorbell {
    /// Device address, aligned to the width.
    pub addr: u64,
    /// Value written (only the low `width` bits count).
    pub data: u32,
    /// Width of the write.
    pub width: DoorbellWidth,
}

/// One slice of a buffer object: a byte range moved to or from a device
/// address, with up to four semaphore operations and an optional doorbell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Slice {
    /// Start of the slice in the buffer object.
    pub offset: u64,
    /// Bytes moved; 0 for a slice that only synchronizes.
    pub size: u64,
    /// Device address the bytes go to / come from.
    pub dev_addr: u64,
    /// Semaphore operations (unused ones are [`SemCmd::Nop`]).
    pub sems: [Sem; 4],
    /// Doorbell, if any.
    pub doorbell: Option<Doorbell>,
}

impl Slice {
    /// A slice of `size` bytes at `offset` in the object, to or from `dev_addr`.
    pub fn new(offset: u64, size: u64, dev_addr: u64) -> Slice {
        Slice {
            offset,
            size,
            dev_addr,
            ..Default::default()
        }
    }

    /// Adds a semaphore operation in the first free position.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when all four positions are used.
    pub fn with_sem(mut self, sem: Sem) -> Result<Slice> {
        let slot = self
            .sems
            .iter_mut()
            .find(|s| s.cmd == SemCmd::Nop)
            .ok_or_else(|| Error::invalid("a slice has at most four semaphore operations"))?;
        *slot = sem;
        Ok(self)
    }

    /// Sets the doorbell.
    pub fn with_doorbell(mut self, addr: u64, data: u32, width: DoorbellWidth) -> Slice {
        self.doorbell = Some(Doorbell { addr, data, width });
        self
    }

    /// The uapi entry after the checks the driver applies to one slice of
    /// an object of `bo_size` bytes.
    pub fn to_uapi(&self, bo_size: u64) -> Result<uapi::qaic_attach_slice_entry> {
        let end = self
            .offset
            .checked_add(self.size)
            .ok_or_else(|| Error::invalid("slice offset + size overflows"))?;
        if end > bo_size {
            return Err(Error::invalid(format!(
                "slice [{:#x}, {end:#x}) exceeds the {bo_size:#x}-byte buffer object",
                self.offset
            )));
        }
        if self
            .sems
            .iter()
            .filter(|s| s.presync && s.cmd != SemCmd::Nop)
            .count()
            > 1
        {
            return Err(Error::invalid(
                "at most one pre-sync semaphore operation per slice",
            ));
        }
        let (db_addr, db_data, db_len) = match self.doorbell {
            None => (0, 0, 0),
            Some(d) => {
                let align = u64::from(d.width.bits() / 8);
                if d.addr % align != 0 {
                    return Err(Error::invalid(format!(
                        "doorbell address {:#x} not {align}-byte aligned",
                        d.addr
                    )));
                }
                (d.addr, d.data, d.width.bits())
            }
        };
        Ok(uapi::qaic_attach_slice_entry {
            size: self.size,
            sem0: self.sems[0].to_uapi()?,
            sem1: self.sems[1].to_uapi()?,
            sem2: self.sems[2].to_uapi()?,
            sem3: self.sems[3].to_uapi()?,
            dev_addr: self.dev_addr,
            db_addr,
            db_data,
            db_len,
            offset: self.offset,
        })
    }
}

/// Timing of a buffer object's last submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerfStats {
    /// The object's GEM handle.
    pub handle: u32,
    /// Queue elements pending when it was queued.
    pub queue_level_before: u32,
    /// Queue elements it used.
    pub num_queue_element: u32,
    /// Time the driver took to queue it, µs.
    pub submit_latency_us: u32,
    /// Time from queueing to completion, µs (0 if not completed).
    pub device_latency_us: u32,
}

impl From<&uapi::qaic_perf_stats_entry> for PerfStats {
    fn from(e: &uapi::qaic_perf_stats_entry) -> Self {
        PerfStats {
            handle: e.handle,
            queue_level_before: e.queue_level_before,
            num_queue_element: e.num_queue_element,
            submit_latency_us: e.submit_latency_us,
            device_latency_us: e.device_latency_us,
        }
    }
}

/// A buffer object: zero-filled host memory the device reads or writes by
/// DMA. Dropping it unmaps it and closes its GEM handle.
///
/// The memory is reached through [`Bo::bytes`] / [`Bo::bytes_mut`]
/// without copies (it is `mmap`ed from the device file). Do not read
/// results before [`Bo::wait`] returned: while an object is queued the
/// device may change its contents.
pub struct Bo {
    dev: Device,
    handle: u32,
    size: u64,
    map: OnceLock<Mapping>,
    attached: Option<(u32, Direction)>,
}

impl std::fmt::Debug for Bo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bo")
            .field("handle", &self.handle)
            .field("size", &self.size)
            .field("mapped", &self.map.get().is_some())
            .field("attached", &self.attached)
            .finish()
    }
}

impl Bo {
    pub(crate) fn new(dev: Device, handle: u32, size: u64) -> Bo {
        Bo {
            dev,
            handle,
            size,
            map: OnceLock::new(),
            attached: None,
        }
    }

    /// The GEM handle.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The size requested at creation (the driver rounds the allocation up
    /// to whole pages).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The device the object belongs to.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Channel and direction while attached.
    pub fn attachment(&self) -> Option<(u32, Direction)> {
        self.attached
    }

    /// Direction while attached.
    pub fn direction(&self) -> Option<Direction> {
        self.attached.map(|(_, d)| d)
    }

    fn mapping(&self) -> Result<&Mapping> {
        if let Some(m) = self.map.get() {
            return Ok(m);
        }
        let len = usize::try_from(self.size)
            .map_err(|_| Error::invalid("buffer object too large to map"))?;
        let offset = self.dev.mmap_offset_raw(self.handle)?;
        let m = Mapping::new(self.dev.as_fd(), offset, len).map_err(|errno| Error::Ioctl {
            ioctl: Ioctl::Mmap,
            errno,
        })?;
        // If another thread won the race, its mapping is kept and ours is unmapped.
        let _ = self.map.set(m);
        Ok(self.map.get().expect("mapping was just set"))
    }

    /// The object's memory (mapped on first use).
    pub fn bytes(&self) -> Result<&[u8]> {
        Ok(self.mapping()?.as_slice())
    }

    /// The object's memory, writable (mapped on first use).
    pub fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        self.mapping()?;
        let m = self.map.get_mut().expect("mapped above");
        debug_assert_eq!(m.len() as u64, self.size);
        Ok(m.as_mut_slice())
    }

    /// Slices the object for channel `dbc_id` in direction `dir`
    /// (ATTACH_SLICE_BO). The slices are checked first like the driver
    /// does; see [`Slice::to_uapi`].
    pub fn attach(&mut self, dbc_id: u32, dir: Direction, slices: &[Slice]) -> Result<()> {
        if slices.is_empty() {
            return Err(Error::invalid("attach needs at least one slice"));
        }
        if dbc_id >= uapi::QAIC_DBC_COUNT {
            return Err(Error::invalid(format!("DBC id {dbc_id} out of range")));
        }
        let entries = slices
            .iter()
            .map(|s| s.to_uapi(self.size))
            .collect::<Result<Vec<_>>>()?;
        let hdr = uapi::qaic_attach_slice_hdr {
            count: entries.len() as u32,
            dbc_id,
            handle: self.handle,
            dir: dir as u32,
            size: self.size,
        };
        self.dev.attach_slice_raw(hdr, &entries)?;
        self.attached = Some((dbc_id, dir));
        Ok(())
    }

    /// Removes the slicing (DETACH_SLICE_BO) so the object can be attached
    /// again.
    pub fn detach(&mut self) -> Result<()> {
        self.dev.detach_slice_raw(uapi::qaic_detach_slice {
            handle: self.handle,
            pad: 0,
        })?;
        self.attached = None;
        Ok(())
    }

    /// Waits for the object's last submission on the channel it is attached
    /// to; see [`Device::wait`].
    pub fn wait(&self, timeout: Option<Duration>) -> Result<()> {
        let (dbc, _) = self
            .attached
            .ok_or_else(|| Error::invalid("wait on a buffer object that is not attached"))?;
        self.dev.wait(self, dbc, timeout)
    }
}

impl Drop for Bo {
    fn drop(&mut self) {
        // Unmap before the handle goes away; errors cannot be reported from drop.
        drop(self.map.take());
        let mut arg = uapi::drm_gem_close {
            handle: self.handle,
            pad: 0,
        };
        let _ = ioctl::plain(self.dev.as_fd(), &mut arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sem_encoding_and_ranges() {
        let s = Sem::new(SemCmd::WaitGtEq, 31, 0xfff)
            .presync()
            .in_fence()
            .out_fence();
        let u = s.to_uapi().unwrap();
        assert_eq!(
            u,
            uapi::qaic_sem {
                val: 0xfff,
                index: 31,
                presync: 1,
                cmd: 5,
                flags: 3,
                pad: 0
            }
        );
        assert_eq!(Sem::default().to_uapi().unwrap(), uapi::qaic_sem::default());
        assert!(Sem::new(SemCmd::Inc, 32, 0).to_uapi().is_err());
        assert!(Sem::new(SemCmd::Inc, 0, 0x1000).to_uapi().is_err());
        assert_eq!(
            Sem::new(SemCmd::Init, 1, 1)
                .in_fence()
                .to_uapi()
                .unwrap()
                .flags,
            uapi::QAIC_SEM_INSYNCFENCE
        );
        assert_eq!(SemCmd::WaitGt0 as u8, 6);
    }

    #[test]
    fn slice_entry_layout() {
        let s = Slice::new(0x100, 0x200, 0xdead_0000)
            .with_sem(Sem::new(SemCmd::WaitEqual, 2, 7).presync())
            .unwrap()
            .with_sem(Sem::new(SemCmd::Inc, 2, 0))
            .unwrap()
            .with_doorbell(0x8000_0004, 0x55, DoorbellWidth::Bits32);
        let e = s.to_uapi(0x1000).unwrap();
        assert_eq!((e.size, e.offset, e.dev_addr), (0x200, 0x100, 0xdead_0000));
        assert_eq!(
            (e.sem0.cmd, e.sem0.presync, e.sem1.cmd, e.sem2.cmd),
            (4, 1, 2, 0)
        );
        assert_eq!((e.db_addr, e.db_data, e.db_len), (0x8000_0004, 0x55, 32));
        let none = Slice::new(0, 0, 0).to_uapi(4096).unwrap();
        assert_eq!((none.db_addr, none.db_len), (0, 0));
    }

    #[test]
    fn slice_validation() {
        // range
        assert!(Slice::new(0x800, 0x801, 0).to_uapi(0x1000).is_err());
        assert!(Slice::new(0x800, 0x800, 0).to_uapi(0x1000).is_ok());
        assert!(Slice::new(u64::MAX, 2, 0).to_uapi(0x1000).is_err());
        // two pre-sync operations
        let two = Slice::new(0, 8, 0)
            .with_sem(Sem::new(SemCmd::WaitEqual, 1, 1).presync())
            .unwrap()
            .with_sem(Sem::new(SemCmd::WaitEqual, 2, 1).presync())
            .unwrap();
        assert!(two.to_uapi(4096).is_err());
        // doorbell alignment per width
        assert!(Slice::new(0, 8, 0)
            .with_doorbell(0x2, 1, DoorbellWidth::Bits32)
            .to_uapi(4096)
            .is_err());
        assert!(Slice::new(0, 8, 0)
            .with_doorbell(0x2, 1, DoorbellWidth::Bits16)
            .to_uapi(4096)
            .is_ok());
        assert!(Slice::new(0, 8, 0)
            .with_doorbell(0x1, 1, DoorbellWidth::Bits16)
            .to_uapi(4096)
            .is_err());
        assert!(Slice::new(0, 8, 0)
            .with_doorbell(0x1, 1, DoorbellWidth::Bits8)
            .to_uapi(4096)
            .is_ok());
        // at most four semaphores
        let mut s = Slice::new(0, 8, 0);
        for i in 0..4 {
            s = s.with_sem(Sem::new(SemCmd::Inc, i, 0)).unwrap();
        }
        assert!(s.with_sem(Sem::new(SemCmd::Inc, 5, 0)).is_err());
        // bad semaphore values are caught when encoding
        let bad = Slice {
            sems: [
                Sem::new(SemCmd::Inc, 40, 0),
                Sem::default(),
                Sem::default(),
                Sem::default(),
            ],
            ..Slice::new(0, 8, 0)
        };
        assert!(bad.to_uapi(4096).is_err());
    }

    #[test]
    fn doorbell_widths() {
        let bits: Vec<u32> = [
            DoorbellWidth::Bits8,
            DoorbellWidth::Bits16,
            DoorbellWidth::Bits32,
        ]
        .iter()
        .map(|w| w.bits())
        .collect();
        assert_eq!(bits, [8, 16, 32]);
        assert_eq!(
            (Direction::ToDevice as u32, Direction::FromDevice as u32),
            (1, 2)
        );
    }

    #[test]
    fn perf_stats_conversion() {
        let e = uapi::qaic_perf_stats_entry {
            handle: 1,
            queue_level_before: 2,
            num_queue_element: 3,
            submit_latency_us: 4,
            device_latency_us: 5,
            pad: 9,
        };
        let p = PerfStats::from(&e);
        assert_eq!(
            (
                p.handle,
                p.queue_level_before,
                p.num_queue_element,
                p.submit_latency_us,
                p.device_latency_us
            ),
            (1, 2, 3, 4, 5)
        );
    }

    #[test]
    fn attach_checks_before_the_kernel() {
        let dev = Device::open("/dev/null").unwrap();
        let mut bo = Bo::new(dev, 1, 4096);
        assert!(matches!(
            bo.attach(0, Direction::ToDevice, &[]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            bo.attach(16, Direction::ToDevice, &[Slice::new(0, 1, 0)]),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            bo.attach(0, Direction::ToDevice, &[Slice::new(0, 4097, 0)]),
            Err(Error::InvalidArgument(_))
        ));
        // a valid request reaches the kernel (which rejects /dev/null with ENOTTY)
        let e = bo
            .attach(0, Direction::ToDevice, &[Slice::new(0, 4096, 0)])
            .unwrap_err();
        assert_eq!(
            (e.ioctl(), e.errno()),
            (Some(Ioctl::AttachSliceBo), Some(libc::ENOTTY))
        );
        assert!(bo.attachment().is_none());
        assert!(matches!(bo.wait(None), Err(Error::InvalidArgument(_))));
        let e = bo.bytes().unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::MmapBo));
    }
}
