// SPDX-License-Identifier: MIT OR Apache-2.0
//! vfio-user glue: the `ServerBackend` QEMU talks to, the device worker thread and the
//! fault-injection control socket.
//!
//! `vfio_user::Server::run` blocks on the QEMU connection, so everything the device does on
//! its own runs in a worker thread. Both share the device behind one mutex; register accesses
//! that queue device work wake the worker through a condition variable.

use crate::device::{Device, Irq, Options};
use crate::dma::MappedDma;
use crate::faults;
use crate::pci::{BAR_SIZES, CFG_SIZE};
use log::{debug, error, info, warn};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::*;
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

/// MSI delivery through the eventfds QEMU hands over with SET_IRQS.
#[derive(Default)]
pub struct EventfdIrq {
    fds: Vec<Option<File>>,
}

impl Irq for EventfdIrq {
    fn raise(&mut self, vector: u32) -> bool {
        // Vectors beyond what the host enabled fold onto vector 0 (single-MSI routing).
        let v = if self.fds.get(vector as usize).is_some_and(Option::is_some) {
            vector as usize
        } else {
            0
        };
        match self.fds.get_mut(v).and_then(Option::as_mut) {
            Some(f) => match f.write_all(&1u64.to_ne_bytes()) {
                Ok(()) => true,
                Err(e) => {
                    error!(target: "pci", "MSI vector {v}: eventfd write failed: {e}");
                    false
                }
            },
            None => false,
        }
    }
}

/// The device as shared between threads.
pub type SharedDevice = Device<MappedDma, EventfdIrq>;

