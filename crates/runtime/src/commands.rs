//! Each command: turn arguments into a call of the runtime core and print its result.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use berth_container::ops::{self, CreateOptions, ExecProcess, RunOptions};
use berth_container::state::{CgroupDriver, StateRoot};
use berth_container::{Error, Result};

use crate::cli::{Cli, Command, CreateArgs, ExecArgs, ListFormat, UpdateArgs};

/// Runs the command; the value is the process's exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let driver = if cli.systemd_cgroup {
        CgroupDriver::Systemd
    } else {
        CgroupDriver::Cgroupfs
    };
    let root = StateRoot::new(&cli.root).with_cgroup_driver(driver);
    let Some(command) = &cli.command else {
        return Err(Error::Unsupported("no command given (try --help)".into()));
    };
    match command {
        Command::Create(args) => {
            let options = create_options(args, false)?;
            ops::create_container(&root, &args.id, &args.bundle, options, false)?;
            Ok(0)
        }
        Command::Start { id } => {
            for warning in ops::start(&root, id)? {
                log::warn!("{warning}");
            }
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => {
            let options = create_options(create, !*detach)?;
            let outcome = ops::run(
                &root,
                &create.id,
                &create.bundle,
                options,
                RunOptions {
                    detach: *detach,
                    keep: *keep,
                },
            )?;
            for warning in outcome.warnings {
                warn(cli, &warning);
            }
            if let Some(oom) = outcome.oom {
                // Why the process died: an error for the engines that show the log's last
                // error line, and in plain words on stderr even when that goes to --log.
                log::error!("{oom}");
                if cli.log.is_some() {
                    eprintln!("berth-runtime: {oom}");
                }
            }
            Ok(outcome.exit_code)
        }
        Command::State { id } => {
            let state = ops::state(&root, id)?;
            print_json_pretty(&state)?;
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            let signal = ops::parse_signal(signal)?;
            ops::kill(&root, id, signal, *all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            match ops::delete(&root, id, *force) {
                Ok(warnings) => {
                    for warning in warnings {
                        warn(cli, &warning);
                    }
                }
                // runc treats deleting a container that is already gone as success when
                // forced: engines call delete twice.
                Err(Error::NotFound(_)) if *force => {}
                Err(e) => return Err(e),
            }
            Ok(0)
        }
        Command::List { format, quiet } => {
            let containers = ops::list(&root)?;
            let mut out = std::io::stdout().lock();
            if *quiet {
                for c in &containers {
                    let _ = writeln!(out, "{}", c.id);
                }
            } else if *format == ListFormat::Json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&containers).expect("serializable")
                );
            } else {
                let _ = writeln!(out, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
                for c in &containers {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        c.id,
                        c.pid,
                        c.status,
                        c.bundle.display(),
                        c.created,
                        if c.owner.is_empty() { "root" } else { &c.owner }
                    );
                }
            }
            Ok(0)
        }
        Command::Spec { bundle, rootless } => {
            write_spec(bundle, *rootless)?;
            Ok(0)
        }
        Command::Features => {
            print_json_pretty(&crate::features::features())?;
            Ok(0)
        }
        Command::Exec(args) => exec(&root, args),
        Command::Pause { id } => ops::pause(&root, id).map(|()| 0),
        Command::Resume { id } => ops::resume(&root, id).map(|()| 0),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, id, *format, ps_args),
        Command::Events {
            stats,
            interval,
            id,
        } => events(&root, id, *stats, interval),
        Command::Update(args) => update(&root, args),
    }
}

/// Logs a warning; one about OOM kills also goes to stderr when the log is a file.
fn warn(cli: &Cli, warning: &Error) {
    log::warn!("{warning}");
    if cli.log.is_some() && matches!(warning, Error::OomKilled(_)) {
        eprintln!("berth-runtime: {warning}");
    }
}

/// Writes a line to stdout; a reader that went away (`| head`) is not an error.
fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn print_json_pretty<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::sys("serialize", e))?;
    print_line(&text);
    Ok(())
}

fn create_options(args: &CreateArgs, relay_terminal: bool) -> Result<CreateOptions> {
    let listen_fds = listen_fds();
    check_preserved_fds(listen_fds + args.preserve_fds)?;
    let console_socket = match &args.console_socket {
        Some(path) => Some(connect_console_socket(path)?),
        None => None,
    };
    Ok(CreateOptions {
        pid_file: args
            .pid_file
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        console_socket,
        preserve_fds: args.preserve_fds,
        listen_fds,
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        relay_terminal,
    })
}

fn exec(root: &StateRoot, args: &ExecArgs) -> Result<i32> {
    check_preserved_fds(args.preserve_fds)?;
    let process = match &args.process {
        Some(path) => ExecProcess::File(Box::new(berth_container::spec::load_process(path)?)),
        None => ExecProcess::Args(ops::ExecArgs {
            args: args.command.clone(),
            env: args.env.clone(),
            cwd: args.cwd.clone(),
            user: args.user.clone(),
            additional_gids: args.additional_gids.clone(),
            capabilities: args.cap.clone(),
            no_new_privileges: args.no_new_privs,
            tty: args.tty,
            console_size: None,
            apparmor: args.apparmor.clone(),
            process_label: args.process_label.clone(),
        }),
    };
    let console_socket = match &args.console_socket {
        Some(path) => Some(connect_console_socket(path)?),
        None => None,
    };
    ops::exec(
        root,
        &args.id,
        ops::ExecOptions {
            process,
            console_socket,
            preserve_fds: args.preserve_fds,
            detach: args.detach,
            pid_file: args
                .pid_file
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            ignore_paused: args.ignore_paused,
        },
    )
}

