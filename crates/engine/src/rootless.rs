//! What an unprivileged user's `berth` needs to know before anything runs: where its storage
//! and run state live (podman's places), and which host ids its containers may use (its own,
//! and the ranges /etc/subuid and /etc/subgid give it, which newuidmap/newgidmap enforce).
//! Pure logic over the files' text and the environment, so it is tested without a user.

use std::path::{Path, PathBuf};

/// One line of /etc/subuid or /etc/subgid that names the user: `count` ids from `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubIdRange {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `text` (subuid/subgid format, `NAME_OR_ID:START:COUNT` per line) that belong
/// to the user called `name` with id `id`. Malformed lines are skipped, as shadow's tools do.
pub fn subid_ranges(text: &str, name: &str, id: u32) -> Vec<SubIdRange> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|line| {
            let mut f = line.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?, f.next()?);
            if f.next().is_some() || (who != name && who != id_text) {
                return None;
            }
            let range = SubIdRange {
                start: start.parse().ok()?,
                count: count.parse().ok()?,
            };
            (range.count > 0 && range.start.checked_add(range.count - 1).is_some()).then_some(range)
        })
        .collect()
}

/// One line of a uid_map or gid_map: `size` ids from `container` inside are `host` outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// podman's default mapping for a user: root inside is the user, 1.. inside are the user's
/// subordinate ids in order. Without ranges only root inside exists.
pub fn default_mapping(own: u32, ranges: &[SubIdRange]) -> Vec<IdMap> {
    let mut out = vec![IdMap {
        container: 0,
        host: own,
        size: 1,
    }];
    let mut next = 1u32;
    for r in ranges {
        out.push(IdMap {
            container: next,
            host: r.start,
            size: r.count,
        });
        match next.checked_add(r.count) {
            Some(n) => next = n,
            None => break,
        }
    }
    out
}

/// podman's `--userns keep-id` map of a container nested in the user's namespace (whose 0
/// is the user, and which holds `size` ids): the user's own id `own` inside is 0 of the
/// user's namespace, the ids below it are shifted up by one, the ids above it are
/// themselves. So the user's files are the container process's, and the image's ids keep
/// their order.
pub fn keep_id_mapping(own: u32, size: u32) -> Vec<IdMap> {
    // the ids below `own` take the namespace's 1.., as many as it has
    let below = own.min(size.saturating_sub(1));
    let mut out = Vec::with_capacity(3);
    if below > 0 {
        out.push(IdMap {
            container: 0,
            host: 1,
            size: below,
        });
    }
    out.push(IdMap {
        container: own,
        host: 0,
        size: 1,
    });
    if let Some(first) = own.checked_add(1).filter(|f| *f < size) {
        out.push(IdMap {
            container: first,
            host: first,
            size: size - first,
        });
    }
    out
}

/// The size of a user namespace from its uid_map or gid_map text, and the id outside of its
/// 0 (rootless: the user's own id). None: 0 is not mapped.
pub fn map_owner_and_size(map: &str) -> Option<(u32, u32)> {
    let mut size = 0u32;
    let mut owner = None;
    for line in map.lines() {
        let f: Vec<u32> = line
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let [inside, outside, count] = f[..] else {
            continue;
        };
        if inside == 0 {
            owner = Some(outside);
        }
        size = size.max(inside.saturating_add(count));
    }
    owner.map(|o| (o, size))
}

/// Why a mapping asked for cannot be given.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error(
        "host ids {first}-{last} are not the user's (its own id and its ranges in {file} are allowed)"
    )]
    NotTheUsers {
        first: u32,
        last: u32,
        file: &'static str,
    },
    #[error("container ids {first}-{last} are mapped twice")]
    Overlap { first: u32, last: u32 },
    #[error("a mapping of size 0")]
    Empty,
}

