//! berth-runtime: an OCI runtime with runc's command line, so that podman, docker and
//! containerd can use it in place of runc. Thin: parsing and output here, everything else
//! in berth-container.

mod cli;
mod commands;
mod features;
mod logging;
mod spec_template;
mod units;

use clap::Parser;

fn main() {
    let args = cli::normalize_args(std::env::args());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if cli.version {
        println!(
            "berth-runtime version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            berth_container::state::OCI_VERSION
        );
        return;
    }
    logging::init(cli.log.as_deref(), cli.log_format, cli.debug);
    let code = match commands::dispatch(&cli) {
        Ok(code) => code,
        // Nothing was created yet: run the same command again from a sealed copy of this
        // binary (only returns if that fails).
        Err(berth_container::Error::NeedsSealedRuntime) => {
            let e = berth_container::sealed::reexec();
            log::error!("re-execute from a sealed copy of the runtime: {e}");
            1
        }
        Err(e) => {
            let message = e.to_string();
            log::error!("{message}");
            // Callers that read our stderr (and people) see the error too when it went to a
            // log file.
            if cli.log.is_some() {
                eprintln!("berth-runtime: {message}");
            }
            1
        }
    };
    std::process::exit(code);
}
