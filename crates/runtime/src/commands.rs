//! Each command: turn arguments into a call of the runtime core and print its result.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;

use berth_container::ops::{self, CreateOptions, ExecProcess, RunOptions};
use berth_container::state::StateRoot;
use berth_container::{Error, Result};

use crate::cli::{Cli, Command, CreateArgs, ExecArgs, ListFormat};

/// Runs the command; the value is the process's exit code.
pub fn dispatch(cli: &Cli) -> Result<i32> {
    let root = StateRoot::new(&cli.root);
    let Some(command) = &cli.command else {
        return Err(Error::Unsupported("no command given (try --help)".into()));
    };
    match command {
        Command::Create(args) => {
            refuse_systemd(cli)?;
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
            refuse_systemd(cli)?;
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
                log::warn!("{warning}");
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
                        log::warn!("{warning}");
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
    }
}

fn refuse_systemd(cli: &Cli) -> Result<()> {
    if cli.systemd_cgroup {
        return Err(Error::Unsupported(
            "--systemd-cgroup: the systemd cgroup driver is not supported; Berth manages cgroupfs directly (drop the flag)".into(),
        ));
    }
    Ok(())
}

fn print_json_pretty<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::sys("serialize", e))?;
    println!("{text}");
    Ok(())
}

fn create_options(args: &CreateArgs, relay_terminal: bool) -> Result<CreateOptions> {
    check_preserved_fds(args.preserve_fds)?;
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
        no_pivot: args.no_pivot,
        no_new_keyring: args.no_new_keyring,
        relay_terminal,
    })
}

fn exec(root: &StateRoot, args: &ExecArgs) -> Result<i32> {
    check_preserved_fds(args.preserve_fds)?;
    let process = match &args.process {
        Some(path) => ExecProcess::File(berth_container::spec::load_process(path)?),
        None => ExecProcess::Args(ops::ExecArgs {
            args: args.command.clone(),
            env: args.env.clone(),
            cwd: args.cwd.clone(),
            user: args.user.clone(),
            additional_gids: args.additional_gids.clone(),
            capabilities: args.cap.clone(),
            no_new_privileges: args.no_new_privs,
            tty: args.tty,
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
