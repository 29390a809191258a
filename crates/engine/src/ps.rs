//! `ps`: one row per container with docker's columns and `--format` keys, and the filters.

use serde_json::{Value, json};

use crate::Engine;
use crate::error::Result;
use crate::record::ContainerRecord;
use crate::status::{self, Live, State};
use crate::units::human_duration;

/// A `--filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Name(String),
    Status(String),
    /// `label=KEY` or `label=KEY=VALUE`.
    Label(String, Option<String>),
    Ancestor(String),
    Id(String),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| crate::Error::flag("--filter", text, "expected KEY=VALUE"))?;
        Ok(match key {
            "name" => Filter::Name(value.into()),
            "status" => Filter::Status(value.into()),
            "label" => match value.split_once('=') {
                Some((k, v)) => Filter::Label(k.into(), Some(v.into())),
                None => Filter::Label(value.into(), None),
            },
            "ancestor" => Filter::Ancestor(value.into()),
            "id" => Filter::Id(value.into()),
            _ => {
                return Err(crate::Error::flag(
                    "--filter",
                    text,
                    "known filters: name, status, label, ancestor, id",
                ));
            }
        })
    }

    fn matches(&self, record: &ContainerRecord, live: &Live) -> bool {
        match self {
            Filter::Name(n) => record.name.contains(n.as_str()),
            Filter::Status(s) => live.state.as_str() == s,
            Filter::Label(k, v) => record
                .config
                .labels
                .get(k)
                .is_some_and(|have| v.as_ref().is_none_or(|want| want == have)),
            Filter::Ancestor(a) => {
                record.config.image == *a
                    || record.image_id == *a
                    || record
                        .image_id
                        .strip_prefix("sha256:")
                        .is_some_and(|h| h.starts_with(a.as_str()))
                    || berth_image::Reference::parse(a)
                        .is_ok_and(|r| r.to_string() == record.config.image)
            }
            Filter::Id(i) => record.id.starts_with(i.as_str()),
        }
    }
}

/// docker's STATUS column.
pub fn status_text(record: &ContainerRecord, live: &Live) -> String {
    let since = |t: &Option<String>| human_duration(crate::time::age(t.as_deref().unwrap_or("")));
    match live.state {
        State::Created => "Created".into(),
        State::Running | State::Paused => {
            let mut text = format!("Up {}", since(&record.state.started_at));
            if live.state == State::Paused {
                text.push_str(" (Paused)");
            } else if let Some(h) = &record.state.health {
                let word = if h.status == "starting" {
                    "health: starting"
                } else {
                    h.status.as_str()
                };
                text.push_str(&format!(" ({word})"));
            }
            text
        }
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            record.state.exit_code.unwrap_or(0),
            since(&record.state.finished_at)
        ),
        State::Exited => {
            let mut text = format!(
                "Exited ({}) {} ago",
                record.state.exit_code.unwrap_or(0),
                since(&record.state.finished_at)
            );
            if record.state.oom_killed {
                text.push_str(" (out of memory)");
            }
            text
        }
    }
}

