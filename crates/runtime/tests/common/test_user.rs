//! An unprivileged user made for one test (rootless runs): useradd with a home in the
//! test's directory and subordinate id ranges, removed with everything it ran on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::{Out, host, run_piped};

/// useradd and userdel lock /etc/passwd: one at a time within a test binary.
static ACCOUNTS: Mutex<()> = Mutex::new(());

pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The user's $XDG_RUNTIME_DIR (0700, in the home).
    pub runtime_dir: PathBuf,
    /// The first subordinate uid and gid of the user's ranges, and their size.
    pub subuid: (u32, u32),
    pub subgid: (u32, u32),
}

impl TestUser {
    /// Makes user `brt<pid>x<n>` with its home at `dir/home-<n>`, or None when the host
    /// lacks useradd (the caller skips). The ranges are what useradd allots (login.defs).
    pub fn create(dir: &Path, n: usize) -> Option<TestUser> {
        let name = format!("brt{}x{n}", std::process::id());
        let home = dir.join(format!("home-{n}"));
        if !Path::new("/usr/sbin/useradd").exists() {
            return None;
        }
        {
            let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
            let out = host(
                "useradd",
                &[
                    "--home-dir",
                    home.to_str().unwrap(),
                    "--create-home",
                    "--shell",
                    "/bin/sh",
                    "--user-group",
                    &name,
                ],
            );
            out.ok();
        }
        let id = |flag: &str| -> u32 {
            host("id", &[flag, &name])
                .ok()
                .stdout
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let range = |file: &str| -> (u32, u32) {
            let text = fs::read_to_string(file).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")))
                .unwrap_or_else(|| panic!("useradd gave {name} no range in {file}"));
            let mut f = line.split(':').skip(1).map(|v| v.parse::<u32>().unwrap());
            (f.next().unwrap(), f.next().unwrap())
        };
        let runtime_dir = home.join("xdg-run");
        fs::create_dir_all(&runtime_dir).unwrap();
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&runtime_dir, Some(uid), Some(gid)).unwrap();
        Some(TestUser {
            subuid: range("/etc/subuid"),
            subgid: range("/etc/subgid"),
            name,
            uid,
            gid,
            home,
            runtime_dir,
        })
    }

    /// `program args` as the user, in a clean environment of a login (HOME, USER, PATH,
    /// XDG_RUNTIME_DIR), stdin from /dev/null.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .current_dir(&self.home)
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `program args` as the user, with pipes.
    pub fn run(&self, program: &str, args: &[&str]) -> Out {
        run_piped(&mut self.command(program, args), Duration::from_secs(60))
    }

    /// Gives the user `path` and everything below it.
    pub fn give(&self, path: &Path) {
        host(
            "chown",
            &[
                "-R",
                &format!("{}:{}", self.uid, self.gid),
                path.to_str().unwrap(),
            ],
        )
        .ok();
    }

    /// The user's processes (a test asserts none is left). Container inits orphaned to the
    /// test (its subreaper) are reaped first: a zombie is gone, not left.
    pub fn processes(&self) -> Vec<String> {
        super::reap_orphans();
        let out = host("pgrep", &["-u", &self.uid.to_string(), "-a"]);
        out.stdout.lines().map(str::to_string).collect()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Whatever the user left running (a podman pause process, a stuck container).
        let _ = host("pkill", &["-KILL", "-u", &self.uid.to_string()]);
        for _ in 0..100 {
            if self.processes().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _lock = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = host("userdel", &["--force", &self.name]);
        // The home may hold files of the user's subordinate ids (container storage).
        let _ = fs::remove_dir_all(&self.home);
    }
}
