//! `run` and `create`.

use berth_engine::client::{self, AttachOptions, Ended};
use berth_engine::{Engine, ops};

use super::args::{CreateArgs, RunArgs};
use crate::CmdResult;

/// A container whose capabilities would let it reach our binary needs us to run from a
/// sealed copy first (before anything is recorded: the command runs again from the start).
pub(super) fn reexec_if_needed(config: &berth_engine::config::ContainerConfig) -> CmdResult {
    if ops::needs_sealed_runtime(config) && !ops::is_sealed() {
        let e = ops::reexec_sealed();
        return Err(format!("re-execute from a sealed copy of berth: {e}").into());
    }
    Ok(0)
}

/// The same for verbs on existing containers (start, restart, exec): the runtime checks the
/// container's config again, so these need the sealed copy too.
pub(super) fn reexec_for_records(engine: &Engine, names: &[String]) -> CmdResult {
    for name in names {
        if let Ok(id) = engine.records.resolve(name)
            && let Ok(record) = engine.records.load(&id)
        {
            reexec_if_needed(&record.config)?;
        }
    }
    Ok(0)
}

pub fn create(engine: &Engine, args: CreateArgs) -> CmdResult {
    let (name, config) = args.to_config()?;
    let record = ops::create(engine, name.as_deref(), config)?;
    println!("{}", record.id);
    Ok(0)
}

pub fn run(engine: &Engine, args: RunArgs) -> CmdResult {
    let (name, config) = args.create.to_config()?;
    reexec_if_needed(&config)?;
    let options = AttachOptions {
        stdin: config.interactive,
        tty: config.tty,
        sig_proxy: args.sig_proxy,
    };
    let record = ops::create(engine, name.as_deref(), config)?;
    let size = if options.tty {
        client::terminal_size()
    } else {
        None
    };
    let Some((socket, lock)) = ops::start(engine, &record.id, size)? else {
        return Err(format!("container {} was started by someone else", record.name).into());
    };
    let reader = client::wait_started(&socket);
    drop(lock);
    let reader = reader?;
    if args.detach {
        println!("{}", record.id);
        return Ok(0);
    }
    finish_attach(client::attach(socket, reader, options)?)
}

/// The end of a foreground run or `start -a`: the container's exit code, and the OOM kill
/// said in plain words.
pub fn finish_attach(ended: Ended) -> CmdResult {
    match ended {
        Ended::Exited(info) => {
            if let Some(message) = info.oom_message() {
                eprintln!("{message}");
            }
            Ok(info.exit_code.clamp(0, 255) as u8)
        }
        Ended::Detached => Ok(0),
    }
}
