// SPDX-License-Identifier: MIT OR Apache-2.0
//! `qaic`: list, inspect and exercise Qualcomm Cloud AI 100 devices.
#![deny(unsafe_code)]

mod bench;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use qaic::nnc::DeviceInfo;
use qaic::sysfs::{self, AccelDevice, DbcState};
use qaic::workload::Rng;
use qaic::{Device, Error, Program, Result};

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
    /// Load a network, run requests with random inputs and check each
    /// against the CPU reference.
    Run(RunArgs),
    /// Write a network image and its constants without running them.
    Build(BuildArgs),
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
    #[command(flatten)]
    net: NetworkArgs,
    /// Number of requests to run.
    #[arg(short = 'n', long, default_value_t = 10)]
    requests: u64,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 1)]
    input_seed: u64,
    /// WAIT_BO timeout in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
    /// Print every request (default: the first 10).
    #[arg(short, long)]
    verbose: bool,
    /// Use PARTIAL_EXECUTE_BO with random sizes: each request sends only the
    /// first 0..=IN input bytes (the device keeps the rest from earlier
    /// requests) and reads back the first 1..=OUT output bytes.
    #[arg(long)]
    partial: bool,
    /// Stop after load/activate/deactivate/unload (no execution).
    #[arg(long)]
    load_only: bool,
}

/// Which network to use: an image of one's own, a generated MLP, or the
/// example network of Documentation/workload.rst.
#[derive(Args, Clone)]
pub struct NetworkArgs {
    /// Network image (ELF) with a qaic_emu_workload section (default: a
    /// generated network, see --shape).
    #[arg(long, conflicts_with_all = ["shape", "seed"])]
    elf: Option<PathBuf>,
    /// Constants (weights and biases) of --elf.
    #[arg(long, requires = "elf")]
    constants: Option<PathBuf>,
    /// Features per layer of a generated MLP, e.g. 64,32,10 (default: the
    /// 16,8,4 example network of Documentation/workload.rst).
    #[arg(long, value_delimiter = ',')]
    shape: Option<Vec<u32>>,
    /// Seed of the generated MLP's weights (with --shape).
    #[arg(long, requires = "shape")]
    seed: Option<u64>,
}

impl NetworkArgs {
    /// Whether a network was named explicitly.
    pub fn given(&self) -> bool {
        self.elf.is_some() || self.shape.is_some()
    }

    /// Builds or reads the program.
    pub fn program(&self) -> Result<Program> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Error::InvalidArgument(format!("{}: {e}", p.display())))
        };
        if let Some(path) = &self.elf {
            let constants = self.constants.as_ref().map_or(Ok(Vec::new()), read)?;
            let name = path
                .file_stem()
                .map_or("network".into(), |s| s.to_string_lossy().into_owned());
            let name: String = name.chars().take(63).collect();
            return Ok(Program::from_elf(&name, read(path)?, constants)?);
        }
        match &self.shape {
            Some(dims) => Ok(Program::mlp(dims, self.seed.unwrap_or(1))?),
            None => Ok(Program::example()),
        }
    }
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    net: NetworkArgs,
    /// Where to write the network image.
    #[arg(short, long)]
    output: PathBuf,
    /// Where to write the constants.
    #[arg(long)]
    constants_out: PathBuf,
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

fn describe(p: &Program) {
    let w = p.workload();
    println!(
        "network {:?}: {} ({} layers), {} bytes of ELF, {} bytes of constants",
        p.name(),
        w,
        w.layers.len(),
        p.elf().len(),
        p.constants().len()
    );
}

fn build(a: &BuildArgs) -> Result<()> {
    let p = a.net.program()?;
    let write = |path: &PathBuf, data: &[u8]| {
        std::fs::write(path, data)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))
    };
    write(&a.output, p.elf())?;
    write(&a.constants_out, p.constants())?;
    describe(&p);
    println!(
        "written to {} and {}",
        a.output.display(),
        a.constants_out.display()
    );
    Ok(())
}

fn run(a: &RunArgs) -> Result<()> {
    let program = a.net.program()?;
    let dev = a.dev.open()?;
    dev.device_info()?.check_compatible()?;
    describe(&program);
    let loaded = program.load(&dev)?;
    let act = loaded.activation();
    println!(
        "loaded: network id {}, constants id {}; activation {} on DBC {} (ddr base {:#x}, mcid base {:#x})",
        loaded.elf_id().0,
        loaded.constants_id().map_or("-".into(), |c| c.0.to_string()),
        act.activation_id,
        act.dbc_id,
        act.response.ddr_base,
        act.response.mcid_base
    );
    let outcome = if a.load_only {
        Ok(())
    } else {
        run_requests(&loaded, a)
    };
    // Tear down even when running failed; report the first error.
    let teardown = loaded.unload();
    outcome?;
    teardown?;
    println!("deactivated and unloaded");
    Ok(())
}

