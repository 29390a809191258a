//! `linux.cgroupsPath` handling, following runc's cgroupfs driver:
//!
//! * **Absolute** (`/docker/<id>`, `/libpod_parent/libpod-<id>`, `/<ns>/<id>`):
//!   relative to the root of each hierarchy. When a hierarchy is mounted
//!   with a non-`/` root (mountinfo's root field; e.g. inside a container
//!   without cgroupns), a path under that root is mapped into the mount, and
//!   a path outside it (which this process could not reach anyway) is placed
//!   under the visible mount, as runc does.
//! * **Relative** (`<id>`, `foo/bar`): runc puts these under the runtime
//!   process's *own* cgroup (from /proc/self/cgroup) in each v1 hierarchy,
//!   and under the *parent* of its own cgroup on the unified hierarchy (the
//!   own cgroup has processes, so by v2's no-internal-processes rule it
//!   cannot delegate controllers to a child). We do exactly the same, for
//!   the unified part of a hybrid host too.
//! * **Absent**: [`CgroupsPath::default_for`] gives `/berth/<id>`. runc's
//!   default is the relative `<id>`, which nests containers inside whatever
//!   cgroup the caller runs in; a fixed absolute parent keeps all of Berth's
//!   containers in one visible place and does not depend on the caller.
//!
//! Unlike runc, which lexically cleans `..` away, a path containing a `..`
//! component is rejected: silently rewriting it would put the container
//! somewhere the caller did not name.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A validated, normalized `linux.cgroupsPath`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CgroupsPath {
    /// Components joined with '/', with a leading '/' when absolute.
    normalized: String,
    absolute: bool,
}

/// Parent directory under which [`CgroupsPath::default_for`] puts containers.
pub const DEFAULT_PARENT: &str = "/berth";

impl CgroupsPath {
    /// Validate and normalize (drop empty and `.` components).
    pub fn parse(s: &str) -> Result<CgroupsPath> {
        let bad = |reason: &str| Error::InvalidPath {
            path: s.to_string(),
            reason: reason.to_string(),
        };
        if s.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        let absolute = s.starts_with('/');
        let mut comps = Vec::new();
        for c in s.split('/') {
            match c {
                "" | "." => continue,
                ".." => return Err(bad("'..' components are not allowed")),
                c if c.len() > 255 => return Err(bad("a component is longer than 255 bytes")),
                c => comps.push(c),
            }
        }
        if comps.is_empty() {
            return Err(bad(
                "names the hierarchy root (or the caller's own cgroup); a container needs a cgroup of its own",
            ));
        }
        let mut normalized = String::with_capacity(s.len() + 1);
        for (i, c) in comps.iter().enumerate() {
            if absolute || i > 0 {
                normalized.push('/');
            }
            normalized.push_str(c);
        }
        Ok(CgroupsPath {
            normalized,
            absolute,
        })
    }

    /// `/berth/<id>`, for specs without `linux.cgroupsPath`.
    pub fn default_for(container_id: &str) -> Result<CgroupsPath> {
        if container_id.contains('/') || container_id.is_empty() {
            return Err(Error::InvalidPath {
                path: container_id.to_string(),
                reason: "a container id used as a cgroup name must be non-empty and contain no '/'"
                    .into(),
            });
        }
        CgroupsPath::parse(&format!("{DEFAULT_PARENT}/{container_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    pub fn is_absolute(&self) -> bool {
        self.absolute
    }
}

impl std::fmt::Display for CgroupsPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.normalized)
    }
}

/// Where a container's cgroup is in one hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// Path in the hierarchy as /proc/<pid>/cgroup shows it, e.g. `/berth/x`.
    pub cgroup_path: String,
    /// Host directory.
    pub dir: PathBuf,
}