/// Check a mapping the user asked for (`--uidmap`, a spec's uidMappings) against what the
/// user owns: every host id must be its own or in its ranges (newuidmap refuses the rest too,
/// but this names the problem), and no container id may be mapped twice.
pub fn check_mapping(
    maps: &[IdMap],
    own: u32,
    ranges: &[SubIdRange],
    file: &'static str,
) -> Result<(), MappingError> {
    let owned = |first: u32, last: u32| {
        (first == own && last == own)
            || ranges.iter().any(|r| {
                first >= r.start && u64::from(last) < u64::from(r.start) + u64::from(r.count)
            })
    };
    for (i, m) in maps.iter().enumerate() {
        if m.size == 0 {
            return Err(MappingError::Empty);
        }
        let last = u64::from(m.host) + u64::from(m.size) - 1;
        let last = u32::try_from(last).unwrap_or(u32::MAX);
        if !owned(m.host, last) {
            return Err(MappingError::NotTheUsers {
                first: m.host,
                last,
                file,
            });
        }
        let c_last = u64::from(m.container) + u64::from(m.size) - 1;
        for other in &maps[..i] {
            let o_last = u64::from(other.container) + u64::from(other.size) - 1;
            if u64::from(m.container) <= o_last && u64::from(other.container) <= c_last {
                return Err(MappingError::Overlap {
                    first: m.container.max(other.container),
                    last: u32::try_from(c_last.min(o_last)).unwrap_or(u32::MAX),
                });
            }
        }
    }
    Ok(())
}

/// Where a user's storage and run state go when no `--root`/`--runroot` is given, as podman
/// places them: `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`), and
/// `$XDG_RUNTIME_DIR/berth` (or `/tmp/berth-UID`, which [`check_private_dir`] must accept).
pub fn default_dirs(
    uid: u32,
    home: Option<&Path>,
    xdg_data_home: Option<&Path>,
    xdg_runtime_dir: Option<&Path>,
) -> Option<(PathBuf, PathBuf)> {
    let data = match xdg_data_home.filter(|p| p.is_absolute()) {
        Some(d) => d.to_path_buf(),
        None => home?.join(".local/share"),
    };
    let run = match xdg_runtime_dir.filter(|p| p.is_absolute()) {
        Some(r) => r.join("berth"),
        None => PathBuf::from(format!("/tmp/berth-{uid}")),
    };
    Some((data.join("berth"), run))
}

