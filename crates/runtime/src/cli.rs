//! runc's command line. Global options come before the command; every long option takes
//! `--flag value` and `--flag=value`; Go-style single-dash long options (`-bundle`) are
//! accepted too, because runc's parser accepts them and some callers use them, but only in
//! the runtime's own part of the line: never in option values, after `--`, or in the
//! arguments a command passes on (exec's command line, ps's options for ps(1)).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    about = "Berth: an OCI container runtime",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.1"),
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for the state of containers (default: /run/berth; for a user other
    /// than root, $XDG_RUNTIME_DIR/berth as runc's $XDG_RUNTIME_DIR/runc).
    #[arg(long, global = true, default_value_os_t = default_root())]
    pub root: PathBuf,

    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,

    /// Format of log lines.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,

    /// Let systemd make and own each new container's cgroup: a transient scope unit
    /// (linux.cgroupsPath is "slice:prefix:name", e.g. "machine.slice:libpod:ID"; empty
    /// parts: system.slice, berth, the container id). Later commands read the container's
    /// state to know its unit, with or without this flag.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,

    /// Accepted for runc compatibility (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,

    /// Accepted for runc compatibility: rootless mode is detected, not configured.
    #[arg(long = "rootless", id = "global_rootless", hide = true)]
    pub rootless: Option<String>,

    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The state root when `--root` is not given: a rootless runtime cannot write /run, and its
/// callers (podman run by a user, which runs the runtime as root of its user namespace)
/// pass no --root, expecting the per-user default. runc's rule: $XDG_RUNTIME_DIR when set
/// and the runtime is not the host's root, unless a user namespace's root says it is root.
pub fn default_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    let user_is_root = std::env::var_os("USER").is_some_and(|u| u == "root");
    let per_user = rustix::process::geteuid().as_raw() != 0
        || (berth_container::privilege::unprivileged() && !user_is_root);
    match xdg {
        Some(dir) if per_user => PathBuf::from(dir).join("berth"),
        _ => PathBuf::from("/run/berth"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the bundle (the directory with config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// A unix socket that receives the pty master of a terminal container.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the host pid of the container's process here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of creating a new one.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many fds beyond stdio (3, 4, ...) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container's id.
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the process runs.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print the state of a container (runtime-spec JSON).
    State { id: String },
    /// Send a signal to a container's process (default SIGTERM).
    Kill {
        /// Signal every process of the container.
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a stopped container (or a running one with --force).
    Delete {
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A configuration for a container run by a non-root user.
        #[arg(long = "rootless", id = "spec_rootless")]
        rootless: bool,
    },
    /// Print what this runtime supports (runtime-spec features JSON).
    Features,
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the processes of a container.
    Ps {
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print resource usage (and OOM events) of a container.
    Events {
        /// Print statistics once and exit.
        #[arg(long)]
        stats: bool,
        /// How often to print statistics.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Change the resource limits of a container.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A linux.resources JSON object (file, or - for stdin).
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (e.g. 512m; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Accepted for runc compatibility; kernel memory limits no longer exist.
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// CPU CFS quota in microseconds (-1 for unlimited).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// Realtime period in microseconds.
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs allowed (e.g. 0-1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A runtime-spec process object (JSON file, or - for stdin).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// A unix socket that receives the pty master when --tty is set.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the process.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// uid[:gid] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// AppArmor profile of the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label of the process.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass this many fds beyond stdio to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Return once the process runs.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's host pid here.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Allow exec into a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// The container's id.
    pub id: String,
    /// The command and its arguments (when no --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Every long option name, for turning Go-style `-name` into `--name`.
const LONG_OPTIONS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "debug",
    "systemd-cgroup",
    "criu",
    "rootless",
    "version",
    "bundle",
    "console-socket",
    "pid-file",
    "no-pivot",
    "no-new-keyring",
    "preserve-fds",
    "detach",
    "keep",
    "all",
    "force",
    "format",
    "quiet",
    "help",
    "process",
    "cwd",
    "env",
    "tty",
    "user",
    "additional-gids",
    "cap",
    "no-new-privs",
    "apparmor",
    "process-label",
    "ignore-paused",
    "stats",
    "interval",
    "resources",
    "memory",
    "memory-swap",
    "memory-reservation",
    "kernel-memory",
    "cpu-quota",
    "cpu-period",
    "cpu-shares",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-limit",
    "blkio-weight",
];

/// Options before the command that take a value (long names and short letters).
const TOP_VALUES: &[&str] = &["root", "log", "log-format", "criu", "rootless"];

/// Options that take a value anywhere (clap's `global` ones).
const GLOBAL_VALUES: &[&str] = &["root", "log", "log-format", "criu"];

/// What the normalizer must know of a command: its options that take a value (whose value
/// is never rewritten), and after how many of its own positionals the arguments are someone
/// else's (exec's command line, ps's options for ps(1)) and pass through untouched.
struct Shape {
    values: &'static [&'static str],
    passed_on_after: Option<usize>,
}

const CREATE_VALUES: &[&str] = &["bundle", "b", "console-socket", "pid-file", "preserve-fds"];

fn shape(command: &str) -> Shape {
    let (values, passed_on_after): (&'static [&'static str], _) = match command {
        "create" | "run" => (CREATE_VALUES, None),
        "list" => (&["format", "f"], None),
        "spec" => (&["bundle", "b"], None),
        "ps" => (&["format", "f"], Some(1)),
        "events" => (&["interval"], None),
        "exec" => (
            &[
                "process",
                "p",
                "console-socket",
                "cwd",
                "env",
                "e",
                "user",
                "u",
                "additional-gids",
                "g",
                "cap",
                "c",
                "apparmor",
                "process-label",
                "preserve-fds",
                "pid-file",
            ],
            Some(1),
        ),
        "update" => (
            &[
                "resources",
                "r",
                "memory",
                "memory-swap",
                "memory-reservation",
                "kernel-memory",
                "cpu-quota",
                "cpu-period",
                "cpu-shares",
                "cpu-rt-period",
                "cpu-rt-runtime",
                "cpuset-cpus",
                "cpuset-mems",
                "pids-limit",
                "blkio-weight",
            ],
            None,
        ),
        _ => (&[], None),
    };
    Shape {
        values,
        passed_on_after,
    }
}

/// Rewrites `-name` and `-name=value` to their `--` form when `name` is a long option, in
/// the runtime's own part of the command line only: global options, the command, and the
/// command's options and positionals. Option values, everything after `--`, and whatever
/// follows the command's own positionals (exec's `ID COMMAND ARGS...`: the container's
/// command line) are passed on exactly as given.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut args = args.into_iter();
    let mut out: Vec<String> = args.next().into_iter().collect();
    let mut command: Option<Shape> = None;
    let mut positionals = 0;
    let mut value_next = false;
    let mut verbatim = false;
    for arg in args {
        if verbatim || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        if arg == "--" {
            verbatim = true;
            out.push(arg);
            continue;
        }
        let takes_value = |name: &str| match &command {
            None => TOP_VALUES.contains(&name),
            Some(shape) => GLOBAL_VALUES.contains(&name) || shape.values.contains(&name),
        };
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = split_value(long);
            value_next = !inline && takes_value(name);
            out.push(arg);
            continue;
        }
        if let Some(rest) = arg.strip_prefix('-')
            && !rest.is_empty()
        {
            let (name, inline) = split_value(rest);
            if name.len() >= 2 && LONG_OPTIONS.contains(&name) {
                value_next = !inline && takes_value(name);
                out.push(format!("-{arg}"));
            } else {
                // A short option (`-b DIR`, `-d`), or one with its value attached (`-bDIR`).
                value_next = rest.len() == 1 && takes_value(rest);
                out.push(arg);
            }
            continue;
        }
        // A positional: the command's name, then the command's own.
        match &command {
            None => command = Some(shape(&arg)),
            Some(shape) => {
                positionals += 1;
                verbatim = shape.passed_on_after == Some(positionals);
            }
        }
        out.push(arg);
    }
    out
}

/// `name=value` -> (name, true); `name` -> (name, false).
fn split_value(option: &str) -> (&str, bool) {
    match option.split_once('=') {
        Some((name, _)) => (name, true),
        None => (option, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let args = normalize_args(args.iter().map(|s| s.to_string()));
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn global_flags_in_both_forms() {
        let cli = parse(&[
            "berth-runtime",
            "--log-format=json",
            "--log",
            "/tmp/x.log",
            "--root=/tmp/r",
            "state",
            "c1",
        ]);
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.root, PathBuf::from("/tmp/r"));
        assert!(matches!(cli.command, Some(Command::State { id }) if id == "c1"));
    }

    #[test]
    fn create_flags_as_containerd_sends_them() {
        let cli = parse(&[
            "berth-runtime",
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "c1",
        ]);
        let Some(Command::Create(c)) = cli.command else {
            panic!()
        };
        assert_eq!(c.bundle, PathBuf::from("/b"));
        assert_eq!(c.pid_file, Some(PathBuf::from("/b/init.pid")));
        assert_eq!(c.id, "c1");
    }

    #[test]
    fn go_style_single_dash_options() {
        let cli = parse(&["berth-runtime", "-root", "/r", "create", "-bundle=/b", "x"]);
        assert_eq!(cli.root, PathBuf::from("/r"));
        let Some(Command::Create(c)) = cli.command else {
            panic!()
        };
        assert_eq!(c.bundle, PathBuf::from("/b"));
    }

    #[test]
    fn kill_takes_numbers_and_names() {
        let cli = parse(&["berth-runtime", "kill", "c1", "9"]);
        assert!(matches!(cli.command, Some(Command::Kill { signal, .. }) if signal == "9"));
        let cli = parse(&["berth-runtime", "kill", "--all", "c1"]);
        assert!(
            matches!(cli.command, Some(Command::Kill { signal, all: true, .. }) if signal == "SIGTERM")
        );
    }

    #[test]
    fn update_flags_take_negative_numbers() {
        let cli = parse(&[
            "berth-runtime",
            "update",
            "--pids-limit",
            "-1",
            "--memory",
            "-1",
            "--cpu-quota",
            "-1",
            "c1",
        ]);
        let Some(Command::Update(u)) = cli.command else {
            panic!()
        };
        assert_eq!(u.pids_limit, Some(-1));
        assert_eq!(u.memory.as_deref(), Some("-1"));
        assert_eq!(u.cpu_quota, Some(-1));
    }

    fn normalized(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn the_command_line_of_a_container_is_passed_on_untouched() {
        let tail = [
            "echo", "a", "-user", "root", "-tty", "--", "-e", "-root=x", "-t",
        ];
        let mut args = vec!["berth-runtime", "-root", "/r", "exec", "-tty", "-user", "0"];
        args.extend(["-env", "A=-tty", "-cwd=/", "c1"]);
        args.extend(tail);
        let normalized = normalized(&args);
        assert_eq!(
            normalized[1..11],
            [
                "--root", "/r", "exec", "--tty", "--user", "0", "--env", "A=-tty", "--cwd=/", "c1"
            ]
        );
        assert_eq!(normalized[11..], tail);
        let cli = Cli::try_parse_from(normalized).unwrap();
        let Some(Command::Exec(e)) = cli.command else {
            panic!()
        };
        assert!(e.tty);
        assert_eq!(e.user.as_deref(), Some("0"));
        assert_eq!(e.env, ["A=-tty"]);
        assert_eq!(e.id, "c1");
        assert_eq!(e.command, tail);
    }

    #[test]
    fn ps_options_for_ps_are_passed_on() {
        let cli = parse(&[
            "berth-runtime",
            "ps",
            "-format",
            "table",
            "c1",
            "-format",
            "-e",
        ]);
        let Some(Command::Ps {
            format, ps_args, ..
        }) = cli.command
        else {
            panic!()
        };
        assert_eq!(format, ListFormat::Table);
        assert_eq!(ps_args, ["-format", "-e"]);
    }

    #[test]
    fn option_values_and_everything_after_double_dash_stay() {
        assert_eq!(
            normalized(&["rt", "-log", "-debug", "update", "-memory", "-1", "c1"]),
            ["rt", "--log", "-debug", "update", "--memory", "-1", "c1"]
        );
        assert_eq!(
            normalized(&["rt", "delete", "--", "-force"]),
            ["rt", "delete", "--", "-force"]
        );
        // The runtime's own options after its positionals are still its own (as runc's
        // argument reordering allows).
        assert_eq!(
            normalized(&["rt", "delete", "c1", "-force"]),
            ["rt", "delete", "c1", "--force"]
        );
        assert_eq!(
            normalized(&["rt", "-rootless", "-debug", "spec", "-rootless"]),
            ["rt", "--rootless", "-debug", "spec", "--rootless"]
        );
    }

    /// The normalizer's tables (which options take values, where passed-on arguments
    /// begin, the long names) say what the clap definition says.
    #[test]
    fn the_normalizer_tables_follow_the_clap_definition() {
        use clap::CommandFactory;
        use std::collections::BTreeSet;
        let mut top = Cli::command();
        // Building assigns positional indices (and propagates the global options).
        top.build();
        let value_names = |cmd: &clap::Command, global: Option<bool>| -> BTreeSet<String> {
            cmd.get_arguments()
                .filter(|a| !a.is_positional() && a.get_action().takes_values())
                .filter(|a| global.is_none_or(|g| a.is_global_set() == g))
                .flat_map(|a| {
                    a.get_long()
                        .map(String::from)
                        .into_iter()
                        .chain(a.get_short().map(String::from))
                })
                .collect()
        };
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(value_names(&top, None), set(TOP_VALUES));
        assert_eq!(value_names(&top, Some(true)), set(GLOBAL_VALUES));
        let mut longs: BTreeSet<String> = top
            .get_arguments()
            .filter_map(|a| a.get_long().map(String::from))
            .collect();
        for sub in top.get_subcommands() {
            let shape = shape(sub.get_name());
            assert_eq!(
                value_names(sub, Some(false)),
                set(shape.values),
                "options with values of {}",
                sub.get_name()
            );
            let passed_on = sub
                .get_arguments()
                .filter(|a| a.is_positional() && a.is_trailing_var_arg_set())
                .find_map(|a| a.get_index())
                .map(|i| i - 1);
            assert_eq!(passed_on, shape.passed_on_after, "{}", sub.get_name());
            longs.extend(
                sub.get_arguments()
                    .filter_map(|a| a.get_long().map(String::from)),
            );
        }
        longs.insert("help".into());
        assert_eq!(longs, set(LONG_OPTIONS));
    }

    #[test]
    fn systemd_cgroup_is_a_global_flag() {
        let cli = parse(&["berth-runtime", "--systemd-cgroup", "create", "c1"]);
        assert!(cli.systemd_cgroup);
        let cli = parse(&["berth-runtime", "-systemd-cgroup", "delete", "c1"]);
        assert!(cli.systemd_cgroup);
        let cli = parse(&["berth-runtime", "create", "c1"]);
        assert!(!cli.systemd_cgroup);
    }

    #[test]
    fn short_flags_stay_short() {
        let cli = parse(&["berth-runtime", "delete", "-f", "c1"]);
        assert!(matches!(
            cli.command,
            Some(Command::Delete { force: true, .. })
        ));
    }
}
