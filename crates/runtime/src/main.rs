//! berth-runtime: an OCI runtime with runc's command line, so that podman, docker and
//! containerd can use it in place of runc. Thin: parsing and output here, everything else
//! in berth-container.
//!
//! The binary has its own C entry point instead of Rust's `fn main`: Rust's start-up reads
//! /proc/self/maps to place a stack guard, which costs more than a tenth of a millisecond on
//! every command (and a container's life takes several). What of that start-up a runtime
//! needs is done by [`berth_container::standard_process_prologue`].

// The unit-test build keeps libtest's own `main`.
#![cfg_attr(not(test), no_main)]

mod cli;
mod commands;
mod features;
mod logging;
mod quick_cli;
mod spec_template;
mod units;

use clap::Parser;

/// The process's entry point, called by the C runtime. Every path ends in
/// `std::process::exit`, which flushes stdout (returning from here would not).
// SAFETY: the one definition of the C symbol `main` in this binary.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    berth_container::standard_process_prologue();
    // SAFETY: argc and argv are what the C runtime passed to `main`.
    let args = unsafe { berth_container::command_line(argc, argv) };
    run(args)
}

// Unreachable in the unit-test build (libtest's `main` runs there); kept as its root so the
// command code is still linted as used.
#[cfg_attr(test, allow(dead_code))]
fn run(args: Vec<String>) -> ! {
    // `--version` alone, the probe every client makes, is answered before clap builds its
    // command tree: that is most of the command's time and of the pages it touches.
    if let [_, flag] = args.as_slice()
        && matches!(flag.as_str(), "--version" | "-version" | "-v")
    {
        print_version();
    }
    let args = cli::normalize_args(args);
    // The commands of every container's life skip clap's command tree; clap reads (and
    // answers) everything else.
    let cli = match quick_cli::parse(&args) {
        Some(cli) => cli,
        None => match cli::Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        },
    };
    if cli.version {
        print_version();
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

fn print_version() -> ! {
    println!(
        "berth-runtime version {}\nspec: {}",
        env!("CARGO_PKG_VERSION"),
        berth_container::state::OCI_VERSION
    );
    std::process::exit(0);
}
