//! `pause`, `unpause`, `update`, `rename`.

use berth_engine::Engine;
use berth_engine::config::RestartPolicy;

use super::resources::ResourceFlags;
use crate::CmdResult;

/// Pause every process in containers
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// One verb on several containers: the name as given on success, `Error: ...` for each
/// failure and exit 125 if any failed (docker's way).
fn each(
    names: &[String],
    mut verb: impl FnMut(&str) -> Result<(), berth_engine::Error>,
) -> CmdResult {
    let mut code = 0;
    for name in names {
        match verb(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 125;
            }
        }
    }
    Ok(code)
}

pub fn pause(engine: &Engine, args: PauseArgs) -> CmdResult {
    each(&args.containers, |n| {
        let id = engine.records.resolve(n)?;
        berth_engine::pause::pause(engine, &id)
    })
}

pub fn unpause(engine: &Engine, args: PauseArgs) -> CmdResult {
    each(&args.containers, |n| {
        let id = engine.records.resolve(n)?;
        berth_engine::pause::unpause(engine, &id)
    })
}

/// Change the resource limits (and restart policy) of containers
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Restart policy (no, on-failure[:N], always, unless-stopped)
    #[arg(long)]
    pub restart: Option<String>,
}

pub fn update(engine: &Engine, args: UpdateArgs) -> CmdResult {
    let update = berth_engine::update::Update {
        resources: args.resources.to_resources()?,
        restart: args
            .restart
            .as_deref()
            .map(RestartPolicy::parse)
            .transpose()?,
    };
    each(&args.containers, |n| {
        let id = engine.records.resolve(n)?;
        for w in berth_engine::update::update(engine, &id, &update)? {
            eprintln!("warning: {w}");
        }
        Ok(())
    })
}

/// Rename a container
#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub fn rename(engine: &Engine, args: RenameArgs) -> CmdResult {
    berth_engine::rename::rename(engine, &args.container, &args.new_name)?;
    Ok(0)
}
