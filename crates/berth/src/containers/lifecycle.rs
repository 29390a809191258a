//! start, stop, restart, kill, rm, exec, attach, wait.

use std::time::Duration;

use berth_engine::client::{self, AttachOptions};
use berth_engine::{Engine, ops, status};

use crate::CmdResult;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach to the container's output (and wait for it)
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach stdin too
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<u64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct KillArgs {
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill running containers first
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove every container
    #[arg(short = 'a', long)]
    pub all: bool,
    /// With --force: seconds a running container gets to stop before it is killed (podman's
    /// option; without it, killed at once as docker does)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 'i', long)]
    pub interactive: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub container_and_command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// Runs `each` for every name; errors are printed as docker prints them and the command
/// ends with 125 when any failed (docker's behaviour for multi-container verbs).
fn for_each(names: &[String], mut each: impl FnMut(&str) -> berth_engine::Result<()>) -> CmdResult {
    let mut code = 0;
    for name in names {
        if let Err(e) = each(name) {
            eprintln!("Error: {e}");
            code = e.exit_code();
        }
    }
    Ok(code)
}

pub fn start(engine: &Engine, args: StartArgs) -> CmdResult {
    super::run::reexec_for_records(engine, &args.containers)?;
    if args.attach || args.interactive {
        let [name] = args.containers.as_slice() else {
            return Err("you cannot start and attach multiple containers at once".into());
        };
        let id = engine.records.resolve(name)?;
        let record = engine.records.load(&id)?;
        let size = if record.config.tty {
            client::terminal_size()
        } else {
            None
        };
        let Some((socket, lock)) = ops::start(engine, &id, size)? else {
            return Err(format!("container {} is already running: use attach", record.name).into());
        };
        let reader = client::wait_started(&socket);
        drop(lock);
        let options = AttachOptions {
            stdin: args.interactive && record.config.interactive,
            tty: record.config.tty,
            sig_proxy: true,
        };
        return super::run::finish_attach(client::attach(socket, reader?, options)?);
    }
    for_each(&args.containers, |name| {
        let id = engine.records.resolve(name)?;
        if let Some((socket, lock)) = ops::start(engine, &id, None)? {
            let started = client::wait_started(&socket);
            drop(lock);
            started?;
        }
        println!("{name}");
        Ok(())
    })
}

pub fn stop(engine: &Engine, args: StopArgs, restart: bool) -> CmdResult {
    let timeout = args.time.map(Duration::from_secs);
    if restart {
        super::run::reexec_for_records(engine, &args.containers)?;
    }
    for_each(&args.containers, |name| {
        let id = engine.records.resolve(name)?;
        ops::stop(engine, &id, timeout)?;
        if restart && let Some((socket, lock)) = ops::start(engine, &id, None)? {
            let started = client::wait_started(&socket);
            drop(lock);
            started?;
        }
        println!("{name}");
        Ok(())
    })
}

pub fn kill(engine: &Engine, args: KillArgs) -> CmdResult {
    let signal = berth_engine::signals::parse(&args.signal)?;
    for_each(&args.containers, |name| {
        let id = engine.records.resolve(name)?;
        ops::kill(engine, &id, signal)?;
        println!("{name}");
        Ok(())
    })
}

pub fn rm(engine: &Engine, args: RmArgs) -> CmdResult {
    let names: Vec<String> = if args.all {
        engine.records.list()?.into_iter().map(|r| r.id).collect()
    } else {
        if args.containers.is_empty() {
            return Err("rm needs at least one container (or --all)".into());
        }
        args.containers.clone()
    };
    for_each(&names, |name| {
        let id = engine.records.resolve(name)?;
        let record = engine.records.load(&id)?;
        let timeout = std::time::Duration::from_secs(args.time.unwrap_or(0));
        ops::remove_stopping_within(engine, &id, args.force, timeout)?;
        if args.volumes {
            berth_engine::volume::remove_anonymous(engine, &record);
        }
        println!("{name}");
        Ok(())
    })
}

pub fn exec(engine: &Engine, args: ExecArgs) -> CmdResult {
    let (name, command) = args
        .container_and_command
        .split_first()
        .expect("clap requires both");
    super::run::reexec_for_records(engine, std::slice::from_ref(name))?;
    let id = engine.records.resolve(name)?;
    // docker sizes the terminal of `exec -t` also without -i (whose stdin goes next).
    let console_size = if args.tty {
        client::terminal_size()
    } else {
        None
    };
    if !args.interactive {
        ops::detach_stdin()?;
    }
    let env = args
        .env
        .iter()
        .filter_map(|e| berth_engine::config::parse_env(e))
        .collect();
    let code = ops::exec(
        engine,
        &id,
        ops::ExecRequest {
            args: command.to_vec(),
            env,
            user: args.user,
            workdir: args.workdir,
            tty: args.tty,
            console_size,
            detach: args.detach,
            privileged: args.privileged,
        },
    )?;
    Ok(code.clamp(0, 255) as u8)
}

pub fn attach(engine: &Engine, args: AttachArgs) -> CmdResult {
    let id = engine.records.resolve(&args.container)?;
    let (record, live) = status::live(engine, &id)?;
    let record = record.ok_or_else(|| format!("no container {}", args.container))?;
    if !live.state.is_active() {
        return Err(format!(
            "you cannot attach to a stopped container {}: start it first",
            record.name
        )
        .into());
    }
    let socket = berth_engine::monitor::connect(engine, &id)?;
    let options = AttachOptions {
        stdin: !args.no_stdin && record.config.interactive,
        tty: record.config.tty,
        sig_proxy: args.sig_proxy,
    };
    super::run::finish_attach(client::attach(socket, Default::default(), options)?)
}

pub fn wait(engine: &Engine, args: WaitArgs) -> CmdResult {
    for_each(&args.containers, |name| {
        let id = engine.records.resolve(name)?;
        println!("{}", ops::wait(engine, &id)?);
        Ok(())
    })
}
