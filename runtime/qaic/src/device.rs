// SPDX-License-Identifier: MIT OR Apache-2.0
//! An open accel device: MANAGE calls, firmware (NNC) program management,
//! and submission of buffer objects.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::bo::{Bo, PerfStats};
use crate::error::{Errno, Error, Ioctl, Result};
use crate::ioctl;
use crate::manage::{EncodedManage, ManageMsg, ManageResponse, ProtocolStatus, Transaction};
use crate::nnc::{self, NncRequest};
use crate::uapi;

/// Queue depth the vendor runtime uses by default when activating.
pub const DEFAULT_QUEUE_SIZE: u32 = 512;

struct Inner {
    fd: OwnedFd,
    path: PathBuf,
    next_tag: AtomicU32,
}

/// An open `/dev/accel/accel<N>` node. Cheap to clone; all clones share
/// one file descriptor, which is closed (and the device told to release
/// everything this file owned) when the last clone and the last [`Bo`] of
/// it are dropped. `Device` is `Send + Sync`: several threads may submit
/// work through one open file.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// What the DRM core reports about the driver behind a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverVersion {
    /// Driver name: `qaic` (upstream C driver) or `qaic_rs`.
    pub name: String,
    /// Major, minor, patch level.
    pub version: (i32, i32, i32),
    /// Date string.
    pub date: String,
    /// Description.
    pub desc: String,
}

/// Id of constants loaded on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConstantsId(pub u32);

/// Id of a network image loaded on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElfId(pub u32);

/// Options of [`Device::load_elf`].
#[derive(Debug, Clone, Default)]
pub struct LoadElfOptions {
    /// Checksum of the network metadata (forwarded, not checked here).
    pub metadata_crc: u32,
    /// Checksum of the flatbuffer metadata (forwarded, not checked here).
    pub metadata_flatbuffer_crc: u32,
}

/// An activated network and the DMA bridge channel it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// Id to pass to DEACTIVATE.
    pub activation_id: u32,
    /// DMA bridge channel to attach and execute buffer objects on.
    pub dbc_id: u32,
    /// The firmware's full answer (bases for device addresses etc.).
    pub response: nnc::ActivateResponse,
}

