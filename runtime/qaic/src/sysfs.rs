// SPDX-License-Identifier: MIT OR Apache-2.0
//! Device enumeration through sysfs (`/sys/class/accel`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::device::Device;
use crate::error::{Error, Result};

/// PCI vendor id of Qualcomm.
pub const QCOM_VENDOR_ID: u16 = 0x17cb;
/// PCI device id of the Cloud AI 100 (AIC100).
pub const AIC100_DEVICE_ID: u16 = 0xa100;
/// Number of `dbc<i>_state` files per device.
pub const DBC_STATE_FILES: u32 = 16;

/// State of a DMA bridge channel as shown in `dbc<i>_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbcState {
    /// 0: free.
    Idle,
    /// 1: owned by a user.
    Assigned,
    /// 2: subsystem restart, before shutdown.
    BeforeShutdown,
    /// 3: subsystem restart, after shutdown.
    AfterShutdown,
    /// 4: subsystem restart, before power-up.
    BeforePowerUp,
    /// 5: subsystem restart, after power-up.
    AfterPowerUp,
    /// A value this crate does not know.
    Unknown(u32),
}

impl From<u32> for DbcState {
    fn from(v: u32) -> Self {
        match v {
            0 => DbcState::Idle,
            1 => DbcState::Assigned,
            2 => DbcState::BeforeShutdown,
            3 => DbcState::AfterShutdown,
            4 => DbcState::BeforePowerUp,
            5 => DbcState::AfterPowerUp,
            v => DbcState::Unknown(v),
        }
    }
}

/// One accel device found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelDevice {
    /// N of `accel<N>`.
    pub index: u32,
    /// Device node, `/dev/accel/accel<N>`.
    pub node: PathBuf,
    /// PCI address (`0000:01:00.0`), when the parent is a PCI device.
    pub pci_address: Option<String>,
    /// PCI vendor id.
    pub vendor_id: Option<u16>,
    /// PCI device id.
    pub device_id: Option<u16>,
    /// Name of the bound PCI driver (`qaic` or `qaic_rs`).
    pub driver: Option<String>,
    /// States of the DMA bridge channels (empty if the files are missing).
    pub dbc_states: Vec<DbcState>,
}

impl AccelDevice {
    /// Whether this is a Qualcomm Cloud AI 100 (17cb:a100).
    pub fn is_aic100(&self) -> bool {
        self.vendor_id == Some(QCOM_VENDOR_ID) && self.device_id == Some(AIC100_DEVICE_ID)
    }

    /// Opens the device node.
    pub fn open(&self) -> Result<Device> {
        Device::open(&self.node)
    }
}

fn read_hex_u16(path: &Path) -> Option<u16> {
    let s = fs::read_to_string(path).ok()?;
    u16::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

fn link_name(path: &Path) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Every accel device, sorted by index. Returns an empty list when the
/// accel class does not exist (no accel driver loaded).
pub fn enumerate() -> Result<Vec<AccelDevice>> {
    enumerate_at(Path::new("/sys"), Path::new("/dev"))
}

/// The AIC100 accel devices, sorted by index.
pub fn aic100_devices() -> Result<Vec<AccelDevice>> {
    Ok(enumerate()?
        .into_iter()
        .filter(AccelDevice::is_aic100)
        .collect())
}

/// [`enumerate`] with other sysfs and /dev roots (for tests and chroots).
pub fn enumerate_at(sys: &Path, dev: &Path) -> Result<Vec<AccelDevice>> {
    let class = sys.join("class/accel");
    let entries = match fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Sysfs {
                path: class,
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Sysfs {
            path: class.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(index) = name
            .strip_prefix("accel")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = class.join(&name);
        let pci = dir.join("device");
        let dbc_states = (0..DBC_STATE_FILES)
            .map_while(|i| fs::read_to_string(dir.join(format!("dbc{i}_state"))).ok())
            .map(|s| DbcState::from(s.trim().parse::<u32>().unwrap_or(u32::MAX)))
            .collect();
        out.push(AccelDevice {
            index,
            node: dev.join("accel").join(&name),
            pci_address: link_name(&pci),
            vendor_id: read_hex_u16(&pci.join("vendor")),
            device_id: read_hex_u16(&pci.join("device")),
            driver: link_name(&pci.join("driver")),
            dbc_states,
        });
    }
    out.sort_by_key(|d| d.index);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("qaic-sysfs-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fake_pci(root: &Path, bdf: &str, vendor: &str, device: &str, driver: &str) -> PathBuf {
        let p = root.join("devices/pci0000:00").join(bdf);
        fs::create_dir_all(&p).unwrap();
        fs::write(p.join("vendor"), format!("{vendor}\n")).unwrap();
        fs::write(p.join("device"), format!("{device}\n")).unwrap();
        let drv = root.join("bus/pci/drivers").join(driver);
        fs::create_dir_all(&drv).unwrap();
        symlink(&drv, p.join("driver")).unwrap();
        p
    }

    #[test]
    fn enumerates_fake_sysfs() {
        let t = TempDir::new("enum");
        let sys = &t.0;
        let class = sys.join("class/accel");
        fs::create_dir_all(&class).unwrap();
        let a = fake_pci(sys, "0000:01:00.0", "0x17cb", "0xa100", "qaic_rs");
        let b = fake_pci(sys, "0000:02:00.0", "0x1234", "0x5678", "other");
        for (n, pci) in [(10, &a), (2, &b)] {
            let d = class.join(format!("accel{n}"));
            fs::create_dir_all(&d).unwrap();
            symlink(pci, d.join("device")).unwrap();
        }
        for i in 0..16 {
            fs::write(
                class.join("accel10").join(format!("dbc{i}_state")),
                if i == 3 { "1\n" } else { "0\n" },
            )
            .unwrap();
        }
        fs::create_dir_all(class.join("not-accel")).unwrap();

        let devs = enumerate_at(sys, Path::new("/dev")).unwrap();
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0].index, 2);
        assert!(!devs[0].is_aic100());
        assert!(devs[0].dbc_states.is_empty());
        let d = &devs[1];
        assert_eq!(d.index, 10);
        assert_eq!(d.node, Path::new("/dev/accel/accel10"));
        assert_eq!(d.pci_address.as_deref(), Some("0000:01:00.0"));
        assert_eq!((d.vendor_id, d.device_id), (Some(0x17cb), Some(0xa100)));
        assert_eq!(d.driver.as_deref(), Some("qaic_rs"));
        assert!(d.is_aic100());
        assert_eq!(d.dbc_states.len(), 16);
        assert_eq!(d.dbc_states[3], DbcState::Assigned);
        assert_eq!(d.dbc_states[0], DbcState::Idle);
    }

    #[test]
    fn missing_class_is_empty() {
        let t = TempDir::new("empty");
        assert!(enumerate_at(&t.0, Path::new("/dev")).unwrap().is_empty());
    }

    #[test]
    fn dbc_state_values() {
        assert_eq!(DbcState::from(5), DbcState::AfterPowerUp);
        assert_eq!(DbcState::from(9), DbcState::Unknown(9));
    }
}
