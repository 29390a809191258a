//! `events`: what happened to containers, as docker's event objects.
//!
//! No daemon sees every event, so they come from two places: the events log,
//! `<runroot>/events.log` (one JSON object a line, appended with O_APPEND by whoever acts:
//! [`append`]), and the container records, whose times say when each container was
//! created, last started and last died (and whether of an OOM kill). An event the log has
//! is not made up again from a record.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::error::{Error, Result};
use crate::record::ContainerRecord;

/// docker's event object (`docker events --format json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// "container", "image", "volume", "process" (a `berth limit` process).
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// Unix seconds and nanoseconds.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

impl Event {
    /// An event now.
    pub fn now(kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        Event::at(SystemTime::now(), kind, action, id, attributes)
    }

    pub fn at(
        t: SystemTime,
        kind: &str,
        action: &str,
        id: &str,
        attributes: &[(&str, &str)],
    ) -> Event {
        let nanos = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i64;
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// A container event with docker's attributes (name, image).
    pub fn container(record: &ContainerRecord, action: &str, extra: &[(&str, &str)]) -> Event {
        let mut attributes = vec![
            ("name", record.name.as_str()),
            ("image", record.config.image.as_str()),
        ];
        attributes.extend_from_slice(extra);
        Event::now("container", action, &record.id, &attributes)
    }

    pub fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.time_nano.max(0) as u64)
    }
}

fn log_path(engine: &Engine) -> PathBuf {
    engine.runroot.join("events.log")
}

/// Appends an event to the log. One write of one line with O_APPEND: concurrent writers
/// never interleave within a line. Failing to log never fails the action: it is logged.
pub fn append(engine: &Engine, event: &Event) {
    let path = log_path(engine);
    let mut line = serde_json::to_vec(event).expect("an event serializes");
    line.push(b'\n');
    let write = || -> std::io::Result<()> {
        fs::create_dir_all(&engine.runroot)?;
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(&line)
    };
    if let Err(e) = write() {
        log::warn!("events: append to {}: {e}", path.display());
    }
}

/// The logged events, oldest first.
pub fn logged(engine: &Engine) -> Result<Vec<Event>> {
    let path = log_path(engine);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::path("read", &path, e)),
    };
    // A torn last line (a writer killed mid-write) is skipped.
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The events a record tells of: create, and the last start and die (with oom first).
pub fn from_record(record: &ContainerRecord) -> Vec<Event> {
    let mut out = Vec::new();
    let attrs = |extra: Vec<(&'static str, String)>| {
        let mut a = vec![
            ("name", record.name.clone()),
            ("image", record.config.image.clone()),
        ];
        a.extend(extra);
        a
    };
    let mut push = |time: &str, action: &str, extra: Vec<(&'static str, String)>| {
        if let Some(t) = crate::time::parse(time) {
            let a = attrs(extra);
            let refs: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
            out.push(Event::at(t, "container", action, &record.id, &refs));
        }
    };
    push(&record.created, "create", vec![]);
    if let Some(s) = &record.state.started_at {
        push(s, "start", vec![]);
    }
    if let Some(f) = &record.state.finished_at {
        if record.state.oom_killed {
            push(f, "oom", vec![]);
        }
        let code = record.state.exit_code.unwrap_or(0).to_string();
        push(f, "die", vec![("exitCode", code)]);
    }
    out
}

/// A `--filter KEY=VALUE` of `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `container=NAME|ID` (a prefix of the id works).
    Container(String),
    /// `event=ACTION` (also `action=`).
    Event(String),
    Type(String),
    Image(String),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter> {
        let (k, v) = text
            .split_once('=')
            .ok_or_else(|| Error::flag("--filter", text, "expected KEY=VALUE"))?;
        Ok(match k {
            "container" => Filter::Container(v.into()),
            "event" | "action" => Filter::Event(v.into()),
            "type" => Filter::Type(v.into()),
            "image" => Filter::Image(v.into()),
            _ => {
                return Err(Error::flag(
                    "--filter",
                    text,
                    "known filters: container, event, type, image",
                ));
            }
        })
    }

    fn matches(&self, e: &Event) -> bool {
        match self {
            Filter::Container(c) => {
                e.kind == "container"
                    && (e.actor.id.starts_with(c.as_str())
                        || e.actor.attributes.get("name") == Some(c))
            }
            Filter::Event(a) => e.action == *a,
            Filter::Type(t) => e.kind == *t,
            Filter::Image(i) => e.actor.attributes.get("image") == Some(i),
        }
    }
}

/// Filters of one kind are alternatives, different kinds must all match (docker's rule).
pub fn matches(filters: &[Filter], e: &Event) -> bool {
    let kinds = [
        |f: &Filter| matches!(f, Filter::Container(_)),
        |f: &Filter| matches!(f, Filter::Event(_)),
        |f: &Filter| matches!(f, Filter::Type(_)),
        |f: &Filter| matches!(f, Filter::Image(_)),
    ];
    kinds.iter().all(|is_kind| {
        let mut of_kind = filters.iter().filter(|f| is_kind(f)).peekable();
        of_kind.peek().is_none() || of_kind.any(|f| f.matches(e))
    })
}

/// Every event known now between `since` and `until`, oldest first.
pub fn collect(
    engine: &Engine,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    filters: &[Filter],
) -> Result<Vec<Event>> {
    let mut events = logged(engine)?;
    let logged_times: HashSet<(String, String, i64)> = events
        .iter()
        .map(|e| (e.actor.id.clone(), e.action.clone(), e.time))
        .collect();
    for record in engine.records.list()? {
        for e in from_record(&record) {
            // The log is the better witness: a record's event is added only when the log
            // has none like it within a second.
            let near = (e.time - 1..=e.time + 1)
                .any(|t| logged_times.contains(&(e.actor.id.clone(), e.action.clone(), t)));
            if !near {
                events.push(e);
            }
        }
    }
    events.retain(|e| {
        let t = e.system_time();
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u) && matches(filters, e)
    });
    events.sort_by_key(|e| e.time_nano);
    Ok(events)
}

/// What `events` prints in its default form:
/// `2026-12-02T06:00:00.000000000Z container start ID (image=..., name=...)`.
pub fn line(e: &Event) -> String {
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{} {} {} {} ({})",
        crate::time::format(e.system_time()),
        e.kind,
        e.action,
        e.actor.id,
        attrs.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_tell_create_start_oom_and_die() {
        let mut r = ContainerRecord {
            id: "a".repeat(64),
            name: "redis".into(),
            created: "2026-12-02T06:00:00Z".into(),
            ..Default::default()
        };
        r.state.started_at = Some("2026-12-02T06:00:01Z".into());
        r.state.finished_at = Some("2026-12-02T06:00:02Z".into());
        r.state.oom_killed = true;
        r.state.exit_code = Some(137);
        let actions: Vec<String> = from_record(&r).into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["create", "start", "oom", "die"]);
        let die = from_record(&r).pop().unwrap();
        assert_eq!(die.actor.attributes["exitCode"], "137");
        assert!(line(&die).contains("container die"));
        let filters = vec![
            Filter::parse("event=die").unwrap(),
            Filter::parse("event=oom").unwrap(),
            Filter::parse("container=redis").unwrap(),
        ];
        assert_eq!(
            from_record(&r)
                .iter()
                .filter(|e| matches(&filters, e))
                .count(),
            2
        );
    }
}
