//! The container's root filesystem: propagation, the bind of the rootfs onto itself, every
//! mount of the plan, /dev, masked and read-only paths, then pivot_root.
//!
//! Everything up to the pivot happens while `/` is still the host's (in our own mount
//! namespace), so mount(2)'s path arguments can be `/proc/self/fd/N` of the host's procfs;
//! every target is an fd resolved inside the rootfs.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use libc::c_ulong;
use rustix::fs::{Mode, OFlags};

use super::CgroupView;
use super::InitError;
use super::fs::{fd_path, is_dir, mkdir_all_in_root, open_in_root, touch_in_root};
use super::mount_fd;
use crate::plan::{ContainerPlan, FsOption, KernelMount, MountStep};
use crate::spec::mount_options::attr;
use crate::spec::{MountPlan, NamespaceKind, Plan};
use crate::sys;

type Result<T> = std::result::Result<T, InitError>;

/// Sets the propagation of `/` and binds the rootfs onto itself so it is a mount point
/// (pivot_root needs one). Returns an fd of the rootfs mount.
pub fn prepare_root(kernel: &ContainerPlan) -> Result<OwnedFd> {
    let plan = &kernel.spec;
    if !plan.namespaces.has(NamespaceKind::Mount) {
        // Without a mount namespace of its own the container's mounts land in the
        // runtime's (they are removed again by delete); the host's propagation stays as it
        // is, and the root is entered with chroot.
        if plan.root_readonly {
            bind_root_for_readonly(kernel)?;
        }
        return open_rootfs(kernel);
    }
    // The configured propagation is given to the new root after the pivot. Until then
    // nothing may propagate back to the host: everything becomes a slave, or private when
    // that was asked for (unbindable now would forbid the bind of the rootfs itself).
    let initial = if plan.root_propagation.unwrap_or(0) & libc::MS_PRIVATE != 0 {
        libc::MS_PRIVATE | libc::MS_REC
    } else {
        libc::MS_SLAVE | libc::MS_REC
    };
    sys::mount(None, c"/", None, initial, None)
        .map_err(|e| InitError::sys("make / private or slave", e))?;
    let rootfs = &kernel.rootfs;
    sys::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| InitError::path("bind the rootfs onto itself", &plan.rootfs, e))?;
    open_rootfs(kernel)
}

/// A read-only root without a mount namespace: the rootfs gets a bind mount of its own (in
/// the runtime's namespace, under the rootfs like the container's other mounts, so delete and
/// a failed create remove it), which [`finish_root`] makes read-only. The mount the rootfs
/// directory lives on (the host's) is never touched. The bind is made private so that the
/// container's mounts on it propagate nowhere, whatever the host's propagation is.
fn bind_root_for_readonly(kernel: &ContainerPlan) -> Result<()> {
    let (plan, rootfs) = (&kernel.spec, &kernel.rootfs);
    sys::mount(
        Some(rootfs),
        rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .map_err(|e| {
        InitError::path(
            "bind the rootfs onto itself (root.readonly)",
            &plan.rootfs,
            e,
        )
    })?;
    sys::mount(None, rootfs, None, libc::MS_PRIVATE | libc::MS_REC, None).map_err(|e| {
        InitError::path(
            "make the rootfs bind private (root.readonly)",
            &plan.rootfs,
            e,
        )
    })
}

fn open_rootfs(kernel: &ContainerPlan) -> Result<OwnedFd> {
    rustix::fs::open(
        kernel.rootfs.as_c_str(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| InitError::path("open rootfs", &kernel.spec.rootfs, e.into()))
}

/// Without a mount namespace: chroot into the rootfs (pivot_root would move the host's
/// root).
pub fn chroot_root(root: &OwnedFd) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| InitError::sys("fchdir rootfs", e.into()))?;
    rustix::process::chroot(".").map_err(|e| InitError::sys("chroot", e.into()))?;
    rustix::process::chdir("/").map_err(|e| InitError::sys("chdir /", e.into()))
}