fn run_requests(loaded: &qaic::LoadedProgram, a: &RunArgs) -> Result<()> {
    let timeout = Some(std::time::Duration::from_millis(a.timeout_ms));
    let w = loaded.program().workload();
    let mut request = loaded.request()?;
    let mut rng = Rng::new(a.input_seed);
    let mut input = vec![0i8; w.input_len()];
    let mut first_mismatch = None;
    let mut mismatches = 0u64;
    let start = std::time::Instant::now();
    let mut sizes = Rng::new(a.input_seed ^ 0x7061_7274);
    for i in 0..a.requests {
        rng.fill_i8(&mut input);
        request.set_input(&input)?;
        let mut note = String::new();
        if a.partial {
            let fresh = sizes.range(0, w.input_len() as i64) as usize;
            let out = sizes.range(1, w.output_len() as i64) as usize;
            request.submit_partial(fresh, out)?;
            note = format!(" (partial: {fresh} input bytes, {out} output bytes)");
        } else {
            request.submit()?;
        }
        request.wait(timeout)?;
        let verdict = match request.check() {
            Ok(_) => "ok".to_string(),
            Err(e @ Error::OutputMismatch { .. }) => {
                mismatches += 1;
                let text = format!("MISMATCH: {e}");
                first_mismatch.get_or_insert(e);
                text
            }
            Err(e) => return Err(e),
        };
        if a.verbose || i < 10 || verdict != "ok" {
            println!(
                "request {i}: {} -> {} {verdict}{note}",
                short(request.effective_input()),
                short(&request.received_output()?)
            );
        } else if i == 10 {
            println!("... (-v prints every request)");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} requests, {} verified against the CPU reference, {mismatches} mismatches, {:.3} s, {:.1} requests/s",
        a.requests,
        a.requests - mismatches,
        secs,
        a.requests as f64 / secs.max(1e-9)
    );
    match first_mismatch {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// At most 16 values, then the count of the rest.
fn short(v: &[i8]) -> String {
    let head: Vec<String> = v.iter().take(16).map(i8::to_string).collect();
    match v.len() {
        n if n > 16 => format!("[{}, ... {} more]", head.join(", "), n - 16),
        _ => format!("[{}]", head.join(", ")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match &cli.cmd {
        Cmd::List { all } => list(*all),
        Cmd::Info(d) => info(d),
        Cmd::Run(a) => run(a),
        Cmd::Build(a) => build(a),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("qaic").chain(args.iter().copied()))
    }

    #[test]
    fn short_vectors() {
        assert_eq!(short(&[1, -2, 3]), "[1, -2, 3]");
        assert_eq!(short(&[]), "[]");
        let v: Vec<i8> = (0..20).collect();
        assert_eq!(
            short(&v),
            "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, ... 4 more]"
        );
    }

    #[test]
    fn run_selects_the_network() {
        let Cmd::Run(a) = parse(&["run"]).unwrap().cmd else {
            panic!("not run")
        };
        assert_eq!((a.requests, a.net.given()), (10, false));
        assert_eq!(a.net.program().unwrap(), Program::example());
        let Cmd::Run(a) = parse(&["run", "--shape", "8,4,2", "--seed", "3", "-n", "5"])
            .unwrap()
            .cmd
        else {
            panic!("not run")
        };
        assert_eq!(a.requests, 5);
        assert_eq!(
            a.net.program().unwrap().workload().to_string(),
            "8 -> 4 (relu) -> 2"
        );
        assert_eq!(
            a.net.program().unwrap(),
            Program::mlp(&[8, 4, 2], 3).unwrap()
        );
        // a shape the format refuses is a workload error, not a panic
        let Cmd::Run(a) = parse(&["run", "--shape", "5000,2"]).unwrap().cmd else {
            panic!("not run")
        };
        assert!(matches!(a.net.program(), Err(Error::Workload(_))));
        // --constants needs --elf, --seed needs --shape, --elf excludes --shape
        assert!(parse(&["run", "--constants", "c"]).is_err());
        assert!(parse(&["run", "--seed", "1"]).is_err());
        assert!(parse(&["run", "--elf", "e", "--shape", "2,2"]).is_err());
    }

    #[test]
    fn bench_modes() {
        assert!(parse(&["bench"]).is_ok());
        assert!(parse(&["bench", "--shape", "4,4", "--json"]).is_ok());
        assert!(parse(&["bench", "--loopback", "--bo-size", "64k"]).is_ok());
        assert!(parse(&["bench", "--loopback", "--dev-addr", "0x1000"]).is_ok());
        // loop-back options without --loopback, and network options with it
        assert!(parse(&["bench", "--bo-size", "4k"]).is_err());
        assert!(parse(&["bench", "--dev-addr", "0"]).is_err());
        assert!(parse(&["bench", "--loopback", "--shape", "4,4"]).is_err());
    }

    #[test]
    fn a_missing_image_is_reported_with_its_path() {
        let Cmd::Run(a) = parse(&["run", "--elf", "/nonexistent/net.elf"])
            .unwrap()
            .cmd
        else {
            panic!("not run")
        };
        let e = a.net.program().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/net.elf"), "{e}");
    }
}
