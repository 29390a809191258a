//! The plan of one start, as the forked child applies it: [`ContainerPlan`] for `create` and
//! `run`, [`ProcessImage`] for the process of the init and of an exec child.
//!
//! `spec::plan` validates config.json; this is the next step, still in the runtime and
//! before the clone: every string the kernel will take becomes a `CString` (paths, mount
//! sources, types and options, argv, envp, the program's lookup paths, the keyring name),
//! the seccomp profile becomes its BPF program, and the cgroup is planned against the host.
//! Bad input fails here, in the parent, with an error that names the field. The child then
//! converts no data: with panic=abort a missed check there would end it without a word, and
//! any error it reports comes from the kernel, not from the plan.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cgroup::CgroupPlan;
use crate::error::{Error, Result};
use crate::spec::{self, DeviceNode, MountKind, MountPlan, Plan, ProcessPlan};
use crate::state::StateRoot;

/// Everything the init of a new container needs, validated and in the kernel's form.
pub struct ContainerPlan {
    /// The validated configuration (hooks, namespaces, ids, paths inside the container).
    pub spec: Plan,
    /// The rootfs on the host.
    pub rootfs: CString,
    pub mounts: Vec<MountStep>,
    pub devices: Vec<DeviceStep>,
    /// `process.cwd` relative to the container's root (the init creates it).
    pub cwd: PathBuf,
    pub sysctls: Vec<SysctlStep>,
    /// The name of the new session keyring; `None` with `--no-new-keyring`.
    pub session_keyring: Option<CString>,
    pub process: ProcessImage,
    pub seccomp: Option<berth_seccomp::Program>,
    pub cgroup: CgroupPlan,
    /// Descriptors 3.. 3+n-1 that the process keeps (socket activation, --preserve-fds).
    pub preserve_fds: u32,
    /// `--no-pivot`: move the rootfs over `/` instead of pivot_root.
    pub no_pivot: bool,
    /// The highest capability this kernel knows.
    pub last_cap: u32,
}

/// What `create` chooses about the init besides the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions {
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

