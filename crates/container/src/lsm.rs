//! Linux security modules: AppArmor profiles and SELinux labels for the container's
//! process. Both are applied by writing to the process's own attr files in procfs, through
//! the verified procfs handle (so the container's mounts cannot redirect the write), and both
//! take effect at the next exec.
//!
//! When a config asks for one on a host without that LSM, the answer is a clear error, as
//! runc gives (an unconfined process where confinement was asked for would be silent
//! weakening); a `linux.mountLabel` without SELinux is ignored, as crun does, since it only
//! labels files.

use std::path::Path;

/// Where the kernel says whether AppArmor is on.
const APPARMOR_ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// selinuxfs; its `enforce` file exists whenever SELinux is on (enforcing or permissive).
const SELINUX_ENFORCE: &str = "/sys/fs/selinux/enforce";

/// The LSMs this host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lsms {
    pub apparmor: bool,
    pub selinux: bool,
}

impl Lsms {
    /// Reads the host's state (two stat/read calls).
    pub fn probe() -> Self {
        Self::probe_at(Path::new("/"))
    }

    /// The same, below another root (for tests).
    pub fn probe_at(root: &Path) -> Self {
        let apparmor = std::fs::read_to_string(root.join(APPARMOR_ENABLED.trim_start_matches('/')))
            .is_ok_and(|v| v.trim() == "Y");
        let selinux = root.join(SELINUX_ENFORCE.trim_start_matches('/')).exists();
        Lsms { apparmor, selinux }
    }
}

/// Checks that the LSM settings of a process can be honoured here.
pub fn check(
    lsms: Lsms,
    apparmor_profile: Option<&str>,
    selinux_label: Option<&str>,
    field: &str,
) -> crate::Result<()> {
    if let Some(profile) = apparmor_profile
        && !lsms.apparmor
    {
        return Err(crate::Error::invalid(
            format!("{field}.apparmorProfile"),
            format!(
                "AppArmor is not enabled on this host, so profile {profile:?} cannot be applied"
            ),
        ));
    }
    if let Some(label) = selinux_label
        && !lsms.selinux
    {
        return Err(crate::Error::invalid(
            format!("{field}.selinuxLabel"),
            format!("SELinux is not enabled on this host, so label {label:?} cannot be applied"),
        ));
    }
    Ok(())
}

/// What to write to the AppArmor exec attribute for `profile`.
pub fn apparmor_exec_attr(profile: &str) -> String {
    format!("exec {profile}")
}

/// The attr files, relative to /proc/<pid>/, in the order to try: the LSM-specific
/// interface of newer kernels first, the shared one second.
pub const APPARMOR_ATTR_FILES: [&str; 2] = ["attr/apparmor/exec", "attr/exec"];
pub const SELINUX_ATTR_FILE: &str = "attr/exec";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_fake_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lsms::probe_at(dir.path()), Lsms::default());
        let aa = dir.path().join("sys/module/apparmor/parameters");
        std::fs::create_dir_all(&aa).unwrap();
        std::fs::write(aa.join("enabled"), "Y\n").unwrap();
        std::fs::create_dir_all(dir.path().join("sys/fs/selinux")).unwrap();
        std::fs::write(dir.path().join("sys/fs/selinux/enforce"), "0").unwrap();
        assert_eq!(
            Lsms::probe_at(dir.path()),
            Lsms {
                apparmor: true,
                selinux: true
            }
        );
        std::fs::write(aa.join("enabled"), "N\n").unwrap();
        assert!(!Lsms::probe_at(dir.path()).apparmor);
    }

    #[test]
    fn refuses_what_the_host_cannot_do() {
        let none = Lsms::default();
        let e = check(none, Some("docker-default"), None, "process")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.apparmorProfile") && e.contains("docker-default"),
            "{e}"
        );
        let e = check(
            none,
            None,
            Some("system_u:system_r:container_t:s0"),
            "process",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("process.selinuxLabel"), "{e}");
        check(none, None, None, "process").unwrap();
        let both = Lsms {
            apparmor: true,
            selinux: true,
        };
        check(both, Some("p"), Some("l"), "process").unwrap();
    }

    #[test]
    fn apparmor_attr_format() {
        assert_eq!(apparmor_exec_attr("docker-default"), "exec docker-default");
    }
}
