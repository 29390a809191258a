//! Mount options of config.json (`["nosuid","rbind","ro","mode=755"]`) turned into what the
//! kernel takes: mount(2) flags, propagation changes, mount_setattr(2) recursive attributes
//! and the filesystem's data string. Pure: no syscalls.

use libc::c_ulong;

/// mount_setattr(2) attribute bits (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const IDMAP: u64 = 0x0010_0000;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// The parsed options of one mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for the mount itself (MS_RDONLY, MS_NOSUID, ...), without MS_BIND/MS_REC.
    pub flags: c_ulong,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind`: the bind is recursive.
    pub recursive: bool,
    /// Propagation changes, applied in order after the mount (MS_SHARED|MS_REC, ...).
    pub propagation: Vec<c_ulong>,
    /// Attributes to set recursively with mount_setattr (`rro`, `rnosuid`, ...).
    pub recursive_set: u64,
    /// Attributes to clear recursively with mount_setattr (`rrw`, `rsuid`, ...).
    pub recursive_clear: u64,
    /// Options the filesystem itself parses (`mode=755,size=65536k`).
    pub data: Vec<String>,
    /// `tmpcopyup`: copy the directory's previous content into the new tmpfs.
    pub tmpcopyup: bool,
    /// `idmap`/`ridmap`: an id-mapped bind mount.
    pub idmap: bool,
}

impl MountOptions {
    /// The data string for mount(2).
    pub fn data_string(&self) -> String {
        self.data.join(",")
    }
}

/// Parses a mount's options the way runc does: known flag words become flags, the rest is
/// handed to the filesystem.
pub fn parse_mount_options<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut out = MountOptions::default();
    for option in options {
        let option = option.as_ref();
        if let Some((set, flag)) = flag_option(option) {
            if set {
                out.flags |= flag;
            } else {
                out.flags &= !flag;
            }
            continue;
        }
        if let Some(propagation) = propagation_option(option) {
            out.propagation.push(propagation);
            continue;
        }
        if let Some((set, bits)) = recursive_option(option) {
            if set {
                out.recursive_set |= bits;
                out.recursive_clear &= !bits;
            } else {
                out.recursive_clear |= bits;
                out.recursive_set &= !bits;
            }
            continue;
        }
        match option {
            "bind" => out.bind = true,
            "rbind" => {
                out.bind = true;
                out.recursive = true;
            }
            "tmpcopyup" => out.tmpcopyup = true,
            "idmap" => out.idmap = true,
            "ridmap" => {
                out.idmap = true;
                out.recursive = true;
            }
            // runc accepts these as no-ops.
            "defaults" | "" => {}
            other => out.data.push(other.to_string()),
        }
    }
    out
}

/// Flag words: `(true, FLAG)` sets the flag, `(false, FLAG)` clears it.
fn flag_option(option: &str) -> Option<(bool, c_ulong)> {
    use libc::*;
    Some(match option {
        "ro" => (true, MS_RDONLY),
        "rw" => (false, MS_RDONLY),
        "nosuid" => (true, MS_NOSUID),
        "suid" => (false, MS_NOSUID),
        "nodev" => (true, MS_NODEV),
        "dev" => (false, MS_NODEV),
        "noexec" => (true, MS_NOEXEC),
        "exec" => (false, MS_NOEXEC),
        "sync" => (true, MS_SYNCHRONOUS),
        "async" => (false, MS_SYNCHRONOUS),
        "dirsync" => (true, MS_DIRSYNC),
        "remount" => (true, MS_REMOUNT),
        "mand" => (true, MS_MANDLOCK),
        "nomand" => (false, MS_MANDLOCK),
        "noatime" => (true, MS_NOATIME),
        "atime" => (false, MS_NOATIME),
        "nodiratime" => (true, MS_NODIRATIME),
        "diratime" => (false, MS_NODIRATIME),
        "relatime" => (true, MS_RELATIME),
        "norelatime" => (false, MS_RELATIME),
        "strictatime" => (true, MS_STRICTATIME),
        "nostrictatime" => (false, MS_STRICTATIME),
        "lazytime" => (true, MS_LAZYTIME),
        "nolazytime" => (false, MS_LAZYTIME),
        "silent" => (true, MS_SILENT),
        "loud" => (false, MS_SILENT),
        "iversion" => (true, MS_I_VERSION),
        "noiversion" => (false, MS_I_VERSION),
        "nosymfollow" => (true, 256), // MS_NOSYMFOLLOW, not in libc for all targets
        _ => return None,
    })
}

fn propagation_option(option: &str) -> Option<c_ulong> {
    use libc::*;
    Some(match option {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => return None,
    })
}

/// Recursive attributes (runc's `rro` family): `(true, bits)` sets, `(false, bits)` clears.
fn recursive_option(option: &str) -> Option<(bool, u64)> {
    Some(match option {
        "rro" => (true, attr::RDONLY),
        "rrw" => (false, attr::RDONLY),
        "rnosuid" => (true, attr::NOSUID),
        "rsuid" => (false, attr::NOSUID),
        "rnodev" => (true, attr::NODEV),
        "rdev" => (false, attr::NODEV),
        "rnoexec" => (true, attr::NOEXEC),
        "rexec" => (false, attr::NOEXEC),
        "rnodiratime" => (true, attr::NODIRATIME),
        "rdiratime" => (false, attr::NODIRATIME),
        "rnoatime" => (true, attr::NOATIME),
        "rstrictatime" => (true, attr::STRICTATIME),
        "rrelatime" | "ratime" => (false, attr::ATIME_MASK),
        "rnosymfollow" => (true, attr::NOSYMFOLLOW),
        "rsymfollow" => (false, attr::NOSYMFOLLOW),
        _ => return None,
    })
}

/// The propagation of the container's `/` from `linux.rootfsPropagation`; `None` when it
/// is not set (the mounts then keep what they were given).
pub fn root_propagation(value: Option<&str>) -> Result<Option<c_ulong>, String> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => match propagation_option(v) {
            Some(p) => Ok(Some(p)),
            None => Err(format!(
                "unknown propagation {v:?} (expected shared, slave, private or unbindable, with an optional r prefix)"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_dev_mount() {
        let o = parse_mount_options(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data_string(), "mode=755,size=65536k");
        assert!(!o.bind);
    }

    #[test]
    fn rbind_ro_with_propagation() {
        let o = parse_mount_options(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert!(o.data.is_empty());
    }

    #[test]
    fn later_words_override_earlier_ones() {
        let o = parse_mount_options(&["ro", "rw", "nosuid", "suid", "noexec"]);
        assert_eq!(o.flags, libc::MS_NOEXEC);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse_mount_options(&["rbind", "rro", "rnosuid", "rrw"]);
        assert_eq!(o.recursive_set, attr::NOSUID);
        assert_eq!(o.recursive_clear, attr::RDONLY);
    }

    #[test]
    fn devpts_keeps_flag_like_data() {
        let o = parse_mount_options(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(o.data_string(), "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn root_propagation_is_optional() {
        assert_eq!(root_propagation(None).unwrap(), None);
        assert_eq!(
            root_propagation(Some("shared")).unwrap(),
            Some(libc::MS_SHARED)
        );
        assert!(root_propagation(Some("sideways")).is_err());
    }
}
