//! Terminals and the caller's descriptors: `exec -t` and `run` of a terminal process in the
//! foreground under a real pty (the tty inside, the window size and its changes, typed
//! input, the caller's terminal mode restored), `--console-socket` for create and exec (the
//! pty master arrives over SCM_RIGHTS), and systemd socket activation (LISTEN_FDS).

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::Duration;

use common::exec::*;
use common::*;
use rustix::process::Signal;
use serde_json::json;

/// How long a step of a terminal conversation may take.
const STEP: Duration = Duration::from_secs(20);

/// The major number of the ptys of a devpts instance (the container's /dev/pts/N).
const PTS_MAJOR: &str = "88"; // 136, as stat's %t prints it (hex)

/// What the terminal process does: report its tty and stdin's device, take a line of
/// input, wait for the window to become 50x120, and exit 4.
const CONVERSATION: &str = "tty; stat -L -c 'major=%t' /proc/self/fd/0; echo ready; \
    read line; echo got:$line; \
    i=0; while [ \"$(stty size 2>/dev/null)\" != '50 120' ]; do \
      i=$((i+1)); [ $i -gt 400 ] && { echo not-resized; exit 1; }; sleep 0.05; \
    done; echo resized; exit 4";

/// Drives [`CONVERSATION`] run by `cmd` (a foreground runtime command) on a pty, and checks
/// everything it reports.
fn converse(cmd: &mut std::process::Command) {
    let pty = Pty::open(37, 91);
    let before = pty.termios();
    assert!(pty.canonical());
    pty.attach(cmd);
    let run = Background::spawn(cmd);
    let mut screen = Transcript::new();
    let master = pty.master.as_fd();
    let step = |screen: &mut Transcript, run: &Background, text: &str| {
        if let Err(seen) = screen.read_until(master, text, STEP) {
            let status = run.exited(Duration::ZERO);
            panic!("no {text:?} on the terminal; it shows {seen:?} (runtime exit: {status:?})");
        }
    };
    step(&mut screen, &run, "ready\n");
    let text = screen.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "tty: {text:?}");
    assert_eq!(
        lines[1],
        format!("major={PTS_MAJOR}"),
        "stdin is a pty: {text:?}"
    );
    // The caller's terminal is raw while the runtime relays it.
    assert!(!pty.canonical(), "the caller's terminal is not in raw mode");

    pty.type_text("hello there\n");
    step(&mut screen, &run, "got:hello there\n");

    pty.set_size(50, 120);
    run.signal(Signal::WINCH);
    step(&mut screen, &run, "resized\n");

    let out = run.wait(STEP);
    screen.drain(master, Duration::from_millis(50));
    assert_eq!(
        out.code,
        4,
        "exit code; the terminal showed {:?}",
        screen.text()
    );
    assert_eq!(
        pty.termios(),
        before,
        "the caller's terminal mode is restored"
    );
}

#[test]
fn exec_tty_in_the_foreground() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let mut cmd = env.command(&["exec", "-t", &c.id, "sh", "-c", CONVERSATION]);
    converse(&mut cmd);
    assert_eq!(c.status(), "running");
}

#[test]
fn run_with_a_terminal_in_the_foreground() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["terminal"] = json!(true);
    bundle.sh(CONVERSATION);
    bundle.save();
    let id = env.new_id();
    let mut cmd = env.command(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    converse(&mut cmd);
    // run deletes the container after it exits.
    assert!(!env.state_root().join(&id).exists());
}

/// Runs `cmd` (a foreground runtime command whose process runs `stty size` first) on a pty
/// whose window is 37x91 and returns the first line the process printed.
fn first_window_size(cmd: &mut std::process::Command) -> String {
    let pty = Pty::open(37, 91);
    pty.attach(cmd);
    let run = Background::spawn(cmd);
    let mut screen = Transcript::new();
    let master = pty.master.as_fd();
    let found = screen.read_until(master, "done\n", STEP);
    let out = run.wait(STEP);
    let text = screen.text();
    found.unwrap_or_else(|seen| panic!("no done: {seen:?} ({out})"));
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn exec_tty_starts_with_the_callers_window_size() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let mut cmd = env.command(&["exec", "-t", &c.id, "sh", "-c", "stty size; echo done"]);
    assert_eq!(first_window_size(&mut cmd), "37 91");
}

#[test]
fn run_with_a_terminal_starts_with_the_callers_window_size() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.process()["terminal"] = json!(true);
    bundle.sh("stty size; echo done");
    bundle.save();
    let id = env.new_id();
    let mut cmd = env.command(&["run", "--bundle", bundle.dir.to_str().unwrap(), &id]);
    assert_eq!(first_window_size(&mut cmd), "37 91");
}