/// A directory the user's run state may live in: a real directory (not a symlink), owned by
/// the user, writable by nobody else. In a shared /tmp anyone may have made it first.
pub fn check_private_dir(path: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", path.display()));
    }
    if meta.uid() != uid {
        return Err(format!(
            "{} belongs to uid {}, not to you (uid {uid})",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by others (mode {:o})",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBUID: &str = "alice:100000:65536\n1001:300000:1000\nbob:200000:65536\n\
                          alice:500000:10\nbroken line\nalice:x:5\nalice:1:0\n";

    #[test]
    fn ranges_by_name_or_id() {
        let r = subid_ranges(SUBUID, "alice", 1000);
        assert_eq!(
            r,
            [
                SubIdRange {
                    start: 100000,
                    count: 65536
                },
                SubIdRange {
                    start: 500000,
                    count: 10
                }
            ]
        );
        let by_id = subid_ranges(SUBUID, "carol", 1001);
        assert_eq!(
            by_id,
            [SubIdRange {
                start: 300000,
                count: 1000
            }]
        );
        assert!(subid_ranges(SUBUID, "dave", 1002).is_empty());
        // A range that would run past u32::MAX is no range.
        assert!(subid_ranges("eve:4294967295:2\n", "eve", 1).is_empty());
    }

    #[test]
    fn default_mapping_is_podmans() {
        let r = subid_ranges(SUBUID, "alice", 1000);
        assert_eq!(
            default_mapping(1000, &r),
            [
                IdMap {
                    container: 0,
                    host: 1000,
                    size: 1
                },
                IdMap {
                    container: 1,
                    host: 100000,
                    size: 65536
                },
                IdMap {
                    container: 65537,
                    host: 500000,
                    size: 10
                },
            ]
        );
        assert_eq!(default_mapping(1000, &[]).len(), 1);
    }

    #[test]
    fn keep_id_is_podmans() {
        // podman 4.3 for uid 1001 with 65536 subordinate ids (its container's uid_map)
        let m = |container, host, size| IdMap {
            container,
            host,
            size,
        };
        assert_eq!(
            keep_id_mapping(1001, 65537),
            [m(0, 1, 1001), m(1001, 0, 1), m(1002, 1002, 64535)]
        );
        // an id above the namespace's range: the namespace's ids all below it
        assert_eq!(
            keep_id_mapping(70000, 65537),
            [m(0, 1, 65536), m(70000, 0, 1)]
        );
        assert_eq!(keep_id_mapping(0, 10), [m(0, 0, 1), m(1, 1, 9)]);
        assert_eq!(
            map_owner_and_size(
                "         0       1001          1\n         1     100000      65536\n"
            ),
            Some((1001, 65537))
        );
        assert_eq!(map_owner_and_size("1 5 3\n"), None);
    }

    #[test]
    fn mappings_outside_the_users_ids_are_refused() {
        let r = subid_ranges(SUBUID, "alice", 1000);
        let ok = default_mapping(1000, &r);
        assert_eq!(check_mapping(&ok, 1000, &r, "/etc/subuid"), Ok(()));
        // Host root, someone else's range, a range that runs past the user's.
        for (host, size) in [(0, 1), (200000, 10), (165530, 10)] {
            let m = [IdMap {
                container: 0,
                host,
                size,
            }];
            let e = check_mapping(&m, 1000, &r, "/etc/subuid").unwrap_err();
            assert!(matches!(e, MappingError::NotTheUsers { first, .. } if first == host));
            assert!(e.to_string().contains("/etc/subuid"), "{e}");
        }
        let twice = [
            IdMap {
                container: 0,
                host: 1000,
                size: 1,
            },
            IdMap {
                container: 0,
                host: 100000,
                size: 5,
            },
        ];
        assert_eq!(
            check_mapping(&twice, 1000, &r, "/etc/subuid"),
            Err(MappingError::Overlap { first: 0, last: 0 })
        );
        let empty = [IdMap {
            container: 0,
            host: 1000,
            size: 0,
        }];
        assert_eq!(
            check_mapping(&empty, 1000, &r, "/etc/subuid"),
            Err(MappingError::Empty)
        );
    }

    #[test]
    fn dirs_follow_xdg_then_home() {
        let home = Path::new("/home/alice");
        assert_eq!(
            default_dirs(1000, Some(home), None, Some(Path::new("/run/user/1000"))),
            Some((
                PathBuf::from("/home/alice/.local/share/berth"),
                PathBuf::from("/run/user/1000/berth")
            ))
        );
        assert_eq!(
            default_dirs(1000, Some(home), Some(Path::new("/data")), None),
            Some((
                PathBuf::from("/data/berth"),
                PathBuf::from("/tmp/berth-1000")
            ))
        );
        // Relative XDG values are ignored, as the spec says.
        assert_eq!(
            default_dirs(
                1000,
                Some(home),
                Some(Path::new("rel")),
                Some(Path::new("rel"))
            ),
            Some((
                PathBuf::from("/home/alice/.local/share/berth"),
                PathBuf::from("/tmp/berth-1000")
            ))
        );
        assert_eq!(default_dirs(1000, None, None, None), None);
    }

    #[test]
    fn a_private_dir_is_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let me = rustix::process::getuid().as_raw();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let meta = std::fs::symlink_metadata(d.path()).unwrap();
        assert_eq!(check_private_dir(d.path(), &meta, me), Ok(()));
        assert!(
            check_private_dir(d.path(), &meta, me + 1)
                .unwrap_err()
                .contains("belongs")
        );
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let meta = std::fs::symlink_metadata(d.path()).unwrap();
        assert!(
            check_private_dir(d.path(), &meta, me)
                .unwrap_err()
                .contains("writable")
        );
        let link = d.path().join("link");
        std::os::unix::fs::symlink("/tmp", &link).unwrap();
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(
            check_private_dir(&link, &meta, me)
                .unwrap_err()
                .contains("not a directory")
        );
    }
}
