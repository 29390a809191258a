//! Stop signals and timeouts as docker picks them: the flag, else the image's StopSignal,
//! else SIGTERM; 10 seconds before SIGKILL.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::record::ContainerRecord;

/// A signal given by name or number (`TERM`, `SIGTERM`, `15`).
pub fn parse(text: &str) -> Result<i32> {
    berth_container::ops::parse_signal(text)
        .map_err(|_| Error::flag("signal", text, "not a signal name or number"))
}

/// The signal `stop` sends first.
pub fn stop_signal_number(record: &ContainerRecord) -> i32 {
    record
        .config
        .stop_signal
        .as_deref()
        .or(record.image.stop_signal.as_deref())
        .and_then(|s| parse(s).ok())
        .unwrap_or(libc::SIGTERM)
}

/// How long `stop` waits for the stop signal to work.
pub fn stop_timeout(record: &ContainerRecord) -> Duration {
    Duration::from_secs(record.config.stop_timeout.unwrap_or(10))
}
