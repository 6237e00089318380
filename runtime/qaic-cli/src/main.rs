// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic`: list, inspect and exercise Qualcomm Cloud AI 100 devices.
#![deny(unsafe_code)]

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use qaic::nnc::{ActivationState, DeviceInfo};
use qaic::sysfs::{self, AccelDevice, DbcState};
use qaic::{Device, Error, LoadElfOptions, Result};

/// List, inspect and exercise Qualcomm Cloud AI 100 (AIC100) accelerators.
#[derive(Parser)]
#[command(name = "qaic", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List accel devices (AIC100 only unless --all).
    List {
        /// Also list accel devices that are not AIC100.
        #[arg(long)]
        all: bool,
    },
    /// Show what the device firmware reports (NNC STATUS device info).
    Info(DeviceArg),
    /// Load a network, activate it and run requests on it.
    Run(RunArgs),
    /// Measure execute+wait throughput and latency.
    Bench(bench::BenchArgs),
}

/// Device selection shared by the subcommands.
#[derive(Args, Clone)]
pub struct DeviceArg {
    /// Device: index (0), name (accel0) or node path. Default: first AIC100.
    #[arg(short, long)]
    device: Option<String>,
}

impl DeviceArg {
    /// Opens the selected device.
    pub fn open(&self) -> Result<Device> {
        match &self.device {
            Some(d) if d.starts_with('/') => Device::open(d),
            Some(d) => {
                let n = d.strip_prefix("accel").unwrap_or(d);
                let index = n
                    .parse::<u32>()
                    .map_err(|_| Error::InvalidArgument(format!("bad device {d:?}")))?;
                Device::open_index(index)
            }
            None => {
                let found = sysfs::aic100_devices()?;
                let first = found.first().ok_or_else(|| {
                    Error::NoDevice("no AIC100 (17cb:a100) accel device in /sys/class/accel".into())
                })?;
                first.open()
            }
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    dev: DeviceArg,
    /// Network image (ELF) to load. Default: the example network.
    #[arg(long)]
    elf: Option<PathBuf>,
    /// Static constants to load with the network.
    #[arg(long)]
    constants: Option<PathBuf>,
    /// Number of requests to run.
    #[arg(short = 'n', long, default_value_t = 1)]
    requests: u32,
    /// Stop after load/activate/deactivate/unload (no execution).
    #[arg(long)]
    load_only: bool,
}

fn id_of(d: &AccelDevice) -> String {
    match (d.vendor_id, d.device_id) {
        (Some(v), Some(p)) => format!("{v:04x}:{p:04x}"),
        _ => "-".into(),
    }
}

fn list(all: bool) -> Result<()> {
    let devs: Vec<AccelDevice> = sysfs::enumerate()?
        .into_iter()
        .filter(|d| all || d.is_aic100())
        .collect();
    if devs.is_empty() {
        println!("no {}accel devices found", if all { "" } else { "AIC100 " });
        return Ok(());
    }
    println!(
        "{:<20} {:<14} {:<10} {:<9} {:<6} STATE",
        "NODE", "PCI", "ID", "DRIVER", "DBCS"
    );
    for d in &devs {
        let used = d
            .dbc_states
            .iter()
            .filter(|s| **s != DbcState::Idle)
            .count();
        let dbcs = if d.dbc_states.is_empty() {
            "-".to_string()
        } else {
            format!("{used}/{}", d.dbc_states.len())
        };
        let state = match d.open() {
            Ok(_) => "online".to_string(),
            Err(e) => match e.errno() {
                Some(n) => format!("unavailable ({:?})", qaic::Errno(n)),
                None => e.to_string(),
            },
        };
        println!(
            "{:<20} {:<14} {:<10} {:<9} {:<6} {state}",
            d.node.display(),
            d.pci_address.as_deref().unwrap_or("-"),
            id_of(d),
            d.driver.as_deref().unwrap_or("-"),
            dbcs,
        );
    }
    Ok(())
}

fn print_info(dev: &Device, info: &DeviceInfo) {
    let r = &info.resources;
    let p = &info.performance;
    println!("device          {}", dev.path().display());
    println!(
        "firmware        {} (qc {:?}, oem {:?}, variant {:?})",
        info.fw_version, info.fw_qc_version, info.fw_oem_version, info.fw_variant
    );
    println!(
        "nsp firmware    {} (qc {:?}, oem {:?}, variant {:?})",
        info.nsp_version, info.nsp_qc_version, info.nsp_oem_version, info.nsp_variant
    );
    println!(
        "sbl image       {:?}, pvs image version {}",
        info.sbl_image_name, info.pvs_image_version
    );
    println!(
        "hardware        version {:#010x}, sku {}, complex {}",
        info.hw_version, info.sku_type, info.complex_id
    );
    println!(
        "serial          {:?}, board {:?}",
        info.serial, info.board_serial
    );
    println!(
        "protocols       NNC command {}.{}, metadata {}.{}, info format {}, compiler {}",
        info.nnc_command_protocol.0,
        info.nnc_command_protocol.1,
        info.metadata_version.0,
        info.metadata_version.1,
        info.format_version,
        info.compiler_version
    );
    println!(
        "ddr             {} MiB free of {} MiB (fragmentation {})",
        r.dram_free, r.dram_total, r.dram_fragmentation
    );
    println!(
        "nsps            {} free of {} (mask {:#x})",
        r.nsp_free, r.nsp_total, info.nsp_pgmask
    );
    println!(
        "channels        {} free of {} virtual channels, {} of {} physical reserved",
        r.vc_free, r.vc_total, r.pc_reserved, r.pc_total
    );
    println!("multicast ids   {} free of {}", r.mcid_free, r.mcid_total);
    println!("semaphores      {} free of {}", r.sem_free, r.sem_total);
    println!(
        "clocks          nsp {} Hz, ddr {} Hz, compute {} Hz, memory {} Hz, system {} Hz",
        p.nsp_frequency_hz,
        p.ddr_frequency_hz,
        p.comp_frequency_hz,
        p.mem_frequency_hz,
        p.sys_frequency_hz
    );
    println!(
        "peak            compute {}, ddr bandwidth {}",
        p.peak_compute, p.dram_bw
    );
    println!(
        "workloads       {} networks loaded, {} active; {} constants loaded, {} in use",
        info.num_loaded_networks,
        info.num_active_networks,
        info.num_loaded_constants,
        info.num_constants_in_use
    );
    println!(
        "retired pages   {} (reset needed: {})",
        info.num_retired_pages,
        info.need_reset_to_retire_pages != 0
    );
}

fn info(arg: &DeviceArg) -> Result<()> {
    let dev = arg.open()?;
    match dev.driver_version() {
        Ok(v) => println!(
            "driver          {} {}.{}.{} ({})",
            v.name, v.version.0, v.version.1, v.version.2, v.desc
        ),
        Err(e) => println!("driver          unknown ({e})"),
    }
    let ps = dev.protocol_status()?;
    println!(
        "control proto   {}.{} (status {}, CRC {})",
        ps.major,
        ps.minor,
        ps.status,
        if ps.crc_required() { "on" } else { "off" }
    );
    let info = dev.device_info()?;
    print_info(&dev, &info);
    if let Err(e) = info.check_compatible() {
        println!("compatibility   NOT usable by this runtime: {e}");
    }
    Ok(())
}

fn run(a: &RunArgs) -> Result<()> {
    let Some(elf_path) = &a.elf else {
        return Err(Error::Unsupported(
            "the example network needs the emulator's compute stand-in, whose program format is not \
             defined yet; pass --elf to load a network image of your own"
                .into(),
        ));
    };
    let dev = a.dev.open()?;
    dev.device_info()?.check_compatible()?;
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))
    };
    let elf = read(elf_path)?;
    let name = elf_path
        .file_stem()
        .map_or("network".into(), |s| s.to_string_lossy().into_owned());
    let name: String = name.chars().take(63).collect();

    let constants = match &a.constants {
        Some(p) => {
            let c = read(p)?;
            let id = dev.load_constants(&name, &c, &[])?;
            println!("constants loaded: id {} ({} bytes)", id.0, c.len());
            Some(id)
        }
        None => None,
    };
    let elf_id = dev.load_elf(&name, &elf, &LoadElfOptions::default())?;
    println!(
        "network {name:?} loaded: id {} ({} bytes)",
        elf_id.0,
        elf.len()
    );
    let act = dev.activate(
        elf_id,
        constants,
        qaic::DEFAULT_QUEUE_SIZE,
        ActivationState::Ready,
    )?;
    println!(
        "activated: activation {} on DBC {} (ddr base {:#x}, mcid base {:#x})",
        act.activation_id, act.dbc_id, act.response.ddr_base, act.response.mcid_base
    );

    let outcome = if a.load_only {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "cannot run {} request(s): building the slices needs the network's I/O description, \
             which the compute stand-in format does not define yet (use --load-only)",
            a.requests
        )))
    };

    // Tear down in reverse order even when running failed; report the first error.
    let teardown = dev
        .deactivate(&act)
        .and_then(|()| dev.unload_elf(elf_id))
        .and_then(|()| constants.map_or(Ok(()), |c| dev.unload_constants(c)));
    outcome?;
    teardown?;
    println!("deactivated and unloaded");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::List { all } => list(*all),
        Cmd::Info(d) => info(d),
        Cmd::Run(a) => run(a),
        Cmd::Bench(a) => bench::bench(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qaic: {e}");
            ExitCode::FAILURE
        }
    }
}
