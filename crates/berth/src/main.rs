//! berth: docker's and podman's command line for people, daemonless, over Berth's engine.
//!
//! This binary only parses and prints: every verb is a function of `berth-engine` or
//! `berth-image`, which the tests call directly. Each family of commands has its own module
//! with its own clap `Subcommand` enum; they are flattened into one command line here.

mod archive_cmds;
mod containers;
mod containers_extra;
mod images;
mod network_cmds;
mod output;
mod registry_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for berth's own errors (docker's and podman's 125).
pub const EXIT_BERTH_ERROR: u8 = 125;

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    version,
    about = "Run containers without a daemon: docker's and podman's commands, on Berth's runtime",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options before the command, named as podman names them.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Storage: images, layers, container records
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "BERTH_ROOT",
        default_value_os_t = default_dirs().0
    )]
    pub root: PathBuf,
    /// Runtime state: the runtime's state dirs, monitor sockets, leases
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "BERTH_RUNROOT",
        default_value_os_t = default_dirs().1
    )]
    pub runroot: PathBuf,
    /// error, warn, info, debug or trace
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub log_level: log::LevelFilter,
    /// Who makes containers' cgroups: systemd (a scope berth-<id>.scope in machine.slice) or
    /// cgroupfs (/berth/<id>) [default: systemd when systemd runs the host, else cgroupfs]
    #[arg(long, global = true, value_name = "MANAGER", value_enum)]
    pub cgroup_manager: Option<CgroupManager>,
    /// A storage option, as podman's: overlay.mount_program=PATH mounts container roots with
    /// that FUSE program (fuse-overlayfs) instead of the kernel's overlay
    #[arg(long, global = true, value_name = "NAME=VALUE")]
    pub storage_opt: Vec<String>,
}

/// `--cgroup-manager`, as podman names its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CgroupManager {
    Systemd,
    Cgroupfs,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Images(images::ImageCommand),
    #[command(flatten)]
    Archives(archive_cmds::ArchiveCommand),
    #[command(flatten)]
    Registry(registry_cmds::RegistryCommand),
    #[command(flatten)]
    Containers(containers::ContainerCommand),
    #[command(flatten)]
    ContainersExtra(containers_extra::ExtraCommand),
    #[command(flatten)]
    Network(network_cmds::NetworkCommand),
}

/// What a command returns: the process's exit code, or an error printed as podman prints
/// it (`Error: ...`) with exit code 125.
pub type CmdResult = Result<u8, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BERTH_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.global.log_level);
    if let Err(e) = apply_storage_opts(&cli.global.storage_opt) {
        eprintln!("Error: {e}");
        return ExitCode::from(EXIT_BERTH_ERROR);
    }
    if berth_engine::userns::euid() != 0 {
        // returns only with an error: the command goes on in the user's namespace
        let Err(e) = enter_rootless(&cli.global);
        eprintln!("Error: {e}");
        return ExitCode::from(EXIT_BERTH_ERROR);
    }
    berth_engine::userns::resume();
    if berth_engine::userns::active() {
        berth_engine::set_cgroup_manager(berth_engine::CgroupDriver::Cgroupfs);
    }
    if let Some(manager) = cli.global.cgroup_manager {
        berth_engine::set_cgroup_manager(match manager {
            CgroupManager::Systemd => berth_engine::CgroupDriver::Systemd,
            CgroupManager::Cgroupfs => berth_engine::CgroupDriver::Cgroupfs,
        });
    }
    let result = match cli.command {
        Command::Images(cmd) => images::run(&cli.global, cmd),
        Command::Archives(cmd) => archive_cmds::run(&cli.global, cmd),
        Command::Registry(cmd) => registry_cmds::run(&cli.global, cmd),
        Command::Containers(cmd) => containers::run(&cli.global, cmd),
        Command::ContainersExtra(cmd) => containers_extra::run(&cli.global, cmd),
        Command::Network(cmd) => network_cmds::run(&cli.global, cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(EXIT_BERTH_ERROR)
        }
    }
}

/// `--storage-opt NAME=VALUE`: the options berth knows, named as containers/storage names
/// them; others are refused (podman ignores some silently: an option a user gave must not
/// vanish).
fn apply_storage_opts(opts: &[String]) -> Result<(), String> {
    for opt in opts {
        match opt.split_once('=') {
            Some(("overlay.mount_program" | "mount_program", program)) => {
                let program = PathBuf::from(program);
                if !program.is_absolute() || !program.is_file() {
                    return Err(format!(
                        "--storage-opt {opt}: {} is not an executable file (give its absolute path)",
                        program.display()
                    ));
                }
                berth_image::snapshot::set_mount_program(program);
            }
            _ => {
                return Err(format!(
                    "--storage-opt {opt}: unknown storage option (berth knows overlay.mount_program=PATH)"
                ));
            }
        }
    }
    Ok(())
}

/// Storage and run state when `--root`/`--runroot` are not given: /var/lib/berth and
/// /run/berth for root; podman's per-user places for anyone else (see
/// [`berth_engine::rootless::default_dirs`]).
fn default_dirs() -> (PathBuf, PathBuf) {
    let uid = berth_engine::userns::euid();
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    let per_user = (uid != 0)
        .then(|| {
            berth_engine::rootless::default_dirs(
                uid,
                var("HOME").as_deref(),
                var("XDG_DATA_HOME").as_deref(),
                var("XDG_RUNTIME_DIR").as_deref(),
            )
        })
        .flatten();
    per_user.unwrap_or_else(|| (PathBuf::from("/var/lib/berth"), PathBuf::from("/run/berth")))
}

/// An unprivileged user's `berth` runs as root of the user's namespace (see
/// [`berth_engine::userns`]), before anything else and while single-threaded. Its cgroups
/// are cgroupfs ones (systemd's driver would need the user's own systemd and bus).
fn enter_rootless(global: &Global) -> Result<std::convert::Infallible, berth_engine::Error> {
    if global.cgroup_manager == Some(CgroupManager::Systemd) {
        return Err(berth_engine::Error::Rootless(
            "--cgroup-manager systemd is not supported for a user (it needs the user's \
             systemd and session bus): use cgroupfs"
                .into(),
        ));
    }
    let user = berth_engine::userns::User::current();
    berth_engine::userns::enter(&user, &global.root, &global.runroot)
}

/// Log lines on stderr as `level: message`; `--log-level` sets how much.
fn init_logging(level: log::LevelFilter) {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= log::max_level()
        }
        fn log(&self, record: &log::Record) {
            // A container's monitor shows the runtime's warnings to the user instead.
            if berth_engine::warnings::capture_log(record) {
                return;
            }
            if self.enabled(record.metadata()) {
                eprintln!(
                    "{}: {}",
                    record.level().as_str().to_lowercase(),
                    record.args()
                );
            }
        }
        fn flush(&self) {}
    }
    static LOGGER: Stderr = Stderr;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
