//! Applying a device policy through the v1 devices controller.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::emulator::DeviceState;
use crate::error::{Error, Result};
use crate::fsutil;

/// Bring `dir`'s devices cgroup to `target`: one read of devices.list, then
/// the minimal transition, each rule one write(2) on an fd opened once.
pub(crate) fn apply(dir: &Path, target: &DeviceState, rules: &[super::Rule]) -> Result<()> {
    let list_path = dir.join("devices.list");
    let text = fsutil::read(&list_path)?;
    let current = DeviceState::parse_v1_list(&text).map_err(|reason| Error::Parse {
        path: list_path,
        reason,
    })?;
    let mut allow: Option<(File, PathBuf)> = None;
    let mut deny: Option<(File, PathBuf)> = None;
    let mut steps = current.transition_to(target);
    // The kernel lists exceptions in the order they were added: add them in the order the
    // config lists them (stable sort of the additions only; the reset and the drops, which
    // have the default's polarity, come first and keep their order).
    let rank = |r: &super::Rule| {
        rules
            .iter()
            .position(|c| {
                c.allow == r.allow && (c.kind, c.major, c.minor) == (r.kind, r.major, r.minor)
            })
            .unwrap_or(usize::MAX)
    };
    let first_add = steps
        .iter()
        .position(|r| r.kind != super::DevKind::All && r.allow != target.default_allow)
        .unwrap_or(steps.len());
    steps[first_add..].sort_by_key(|r| rank(r));
    for rule in steps {
        let slot = if rule.allow { &mut allow } else { &mut deny };
        if slot.is_none() {
            *slot = Some(fsutil::open_for_writes(
                dir,
                if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                },
            )?);
        }
        let Some((f, path)) = slot.as_mut() else {
            continue;
        };
        let line = rule.v1_line();
        f.write(line.as_bytes()).map_err(|source| Error::Write {
            controller: "devices",
            path: path.clone(),
            value: line.clone(),
            source,
        })?;
    }
    Ok(())
}
