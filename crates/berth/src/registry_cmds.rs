//! `berth pull`, `push`, `login`, `logout`: registries, as podman names the flags.
//! `pull` and `push` are also what `berth image pull|push` run (`crate::images` calls
//! [`pull`] and [`push`]); [`Reporter`] renders the image crate's progress events for any
//! long transfer (bars on a terminal, plain lines otherwise).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use berth_image::progress::{BlobDone, BlobKind, Progress};
use berth_image::registry::pull::{self, PullOptions};
use berth_image::registry::push::{self, PushOptions};
use berth_image::registry::{Client, Credentials, Options, Platform, authfile};
use berth_image::{Digest, Reference, Store};
use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{CmdResult, Global};

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Pull an image from a registry
    Pull(PullArgs),
    /// Push an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out of a registry
    Logout(LogoutArgs),
}

/// What `pull` and `push` share to reach a registry.
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Require HTTPS and verify certificates (false: allow plain http and any certificate)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Credentials USERNAME:PASSWORD for the registry
    #[arg(long, value_name = "USERNAME:PASSWORD")]
    pub creds: Option<String>,
    /// The only auth file to read credentials from (default: $REGISTRY_AUTH_FILE or podman's, then ~/.config/containers/auth.json, then docker's config.json, with its credential helpers)
    // No `env`: $REGISTRY_AUTH_FILE is the first of the default files, not the only one.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// Read the registry's CA certificates (*.crt) and client certificate (*.cert, *.key) from DIR instead of its HOST:PORT directory under ~/.config/containers/certs.d, /etc/containers/certs.d or /etc/docker/certs.d ($BERTH_CERTS_D=DIR[:DIR...] replaces those roots)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

