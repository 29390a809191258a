//! The operations of the runtime's command line, on top of spec, spawn, state and hooks.

mod create;
mod exec;
mod lifecycle;
mod oom;
mod resources;
mod run;
mod signal;
mod supervise;

pub use create::{CreateOptions, Created, create_container, load_plan};
pub use exec::{ExecArgs, ExecOptions, ExecProcess, exec, process_from_args};
pub use lifecycle::{StateOutput, delete, kill, list, start, state, status_of, wait_exit};
pub use oom::{OOM_KILLS_ANNOTATION, OomKill, human_bytes};
pub use resources::{Event, events, pause, pids, resume, stats, update};
pub use run::{RunOptions, RunOutcome, run};
pub use signal::parse_signal;
pub use supervise::{TtyRelay, receive_master, supervise};
