//! The command lines engines send for every container (`create`, `run`, `start`, `state`,
//! `kill`, `delete`, `pause`, `resume`, with the global options), parsed without clap.
//!
//! clap builds the tree of every command and option for each parse: ~35% of a create's
//! instructions before the clone, and pages of code that a start would otherwise not touch.
//! This parser accepts only what it fully understands and yields exactly the [`Cli`] clap
//! would (a test compares the two over generated command lines); anything else (help, a
//! mistake, a repeated option, another command, `--`) gets `None`, and clap parses the line
//! and writes its usual messages.

use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs, LogFormat, default_root};

/// The parse of a normalized command line (see [`crate::cli::normalize_args`]), or `None`
/// where clap must decide.
pub fn parse(args: &[String]) -> Option<Cli> {
    let mut globals = Globals::default();
    let mut rest = args.get(1..)?.iter();
    // Before the command: the global options, and the top-level-only --rootless.
    let name = loop {
        let arg = rest.next()?;
        if !arg.starts_with('-') {
            break arg.as_str();
        }
        let (option, inline) = split(arg)?;
        if option == "--rootless" {
            set(&mut globals.rootless, value(inline, &mut rest)?)?;
        } else if !globals.take(option, inline, &mut rest)? {
            return None;
        }
    };
    let mut words: Vec<&str> = Vec::new();
    let mut create = CreateFlags::default();
    let mut flags = Flags::default();
    let takes_create = matches!(name, "create" | "run");
    // After the command: its options and positionals, and the global options again (clap's
    // `global` ones may come anywhere).
    while let Some(arg) = rest.next() {
        if !arg.starts_with('-') {
            words.push(arg);
            continue;
        }
        let (option, inline) = split(arg)?;
        if globals.take(option, inline, &mut rest)? {
            continue;
        }
        if takes_create && create.take(option, inline, &mut rest)? {
            continue;
        }
        let flag = match (name, option) {
            ("run", "-d" | "--detach") => &mut flags.detach,
            ("run", "--keep") => &mut flags.keep,
            ("kill", "-a" | "--all") => &mut flags.all,
            ("delete", "-f" | "--force") => &mut flags.force,
            _ => return None,
        };
        if inline.is_some() || *flag {
            return None;
        }
        *flag = true;
    }
    let command = match (name, words.as_slice()) {
        ("create", [id]) => Command::Create(create.finish(id)),
        ("run", [id]) => Command::Run {
            create: create.finish(id),
            detach: flags.detach,
            keep: flags.keep,
        },
        ("start", [id]) => Command::Start { id: id.to_string() },
        ("state", [id]) => Command::State { id: id.to_string() },
        ("pause", [id]) => Command::Pause { id: id.to_string() },
        ("resume", [id]) => Command::Resume { id: id.to_string() },
        ("delete", [id]) => Command::Delete {
            force: flags.force,
            id: id.to_string(),
        },
        ("kill", [id, signal @ ..]) if signal.len() <= 1 => Command::Kill {
            all: flags.all,
            id: id.to_string(),
            signal: signal.first().unwrap_or(&"SIGTERM").to_string(),
        },
        _ => return None,
    };
    Some(Cli {
        root: globals.root.unwrap_or_else(default_root),
        log: globals.log,
        log_format: globals.log_format.unwrap_or(LogFormat::Text),
        debug: globals.debug,
        systemd_cgroup: globals.systemd_cgroup,
        criu: globals.criu,
        rootless: globals.rootless,
        version: false,
        command: Some(command),
    })
}

/// `--name=value` -> (`--name`, Some(value)); `--name`, `-x` -> (name, None). A short option
/// with something attached (`-bDIR`, `-df`) is clap's to read.
fn split(arg: &str) -> Option<(&str, Option<&str>)> {
    if let Some(long) = arg.strip_prefix("--") {
        if long.is_empty() {
            return None; // `--`: everything after it is positional
        }
        return Some(match long.split_once('=') {
            Some((name, value)) => (&arg[..2 + name.len()], Some(value)),
            None => (arg, None),
        });
    }
    (arg.len() == 2).then_some((arg, None))
}