/// systemd socket activation: LISTEN_FDS fds from 3 on, when LISTEN_PID names us.
fn listen_fds() -> u32 {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Fds 3.. 3+n-1 must be open: otherwise one of our own descriptors could take such a
/// number and be handed to the container.
fn check_preserved_fds(count: u32) -> Result<()> {
    for fd in 3..3 + count as i32 {
        if !Path::new(&format!("/proc/self/fd/{fd}")).exists() {
            return Err(Error::invalid(
                "--preserve-fds",
                format!("fd {fd} is not open"),
            ));
        }
    }
    Ok(())
}

fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    use rustix::net::{
        AddressFamily, SocketAddrUnix, SocketFlags, SocketType, connect, socket_with,
    };
    let fail = |e: rustix::io::Errno| Error::path("connect console socket", path, e.into());
    let socket = socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(fail)?;
    let addr = SocketAddrUnix::new(path).map_err(fail)?;
    connect(&socket, &addr).map_err(fail)?;
    Ok(socket)
}

fn write_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join(berth_container::spec::CONFIG_FILE);
    if path.exists() {
        return Err(Error::Config {
            path,
            message: "already exists; remove it first".into(),
        });
    }
    let ids = rootless.then(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        )
    });
    let spec = crate::spec_template::default_spec(ids);
    let text = serde_json::to_string_pretty(&spec).map_err(|e| Error::sys("serialize", e))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::path("write", &path, e))
}

fn ps(root: &StateRoot, id: &str, format: ListFormat, ps_args: &[String]) -> Result<i32> {
    let pids = ops::pids(root, id)?;
    if format == ListFormat::Json {
        print_line(&serde_json::to_string(&pids).expect("serializable"));
        return Ok(0);
    }
    // Like runc: run ps(1) and keep the header and the lines of the container's pids.
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::sys("run ps", e))?;
    if !output.status.success() {
        return Err(Error::Unsupported(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Unsupported("ps output has no PID column".into()))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(0)
}

fn events(root: &StateRoot, id: &str, once: bool, interval: &str) -> Result<i32> {
    if once {
        let event = ops::stats(root, id)?;
        print_line(&serde_json::to_string(&event).expect("serializable"));
        return Ok(0);
    }
    let interval =
        crate::units::parse_duration(interval).map_err(|m| Error::invalid("--interval", m))?;
    ops::events(root, id, interval, |event| {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}",
            serde_json::to_string(event).expect("serializable")
        )
        .is_ok()
            && out.flush().is_ok()
    })?;
    Ok(0)
}

fn update(root: &StateRoot, args: &UpdateArgs) -> Result<i32> {
    let resources = update_resources(args)?;
    for warning in ops::update(root, &args.id, &resources)? {
        log::warn!("{warning}");
    }
    Ok(0)
}

/// The resources of an update: the --resources document, with the flags on top.
fn update_resources(args: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use crate::units::parse_size;
    let mut value = match &args.resources {
        Some(path) => {
            let (name, data) = berth_container::spec::read_input(path, "no such resources file")?;
            berth_container::spec::parse::<serde_json::Value>(&name, &data)?
        }
        None => serde_json::json!({}),
    };
    if !value.is_object() {
        return Err(Error::invalid(
            "--resources",
            "must be a JSON object (linux.resources)",
        ));
    }
    let size = |flag: &str, v: &Option<String>| -> Result<Option<i64>> {
        v.as_deref()
            .map(|s| parse_size(s).map_err(|m| Error::invalid(flag, m)))
            .transpose()
    };
    let mut set = |section: &str, key: &str, v: serde_json::Value| {
        value[section][key] = v;
    };
    if let Some(v) = size("--memory", &args.memory)? {
        set("memory", "limit", v.into());
    }
    if let Some(v) = size("--memory-swap", &args.memory_swap)? {
        set("memory", "swap", v.into());
    }
    if let Some(v) = size("--memory-reservation", &args.memory_reservation)? {
        set("memory", "reservation", v.into());
    }
    if let Some(v) = args.cpu_quota {
        set("cpu", "quota", v.into());
    }
    if let Some(v) = args.cpu_period {
        set("cpu", "period", v.into());
    }
    if let Some(v) = args.cpu_shares {
        set("cpu", "shares", v.into());
    }
    if let Some(v) = args.cpu_rt_period {
        set("cpu", "realtimePeriod", v.into());
    }
    if let Some(v) = args.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", v.into());
    }
    if let Some(v) = &args.cpuset_cpus {
        set("cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &args.cpuset_mems {
        set("cpu", "mems", v.clone().into());
    }
    if let Some(v) = args.pids_limit {
        set("pids", "limit", v.into());
    }
    if let Some(v) = args.blkio_weight {
        set("blockIO", "weight", v.into());
    }
    if args.kernel_memory.is_some() {
        log::warn!("--kernel-memory is ignored: kernel memory limits no longer exist");
    }
    let name = args
        .resources
        .clone()
        .unwrap_or_else(|| "update flags".into());
    berth_container::spec::parse(&name, value.to_string().as_bytes())
}