impl Device {
    /// Opens an accel node, e.g. `/dev/accel/accel0`.
    pub fn open(path: impl AsRef<Path>) -> Result<Device> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Open {
                errno: Errno(e.raw_os_error().unwrap_or(libc::EIO)),
                path: path.clone(),
            })?;
        Ok(Device {
            inner: Arc::new(Inner {
                fd: file.into(),
                path,
                next_tag: AtomicU32::new(1),
            }),
        })
    }

    /// Opens `/dev/accel/accel<index>`.
    pub fn open_index(index: u32) -> Result<Device> {
        Device::open(format!("/dev/accel/accel{index}"))
    }

    /// The node this device was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn fail(ioctl: Ioctl) -> impl FnOnce(Errno) -> Error {
        move |errno| Error::Ioctl { ioctl, errno }
    }

    /// Driver name and version (`DRM_IOCTL_VERSION`).
    pub fn driver_version(&self) -> Result<DriverVersion> {
        let v = ioctl::version(self.as_fd()).map_err(Self::fail(Ioctl::Version))?;
        Ok(DriverVersion {
            name: v.name,
            version: (v.major, v.minor, v.patch),
            date: v.date,
            desc: v.desc,
        })
    }

    /// Sends a MANAGE message after checking it against the driver's rules
    /// ([`ManageMsg::validate`]) and decodes the answer.
    pub fn manage(&self, msg: &ManageMsg<'_>) -> Result<ManageResponse> {
        msg.validate()?;
        self.manage_encoded(&msg.encode()?)
    }

    /// Sends an already encoded (possibly deliberately malformed) MANAGE
    /// message. A device-side refusal (`ECANCELED`) is returned as
    /// [`Error::ManageCanceled`] with the decoded answer.
    pub fn manage_encoded(&self, msg: &EncodedManage) -> Result<ManageResponse> {
        let mut buf = msg.buf.clone();
        let out = ioctl::manage(self.as_fd(), &mut buf, msg.len, msg.count);
        match out.result {
            Ok(()) => ManageResponse::decode(&buf[..], out.len, out.count),
            Err(Errno(libc::ECANCELED)) => {
                let response = ManageResponse::decode(&buf[..], out.len, out.count)?;
                Err(Error::ManageCanceled {
                    response: Box::new(response),
                })
            }
            Err(errno) => Err(Error::Ioctl {
                ioctl: Ioctl::Manage,
                errno,
            }),
        }
    }

    /// The control protocol version and flags (a MANAGE status transaction).
    pub fn protocol_status(&self) -> Result<ProtocolStatus> {
        let r = self.manage(&ManageMsg::new().status())?;
        r.status()
            .ok_or_else(|| Error::protocol("no status transaction in the answer"))
    }

    fn next_tag(&self) -> u32 {
        loop {
            let t = self.inner.next_tag.fetch_add(1, Ordering::Relaxed);
            if t != 0 {
                return t;
            }
        }
    }

    /// Sends one firmware command in a passthrough, followed by `extra`
    /// transactions in the same message, and returns the decoded (and
    /// status-checked) firmware answer with the whole MANAGE answer.
    pub fn nnc<R: NncRequest>(
        &self,
        req: &R,
        extra: Vec<Transaction<'_>>,
    ) -> Result<(R::Response, ManageResponse)> {
        let msg = nnc::message(req, extra)?;
        let resp = match self.manage(&msg) {
            Ok(r) => r,
            Err(Error::ManageCanceled { response }) => {
                // The driver refused because a transaction failed on the device; when the
                // firmware also reported a failed command, that is the more precise error.
                if let Some(Err(e @ Error::Nnc { .. })) =
                    response.passthroughs().next().map(nnc::decode_checked::<R>)
                {
                    return Err(e);
                }
                return Err(Error::ManageCanceled { response });
            }
            Err(e) => return Err(e),
        };
        let payload = resp
            .passthroughs()
            .next()
            .ok_or_else(|| Error::protocol(format!("no passthrough answer to {}", R::COMMAND)))?;
        let answer = nnc::decode_checked::<R>(payload)?;
        Ok((answer, resp))
    }

    /// Device information (NNC STATUS).
    pub fn device_info(&self) -> Result<nnc::DeviceInfo> {
        let (r, _) = self.nnc(&nnc::StatusRequest { info_type: 0 }, vec![])?;
        Ok(r.info)
    }

    /// System-wide resource usage (NNC RESOURCE_INFO).
    pub fn resource_info(&self) -> Result<nnc::ResourceInfo> {
        let req = nnc::ResourceInfoRequest {
            pid: std::process::id(),
            res_grp_id: -1,
        };
        Ok(self.nnc(&req, vec![])?.0.info)
    }

    /// Clock and bandwidth figures (NNC PERFORMANCE_INFO).
    pub fn performance_info(&self) -> Result<nnc::PerformanceInfo> {
        Ok(self.nnc(&nnc::PerformanceInfoRequest, vec![])?.0.info)
    }

    /// Loads a network's constants: LOAD_CONSTANTS_EX with the sizes, then
    /// one LOAD_CONSTANTS_PAYLOAD + DMA transfer per non-empty part (the
    /// dynamic part goes after the static one).
    pub fn load_constants(
        &self,
        name: &str,
        static_part: &[u8],
        dynamic_part: &[u8],
    ) -> Result<ConstantsId> {
        let pid = std::process::id();
        let descriptor = nnc::ConstantsDescriptor {
            static_size: static_part.len() as u64,
            dynamic_size: dynamic_part.len() as u64,
            ..Default::default()
        };
        let ex = nnc::LoadConstantsExRequest {
            pid,
            name: name.to_owned(),
            descriptor,
        };
        let (r, _) = self.nnc(&ex, vec![])?;
        if r.id == 0 {
            return Err(Error::protocol("LOAD_CONSTANTS_EX returned constants id 0"));
        }
        let id = ConstantsId(r.id);
        for (offset, part) in [
            (0u64, static_part),
            (static_part.len() as u64, dynamic_part),
        ] {
            if part.is_empty() {
                continue;
            }
            let tag = self.next_tag();
            let req = nnc::LoadConstantsPayloadRequest {
                pid,
                tag,
                constants_id: id.0,
                data_length: part.len() as u64,
                offset,
            };
            self.nnc(&req, vec![Transaction::DmaXfer { tag, data: part }])?;
        }
        Ok(id)
    }

    /// Loads a network image (LOAD_ELF + DMA transfer of the whole ELF).
    pub fn load_elf(&self, name: &str, elf: &[u8], opts: &LoadElfOptions) -> Result<ElfId> {
        if elf.is_empty() {
            return Err(Error::invalid("empty network image"));
        }
        let tag = self.next_tag();
        let req = nnc::LoadElfRequest {
            tag,
            pid: std::process::id(),
            metadata_crc: opts.metadata_crc,
            name: name.to_owned(),
            data_length: elf.len() as u64,
            metadata_flatbuffer_crc: opts.metadata_flatbuffer_crc,
        };
        let (r, _) = self.nnc(&req, vec![Transaction::DmaXfer { tag, data: elf }])?;
        if r.id == 0 {
            return Err(Error::protocol("LOAD_ELF returned network id 0"));
        }
        Ok(ElfId(r.id))
    }

    /// Activates a loaded network with a DMA bridge channel of `queue_size`
    /// elements (NNC ACTIVATE + SETUP_VC in one message).
    pub fn activate(
        &self,
        elf: ElfId,
        constants: Option<ConstantsId>,
        queue_size: u32,
        initial_state: nnc::ActivationState,
    ) -> Result<Activation> {
        let req = nnc::ActivateRequest {
            pid: std::process::id(),
            constants_id: constants.map_or(0, |c| c.0),
            elf_id: elf.0,
            initial_state,
            ..Default::default()
        };
        let (r, m) = self.nnc(
            &req,
            vec![Transaction::Activate {
                queue_size,
                options: 0,
            }],
        )?;
        // The driver binds the channel named in its ACTIVATE answer to this file; the firmware
        // reports the same channel as virtual channel id.
        let dbc_id = m.activate().map_or(r.virtual_channel_id, |a| a.dbc_id);
        if dbc_id >= uapi::QAIC_DBC_COUNT {
            return Err(Error::protocol(format!("activation on DBC {dbc_id}")));
        }
        Ok(Activation {
            activation_id: r.activation_id,
            dbc_id,
            response: r,
        })
    }

    /// Deactivates a network and releases its channel (NNC DEACTIVATE +
    /// TEARDOWN_VC in one message).
    pub fn deactivate(&self, act: &Activation) -> Result<()> {
        let req = nnc::DeactivateRequest {
            activation_id: act.activation_id,
            opt_vc_teardown: 1,
        };
        self.nnc(&req, vec![Transaction::Deactivate { dbc_id: act.dbc_id }])?;
        Ok(())
    }

    /// Unloads a network image.
    pub fn unload_elf(&self, id: ElfId) -> Result<()> {
        self.nnc(&nnc::UnloadElfRequest { elf_id: id.0 }, vec![])?;
        Ok(())
    }

    /// Unloads constants.
    pub fn unload_constants(&self, id: ConstantsId) -> Result<()> {
        self.nnc(&nnc::UnloadConstantsRequest { constants_id: id.0 }, vec![])?;
        Ok(())
    }

    /// CREATE_BO with a raw argument (for driver tests): returns the new
    /// GEM handle, which the caller must close with
    /// [`Device::gem_close_raw`].
    pub fn create_bo_raw(&self, mut arg: uapi::qaic_create_bo) -> Result<u32> {
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::CreateBo))?;
        Ok(arg.handle)
    }

    /// MMAP_BO with a raw argument (for driver tests): returns the offset.
    pub fn mmap_bo_raw(&self, mut arg: uapi::qaic_mmap_bo) -> Result<u64> {
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::MmapBo))?;
        Ok(arg.offset)
    }

    /// Exports a buffer object as a dma-buf file descriptor (PRIME), opened
    /// read-write and close-on-exec.
    pub fn export_bo(&self, bo: &Bo) -> Result<OwnedFd> {
        ioctl::prime_handle_to_fd(
            self.as_fd(),
            bo.handle(),
            uapi::DRM_CLOEXEC | uapi::DRM_RDWR,
        )
        .map_err(Self::fail(Ioctl::PrimeHandleToFd))
    }

    /// Imports a dma-buf (e.g. exported by another open file or device) as
    /// a buffer object of this file. Its size is the dma-buf's size. The
    /// driver does not allow mapping an imported object. Importing a dma-buf
    /// exported by this same file yields the exporting object's own handle:
    /// the two [`Bo`]s then alias one handle, and the first dropped closes it.
    pub fn import_bo(&self, dmabuf: BorrowedFd<'_>) -> Result<Bo> {
        let handle = ioctl::prime_fd_to_handle(self.as_fd(), dmabuf)
            .map_err(Self::fail(Ioctl::PrimeFdToHandle))?;
        // a dma-buf reports its size through lseek
        let size = dmabuf
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|mut f| std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)));
        match size {
            Ok(size) => Ok(Bo::new(self.clone(), handle, size)),
            Err(e) => {
                let _ = self.gem_close_raw(handle);
                Err(Error::Ioctl {
                    ioctl: Ioctl::PrimeFdToHandle,
                    errno: Errno(e.raw_os_error().unwrap_or(libc::EIO)),
                })
            }
        }
    }

    /// Creates a zero-filled buffer object of at least `size` bytes.
    pub fn create_bo(&self, size: u64) -> Result<Bo> {
        let mut arg = uapi::qaic_create_bo {
            size,
            handle: 0,
            pad: 0,
        };
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::CreateBo))?;
        Ok(Bo::new(self.clone(), arg.handle, size))
    }

    /// Queues buffer objects on channel `dbc_id`, in order. Returns once
    /// they are committed to the hardware queue; use [`Device::wait`] (or
    /// [`Bo::wait`]) for completion.
    pub fn execute(&self, dbc_id: u32, bos: &[&Bo]) -> Result<()> {
        let entries: Vec<uapi::qaic_execute_entry> = bos
            .iter()
            .map(|b| uapi::qaic_execute_entry {
                handle: b.handle(),
                dir: b.direction().map_or(0, |d| d as u32),
            })
            .collect();
        self.execute_raw(entries.len() as u32, dbc_id, &entries)
    }

    /// EXECUTE_BO with raw entries and count (for driver tests).
    pub fn execute_raw(
        &self,
        count: u32,
        dbc_id: u32,
        entries: &[uapi::qaic_execute_entry],
    ) -> Result<()> {
        ioctl::execute(self.as_fd(), count, dbc_id, entries).map_err(Self::fail(Ioctl::ExecuteBo))
    }

    /// Like [`Device::execute`], but only the first `resize` bytes of each
    /// object take part in data transfers (0 = none).
    pub fn partial_execute(&self, dbc_id: u32, bos: &[(&Bo, u64)]) -> Result<()> {
        let entries: Vec<uapi::qaic_partial_execute_entry> = bos
            .iter()
            .map(|(b, resize)| uapi::qaic_partial_execute_entry {
                handle: b.handle(),
                dir: b.direction().map_or(0, |d| d as u32),
                resize: *resize,
            })
            .collect();
        self.partial_execute_raw(entries.len() as u32, dbc_id, &entries)
    }

    /// PARTIAL_EXECUTE_BO with raw entries and count (for driver tests).
    pub fn partial_execute_raw(
        &self,
        count: u32,
        dbc_id: u32,
        entries: &[uapi::qaic_partial_execute_entry],
    ) -> Result<()> {
        ioctl::partial_execute(self.as_fd(), count, dbc_id, entries)
            .map_err(Self::fail(Ioctl::PartialExecuteBo))
    }

    /// Waits until the last submission of `bo` on `dbc_id` completed.
    /// `None` uses the driver's default timeout; `Some(d)` is rounded down
    /// to whole milliseconds but at least 1 ms, and clamped to `u32::MAX`
    /// ms. A timeout is reported as `ETIMEDOUT`.
    pub fn wait(&self, bo: &Bo, dbc_id: u32, timeout: Option<Duration>) -> Result<()> {
        let ms = timeout.map_or(0, |t| {
            u32::try_from(t.as_millis()).unwrap_or(u32::MAX).max(1)
        });
        self.wait_raw(uapi::qaic_wait {
            handle: bo.handle(),
            timeout: ms,
            dbc_id,
            pad: 0,
        })
    }

    /// WAIT_BO with a raw argument (for driver tests).
    pub fn wait_raw(&self, mut arg: uapi::qaic_wait) -> Result<()> {
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::WaitBo))
    }

    /// Timing of the last submission of each object.
    pub fn perf_stats(&self, dbc_id: u32, bos: &[&Bo]) -> Result<Vec<PerfStats>> {
        if bos.len() > usize::from(u16::MAX) {
            return Err(Error::invalid(
                "more than 65535 objects in one PERF_STATS_BO",
            ));
        }
        let mut entries: Vec<uapi::qaic_perf_stats_entry> = bos
            .iter()
            .map(|b| uapi::qaic_perf_stats_entry {
                handle: b.handle(),
                ..Default::default()
            })
            .collect();
        self.perf_stats_raw(dbc_id, &mut entries)?;
        Ok(entries.iter().map(PerfStats::from).collect())
    }

    /// PERF_STATS_BO with raw entries (for driver tests); the count is
    /// `entries.len()` and the driver fills in the entries.
    pub fn perf_stats_raw(
        &self,
        dbc_id: u32,
        entries: &mut [uapi::qaic_perf_stats_entry],
    ) -> Result<()> {
        ioctl::perf_stats(self.as_fd(), dbc_id, entries).map_err(Self::fail(Ioctl::PerfStatsBo))
    }

    /// ATTACH_SLICE_BO with a raw header and entries (for driver tests; the
    /// header's handle and count are used as given).
    pub fn attach_slice_raw(
        &self,
        hdr: uapi::qaic_attach_slice_hdr,
        entries: &[uapi::qaic_attach_slice_entry],
    ) -> Result<()> {
        ioctl::attach_slice(self.as_fd(), hdr, entries).map_err(Self::fail(Ioctl::AttachSliceBo))
    }

    /// DETACH_SLICE_BO with a raw argument (for driver tests).
    pub fn detach_slice_raw(&self, mut arg: uapi::qaic_detach_slice) -> Result<()> {
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::DetachSliceBo))
    }

    /// MMAP_BO with a raw argument: returns the fake mmap offset.
    pub fn mmap_offset_raw(&self, handle: u32) -> Result<u64> {
        self.mmap_bo_raw(uapi::qaic_mmap_bo {
            handle,
            pad: 0,
            offset: 0,
        })
    }

    /// GEM_CLOSE of a raw handle (for driver tests; [`Bo`] closes its own
    /// handle when dropped).
    pub fn gem_close_raw(&self, handle: u32) -> Result<()> {
        let mut arg = uapi::drm_gem_close { handle, pad: 0 };
        ioctl::plain(self.as_fd(), &mut arg).map_err(Self::fail(Ioctl::GemClose))
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_reports_path_and_errno() {
        match Device::open("/nonexistent/accel9") {
            Err(e @ Error::Open { .. }) => {
                assert_eq!(e.errno(), Some(libc::ENOENT));
                assert!(e.to_string().contains("/nonexistent/accel9"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Ioctls on a file that is not an accel node fail with the kernel's
    /// errno and name the ioctl: exercises the real ioctl path without a
    /// device.
    #[test]
    fn ioctl_errors_name_the_ioctl() {
        let dev = Device::open("/dev/null").unwrap();
        let e = dev.create_bo(4096).unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::CreateBo));
        assert_eq!(e.errno(), Some(libc::ENOTTY));
        let e = dev.protocol_status().unwrap_err();
        assert_eq!(
            (e.ioctl(), e.errno()),
            (Some(Ioctl::Manage), Some(libc::ENOTTY))
        );
        let e = dev
            .execute_raw(1, 0, &[uapi::qaic_execute_entry::default()])
            .unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::ExecuteBo));
        let e = dev.perf_stats(0, &[]).unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::PerfStatsBo));
        let e = dev.import_bo(dev.as_fd()).unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::PrimeFdToHandle));
        let e = dev.gem_close_raw(1).unwrap_err();
        assert_eq!(e.ioctl(), Some(Ioctl::GemClose));
        assert!(dev.driver_version().is_err());
    }

    #[test]
    fn invalid_requests_never_reach_the_kernel() {
        let dev = Device::open("/dev/null").unwrap();
        // caught by validation: InvalidArgument, not ENOTTY
        assert!(matches!(
            dev.manage(&ManageMsg::new()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            dev.load_elf("n", &[], &LoadElfOptions::default()),
            Err(Error::InvalidArgument(_))
        ));
        let long = "x".repeat(64);
        assert!(matches!(
            dev.load_elf(&long, &[1], &LoadElfOptions::default()),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn tags_are_never_zero() {
        let dev = Device::open("/dev/null").unwrap();
        dev.inner.next_tag.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(dev.next_tag(), u32::MAX);
        assert_eq!(dev.next_tag(), 1);
    }

    #[test]
    fn device_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Device>();
        check::<Bo>();
    }
}
