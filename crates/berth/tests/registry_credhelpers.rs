//! Docker credential helpers against a real htpasswd registry on 127.0.0.1: docker's
//! config.json names `docker-credential-NAME` (a shell script this test writes into a temp
//! dir on $PATH, keeping credentials in files); `login` stores through it, `pull` and
//! `push` get from it, `logout` erases; `credHelpers[HOST]` wins over `credsStore`, which
//! wins over `auths`; a helper that fails or is missing is named in the error.

#[path = "../../image/tests/support_registry/mod.rs"]
mod support_registry;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use support_registry::{Auth, Images, PASSWORD, Registry, USER, b64_std, registry_tools};

/// Keeps `{"ServerURL","Username","Secret"}` in `$BERTH_TEST_CRED_DIR`, one file per server
/// URL, and logs each call as `ACTION SERVER` to its `calls` file.
const HELPER: &str = r#"#!/bin/sh
dir="${BERTH_TEST_CRED_DIR:?}"
file() { printf '%s/cred-%s' "$dir" "$(printf %s "$1" | tr -c 'A-Za-z0-9.-' _)"; }
input=$(cat)
case "$1" in
get|erase) server=$input ;;
store) server=$(printf %s "$input" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p') ;;
*) echo "unknown action $1"; exit 1 ;;
esac
echo "$1 $server" >> "$dir/calls"
f=$(file "$server")
case "$1" in
get) [ -f "$f" ] && exec cat "$f" ;;
store) printf %s "$input" > "$f"; exit 0 ;;
erase) [ -f "$f" ] && exec rm "$f" ;;
esac
echo "credentials not found in native keychain"
exit 1
"#;

const BROKEN: &str = "#!/bin/sh\necho 'the keyring is locked' >&2\nexit 3\n";

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bin: PathBuf,
    creds: PathBuf,
    docker: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let bin = dir.path().join("bin");
        let creds = dir.path().join("creds");
        let docker = dir.path().join("docker");
        for d in [&root, &bin, &creds, &docker] {
            fs::create_dir_all(d).unwrap();
        }
        for (name, script) in [("berthtest", HELPER), ("broken", BROKEN)] {
            let path = bin.join(format!("docker-credential-{name}"));
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Env {
            _dir: dir,
            root,
            bin,
            creds,
            docker,
        }
    }

    /// berth with a temp store; its auth file, docker's config and $HOME all in temp dirs.
    fn berth(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env("BERTH_DEFAULT_NETWORK", "none")
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(self.root.join("run"));
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![self.bin.clone()];
        paths.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(paths).unwrap())
            .env("REGISTRY_AUTH_FILE", self.auth_json())
            .env("DOCKER_CONFIG", &self.docker)
            .env("HOME", &self.root)
            .env_remove("XDG_CONFIG_HOME")
            .env("BERTH_CERTS_D", self.root.join("certs.d"))
            .env("BERTH_TEST_CRED_DIR", &self.creds)
            .stdin(Stdio::null());
        cmd
    }

    fn auth_json(&self) -> PathBuf {
        self.root.join("auth.json")
    }

    fn docker_config(&self, json: &str) {
        fs::write(self.docker.join("config.json"), json).unwrap();
    }

    /// The helper's calls so far (and forgets them).
    fn calls(&self) -> String {
        let path = self.creds.join("calls");
        let calls = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        calls
    }

    fn stored(&self, server: &str) -> Option<String> {
        let name: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        fs::read_to_string(self.creds.join(format!("cred-{name}"))).ok()
    }
}

fn out(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{:?}", out(&o));
    out(&o).0
}

fn fails(o: Output) -> String {
    assert_eq!(o.status.code(), Some(125), "{:?}", out(&o));
    out(&o).1
}