/// The mount points at or below `dir` in our mount namespace, deepest first: what a
/// container without a mount namespace of its own leaves on the host until it is deleted.
pub fn mounts_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut points: Vec<std::path::PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(berth_cgroups::mountinfo::unescape)
        .map(std::path::PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// Performs one mount of the plan.
pub fn mount_one(root: BorrowedFd<'_>, step: &MountStep, cgroups: &CgroupView) -> Result<()> {
    let m = &step.plan;
    let dest = &m.destination;
    let fail = |what: &str, e: std::io::Error| {
        InitError::Mount(format!(
            "mounts[{}] on {}: {what}: {e}",
            m.index,
            m.display_destination()
        ))
    };
    match &step.kernel {
        KernelMount::Bind { source } => {
            let shown = source.to_string_lossy();
            let source_is_dir = rustix::fs::stat(source.as_c_str())
                .map_err(|e| fail(&format!("source {shown}"), e.into()))
                .map(|st| {
                    rustix::fs::FileType::from_raw_mode(st.st_mode)
                        == rustix::fs::FileType::Directory
                })?;
            let target = if source_is_dir {
                mkdir_all_in_root(root, dest)
            } else {
                touch_in_root(root, dest)
            }
            .map_err(|e| fail("create mount point", e))?;
            refuse_root(root, &target).map_err(|e| fail("mount point", e))?;
            // Built detached, its options set before anyone can see it, then attached.
            let tree = mount_fd::clone_tree(rustix::fs::CWD, source, m.options.recursive)
                .map_err(|e| fail(&format!("bind {shown}"), e))?;
            let (set, clear) = mount_fd::attributes(m.options.flags);
            mount_fd::set_attributes(tree.as_fd(), false, set, clear)
                .map_err(|e| fail("apply bind options", e))?;
            mount_fd::attach(tree.as_fd(), target.as_fd())
                .map_err(|e| fail(&format!("bind {shown}"), e))?;
            finish(&tree, m).map_err(|e| fail("set propagation", e))
        }
        KernelMount::Filesystem {
            fstype,
            source,
            data,
            options,
        } => {
            let shown = fstype.to_string_lossy();
            let target =
                mkdir_all_in_root(root, dest).map_err(|e| fail("create mount point", e))?;
            refuse_root(root, &target).map_err(|e| fail("mount point", e))?;
            let flags = m.options.flags & !libc::MS_REMOUNT;
            if needs_finish(m) {
                // Propagation is changed after the mount is attached: build it as an fd so
                // that the change reaches exactly this mount.
                let mount = mount_fd::new_filesystem(fstype, source, flags, options)
                    .map_err(|e| fail(&format!("mount {shown}"), e))?;
                mount_fd::attach(mount.as_fd(), target.as_fd())
                    .map_err(|e| fail(&format!("mount {shown}"), e))?;
                return finish(&mount, m).map_err(|e| fail("set propagation", e));
            }
            match sys::mount(
                Some(source),
                &fd_path(&target),
                Some(fstype),
                flags,
                data.as_deref(),
            ) {
                Ok(()) => Ok(()),
                // Without its own network namespace a user namespace may not mount sysfs;
                // runc then shows the host's /sys read-only instead.
                Err(e)
                    if fstype.as_bytes() == b"sysfs" && e.raw_os_error() == Some(libc::EPERM) =>
                {
                    let tree = mount_fd::clone_tree(rustix::fs::CWD, c"/sys", true)
                        .map_err(|e| fail("bind /sys", e))?;
                    let (set, clear) = mount_fd::attributes(flags | libc::MS_RDONLY);
                    mount_fd::set_attributes(tree.as_fd(), true, set, clear)
                        .map_err(|e| fail("make /sys read-only", e))?;
                    mount_fd::attach(tree.as_fd(), target.as_fd()).map_err(|e| fail("bind /sys", e))
                }
                Err(e) => Err(fail(&format!("mount {shown}"), e)),
            }
        }
        KernelMount::Cgroup => mount_cgroups(root, m, cgroups),
    }
}

/// Refuses a mount point that is the container's root itself (a destination that is a
/// symlink to `/` in the image): the mount would replace the whole root filesystem.
fn refuse_root(root: BorrowedFd<'_>, target: &OwnedFd) -> std::io::Result<()> {
    if mount_fd::same_place(root, target)? {
        return Err(std::io::Error::other(
            "resolves to the container's root (a symlink to / in the image?)",
        ));
    }
    Ok(())
}

/// Whether a mount has propagation changes or recursive attributes to apply.
fn needs_finish(m: &MountPlan) -> bool {
    !m.options.propagation.is_empty()
        || m.options.recursive_set != 0
        || m.options.recursive_clear != 0
}

/// Propagation changes and recursive attributes of an attached mount, through its fd.
fn finish(mount: &OwnedFd, m: &MountPlan) -> std::io::Result<()> {
    for propagation in &m.options.propagation {
        mount_fd::set_propagation(mount.as_fd(), *propagation)?;
    }
    let mut clear = m.options.recursive_clear;
    // Setting one atime mode requires clearing the whole atime field.
    if m.options.recursive_set & attr::ATIME_MASK != 0 {
        clear |= attr::ATIME_MASK;
    }
    mount_fd::set_attributes(mount.as_fd(), true, m.options.recursive_set, clear)
}

/// A `cgroup` mount: the container's own cgroups at the destination. Pure v2 gets a fresh
/// cgroup2 mount inside a cgroup namespace and a bind of the container's directory
/// otherwise; v1 and hybrid get a tmpfs with one bind per hierarchy, as runc lays it out.
fn mount_cgroups(root: BorrowedFd<'_>, m: &MountPlan, view: &CgroupView) -> Result<()> {
    let fail = |what: String, e: std::io::Error| {
        InitError::Mount(format!(
            "mounts[{}] on {}: {what}: {e}",
            m.index,
            m.display_destination()
        ))
    };
    let readonly = m.options.flags & libc::MS_RDONLY;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | readonly;
    let target = mkdir_all_in_root(root, &m.destination)
        .map_err(|e| fail("create mount point".into(), e))?;
    refuse_root(root, &target).map_err(|e| fail("mount point".into(), e))?;
    match view {
        CgroupView::Unified { fresh: true, .. } => sys::mount(
            Some(c"cgroup2"),
            &fd_path(&target),
            Some(c"cgroup2"),
            flags,
            None,
        )
        .map_err(|e| fail("mount cgroup2".into(), e)),
        CgroupView::Unified {
            source,
            fresh: false,
        } => {
            let shown = source.host_dir.to_string_lossy();
            let tree = bind_tree(&source.host_dir, flags, true)
                .map_err(|e| fail(format!("bind {shown}"), e))?;
            mount_fd::attach(tree.as_fd(), target.as_fd())
                .map_err(|e| fail(format!("bind {shown}"), e))
        }
        CgroupView::Hierarchies(list) => {
            // A tmpfs with one bind per hierarchy, assembled through the tmpfs's own fd and
            // made read-only (recursively) in one call at the end.
            let tmpfs = mount_fd::new_filesystem(
                c"tmpfs",
                c"tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                &[FsOption::Value(c"mode".into(), c"755".into())],
            )
            .map_err(|e| fail("mount tmpfs".into(), e))?;
            mount_fd::attach(tmpfs.as_fd(), target.as_fd())
                .map_err(|e| fail("mount tmpfs".into(), e))?;
            for source in list {
                let fail_bind = |e| fail(format!("bind {}", source.host_dir.to_string_lossy()), e);
                rustix::fs::mkdirat(&tmpfs, source.name.as_c_str(), Mode::from_raw_mode(0o755))
                    .map_err(|e| fail_bind(e.into()))?;
                let dir = rustix::fs::openat(
                    &tmpfs,
                    source.name.as_c_str(),
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail_bind(e.into()))?;
                let tree = bind_tree(&source.host_dir, 0, true).map_err(fail_bind)?;
                mount_fd::attach(tree.as_fd(), dir.as_fd()).map_err(fail_bind)?;
                for alias in &source.aliases {
                    match rustix::fs::symlinkat(source.name.as_c_str(), &tmpfs, alias.as_c_str()) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => {
                            let alias = alias.to_string_lossy();
                            return Err(fail(format!("symlink {alias}"), e.into()));
                        }
                    }
                }
            }
            let (set, clear) = mount_fd::attributes(flags);
            mount_fd::set_attributes(tmpfs.as_fd(), true, set, clear)
                .map_err(|e| fail("set flags".into(), e))
        }
        CgroupView::None => Err(InitError::Mount(format!(
            "mounts[{}] on {}: the host has no cgroup hierarchy to show",
            m.index,
            m.display_destination()
        ))),
    }
}

