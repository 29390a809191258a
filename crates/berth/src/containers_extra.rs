//! The container commands beyond the core lifecycle: `limit` (a host process under limits),
//! stats, top, pause, unpause, update, rename, port, export, cp, diff, commit, container
//! prune, volumes, system (info, df, prune, events), info, version, events. Parsing and
//! printing only: every verb is a function of `berth_engine`.
//!
//! Each verb is a pub fn taking its clap Args; `berth container <verb>` reaches them through
//! [`ContainerExtraGroup`], which the `container` group of `containers.rs` flattens.

mod files;
mod limit;
mod manage;
mod resources;
mod stats;
mod system;

use clap::Subcommand;

use crate::{CmdResult, Global};

pub use files::{CommitArgs, CpArgs, DiffArgs, ExportArgs, commit, cp, diff, export};
pub use limit::{LimitArgs, limit};
pub use manage::{PauseArgs, RenameArgs, UpdateArgs, pause, rename, unpause, update};
pub use stats::{PortArgs, StatsArgs, TopArgs, port, stats, top};
pub use system::{
    EventsArgs, InfoArgs, PruneArgs, SystemCommand, VersionArgs, VolumeCommand, container_prune,
    events, info, system, version, volume,
};

/// The container verbs of this module, at the top level and under `berth container`.
#[derive(Debug, Subcommand)]
pub enum ContainerExtraVerb {
    /// Display a live stream of containers' resource usage
    Stats(StatsArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Pause every process in containers
    Pause(PauseArgs),
    /// Unpause every process in containers
    Unpause(PauseArgs),
    /// Change the resource limits of containers
    Update(UpdateArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// List a container's published ports
    Port(PortArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Copy files between a container and the host
    Cp(CpArgs),
    /// Show the changes to a container's filesystem
    Diff(DiffArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
}

/// What only `berth container` has: the verbs above and `prune`.
// Parsed once per process: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum ContainerExtraGroup {
    #[command(flatten)]
    Verb(ContainerExtraVerb),
    /// Remove every stopped container
    Prune(PruneArgs),
}

/// Runs a container verb of this module.
pub fn run_container_verb(engine: &berth_engine::Engine, verb: ContainerExtraVerb) -> CmdResult {
    match verb {
        ContainerExtraVerb::Stats(a) => stats(engine, a),
        ContainerExtraVerb::Top(a) => top(engine, a),
        ContainerExtraVerb::Pause(a) => pause(engine, a),
        ContainerExtraVerb::Unpause(a) => unpause(engine, a),
        ContainerExtraVerb::Update(a) => update(engine, a),
        ContainerExtraVerb::Rename(a) => rename(engine, a),
        ContainerExtraVerb::Port(a) => port(engine, a),
        ContainerExtraVerb::Export(a) => export(engine, a),
        ContainerExtraVerb::Cp(a) => cp(engine, a),
        ContainerExtraVerb::Diff(a) => diff(engine, a),
        ContainerExtraVerb::Commit(a) => commit(engine, a),
    }
}

/// `berth container <verb>` for this module's verbs.
pub fn run_container_group(engine: &berth_engine::Engine, group: ContainerExtraGroup) -> CmdResult {
    match group {
        ContainerExtraGroup::Verb(v) => run_container_verb(engine, v),
        ContainerExtraGroup::Prune(a) => container_prune(engine, a),
    }
}

#[derive(Debug, Subcommand)]
pub enum ExtraCommand {
    /// Put running host processes under limits (memory, CPUs, pids) without a container
    Limit(LimitArgs),
    #[command(flatten)]
    Container(ContainerExtraVerb),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage berth: info, disk usage, prune, events
    System {
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Show system-wide information
    Info(InfoArgs),
    /// Show the version of berth
    Version(VersionArgs),
    /// Show events (from the events log and the container records)
    Events(EventsArgs),
}

pub fn run(global: &Global, command: ExtraCommand) -> CmdResult {
    let engine = berth_engine::Engine::new(&global.root, &global.runroot);
    match command {
        ExtraCommand::Limit(a) => limit(&engine, a),
        ExtraCommand::Container(v) => run_container_verb(&engine, v),
        ExtraCommand::Volume { command } => volume(&engine, command),
        ExtraCommand::System { command } => system(global, &engine, command),
        ExtraCommand::Info(a) => info(&engine, a),
        ExtraCommand::Version(a) => version(a),
        ExtraCommand::Events(a) => events(&engine, a),
    }
}