/// docker's COMMAND column: the command line, quoted, cut to 20 characters.
pub fn command_text(record: &ContainerRecord, no_trunc: bool) -> String {
    let full: String = std::iter::once(record.path.as_str())
        .chain(record.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    let text = if !no_trunc && full.chars().count() > 20 {
        format!("{}…", full.chars().take(19).collect::<String>())
    } else {
        full
    };
    format!("\"{text}\"")
}

/// docker's PORTS column: `0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp`.
pub fn ports_text(ports: &[berth_network::PublishedPort]) -> String {
    ports
        .iter()
        .map(|p| format!("{}:{}->{}", p.host_ip_text(), p.host_port, p.private()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `ps` item with docker's template keys.
pub fn item(engine: &Engine, record: &ContainerRecord, live: &Live, no_trunc: bool) -> Value {
    let ports = if live.state.is_active() {
        ports_text(&crate::network::ports(engine, &record.id))
    } else {
        String::new()
    };
    let labels = record
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let created = crate::time::parse(&record.created)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "ID": if no_trunc { record.id.clone() } else { record.short_id().to_string() },
        "Image": record.config.image,
        "ImageID": record.image_id,
        "Command": command_text(record, no_trunc),
        "CreatedAt": record.created,
        "Created": created,
        "RunningFor": format!("{} ago", human_duration(crate::time::age(&record.created))),
        "Ports": ports,
        "State": live.state.as_str(),
        "Status": status_text(record, live),
        "Names": record.name,
        "Labels": labels,
        "Mounts": record.config.mounts.iter().map(|m| m.destination.clone()).collect::<Vec<_>>().join(","),
        "Networks": record.config.network_name(),
        "Pid": live.pid,
        "ExitCode": record.state.exit_code.unwrap_or(0),
        "OOMKilled": record.state.oom_killed,
        "Size": "",
    })
}

/// The containers `ps` shows: running ones, or all with `all`; filtered; newest first;
/// at most `last` (`-n`).
pub fn list(
    engine: &Engine,
    all: bool,
    filters: &[Filter],
    last: Option<usize>,
) -> Result<Vec<(ContainerRecord, Live)>> {
    // docker and podman look an ancestor up in the image store: any name of the image
    // (`localhost/foo:1` for a container run as `foo:1`) or its id matches. The id is added
    // as one more ancestor (filters of one kind are alternatives).
    let mut filters = filters.to_vec();
    for f in filters.clone() {
        if let Filter::Ancestor(a) = f
            && let Ok((id, _)) = crate::image::resolve(&engine.root, &a)
        {
            filters.push(Filter::Ancestor(id));
        }
    }
    let filters = filters.as_slice();
    let mut out = Vec::new();
    for record in engine.records.list()? {
        let Ok((Some(record), live)) = status::live(engine, &record.id) else {
            continue;
        };
        if !all && !live.state.is_active() && live.state != State::Restarting && last.is_none() {
            continue;
        }
        // docker: filters of one kind are alternatives, different kinds must all hold.
        let kinds = filters.iter().map(std::mem::discriminant);
        let all_kinds_match = kinds.clone().all(|kind| {
            filters
                .iter()
                .filter(|f| std::mem::discriminant(*f) == kind)
                .any(|f| f.matches(&record, &live))
        });
        if all_kinds_match {
            out.push((record, live));
        }
    }
    if let Some(n) = last {
        out.truncate(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(state: State) -> Live {
        Live {
            state,
            pid: 0,
            monitor_alive: false,
        }
    }

    #[test]
    fn columns_read_like_dockers() {
        let mut r = ContainerRecord {
            id: "a".repeat(64),
            path: "sh".into(),
            args: vec!["-c".into(), "while true; do sleep 1; done".into()],
            ..Default::default()
        };
        assert_eq!(command_text(&r, false), "\"sh -c while true; d…\"");
        assert_eq!(
            command_text(&r, true),
            "\"sh -c while true; do sleep 1; done\""
        );
        assert_eq!(status_text(&r, &live(State::Created)), "Created");
        r.state.exit_code = Some(137);
        r.state.finished_at = Some(crate::time::format(
            std::time::SystemTime::now() - std::time::Duration::from_secs(5),
        ));
        assert_eq!(
            status_text(&r, &live(State::Exited)),
            "Exited (137) 5 seconds ago"
        );
        r.state.oom_killed = true;
        assert!(status_text(&r, &live(State::Exited)).ends_with("(out of memory)"));
        r.state.started_at = Some(crate::time::now());
        assert_eq!(
            status_text(&r, &live(State::Paused)),
            "Up Less than a second (Paused)"
        );
    }

    #[test]
    fn filters_parse() {
        assert_eq!(
            Filter::parse("name=web").unwrap(),
            Filter::Name("web".into())
        );
        assert_eq!(
            Filter::parse("label=a=b").unwrap(),
            Filter::Label("a".into(), Some("b".into()))
        );
        assert!(Filter::parse("bogus=1").is_err());
        assert!(Filter::parse("name").is_err());
    }
}