#[test]
fn login_pull_push_logout_through_a_helper() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::Htpasswd);
    reg.push(&images.src("bb"), "t/bb:1", &[]);
    let env = Env::new();
    let name = format!("{}/t/bb:1", reg.addr);
    let config = r#"{"credsStore": "berthtest"}"#;
    env.docker_config(config);

    // Nothing stored: the helper is asked, says so, and the pull goes on anonymously.
    let e = fails(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(e.contains("unauthorized"), "{e}");
    assert_eq!(env.calls(), format!("get {}\n", reg.addr));

    // login checks the password, then stores through the helper, and nowhere else.
    let e = fails(
        env.berth()
            .args(["login", "-u", USER, "-p", "wrong", &reg.addr])
            .output()
            .unwrap(),
    );
    assert!(e.contains("unauthorized"), "{e}");
    assert_eq!(env.calls(), "");
    let said = ok(env
        .berth()
        .args(["login", "-u", USER, "-p", PASSWORD, &reg.addr])
        .output()
        .unwrap());
    assert_eq!(said, "Login Succeeded!\n");
    assert_eq!(env.calls(), format!("store {}\n", reg.addr));
    let stored: serde_json::Value =
        serde_json::from_str(&env.stored(&reg.addr).expect("stored by the helper")).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"ServerURL": reg.addr, "Username": USER, "Secret": PASSWORD})
    );
    assert!(!env.auth_json().exists());
    assert_eq!(
        fs::read_to_string(env.docker.join("config.json")).unwrap(),
        config
    );

    // pull and push get the credentials from it.
    let id = ok(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert_eq!(
        id.trim(),
        images.config_digest("bb").trim_start_matches("sha256:")
    );
    assert!(env.calls().starts_with(&format!("get {}\n", reg.addr)));
    ok(env
        .berth()
        .args(["push", "-q", &name, &format!("{}/t/copy:1", reg.addr)])
        .output()
        .unwrap());
    assert_eq!(reg.manifest("t/copy:1"), reg.manifest("t/bb:1"));
    assert_eq!(env.calls(), format!("get {}\n", reg.addr));

    // logout erases it there; a second logout has nothing to remove.
    let said = ok(env.berth().args(["logout", &reg.addr]).output().unwrap());
    assert_eq!(
        said,
        format!("Removed login credentials for {}\n", reg.addr)
    );
    assert_eq!(env.calls(), format!("erase {}\n", reg.addr));
    assert_eq!(env.stored(&reg.addr), None);
    let e = fails(env.berth().args(["logout", &reg.addr]).output().unwrap());
    assert!(e.contains(&format!("not logged into {}", reg.addr)), "{e}");
    let e = fails(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(e.contains("unauthorized"), "{e}");
}

#[test]
fn docker_precedence_and_failing_helpers() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::Htpasswd);
    reg.push(&images.src("bb"), "t/bb:1", &[]);
    let env = Env::new();
    let name = format!("{}/t/bb:1", reg.addr);
    let wrong = b64_std(format!("{USER}:wrong").as_bytes());
    let config_path = env.docker.join("config.json");

    // credHelpers[HOST] beats credsStore: the broken store is never run.
    env.docker_config(&format!(
        r#"{{"credsStore": "broken", "credHelpers": {{"{}": "berthtest"}}}}"#,
        reg.addr
    ));
    ok(env
        .berth()
        .args(["login", "-u", USER, "-p", PASSWORD, &reg.addr])
        .output()
        .unwrap());
    assert_eq!(env.calls(), format!("store {}\n", reg.addr));
    ok(env.berth().args(["pull", "-q", &name]).output().unwrap());

    // A helper beats `auths` (which holds a wrong password here), as in docker.
    env.docker_config(&format!(
        r#"{{"auths": {{"{0}": {{"auth": "{wrong}"}}}}, "credHelpers": {{"{0}": "berthtest"}}}}"#,
        reg.addr
    ));
    ok(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(env.calls().starts_with(&format!("get {}\n", reg.addr)));

    // Without a helper, `auths` is what counts: the wrong password is refused.
    env.docker_config(&format!(
        r#"{{"auths": {{"{}": {{"auth": "{wrong}"}}}}}}"#,
        reg.addr
    ));
    let e = fails(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(e.contains("unauthorized"), "{e}");
    assert_eq!(env.calls(), "");

    // The auth file ($REGISTRY_AUTH_FILE) comes before docker's config.json.
    fs::write(
        env.auth_json(),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            reg.addr,
            b64_std(format!("{USER}:{PASSWORD}").as_bytes())
        ),
    )
    .unwrap();
    ok(env.berth().args(["pull", "-q", &name]).output().unwrap());
    fs::remove_file(env.auth_json()).unwrap();

    // A failing helper: pull, login and logout fail naming it, where it was set, what it
    // was asked and what it said.
    env.docker_config(r#"{"credsStore": "broken"}"#);
    let helper_named = |e: &str, action: &str| {
        e.contains(&format!(
            "credential helper docker-credential-broken (credsStore in {}) {action} {}",
            config_path.display(),
            reg.addr
        )) && e.contains("the keyring is locked")
            && e.contains("exit status: 3")
    };
    let e = fails(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(helper_named(&e, "get"), "{e}");
    let e = fails(
        env.berth()
            .args(["login", "-u", USER, "-p", PASSWORD, &reg.addr])
            .output()
            .unwrap(),
    );
    assert!(helper_named(&e, "store"), "{e}");
    let e = fails(env.berth().args(["logout", &reg.addr]).output().unwrap());
    assert!(helper_named(&e, "erase"), "{e}");
    assert!(!env.auth_json().exists());

    // One that is not on $PATH.
    env.docker_config(&format!(
        r#"{{"credHelpers": {{"{}": "absent"}}}}"#,
        reg.addr
    ));
    let e = fails(env.berth().args(["pull", "-q", &name]).output().unwrap());
    assert!(
        e.contains("docker-credential-absent (credHelpers in")
            && e.contains("docker-credential-absent is not in $PATH"),
        "{e}"
    );
}
