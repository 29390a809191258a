//! `top CONTAINER [ps options]`: the host's `ps` (default `-ef`), keeping the rows of the
//! container's processes, as docker does. The processes are those of the container's
//! cgroup (the runtime core's `ops::pids`), which is every process in its pid namespace.

use std::process::Command;

use crate::Engine;
use crate::error::{Error, Result};
use crate::status::{self, State};

/// What `top` prints: ps's header fields and, per process of the container, its fields
/// (the last one, the command, keeps its spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Runs `ps <options>` and keeps the container's rows.
pub fn top(engine: &Engine, id: &str, ps_options: &[String]) -> Result<Top> {
    let (record, live) = status::live(engine, id)?;
    let record = record.ok_or_else(|| Error::NoSuchContainer(id.to_string()))?;
    if !matches!(live.state, State::Running | State::Paused) {
        return Err(Error::State {
            name: record.name,
            state: live.state.as_str().into(),
            message: "top needs a running container".into(),
        });
    }
    let pids = berth_container::ops::pids(&engine.runtime(), &record.id)?;
    let options: Vec<String> = if ps_options.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_options.to_vec()
    };
    let output = Command::new("ps")
        .args(&options)
        .output()
        .map_err(|e| Error::path("run", "ps", e))?;
    if !output.status.success() {
        return Err(Error::flag(
            "ps options",
            options.join(" "),
            format!(
                "ps failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    parse(&String::from_utf8_lossy(&output.stdout), &pids)
        .map_err(|m| Error::flag("ps options", options.join(" "), m))
}

/// Keeps the rows of `ps` output whose PID column is one of `pids`.
pub fn parse(text: &str, pids: &[i32]) -> std::result::Result<Top, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_column = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("ps's output has no PID column (docker needs one too)")?;
    let mut processes = Vec::new();
    for line in lines {
        let fields = split_fields(line, titles.len());
        let Some(pid) = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            processes.push(fields);
        }
    }
    Ok(Top { titles, processes })
}

/// Splits a ps line into `n` fields, the last one taking the rest of the line.
fn split_fields(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    while out.len() + 1 < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.trim_end().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_containers_rows() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                    root           1       0  0 06:00 ?        00:00:01 /sbin/init splash\n\
                    root         420       1  0 06:01 ?        00:00:00 sleep 100\n";
        let top = parse(text, &[420]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(
            top.processes,
            vec![vec![
                "root",
                "420",
                "1",
                "0",
                "06:01",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
        assert!(parse("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
