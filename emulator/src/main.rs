// SPDX-License-Identifier: MIT OR Apache-2.0
//! `aic100-emu`: emulated AIC100 over vfio-user, and the firmware image generator.

use aic100_emu::{device::Options, firmware, logging, server};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aic100-emu",
    version,
    about = "Emulated Qualcomm Cloud AI 100 (AIC100) for QEMU vfio-user"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve one emulated AIC100 function on a vfio-user socket until QEMU disconnects.
    Serve {
        /// vfio-user socket path (QEMU's `-device vfio-user-pci` connects here).
        #[arg(long)]
        socket: PathBuf,
        /// Advertise a single MSI vector (single-MSI platform).
        #[arg(long)]
        single_msi: bool,
        /// Line-based fault-injection socket.
        #[arg(long)]
        control: Option<PathBuf>,
        /// Log areas: mhi,bhi,sahara,control,nnc,dma,pci,mmio,fault,vfu,dbc or all (default: env AIC100_EMU_LOG).
        #[arg(long)]
        log: Option<String>,
        /// Reference firmware images: received images must equal these files.
        #[arg(long)]
        firmware_dir: Option<PathBuf>,
        /// Do not require CRCs on control messages (status flag bit 0 clear).
        #[arg(long)]
        no_crc: bool,
        /// Control protocol version to report, MAJOR.MINOR (default 5.0; for negative tests).
        #[arg(long, value_parser = parse_version, default_value = "5.0")]
        control_version: (u16, u16),
        /// BHI serial number, decimal or 0x-hex (default: derived from the socket path).
        #[arg(long, value_parser = parse_u32)]
        serial: Option<u32>,
        /// Compute latency of the stand-in per inference in microseconds (default: the
        /// workload's nominal latency).
        #[arg(long)]
        compute_latency_us: Option<u64>,
        /// Trap every BAR2 access instead of mapping the DMA bridge registers into the guest.
        #[arg(long)]
        trap_bar2: bool,
        /// After a SoC reset requested by the host (e.g. for a RAS UE), report the reset from
        /// PBL with MHI SYS_ERR so that the host's MHI core boots the card again.
        #[arg(long)]
        reset_syserr: bool,
    },
    /// Measure the device model without QEMU: DMA-bridge requests per second and bandwidth.
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value = "1.0")]
        seconds: f64,
    },
    /// Write the project-generated firmware images (sbl.bin, fwN.bin) into DIR.
    GenFirmware {
        /// Output directory (the guest's /lib/firmware/qcom/aic100/).
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("'{s}': {e}"))
}

fn parse_version(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('.')
        .ok_or_else(|| format!("'{s}': expected MAJOR.MINOR"))?;
    Ok((
        a.parse().map_err(|e| format!("'{s}': {e}"))?,
        b.parse().map_err(|e| format!("'{s}': {e}"))?,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::GenFirmware { out } => match firmware::write_all(&out) {
            Ok(names) => {
                println!(
                    "wrote {} images to {}: {}",
                    names.len(),
                    out.display(),
                    names.join(" ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("aic100-emu: {}: {e}", out.display());
                ExitCode::FAILURE
            }
        },
        Cmd::Bench { seconds } => {
            aic100_emu::bench::run(std::time::Duration::from_secs_f64(seconds));
            ExitCode::SUCCESS
        }
        Cmd::Serve {
            socket,
            single_msi,
            control,
            log,
            firmware_dir,
            no_crc,
            control_version,
            serial,
            compute_latency_us,
            trap_bar2,
            reset_syserr,
        } => {
            let spec = log
                .or_else(|| std::env::var("AIC100_EMU_LOG").ok())
                .unwrap_or_default();
            let mask = match logging::parse_areas(&spec) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("aic100-emu: {e}");
                    return ExitCode::from(2);
                }
            };
            logging::init(mask);
            let serial = serial.unwrap_or_else(|| {
                0x5a10_0000
                    | (aic100_emu::wire::crc32(socket.as_os_str().as_encoded_bytes()) & 0xffff)
            });
            let opts = Options {
                single_msi,
                crc_required: !no_crc,
                control_version,
                serial,
                firmware_dir,
                compute_latency: compute_latency_us.map(std::time::Duration::from_micros),
                reset_syserr,
                ..Options::default()
            };
            match server::serve(&socket, control.as_deref(), opts, !trap_bar2) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("aic100-emu: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
