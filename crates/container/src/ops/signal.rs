//! Signal names and numbers as `kill` takes them: `9`, `KILL`, `SIGKILL`, `sigkill`,
//! `SIGRTMIN+3`.

use crate::error::{Error, Result};

const NAMES: [(&str, i32); 31] = [
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// Parses a signal; the error names what was given.
pub fn parse_signal(text: &str) -> Result<i32> {
    let invalid = || Error::InvalidSignal(text.to_string());
    let valid = |n: i32| (1..=libc::SIGRTMAX()).contains(&n);
    if let Ok(n) = text.parse::<i32>() {
        return if valid(n) { Ok(n) } else { Err(invalid()) };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let realtime = |base: i32, rest: &str| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else if let Some(off) = rest.strip_prefix('+') {
            base + off.parse::<i32>().ok()?
        } else if let Some(off) = rest.strip_prefix('-') {
            base - off.parse::<i32>().ok()?
        } else {
            return None;
        };
        valid(n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return realtime(libc::SIGRTMIN(), rest).ok_or_else(invalid);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return realtime(libc::SIGRTMAX(), rest).ok_or_else(invalid);
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigusr1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["0", "-1", "999", "SIGFOO", "", "RTMIN+99", "TERM2"] {
            assert!(parse_signal(bad).is_err(), "{bad:?}");
        }
    }
}
