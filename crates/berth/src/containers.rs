//! The container commands: run, create, start, stop, restart, kill, rm, ps, logs, exec,
//! attach, wait, inspect, and the `container` group with the same verbs (plus `ls`).
//! Parsing and printing only: every verb is a function of `berth_engine`.
//!
//! Notes to the other owners:
//! - `berth inspect NAME` shows an image (STORE's `crate::images::inspect`) when no
//!   container has any of the names, or with `--type image`.
//! - `system df` stays STORE's; the rest of `system` (info, prune) and `volume` come with
//!   ENGINE2's verbs.

mod args;
mod lifecycle;
mod run;
mod show;

use clap::Subcommand;

use crate::{CmdResult, Global};

pub use args::{CreateArgs, RunArgs};

/// The verbs, at the top level and under `berth container`.
#[derive(Debug, Subcommand)]
pub enum ContainerVerb {
    /// Create and start a container (in the foreground unless -d)
    #[command(disable_help_flag = true)]
    Run(Box<RunArgs>),
    /// Create a container without starting it
    #[command(disable_help_flag = true)]
    Create(Box<CreateArgs>),
    /// Start created or stopped containers
    Start(lifecycle::StartArgs),
    /// Stop running containers (the stop signal, then SIGKILL after the timeout)
    Stop(lifecycle::StopArgs),
    /// Stop and start containers again
    Restart(lifecycle::StopArgs),
    /// Send a signal to running containers
    Kill(lifecycle::KillArgs),
    /// Remove containers
    Rm(lifecycle::RmArgs),
    /// List containers
    Ps(show::PsArgs),
    /// Print a container's log
    Logs(show::LogsArgs),
    /// Run a process in a running container
    Exec(lifecycle::ExecArgs),
    /// Attach to a running container's output (and input)
    Attach(lifecycle::AttachArgs),
    /// Wait for containers to exit and print their exit codes
    Wait(lifecycle::WaitArgs),
    /// Show containers in detail (docker's JSON)
    Inspect(show::InspectArgs),
}

/// `berth container ...`: the verbs, and `ls`/`list` for `ps`.
#[derive(Debug, Subcommand)]
pub enum ContainerGroup {
    #[command(flatten)]
    Verb(ContainerVerb),
    /// List containers
    #[command(visible_alias = "list")]
    Ls(show::PsArgs),
    #[command(flatten)]
    Extra(crate::containers_extra::ContainerExtraGroup),
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    #[command(flatten)]
    Verb(ContainerVerb),
    /// Manage containers
    Container {
        #[command(subcommand)]
        command: ContainerGroup,
    },
}

pub fn run(global: &Global, command: ContainerCommand) -> CmdResult {
    let verb = match command {
        ContainerCommand::Verb(v) => v,
        ContainerCommand::Container { command } => match command {
            ContainerGroup::Verb(v) => v,
            ContainerGroup::Ls(a) => ContainerVerb::Ps(a),
            ContainerGroup::Extra(group) => {
                let engine = berth_engine::Engine::new(&global.root, &global.runroot);
                return crate::containers_extra::run_container_group(&engine, group);
            }
        },
    };
    let engine = berth_engine::Engine::new(&global.root, &global.runroot);
    let result = match verb {
        ContainerVerb::Run(a) => run::run(&engine, *a),
        ContainerVerb::Create(a) => run::create(&engine, *a),
        ContainerVerb::Start(a) => lifecycle::start(&engine, a),
        ContainerVerb::Stop(a) => lifecycle::stop(&engine, a, false),
        ContainerVerb::Restart(a) => lifecycle::stop(&engine, a, true),
        ContainerVerb::Kill(a) => lifecycle::kill(&engine, a),
        ContainerVerb::Rm(a) => lifecycle::rm(&engine, a),
        ContainerVerb::Ps(a) => show::ps(&engine, a),
        ContainerVerb::Logs(a) => show::logs(&engine, a),
        ContainerVerb::Exec(a) => lifecycle::exec(&engine, a),
        ContainerVerb::Attach(a) => lifecycle::attach(&engine, a),
        ContainerVerb::Wait(a) => lifecycle::wait(&engine, a),
        ContainerVerb::Inspect(a) => show::inspect(global, &engine, a),
    };
    // A container that could not start ends with docker's code for why (125, 126, 127),
    // not always 125.
    match result {
        Err(e) => match e.downcast::<berth_engine::Error>() {
            Ok(engine_error) => {
                eprintln!("Error: {engine_error}");
                Ok(engine_error.exit_code())
            }
            Err(other) => Err(other),
        },
        ok => ok,
    }
}