/// A detached bind of a host path with per-mount flags set.
fn bind_tree(source: &CStr, flags: c_ulong, recursive: bool) -> std::io::Result<OwnedFd> {
    let tree = mount_fd::clone_tree(rustix::fs::CWD, source, recursive)?;
    let (set, clear) = mount_fd::attributes(flags);
    mount_fd::set_attributes(tree.as_fd(), recursive, set, clear)?;
    Ok(tree)
}

/// Masks a path: a directory gets an empty read-only tmpfs, anything else a bind of the
/// host's /dev/null (opened and verified by the caller; never the container's own, which
/// the container could have replaced with a symlink: CVE-2025-31133).
pub fn mask_path(root: BorrowedFd<'_>, path: &Path, dev_null: &OwnedFd) -> Result<()> {
    let fail = |e: std::io::Error| InitError::Mount(format!("mask /{}: {e}", path.display()));
    let target = match open_in_root(root, path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    if is_dir(&target).map_err(fail)? {
        sys::mount(
            Some(c"tmpfs"),
            &fd_path(&target),
            Some(c"tmpfs"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some(c"size=0"),
        )
        .map_err(fail)
    } else {
        sys::mount(
            Some(&fd_path(dev_null)),
            &fd_path(&target),
            None,
            libc::MS_BIND,
            None,
        )
        .map_err(fail)
    }
}

/// Makes a path read-only: a detached copy of its tree, read-only all the way down, attached
/// on top of it.
pub fn readonly_path(root: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let fail =
        |e: std::io::Error| InitError::Mount(format!("make /{} read-only: {e}", path.display()));
    let target = match open_in_root(root, path) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(fail(e)),
    };
    let tree = mount_fd::clone_tree(target.as_fd(), c"", true).map_err(fail)?;
    mount_fd::set_attributes(tree.as_fd(), true, attr::RDONLY, 0).map_err(fail)?;
    mount_fd::attach(tree.as_fd(), target.as_fd()).map_err(fail)
}

/// Opens the host's /dev/null and checks that it really is the null device (char 1:3).
pub fn open_dev_null() -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        "/dev/null",
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| InitError::path("open", Path::new("/dev/null"), e.into()))?;
    let st = rustix::fs::fstat(&fd)
        .map_err(|e| InitError::path("stat", Path::new("/dev/null"), e.into()))?;
    let is_char =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice;
    if !is_char || rustix::fs::major(st.st_rdev) != 1 || rustix::fs::minor(st.st_rdev) != 3 {
        return Err(InitError::Mount(
            "/dev/null is not the null device (char 1:3)".into(),
        ));
    }
    Ok(fd)
}

