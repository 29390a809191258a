//! The operations of the runtime's command line, on top of spec, spawn, state and hooks.

mod create;
mod lifecycle;
mod run;
mod signal;

pub use create::{CreateOptions, Created, create_container, load_plan};
pub use lifecycle::{StateOutput, delete, kill, list, start, state, status_of, wait_exit};
pub use run::{RunOptions, RunOutcome, run, wait_forwarding_signals};
pub use signal::parse_signal;