#[test]
fn exec_tty_without_a_terminal_on_stdin_still_runs() {
    // The runtime's stdin is /dev/null: nothing to make raw or restore, the output is
    // relayed all the same.
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);
    let out = exec(&c, &["--tty"], &["sh", "-c", "tty; exit 5"]);
    assert_eq!(out.code, 5, "{out}");
    assert!(out.stdout.starts_with("/dev/pts/"), "{out}");
}

// ---------------------------------------------------------------------------------------
// --console-socket
// ---------------------------------------------------------------------------------------

#[test]
fn console_socket_of_create_receives_the_pty_master() {
    let Some(env) = TestEnv::new() else { return };
    let socket = ConsoleSocket::new(&env);
    let mut bundle = env.bundle();
    bundle.process()["terminal"] = json!(true);
    bundle.process()["consoleSize"] = json!({"height": 33, "width": 77});
    bundle.sh(
        "tty; stty size; stat -c 'console=%F %t' /dev/console; echo ready; \
         read line; echo got:$line; exit 0",
    );
    let (out, c) = env.try_create(&bundle, &["--console-socket", socket.path_str()]);
    out.ok();
    let console = socket.receive(STEP);
    assert!(
        console.name.starts_with("/dev/") && console.name.ends_with("ptmx"),
        "payload: {:?}",
        console.name
    );
    let st = rustix::fs::fstat(&console.master).unwrap();
    assert_eq!(rdev_major(st.st_rdev), 5, "a ptmx (5:2)");
    c.start().ok();
    let mut screen = Transcript::new();
    let master = console.master.as_fd();
    screen
        .read_until(master, "ready\n", STEP)
        .unwrap_or_else(|seen| panic!("no ready: {seen:?}"));
    let text = screen.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("/dev/"), "tty: {text:?}");
    assert_eq!(lines[1], "33 77", "process.consoleSize: {text:?}");
    assert_eq!(
        lines[2],
        format!("console=character special file {PTS_MAJOR}"),
        "/dev/console is the pty: {text:?}"
    );
    write_all(master, b"from-the-socket\n");
    screen
        .read_until(master, "got:from-the-socket\n", STEP)
        .unwrap_or_else(|seen| panic!("no echo of the input: {seen:?}"));
    c.wait_stopped();
    // Once the process is gone, the master reads end.
    screen.drain(master, Duration::from_millis(50));
    assert!(!screen.read_some(master, STEP), "the pty is still open");
}