/// Join two cgroup paths (`base` absolute, `rel` relative).
fn join(base: &str, rel: &str) -> String {
    if base == "/" || base.is_empty() {
        format!("/{rel}")
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// Parent of an absolute cgroup path; `/` stays `/`.
pub fn parent(p: &str) -> &str {
    match p.trim_end_matches('/').rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

/// `p` relative to `root` if `p` is `root` or below it.
fn strip_root<'a>(p: &'a str, root: &str) -> Option<&'a str> {
    if root == "/" || root.is_empty() {
        return Some(p.trim_start_matches('/'));
    }
    let root = root.trim_end_matches('/');
    let rest = p.strip_prefix(root)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// Resolve `path` in a hierarchy mounted at `mountpoint` with mountinfo root
/// `mount_root`. `own` is the caller's own cgroup in this hierarchy (only
/// consulted for relative paths; for the unified hierarchy pass its parent).
pub(crate) fn resolve(
    mountpoint: &Path,
    mount_root: &str,
    own: Option<&str>,
    path: &CgroupsPath,
) -> Result<Resolved> {
    let cgroup_path = if path.is_absolute() {
        path.as_str().to_string()
    } else {
        let own = own.ok_or_else(|| Error::InvalidPath {
            path: path.to_string(),
            reason: format!(
                "relative path, but this process's cgroup for {} is unknown",
                mountpoint.display()
            ),
        })?;
        join(own, path.as_str())
    };
    match strip_root(&cgroup_path, mount_root) {
        Some(rel) => Ok(Resolved {
            dir: if rel.is_empty() {
                mountpoint.to_path_buf()
            } else {
                mountpoint.join(rel)
            },
            cgroup_path,
        }),
        None if path.is_absolute() => {
            // Outside the visible part of the hierarchy: nest under the
            // mount like runc (the mountpoint is the root we can see).
            let rel = cgroup_path.trim_start_matches('/');
            Ok(Resolved {
                dir: mountpoint.join(rel),
                cgroup_path: join(mount_root, rel),
            })
        }
        None => Err(Error::InvalidPath {
            path: path.to_string(),
            reason: format!(
                "this process's cgroup {cgroup_path} is outside the part of the hierarchy mounted at {} ({mount_root})",
                mountpoint.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> CgroupsPath {
        CgroupsPath::parse(s).unwrap()
    }

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(p("/docker//abc/").as_str(), "/docker/abc");
        assert_eq!(p("./a/./b").as_str(), "a/b");
        assert!(p("/a").is_absolute());
        assert!(!p("a").is_absolute());
        for bad in ["", "/", "//", ".", "/a/../b", "..", "a/..", "a\0b"] {
            assert!(
                CgroupsPath::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let long = format!("/{}", "x".repeat(256));
        assert!(CgroupsPath::parse(&long).is_err());
        // Names that merely contain dots are fine.
        assert_eq!(p("/a..b/.c").as_str(), "/a..b/.c");
    }

    #[test]
    fn default_path() {
        assert_eq!(
            CgroupsPath::default_for("abc").unwrap().as_str(),
            "/berth/abc"
        );
        assert!(CgroupsPath::default_for("a/b").is_err());
        assert!(CgroupsPath::default_for("").is_err());
    }

    #[test]
    fn client_shapes_resolve_under_the_mount() {
        let mnt = Path::new("/sys/fs/cgroup/memory");
        for (path, dir) in [
            (
                "/libpod_parent/libpod-123",
                "/sys/fs/cgroup/memory/libpod_parent/libpod-123",
            ),
            ("/docker/123", "/sys/fs/cgroup/memory/docker/123"),
            ("/default/123", "/sys/fs/cgroup/memory/default/123"),
        ] {
            let r = resolve(mnt, "/", Some("/process_api/h"), &p(path)).unwrap();
            assert_eq!(r.dir, PathBuf::from(dir));
            assert_eq!(r.cgroup_path, path);
        }
    }

    #[test]
    fn relative_is_under_own_cgroup() {
        let mnt = Path::new("/sys/fs/cgroup/memory");
        let r = resolve(mnt, "/", Some("/process_api/h"), &p("ctr")).unwrap();
        assert_eq!(r.cgroup_path, "/process_api/h/ctr");
        assert_eq!(
            r.dir,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/h/ctr")
        );
        let r = resolve(mnt, "/", Some("/"), &p("ctr")).unwrap();
        assert_eq!(r.cgroup_path, "/ctr");
        assert!(resolve(mnt, "/", None, &p("ctr")).is_err());
        assert_eq!(parent("/user.slice/session-1.scope"), "/user.slice");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/"), "/");
    }

    #[test]
    fn non_root_mount_root() {
        // Inside a container that sees /docker/abc mounted at the mountpoint.
        let mnt = Path::new("/sys/fs/cgroup/memory");
        let r = resolve(mnt, "/docker/abc", None, &p("/docker/abc/sub")).unwrap();
        assert_eq!(r.dir, PathBuf::from("/sys/fs/cgroup/memory/sub"));
        assert_eq!(r.cgroup_path, "/docker/abc/sub");
        // Outside the visible root: nested under the mount (runc behaviour).
        let r = resolve(mnt, "/docker/abc", None, &p("/berth/x")).unwrap();
        assert_eq!(r.dir, PathBuf::from("/sys/fs/cgroup/memory/berth/x"));
        assert_eq!(r.cgroup_path, "/docker/abc/berth/x");
        // Relative, own cgroup inside the root.
        let r = resolve(mnt, "/docker/abc", Some("/docker/abc/init"), &p("c")).unwrap();
        assert_eq!(r.dir, PathBuf::from("/sys/fs/cgroup/memory/init/c"));
        // "/docker/abcd" is not under "/docker/abc".
        assert!(resolve(mnt, "/docker/abc", Some("/docker/abcd"), &p("c")).is_err());
    }
}