/// The value of an option: attached (`--root=/r`) or the next argument. One that clap would
/// not take as a value (empty, or looking like an option) is clap's to judge.
fn value<'a>(
    inline: Option<&'a str>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Option<&'a str> {
    let v = match inline {
        Some(v) => v,
        None => rest.next()?.as_str(),
    };
    (!v.is_empty() && !v.starts_with('-')).then_some(v)
}

/// Sets an option once (clap refuses a second one).
fn set<T>(slot: &mut Option<T>, value: impl Into<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value.into());
    Some(())
}

fn set_flag(flag: &mut bool, inline: Option<&str>) -> Option<()> {
    if *flag || inline.is_some() {
        return None;
    }
    *flag = true;
    Some(())
}

#[derive(Default)]
struct Globals {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Option<LogFormat>,
    debug: bool,
    systemd_cgroup: bool,
    criu: Option<String>,
    rootless: Option<String>,
}

impl Globals {
    /// Takes a global option: `Some(true)` when `option` is one, `None` on a bad use.
    fn take<'a>(
        &mut self,
        option: &str,
        inline: Option<&'a str>,
        rest: &mut impl Iterator<Item = &'a String>,
    ) -> Option<bool> {
        match option {
            "--root" => set(&mut self.root, value(inline, rest)?)?,
            "--log" => set(&mut self.log, value(inline, rest)?)?,
            "--criu" => set(&mut self.criu, value(inline, rest)?)?,
            "--log-format" => {
                let format = match value(inline, rest)? {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return None,
                };
                set(&mut self.log_format, format)?
            }
            "--debug" => set_flag(&mut self.debug, inline)?,
            "--systemd-cgroup" => set_flag(&mut self.systemd_cgroup, inline)?,
            _ => return Some(false),
        }
        Some(true)
    }
}

#[derive(Default)]
struct CreateFlags {
    bundle: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: Option<u32>,
}

impl CreateFlags {
    fn take<'a>(
        &mut self,
        option: &str,
        inline: Option<&'a str>,
        rest: &mut impl Iterator<Item = &'a String>,
    ) -> Option<bool> {
        match option {
            "-b" | "--bundle" => set(&mut self.bundle, value(inline, rest)?)?,
            "--console-socket" => set(&mut self.console_socket, value(inline, rest)?)?,
            "--pid-file" => set(&mut self.pid_file, value(inline, rest)?)?,
            "--preserve-fds" => set(
                &mut self.preserve_fds,
                value(inline, rest)?.parse::<u32>().ok()?,
            )?,
            "--no-pivot" => set_flag(&mut self.no_pivot, inline)?,
            "--no-new-keyring" => set_flag(&mut self.no_new_keyring, inline)?,
            _ => return Some(false),
        }
        Some(true)
    }

    fn finish(self, id: &str) -> CreateArgs {
        CreateArgs {
            bundle: self.bundle.unwrap_or_else(|| PathBuf::from(".")),
            console_socket: self.console_socket,
            pid_file: self.pid_file,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds.unwrap_or(0),
            id: id.to_string(),
        }
    }
}

#[derive(Default)]
struct Flags {
    detach: bool,
    keep: bool,
    all: bool,
    force: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::normalize_args;