impl ContainerPlan {
    /// Converts a validated plan (after the caller's last changes to it: socket activation's
    /// environment, the relayed terminal's size), compiles its seccomp profile (through the
    /// cache under `root`) and plans its cgroup. Nothing is created.
    pub fn new(spec: Plan, options: InitOptions, root: &StateRoot) -> Result<Self> {
        let rootfs = path_string("root.path", &spec.rootfs)?;
        let mounts = spec
            .mounts
            .iter()
            .map(|m| MountStep::new(m, spec.mount_label.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let devices = spec
            .devices
            .iter()
            .map(DeviceStep::new)
            .collect::<Result<Vec<_>>>()?;
        let cwd = spec::container_relative(&spec.process.cwd, "process.cwd")?;
        let sysctls = spec
            .sysctls
            .iter()
            .map(|s| SysctlStep {
                path: Path::new("sys").join(&s.path),
                value: s.value.clone(),
                key: s.key.clone(),
            })
            .collect();
        let session_keyring = (!options.no_new_keyring)
            .then(|| kernel_string("id", format!("_ses.{}", spec.id)))
            .transpose()?;
        let process = ProcessImage::new(spec.process.clone(), "process")?;
        let seccomp = crate::seccomp::compile(&spec, root.path())?;
        let cgroup = crate::cgroup::plan_cgroup(&spec, root.cgroup_driver())?;
        Ok(ContainerPlan {
            rootfs,
            mounts,
            devices,
            cwd,
            sysctls,
            session_keyring,
            process,
            seccomp,
            cgroup,
            preserve_fds: options.preserve_fds,
            no_pivot: options.no_pivot,
            last_cap: spec::last_cap(),
            spec,
        })
    }
}

/// One mount of the plan with its kernel strings.
pub struct MountStep {
    pub plan: MountPlan,
    pub kernel: KernelMount,
}

/// A mount's arguments as mount(2), fsopen(2) and open_tree(2) take them.
pub enum KernelMount {
    Bind {
        source: CString,
    },
    Filesystem {
        fstype: CString,
        source: CString,
        /// The data string for mount(2), `None` when empty (SELinux's context= included).
        data: Option<CString>,
        /// The same options one by one, for fsconfig(2) when the mount is built by fd.
        options: Vec<FsOption>,
    },
    Cgroup,
}

/// One filesystem option for fsconfig(2).
pub enum FsOption {
    Flag(CString),
    Value(CString, CString),
}

impl MountStep {
    fn new(m: &MountPlan, mount_label: Option<&str>) -> Result<Self> {
        let field = |f: &str| format!("mounts[{}].{f}", m.index);
        let kernel = match &m.kind {
            MountKind::Bind { source } => KernelMount::Bind {
                source: path_string(&field("source"), source)?,
            },
            MountKind::Cgroup => KernelMount::Cgroup,
            MountKind::Filesystem { fstype, source } => {
                let mut data = m.options.data.clone();
                // SELinux labels the files of new tmpfs and mqueue instances through the
                // context= option (the label is kept only when SELinux is enabled).
                if let Some(label) = mount_label
                    && matches!(fstype.as_str(), "tmpfs" | "mqueue")
                {
                    data.push(format!("context=\"{label}\""));
                }
                let options = data
                    .iter()
                    .filter(|o| !o.is_empty())
                    .map(|o| fs_option(&field("options"), o))
                    .collect::<Result<Vec<_>>>()?;
                let data = data.join(",");
                KernelMount::Filesystem {
                    fstype: kernel_string(&field("type"), fstype.as_str())?,
                    source: kernel_string(&field("source"), source.as_str())?,
                    data: (!data.is_empty())
                        .then(|| kernel_string(&field("options"), data))
                        .transpose()?,
                    options,
                }
            }
        };
        Ok(MountStep {
            plan: m.clone(),
            kernel,
        })
    }
}

/// `key=value` (quotes around the value are mount(2)'s, not the value's) or a flag word.
pub fn fs_option(field: &str, option: &str) -> Result<FsOption> {
    Ok(match option.split_once('=') {
        Some((key, value)) => FsOption::Value(
            kernel_string(field, key)?,
            kernel_string(field, value.trim_matches('"'))?,
        ),
        None => FsOption::Flag(kernel_string(field, option)?),
    })
}

/// A device node, with the host's node to bind where mknod is refused (a user namespace).
pub struct DeviceStep {
    pub node: DeviceNode,
    pub host: CString,
}

impl DeviceStep {
    fn new(node: &DeviceNode) -> Result<Self> {
        Ok(DeviceStep {
            host: path_string("linux.devices", &Path::new("/").join(&node.path))?,
            node: node.clone(),
        })
    }
}

/// A sysctl as a file below /proc.
pub struct SysctlStep {
    /// Relative to the procfs root: `sys/net/ipv4/ip_forward`.
    pub path: PathBuf,
    pub value: String,
    /// The key as configured, for messages.
    pub key: String,
}

/// A container process as execve(2) takes it: used by the init and by exec children.
#[derive(Debug, Clone)]
pub struct ProcessImage {
    pub plan: ProcessPlan,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Where `args[0]` is looked for, in order: itself when it contains a slash, else each
    /// directory of the environment's PATH joined with it (Go's exec.LookPath, as runc).
    pub candidates: Vec<CString>,
    /// `args[0]` has no slash: the lookup went through PATH (for the error message).
    pub searched_path: bool,
    /// The environment has no HOME: the child adds the home of the process's uid from the
    /// container's /etc/passwd (or `/`), which only it can read.
    pub add_home: bool,
}

/// The PATH of a process whose environment has none (runc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl ProcessImage {
    /// `field` is the process's place in its document (`process` in config.json, empty in
    /// an exec's process file), for error messages.
    pub fn new(plan: ProcessPlan, field: &str) -> Result<Self> {
        let f = |name: &str, i: usize| {
            if field.is_empty() {
                format!("{name}[{i}]")
            } else {
                format!("{field}.{name}[{i}]")
            }
        };
        let argv = plan
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| kernel_string(&f("args", i), a.as_str()))
            .collect::<Result<Vec<_>>>()?;
        let envp = plan
            .env
            .iter()
            .enumerate()
            .map(|(i, v)| kernel_string(&f("env", i), v.as_str()))
            .collect::<Result<Vec<_>>>()?;
        let name = argv
            .first()
            .ok_or_else(|| Error::invalid(f("args", 0), "must name a program to run"))?;
        let searched_path = !name.as_bytes().contains(&b'/');
        let candidates = if searched_path {
            let path = plan
                .env
                .iter()
                .find_map(|v| v.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    // Both parts are NUL-free (checked above): this cannot fail.
                    path_string(&f("args", 0), &Path::new(dir).join(&plan.args[0]))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            vec![name.clone()]
        };
        let add_home = !plan.env.iter().any(|v| v.starts_with("HOME="));
        Ok(ProcessImage {
            plan,
            argv,
            envp,
            candidates,
            searched_path,
            add_home,
        })
    }
}

/// A string for the kernel; a NUL byte is an error of `field`.
pub fn kernel_string(field: &str, value: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(value).map_err(|_| Error::invalid(field, "contains a NUL byte"))
}

fn path_string(field: &str, path: &Path) -> Result<CString> {
    kernel_string(field, path.as_os_str().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(args: &[&str], env: &[&str]) -> ProcessPlan {
        let mut p = oci_spec::runtime::Process::default();
        p.set_args(Some(args.iter().map(|s| s.to_string()).collect()));
        p.set_env(Some(env.iter().map(|s| s.to_string()).collect()));
        spec::plan_process(&p, "process", spec::last_cap()).unwrap()
    }

    #[test]
    fn a_bare_program_name_is_looked_up_in_the_environments_path() {
        let image = ProcessImage::new(process(&["sh", "-c"], &["PATH=/a::/b"]), "process").unwrap();
        assert!(image.searched_path);
        let got: Vec<&[u8]> = image.candidates.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(got, [&b"/a/sh"[..], b"./sh", b"/b/sh"]);
        assert_eq!(image.argv[1].as_bytes(), b"-c");
        assert!(image.add_home);
    }

    #[test]
    fn a_path_is_its_own_only_candidate_and_home_is_kept() {
        let image = ProcessImage::new(process(&["/bin/true"], &["HOME=/root"]), "process").unwrap();
        assert!(!image.searched_path);
        assert_eq!(image.candidates, [CString::new("/bin/true").unwrap()]);
        assert!(!image.add_home);
    }

    #[test]
    fn without_path_the_default_one_is_searched() {
        let image = ProcessImage::new(process(&["true"], &[]), "process").unwrap();
        assert_eq!(image.candidates.len(), DEFAULT_PATH.split(':').count());
        assert_eq!(image.candidates[0].as_bytes(), b"/usr/local/sbin/true");
    }

    #[test]
    fn a_nul_byte_is_refused_naming_the_field() {
        let mut plan = process(&["/bin/true"], &[]);
        plan.env.push("A=b\0c".into());
        let err = ProcessImage::new(plan, "process").unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "process.env[0]"),
            "{err}"
        );
    }

    #[test]
    fn filesystem_options_are_split_for_fsconfig_and_the_label_joins_the_data() {
        let m = MountPlan {
            index: 2,
            destination: PathBuf::from("tmp"),
            kind: MountKind::Filesystem {
                fstype: "tmpfs".into(),
                source: "tmpfs".into(),
            },
            options: spec::mount_options::parse_mount_options(&["nosuid", "mode=1777", "size=1m"]),
        };
        let step = MountStep::new(&m, Some("system_u:object_r:container_file_t:s0")).unwrap();
        let KernelMount::Filesystem { data, options, .. } = step.kernel else {
            panic!("a filesystem mount");
        };
        assert_eq!(
            data.unwrap().as_bytes(),
            b"mode=1777,size=1m,context=\"system_u:object_r:container_file_t:s0\""
        );
        let FsOption::Value(key, value) = &options[2] else {
            panic!("context is a value");
        };
        assert_eq!(key.as_bytes(), b"context");
        assert_eq!(value.as_bytes(), b"system_u:object_r:container_file_t:s0");
    }
}
