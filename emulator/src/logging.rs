// SPDX-License-Identifier: MIT OR Apache-2.0
//! Per-area logging.
//!
//! Every log line of the emulator carries a `target` naming its area (`mhi`, `bhi`, `sahara`,
//! `control`, `nnc`, `dma`, `pci`, `mmio`, `fault`, `vfu`, `dbc`, `ssr`). Warnings and errors are always printed;
//! informational and debug lines only for the areas enabled with `--log` or the `AIC100_EMU_LOG`
//! environment variable (comma separated, `all` enables every area).

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The log areas, in bit order.
pub const AREAS: &[&str] = &[
    "mhi", "bhi", "sahara", "control", "nnc", "dma", "pci", "mmio", "fault", "vfu", "dbc", "ssr",
];

static MASK: AtomicU32 = AtomicU32::new(0);
static START: OnceLock<Instant> = OnceLock::new();

/// Parse a comma separated list of areas into a bit mask.
pub fn parse_areas(spec: &str) -> Result<u32, String> {
    let mut mask = 0u32;
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "all" {
            mask = (1 << AREAS.len()) - 1;
            continue;
        }
        match AREAS.iter().position(|a| *a == item) {
            Some(i) => mask |= 1 << i,
            None => {
                return Err(format!(
                    "unknown log area '{item}' (known: {}, all)",
                    AREAS.join(",")
                ))
            }
        }
    }
    Ok(mask)
}

fn area_bit(target: &str) -> u32 {
    // vfio_user's own targets look like "vfio_user" or "vfio_user::..."
    let name = if target.starts_with("vfio_user") {
        "vfu"
    } else {
        target
    };
    AREAS
        .iter()
        .position(|a| *a == name)
        .map(|i| 1 << i)
        .unwrap_or(0)
}

/// True if informational logging is enabled for `area`.
pub fn enabled(area: &str) -> bool {
    MASK.load(Ordering::Relaxed) & area_bit(area) != 0
}

/// Enable the given areas (replaces the current mask).
pub fn set_mask(mask: u32) {
    MASK.store(mask, Ordering::Relaxed);
}

struct AreaLogger;

impl log::Log for AreaLogger {
    fn enabled(&self, md: &log::Metadata) -> bool {
        md.level() <= log::Level::Warn || MASK.load(Ordering::Relaxed) & area_bit(md.target()) != 0
    }

    fn log(&self, rec: &log::Record) {
        if !self.enabled(rec.metadata()) {
            return;
        }
        let t = START.get_or_init(Instant::now).elapsed();
        let lvl = match rec.level() {
            log::Level::Error => "ERROR ",
            log::Level::Warn => "WARN ",
            _ => "",
        };
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "[{:5}.{:06}] {}: {}{}",
            t.as_secs(),
            t.subsec_micros(),
            rec.target(),
            lvl,
            rec.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: AreaLogger = AreaLogger;

/// Install the logger (idempotent) with the given area mask.
pub fn init(mask: u32) {
    START.get_or_init(Instant::now);
    set_mask(mask);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}
