// SPDX-License-Identifier: MIT OR Apache-2.0
//! The vfio-user server end to end without QEMU: a vfio_user client (the same protocol QEMU
//! speaks) connects to `server::serve`, reads the PCI identity and regions, maps a memfd as
//! guest RAM, installs an MSI eventfd and loads the SBL over BHI; the device worker thread
//! answers asynchronously. The fault-injection socket is exercised on the same instance.

use aic100_emu::device::Options;
use aic100_emu::{firmware, server};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vfio_bindings::bindings::vfio::*;
use vfio_user::Client;

fn rd32(c: &mut Client, region: u32, off: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, off, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn wr32(c: &mut Client, region: u32, off: u64, v: u32) {
    c.region_write(region, off, &v.to_le_bytes()).unwrap();
}

/// Retries `f` for up to 10 s: the server creates its sockets before it listens on them, so a
/// connection attempt right after the socket file appears can be refused.
fn retry<T, E: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    let t0 = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if t0.elapsed() < Duration::from_secs(10) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

fn ctl(path: &PathBuf, cmd: &str) -> String {
    let mut s = retry("connect to the control socket", || {
        UnixStream::connect(path)
    });
    writeln!(s, "{cmd}").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim().to_string()
}

#[test]
fn vfio_user_client_sees_the_aic100_function_and_boots_it_over_bhi() {
    let dir = std::env::temp_dir().join(format!("aic100-vfu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("emu.sock");
    let ctl_path = dir.join("emu.ctl");
    let (s2, c2) = (sock.clone(), ctl_path.clone());
    let srv = std::thread::spawn(move || server::serve(&s2, Some(&c2), Options::default(), true));
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut c = retry("connect", || Client::new(&sock));

    // PCI identity, BAR sizes, MSI count.
    let cfg = VFIO_PCI_CONFIG_REGION_INDEX;
    assert_eq!(rd32(&mut c, cfg, 0), 0xa100_17cb);
    assert_eq!(rd32(&mut c, cfg, 8) >> 8, 0x12_0000);
    assert_eq!(c.region(cfg).unwrap().size, 4096);
    assert_eq!(c.region(0).unwrap().size, 4096);
    assert_eq!(c.region(1).map_or(0, |r| r.size), 0);
    assert_eq!(c.region(2).unwrap().size, 2 << 20);
    assert_eq!(c.region(4).unwrap().size, 64 << 10);
    assert_eq!(c.get_irq_info(VFIO_PCI_MSI_IRQ_INDEX).unwrap().count, 32);
    wr32(&mut c, cfg, 4, 0x0006); // memory space + bus master

    // Guest RAM: a 1 MiB memfd at bus address 0x100000, holding the SBL image.
    // SAFETY: plain libc calls with checked results; the fds are owned below.
    let mem = unsafe { OwnedFd::from_raw_fd(libc::memfd_create(c"guest-ram".as_ptr(), 0)) };
    let img = firmware::generated_image(firmware::SBL_ID);
    let mut f = std::fs::File::from(mem.try_clone().unwrap());
    f.set_len(1 << 20).unwrap();
    f.write_all(&img).unwrap();
    c.dma_map(0, 0x10_0000, 1 << 20, mem.as_raw_fd()).unwrap();
    // SAFETY: eventfd with checked result.
    let efd = unsafe { OwnedFd::from_raw_fd(libc::eventfd(0, 0)) };
    c.set_irqs(
        VFIO_PCI_MSI_IRQ_INDEX,
        VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
        0,
        1,
        &[efd.as_raw_fd()],
    )
    .unwrap();

    // BHI load; the worker thread completes it asynchronously.
    let bhi = rd32(&mut c, 0, 0x28) as u64;
    assert_eq!(rd32(&mut c, 0, bhi + 0x28), 0, "EE PBL");
    wr32(&mut c, 0, bhi + 0x2c, 0);
    wr32(&mut c, 0, bhi + 0x0c, 0);
    wr32(&mut c, 0, bhi + 0x08, 0x10_0000);
    wr32(&mut c, 0, bhi + 0x10, img.len() as u32);
    wr32(&mut c, 0, bhi + 0x18, 0x1234);
    let t0 = Instant::now();
    while rd32(&mut c, 0, bhi + 0x2c) >> 30 != 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "BHI did not complete"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut n = [0u8; 8];
    std::fs::File::from(efd).read_exact(&mut n).unwrap();
    assert!(u64::from_ne_bytes(n) >= 1, "MSI eventfd signalled");
    while rd32(&mut c, 0, 0x48) != 0x101 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never READY");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rd32(&mut c, 0, bhi + 0x28), 1, "EE SBL");

    // Fault-injection socket on the same device.
    let st = ctl(&ctl_path, "status");
    assert!(st.starts_with("ok ee=1 mhi_state=1"), "{st}");
    assert!(ctl(&ctl_path, "bogus").starts_with("error"));
    assert!(ctl(&ctl_path, "surprise-remove").starts_with("ok"));
    assert_eq!(
        rd32(&mut c, 0, 0x48),
        0xffff_ffff,
        "removed card reads all-ones"
    );

    // QEMU going away ends the server cleanly.
    c.shutdown().unwrap();
    drop(c);
    assert_eq!(srv.join().unwrap(), Ok(()));
    assert!(!ctl_path.exists(), "control socket removed");
    std::fs::remove_dir_all(&dir).unwrap();
}