impl RegistryArgs {
    fn options(&self) -> Result<Options, Box<dyn std::error::Error>> {
        Ok(Options {
            tls_verify: self.tls_verify,
            creds: self.creds.as_deref().map(Credentials::parse).transpose()?,
            authfile: self.authfile.clone(),
            cert_dir: self.cert_dir.clone(),
        })
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct PullArgs {
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Pull the image of this platform from an index (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The image: NAME[:TAG|@DIGEST], optionally docker://
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The local image
    #[arg(value_name = "IMAGE")]
    pub name: String,
    /// Where to push it (default: the image's name)
    #[arg(value_name = "DESTINATION")]
    pub dest: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls_verify: Option<bool>,
    /// Read the registry's CA certificates (*.crt) and client certificate (*.cert, *.key) from DIR instead of its HOST:PORT directory under ~/.config/containers/certs.d, /etc/containers/certs.d or /etc/docker/certs.d ($BERTH_CERTS_D=DIR[:DIR...] replaces those roots)
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// The auth file to write (default: $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json; root's is /run/containers/0/auth.json), unless a credential helper is set for the registry (credHelpers or credsStore in it or, without --authfile, in docker's config.json)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// The registry (default: docker.io)
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LogoutArgs {
    /// The auth file to remove the credentials from (default: as login writes); the registry's credential helper, if one is set, erases them too
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
    /// The registry (default: docker.io)
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

pub fn run(global: &Global, command: RegistryCommand) -> CmdResult {
    match command {
        RegistryCommand::Pull(args) => pull(global, &args),
        RegistryCommand::Push(args) => push(global, &args),
        RegistryCommand::Login(args) => login(&args),
        RegistryCommand::Logout(args) => logout(&args),
    }
}

/// `berth pull`: the progress on stderr, the image id on stdout.
pub fn pull(global: &Global, args: &PullArgs) -> CmdResult {
    let reference = Reference::parse(strip_transport(&args.name)?)?;
    let options = PullOptions {
        registry: args.registry.options()?,
        platform: args.platform.as_deref().map(Platform::parse).transpose()?,
        jobs: pull::DEFAULT_JOBS,
    };
    let store = Store::open(&global.root)?;
    let reporter = Reporter::new(args.quiet);
    let result = pull::pull(&store, &reference, &options, &reporter);
    reporter.finish();
    let image = result?;
    println!("{}", image.id.hex());
    Ok(0)
}

/// `berth push IMAGE [DESTINATION]`.
pub fn push(global: &Global, args: &PushArgs) -> CmdResult {
    let store = Store::open(&global.root)?;
    let image = store.resolve(&args.name)?;
    let dest = match &args.dest {
        Some(d) => Reference::parse(strip_transport(d)?)?,
        None => {
            // The name it was asked by when that is one of its names (`busybox` may be
            // `localhost/busybox:latest`), else its only name.
            let asked = Reference::parse(&args.name).ok();
            let names: Vec<Reference> = image
                .names
                .iter()
                .filter_map(|n| Reference::parse(n).ok())
                .collect();
            match (asked, names.as_slice()) {
                (Some(a), _) if names.contains(&a) => a,
                (_, [only]) => only.clone(),
                (Some(a), _) => a,
                (None, _) => {
                    return Err(format!("{}: give a destination to push to", args.name).into());
                }
            }
        }
    };
    let options = PushOptions {
        registry: args.registry.options()?,
        jobs: pull::DEFAULT_JOBS,
    };
    let reporter = Reporter::new(args.quiet);
    let result = push::push(&store, &image, &dest, &options, &reporter);
    reporter.finish();
    result?;
    Ok(0)
}

fn login(args: &LoginArgs) -> CmdResult {
    let registry = registry_key(args.registry.as_deref());
    let stdin = std::io::stdin();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if stdin.is_terminal() && !args.password_stdin => prompt("Username: ")?,
        None => return Err(format!("logging in to {registry}: a username is needed (-u)").into()),
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err("--password and --password-stdin are mutually exclusive".into());
        }
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => {
            return Err(format!(
                "logging in to {registry}: a password is needed (-p or --password-stdin)"
            )
            .into());
        }
    };
    let creds = Credentials { username, password };
    let options = Options {
        tls_verify: args.tls_verify,
        creds: Some(creds.clone()),
        authfile: None,
        cert_dir: args.cert_dir.clone(),
    };
    Client::new(&registry, None, &options)?.check_login()?;
    authfile::login_store(args.authfile.as_deref(), &registry, &creds)?;
    println!("Login Succeeded!");
    Ok(0)
}

fn logout(args: &LogoutArgs) -> CmdResult {
    let registry = registry_key(args.registry.as_deref());
    if !authfile::logout_remove(args.authfile.as_deref(), &registry)? {
        return Err(format!("not logged into {registry}").into());
    }
    println!("Removed login credentials for {registry}");
    Ok(0)
}

/// `https://host:5000/v2/` → `host:5000`; none → docker.io.
fn registry_key(registry: Option<&str>) -> String {
    let r = registry.unwrap_or(berth_image::reference::DEFAULT_DOMAIN);
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    let host = r.split('/').next().unwrap_or(r);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// Registries are the only transport here: `docker://NAME` is NAME; `oci:`, `docker-archive:`
/// and friends belong to load/save.
fn strip_transport(name: &str) -> Result<&str, String> {
    if let Some(rest) = name.strip_prefix("docker://") {
        return Ok(rest);
    }
    for t in [
        "oci:",
        "oci-archive:",
        "docker-archive:",
        "dir:",
        "containers-storage:",
        "docker-daemon:",
    ] {
        if name.starts_with(t) {
            return Err(format!(
                "{name}: transport {t:?} is not a registry: use berth load or berth save"
            ));
        }
    }
    Ok(name)
}

fn prompt(question: &str) -> std::io::Result<String> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Shows transfers as docker/podman pull do: on a terminal, one line per blob with bytes
/// done/total and speed; otherwise one plain line per step and per finished blob; nothing
/// with `-q`.
pub struct Reporter {
    mode: Mode,
}

enum Mode {
    Quiet,
    Plain {
        kinds: Mutex<HashMap<Digest, BlobKind>>,
    },
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<Digest, (BlobKind, ProgressBar)>>,
    },
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            Mode::Bars {
                multi,
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Mode::Plain {
                kinds: Mutex::new(HashMap::new()),
            }
        };
        Reporter { mode }
    }

    /// Leaves the bars as they ended.
    pub fn finish(&self) {
        if let Mode::Bars { bars, .. } = &self.mode {
            for (_, bar) in lock(bars).values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn noun(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Layer => "blob",
        BlobKind::Config => "config",
    }
}

fn outcome(how: BlobDone) -> &'static str {
    match how {
        BlobDone::Copied => "done",
        BlobDone::Skipped => "skipped: already exists",
        BlobDone::Mounted => "mounted",
        BlobDone::Failed => "failed",
    }
}

impl Progress for Reporter {
    fn message(&self, text: &str) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain { .. } => eprintln!("{text}"),
            Mode::Bars { multi, bars } => {
                // Above the bars while they move; below them once all are done (podman's
                // "Writing manifest..." comes after the blobs).
                let bars = lock(bars);
                if !bars.is_empty() && bars.values().all(|(_, b)| b.is_finished()) {
                    eprintln!("{text}");
                } else {
                    let _ = multi.println(text);
                }
            }
        }
    }

    fn blob_start(&self, kind: BlobKind, digest: &Digest, size: Option<u64>) {
        if let Mode::Plain { kinds } = &self.mode {
            lock(kinds).insert(*digest, kind);
        }
        if let Mode::Bars { multi, bars } = &self.mode {
            let bar = multi.add(ProgressBar::new(size.unwrap_or(0)));
            let style = ProgressStyle::with_template(
                "{prefix} {bar:25.cyan/blue} {bytes:>10} / {total_bytes:<10} {bytes_per_sec:>12} {elapsed:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("Copying {} {}", noun(kind), digest.short()));
            bar.enable_steady_tick(Duration::from_millis(250));
            lock(bars).insert(*digest, (kind, bar));
        }
    }

    fn blob_bytes(&self, digest: &Digest, done: u64) {
        if let Mode::Bars { bars, .. } = &self.mode
            && let Some((_, bar)) = lock(bars).get(digest)
        {
            bar.set_position(done);
        }
    }

    fn blob_done(&self, digest: &Digest, how: BlobDone) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Plain { kinds } => {
                let kind = lock(kinds).get(digest).copied().unwrap_or(BlobKind::Layer);
                eprintln!("Copying {} {digest} {}", noun(kind), outcome(how));
            }
            Mode::Bars { bars, .. } => {
                if let Some((kind, bar)) = lock(bars).get(digest) {
                    let style = ProgressStyle::with_template("{prefix} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style);
                    bar.set_prefix(format!("Copying {} {}", noun(*kind), digest.short()));
                    bar.finish_with_message(outcome(how));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_and_transports() {
        assert_eq!(registry_key(None), "docker.io");
        assert_eq!(
            registry_key(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_key(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(strip_transport("docker://x/y"), Ok("x/y"));
        assert!(strip_transport("oci:/d").unwrap_err().contains("oci:/d"));
    }
}