/// Shared state: device + wakeup for the worker.
pub struct Shared {
    dev: Mutex<SharedDevice>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SharedDevice> {
        self.dev.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Backend {
    shared: Arc<Shared>,
}

fn le(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = data.len().min(8);
    b[..n].copy_from_slice(&data[..n]);
    u64::from_le_bytes(b)
}

impl ServerBackend for Backend {
    fn region_read(
        &mut self,
        region: u32,
        offset: u64,
        data: &mut [u8],
    ) -> Result<(), std::io::Error> {
        let mut dev = self.shared.lock();
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                dev.pci.read(offset as usize, data);
                debug!(target: "pci", "config read {offset:#05x}/{} -> {:#x}", data.len(), le(data));
            }
            VFIO_PCI_BAR0_REGION_INDEX
            | VFIO_PCI_BAR2_REGION_INDEX
            | VFIO_PCI_BAR4_REGION_INDEX => {
                let size = BAR_SIZES[region as usize];
                if offset + data.len() as u64 > size {
                    return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
                }
                for (i, chunk) in data.chunks_mut(8).enumerate() {
                    let v = dev.mmio_read(region, offset + 8 * i as u64, chunk.len());
                    chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
                }
            }
            _ => data.fill(0),
        }
        if dev.has_work() {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn region_write(
        &mut self,
        region: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<(), std::io::Error> {
        let mut dev = self.shared.lock();
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                debug!(target: "pci", "config write {offset:#05x}/{} <- {:#x}", data.len(), le(data));
                if (offset as usize) < CFG_SIZE {
                    dev.pci.write(offset as usize, data);
                }
            }
            VFIO_PCI_BAR0_REGION_INDEX
            | VFIO_PCI_BAR2_REGION_INDEX
            | VFIO_PCI_BAR4_REGION_INDEX => {
                let size = BAR_SIZES[region as usize];
                if offset + data.len() as u64 > size {
                    return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
                }
                for (i, chunk) in data.chunks(8).enumerate() {
                    dev.mmio_write(region, offset + 8 * i as u64, chunk.len(), le(chunk));
                }
            }
            _ => {}
        }
        if dev.has_work() {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> Result<(), std::io::Error> {
        let writable = flags.contains(DmaMapFlags::WRITE);
        debug!(target: "dma", "DMA_MAP iova {address:#x} size {size:#x} offset {offset:#x} {flags:?} fd {}", fd.is_some());
        let mut dev = self.shared.lock();
        dev.dma
            .map(address, size, offset, fd.as_ref(), writable)
            .inspect_err(|e| {
                error!(target: "dma", "DMA_MAP iova {address:#x} size {size:#x}: {e}");
            })
    }

    fn dma_unmap(
        &mut self,
        flags: DmaUnmapFlags,
        address: u64,
        size: u64,
    ) -> Result<(), std::io::Error> {
        debug!(target: "dma", "DMA_UNMAP iova {address:#x} size {size:#x} {flags:?}");
        let all = flags.bits() & 2 != 0;
        let mut dev = self.shared.lock();
        if all {
            dev.dma.unmap(0, 0);
        } else {
            dev.dma.unmap(address, size);
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), std::io::Error> {
        info!(target: "pci", "DEVICE_RESET");
        self.shared.lock().soc_reset();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> Result<(), std::io::Error> {
        debug!(target: "pci", "SET_IRQS index {index} flags {flags:#x} start {start} count {count} fds {}", fds.len());
        if index != VFIO_PCI_MSI_IRQ_INDEX || flags & VFIO_IRQ_SET_ACTION_TRIGGER == 0 {
            return Ok(());
        }
        let mut dev = self.shared.lock();
        let irq = &mut dev.irq;
        if flags & VFIO_IRQ_SET_DATA_EVENTFD != 0 {
            for (i, f) in fds.into_iter().enumerate() {
                let v = start as usize + i;
                if irq.fds.len() <= v {
                    irq.fds.resize_with(v + 1, || None);
                }
                irq.fds[v] = Some(f);
            }
        } else if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
            irq.fds.clear();
        }
        Ok(())
    }
}

fn regions(bar2_fd: Option<std::os::fd::RawFd>) -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = match index {
                0..=5 => BAR_SIZES[index as usize],
                VFIO_PCI_CONFIG_REGION_INDEX => CFG_SIZE as u64,
                _ => 0,
            };
            let mut info = vfio_region_info {
                argsz: std::mem::size_of::<vfio_region_info>() as u32,
                index,
                ..Default::default()
            };
            if size != 0 {
                info.size = size;
                info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
            }
            if let (VFIO_PCI_BAR2_REGION_INDEX, Some(fd)) = (index, bar2_fd) {
                // QEMU maps the DMA bridge into the guest: register reads and writes cost no
                // message; the worker notices host writes by polling the registers.
                info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
                return ServerRegion {
                    region_info: info,
                    sparse_areas: vec![vfio_user::SparseArea {
                        area: vfio_region_sparse_mmap_area { offset: 0, size },
                    }],
                    mmap_fd: Some(fd),
                };
            }
            ServerRegion {
                region_info: info,
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

fn irqs(msi_vectors: u32) -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let (count, flags) = if index == VFIO_PCI_MSI_IRQ_INDEX {
                (msi_vectors, VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE)
            } else {
                (0, 0)
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

fn worker(shared: Arc<Shared>) {
    // Register polling sleeps for tens of microseconds: ask for precise wakeups.
    // SAFETY: prctl on the calling thread with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    let mut dev = shared.lock();
    while !shared.stop.load(Ordering::Relaxed) {
        let next = dev.run(Instant::now());
        let wait = next.map_or(Duration::from_millis(200), |t| {
            t.saturating_duration_since(Instant::now())
        });
        if dev.has_work() && wait.is_zero() {
            continue;
        }
        dev = shared
            .wake
            .wait_timeout(dev, wait.max(Duration::from_micros(100)))
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn control_socket(shared: Arc<Shared>, listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut out = match conn.try_clone() {
                Ok(o) => o,
                Err(_) => return,
            };
            for line in BufReader::new(conn).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let answer = match faults::parse(&line) {
                    Ok(c) => {
                        info!(target: "fault", "control command: {}", line.trim());
                        let mut dev = shared.lock();
                        let a = faults::apply(&mut dev, c);
                        shared.wake.notify_one();
                        a
                    }
                    Err(e) => format!("error {e}"),
                };
                if writeln!(out, "{answer}").is_err() {
                    break;
                }
            }
        });
    }
}

/// Serve one QEMU connection on `socket` until it closes.
pub fn serve(
    socket: &Path,
    control: Option<&Path>,
    opts: Options,
    map_bar2: bool,
) -> Result<(), String> {
    if socket.exists() {
        std::fs::remove_file(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    }
    let size = BAR_SIZES[2] as usize;
    let bar2 = if map_bar2 {
        crate::dbc::Bar2::memfd(size).map_err(|e| format!("BAR2 memfd: {e}"))?
    } else {
        crate::dbc::Bar2::heap(size)
    };
    let bar2_fd = bar2.fd();
    let dev = Device::with_bar2(opts, MappedDma::new(), EventfdIrq::default(), bar2);
    let msi = dev.pci.msi_vectors;
    let shared = Arc::new(Shared {
        dev: Mutex::new(dev),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let ctl_path: Option<PathBuf> = control.map(Path::to_path_buf);
    if let Some(p) = &ctl_path {
        let _ = std::fs::remove_file(p);
        let l =
            UnixListener::bind(p).map_err(|e| format!("control socket {}: {e}", p.display()))?;
        let s = shared.clone();
        std::thread::spawn(move || control_socket(s, l));
        info!(target: "fault", "control socket on {}", p.display());
    }
    let server = Server::new(socket, true, irqs(msi), regions(bar2_fd))
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let w = {
        let s = shared.clone();
        std::thread::spawn(move || worker(s))
    };
    eprintln!(
        "aic100-emu: serving 17cb:a100 on {} ({} MSI vectors)",
        socket.display(),
        msi
    );
    let mut backend = Backend {
        shared: shared.clone(),
    };
    let r = server.run(&mut backend);
    shared.stop.store(true, Ordering::Relaxed);
    shared.wake.notify_all();
    let _ = w.join();
    if let Some(p) = &ctl_path {
        let _ = std::fs::remove_file(p);
    }
    let dev = shared.lock();
    eprintln!(
        "aic100-emu: connection closed; EE {} MHI state {}, {} MMIO accesses, {} MSIs, {} events, {} control responses",
        dev.exec_env(),
        dev.mhi_state(),
        dev.stats.mmio,
        dev.stats.msi,
        dev.stats.events,
        dev.stats.control_responses
    );
    match r {
        Ok(()) => Ok(()),
        Err(e) => {
            warn!(target: "vfu", "server: {e}");
            Err(format!("vfio-user server: {e}"))
        }
    }
}