/// pivot_root into the rootfs and detach the old root.
pub fn pivot_root(root: &OwnedFd) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| InitError::sys("fchdir rootfs", e.into()))?;
    rustix::process::pivot_root(".", ".").map_err(|e| InitError::sys("pivot_root", e.into()))?;
    // The old root now sits on top of the new one. Its unmount cannot propagate to the
    // host: prepare_root made every mount a slave (or private) already.
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| InitError::sys("detach old root", e.into()))?;
    rustix::process::chdir("/").map_err(|e| InitError::sys("chdir /", e.into()))
}

/// --no-pivot: move the rootfs over / and chroot into it (for ramdisk hosts where
/// pivot_root is impossible).
pub fn move_root(root: &OwnedFd) -> Result<()> {
    rustix::process::fchdir(root).map_err(|e| InitError::sys("fchdir rootfs", e.into()))?;
    sys::mount(Some(c"."), c"/", None, libc::MS_MOVE, None)
        .map_err(|e| InitError::sys("move rootfs to /", e))?;
    rustix::process::chroot(".").map_err(|e| InitError::sys("chroot", e.into()))?;
    rustix::process::chdir("/").map_err(|e| InitError::sys("chdir /", e.into()))
}

/// After the pivot: `/` read-only if asked, and its final propagation.
/// Without a mount namespace `/` is the chroot's: the rootfs bind of
/// [`bind_root_for_readonly`], and only that mount changes.
pub fn finish_root(plan: &Plan) -> Result<()> {
    if plan.root_readonly {
        let root = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| InitError::sys("open /", e.into()))?;
        mount_fd::set_attributes(root.as_fd(), false, attr::RDONLY, 0)
            .map_err(|e| InitError::sys("make / read-only (root.readonly)", e))?;
    }
    if !plan.namespaces.has(NamespaceKind::Mount) {
        return Ok(());
    }
    if let Some(propagation) = plan.root_propagation {
        sys::mount(None, c"/", None, propagation, None)
            .map_err(|e| InitError::sys("set the propagation of /", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(berth_cgroups::mountinfo::unescape("/a\\040b"), "/a b");
        assert_eq!(berth_cgroups::mountinfo::unescape("/plain"), "/plain");
        assert_eq!(berth_cgroups::mountinfo::unescape("/x\\134y"), "/x\\y");
        assert_eq!(berth_cgroups::mountinfo::unescape("/end\\"), "/end\\");
    }
}
