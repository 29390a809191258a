//! Log lines in runc's shapes: logrus text (`time="..." level=error msg="..."`) or JSON
//! (`{"level":"error","msg":"...","time":"..."}`), to the --log file or stderr. Engines show
//! the last error line of the log file to their users, so errors must be one line each.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use berth_container::state::rfc3339_now;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::cli::LogFormat;

struct Logger {
    format: LogFormat,
    out: Mutex<Box<dyn Write + Send>>,
    level: LevelFilter,
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// One log line, without the newline.
pub fn format_line(format: LogFormat, level: Level, message: &str, time: &str) -> String {
    match format {
        LogFormat::Json => serde_json::json!({
            "level": level_name(level),
            "msg": message,
            "time": time,
        })
        .to_string(),
        LogFormat::Text => format!(
            "time={:?} level={} msg={:?}",
            time,
            level_name(level),
            message
        ),
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(
            self.format,
            record.level(),
            &record.args().to_string(),
            &rfc3339_now(),
        );
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn flush(&self) {}
}

/// Installs the logger. A log file that cannot be opened falls back to stderr (and says so).
pub fn init(file: Option<&Path>, format: LogFormat, debug: bool) {
    let mut fallback_note = None;
    let out: Box<dyn Write + Send> = match file {
        Some(path) => match berth_container::state::open_for_append(path) {
            Ok(f) => Box::new(f) as Box<dyn Write + Send>,
            Err(e) => {
                fallback_note = Some(format!("cannot open log file {}: {e}", path.display()));
                Box::new(std::io::stderr())
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let level = if debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    };
    let logger = Logger {
        format,
        out: Mutex::new(out),
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
    if let Some(note) = fallback_note {
        log::warn!("{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_runc_shaped() {
        let line = format_line(
            LogFormat::Json,
            Level::Error,
            "container \"x\" does not exist",
            "T",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "T");
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(LogFormat::Text, Level::Warn, "a \"b\"\nc", "T");
        assert_eq!(line, r#"time="T" level=warning msg="a \"b\"\nc""#);
    }
}