    fn line(args: &[&str]) -> Vec<String> {
        normalize_args(
            std::iter::once("berth-runtime")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    /// What clap makes of a line, as text (Cli has no PartialEq; Debug shows every field).
    fn clap(args: &[String]) -> Option<String> {
        Cli::try_parse_from(args).ok().map(|c| format!("{c:?}"))
    }

    /// Every line that real clients send for a container's life (shared/oci-cli-contract.md)
    /// takes the quick path, and gives what clap gives.
    #[test]
    fn the_clients_lines_take_the_quick_path() {
        let containerd = [
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
        ];
        let lines: Vec<Vec<&str>> = vec![
            vec![
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/b/init.pid",
                "c1",
            ],
            vec![
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "F",
                "--console-socket",
                "S",
                "c1",
            ],
            vec!["start", "c1"],
            vec!["kill", "c1", "15"],
            vec!["kill", "c1", "9"],
            vec!["kill", "--all", "c1", "9"],
            vec!["delete", "c1"],
            vec!["delete", "--force", "c1"],
            vec!["pause", "c1"],
            vec!["resume", "c1"],
            vec!["state", "c1"],
            vec!["run", "--bundle", "/b", "-d", "--keep", "c1"],
            vec!["run", "-b", "/b", "c1"],
        ];
        for prefix in [
            &[][..],
            &containerd[..],
            &["--log-format=json", "--log", "/u/oci-log"][..],
            &["--root=/r", "--systemd-cgroup", "--debug"][..],
            &["-root", "/r", "-log-format", "text"][..],
        ] {
            for l in &lines {
                let args = line(&[prefix, l.as_slice()].concat());
                let quick = parse(&args).unwrap_or_else(|| panic!("not quick: {args:?}"));
                assert_eq!(Some(format!("{quick:?}")), clap(&args), "{args:?}");
            }
        }
    }

    /// Over generated command lines, good and bad, the quick parser either leaves the line
    /// to clap or agrees with it exactly.
    #[test]
    fn the_quick_parse_is_always_claps() {
        let tokens = [
            "create",
            "run",
            "start",
            "state",
            "kill",
            "delete",
            "pause",
            "resume",
            "exec",
            "help",
            "c1",
            "c2",
            "9",
            "SIGKILL",
            "/b",
            "",
            "-",
            "--",
            "-x",
            "--root",
            "--root=/r",
            "--root=",
            "--log",
            "/l",
            "--log-format",
            "json",
            "text",
            "xml",
            "--debug",
            "--debug=true",
            "--systemd-cgroup",
            "--criu",
            "--rootless",
            "true",
            "-v",
            "--version",
            "-h",
            "--help",
            "--bundle",
            "-b",
            "-b/b",
            "--pid-file",
            "--console-socket",
            "--preserve-fds",
            "2",
            "-1",
            "--no-pivot",
            "--no-new-keyring",
            "-d",
            "--detach",
            "--keep",
            "-a",
            "--all",
            "-f",
            "--force",
            "-df",
        ];
        // A small deterministic generator (xorshift): the lines are the same on every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut quick_taken = 0;
        for _ in 0..30_000 {
            // Mostly: some tokens, a command (the first eight tokens), some more tokens.
            let before = next() % 3;
            let after = next() % 6;
            let mut words: Vec<&str> = Vec::new();
            for i in 0..before + 1 + after {
                let pool = if i == before { 8 } else { tokens.len() as u64 };
                words.push(tokens[(next() % pool) as usize]);
            }
            let args = line(&words);
            if let Some(quick) = parse(&args) {
                quick_taken += 1;
                assert_eq!(Some(format!("{quick:?}")), clap(&args), "{args:?}");
            }
        }
        // The generator reaches the quick path often enough for the check to mean something.
        assert!(
            quick_taken > 500,
            "only {quick_taken} lines took the quick path"
        );
    }

    #[test]
    fn help_mistakes_and_other_commands_are_left_to_clap() {
        for l in [
            &["create", "--help"][..],
            &["create"],
            &["create", "a", "b"],
            &["delete", "--force", "--force", "c1"],
            &["--root", "/a", "state", "--root", "/b", "c1"],
            &["kill", "c1", "9", "extra"],
            &["create", "--preserve-fds", "x", "c1"],
            &["--log-format", "xml", "state", "c1"],
            &["delete", "--", "c1"],
            &["exec", "c1", "true"],
            &["list"],
            &["help"],
        ] {
            assert!(parse(&line(l)).is_none(), "{l:?}");
        }
    }
}