#[test]
fn console_socket_of_exec_receives_the_pty_master() {
    let Some(env) = TestEnv::new() else { return };
    let c = sleeper(&env);

    // Detached: the command returns; the process talks over the pty.
    let socket = ConsoleSocket::new(&env);
    let (out, text) = exec_detached(
        &c,
        &["-t", "--console-socket", socket.path_str()],
        &[
            "sh",
            "-c",
            "tty; stat -L -c 'major=%t' /proc/self/fd/0; echo ready; read line; echo got:$line",
        ],
    );
    out.ok();
    let pid: i32 = text.parse().unwrap();
    let console = socket.receive(STEP);
    let master = console.master.as_fd();
    let mut screen = Transcript::new();
    screen
        .read_until(master, "ready\n", STEP)
        .unwrap_or_else(|seen| panic!("no ready: {seen:?}"));
    let shown = screen.text();
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{shown:?}");
    assert_eq!(lines[1], format!("major={PTS_MAJOR}"), "{shown:?}");
    assert!(process_alive(pid));
    write_all(master, b"typed\n");
    screen
        .read_until(master, "got:typed\n", STEP)
        .unwrap_or_else(|seen| panic!("no echo of the input: {seen:?}"));

    // In the foreground: the runtime waits and returns the exit code; the terminal is the
    // socket's receiver's.
    let socket = ConsoleSocket::new(&env);
    let mut cmd = env.command(&[
        "exec",
        "--tty",
        "--console-socket",
        socket.path_str(),
        &c.id,
        "sh",
        "-c",
        "echo ready; read line; echo got:$line; exit 6",
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let run = Background::spawn(&mut cmd);
    let console = socket.receive(STEP);
    let master = console.master.as_fd();
    let mut screen = Transcript::new();
    screen
        .read_until(master, "ready\n", STEP)
        .unwrap_or_else(|seen| panic!("no ready: {seen:?}"));
    write_all(master, b"again\n");
    screen
        .read_until(master, "got:again\n", STEP)
        .unwrap_or_else(|seen| panic!("no echo of the input: {seen:?}"));
    let out = run.wait(STEP);
    assert_eq!(out.code, 6, "{out}");
    assert_eq!(out.stdout, "", "nothing on the runtime's own stdout: {out}");
}

// ---------------------------------------------------------------------------------------
// Socket activation
// ---------------------------------------------------------------------------------------

/// What a container reports about socket activation: its LISTEN_ variables, its fd 3, and
/// every descriptor of the shell (a line each; ls is not the last command, so it does not
/// replace the shell and list its own directory's descriptor too).
const LISTEN_REPORT: &str = "echo \"fds=$LISTEN_FDS pid=$LISTEN_PID\"; \
    printf fd3=; readlink /proc/$$/fd/3 || echo; ls /proc/$$/fd; echo end";

#[test]
fn socket_activation_passes_listen_fds_to_run() {
    let Some(env) = TestEnv::new() else { return };
    let listener = listen_unix(&env.new_dir("listen").join("sock"));
    let inode = inode_of(listener.as_fd());
    let mut bundle = env.bundle();
    bundle.sh(LISTEN_REPORT);
    bundle.save();
    let id = env.new_id();
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(listener.try_clone().unwrap()),
        "LISTEN_PID=$$ LISTEN_FDS=1",
        &["run", "--bundle", bundle.dir.to_str().unwrap(), &id],
    );
    let io = env.io_files();
    let out = run_to_files(&mut cmd, &io, COMMAND_TIMEOUT);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "fds=1 pid=1", "{out}");
    assert_eq!(lines[1], format!("fd3=socket:[{inode}]"), "{out}");
    let fds: BTreeSet<&str> = lines[2..lines.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(fds, BTreeSet::from(["0", "1", "2", "3"]), "{out}");
}

#[test]
fn socket_activation_passes_listen_fds_to_create() {
    let Some(env) = TestEnv::new() else { return };
    let listener = listen_unix(&env.new_dir("listen").join("sock"));
    let inode = inode_of(listener.as_fd());
    let mut bundle = env.bundle();
    bundle.sh(LISTEN_REPORT);
    bundle.save();
    let id = env.new_id();
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(listener.try_clone().unwrap()),
        "LISTEN_PID=$$ LISTEN_FDS=1",
        &["create", "--bundle", bundle.dir.to_str().unwrap(), &id],
    );
    let io = env.io_files();
    run_to_files(&mut cmd, &io, COMMAND_TIMEOUT).ok();
    let c = Container {
        env: &env,
        id: id.clone(),
        io,
    };
    c.start().ok();
    c.wait_stopped();
    let out = c.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "fds=1 pid=1", "{out:?}");
    assert_eq!(lines[1], format!("fd3=socket:[{inode}]"), "{out:?}");
}

#[test]
fn listen_fds_for_another_pid_pass_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let listener = listen_unix(&env.new_dir("listen").join("sock"));
    let mut bundle = env.bundle();
    bundle.sh(LISTEN_REPORT);
    bundle.save();
    let id = env.new_id();
    // LISTEN_PID names the shell's parent (this test), not the runtime.
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(listener.try_clone().unwrap()),
        "LISTEN_PID=$PPID LISTEN_FDS=1",
        &["run", "--bundle", bundle.dir.to_str().unwrap(), &id],
    );
    let io = env.io_files();
    let out = run_to_files(&mut cmd, &io, COMMAND_TIMEOUT);
    out.ok();
    let lines = out.lines();
    assert_eq!(lines[0], "fds= pid=", "{out}");
    assert_eq!(lines[1], "fd3=", "{out}");
    let fds: BTreeSet<&str> = lines[2..lines.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(fds, BTreeSet::from(["0", "1", "2"]), "{out}");
}

#[test]
fn listen_fds_that_are_not_open_are_refused() {
    let Some(env) = TestEnv::new() else { return };
    let mut bundle = env.bundle();
    bundle.sh("echo ran");
    bundle.save();
    let id = env.new_id();
    // fd 3 is the socket, fd 4 is not open.
    let listener = listen_unix(&env.new_dir("listen").join("sock"));
    let mut cmd = runtime_with_fd3(
        &env,
        Stdio::from(listener.try_clone().unwrap()),
        "LISTEN_PID=$$ LISTEN_FDS=2",
        &["run", "--bundle", bundle.dir.to_str().unwrap(), &id],
    );
    let io = env.io_files();
    let out = run_to_files(&mut cmd, &io, COMMAND_TIMEOUT);
    out.fails().mentions(&["fd 4"]);
    assert!(!out.stdout.contains("ran"), "{out}");
    env.assert_nothing_left(&id);
}
