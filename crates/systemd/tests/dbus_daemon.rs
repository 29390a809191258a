//! The D-Bus client against a real dbus-daemon (Debian package dbus), a private bus each test
//! starts on a socket in its own temporary directory: auth, Hello, calls, error replies,
//! signals. Runs on the host and in CI; without dbus-daemon it says it skipped (a failure
//! under BERTH_REQUIRE_SYSTEMD=1, which the VM script sets).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_systemd::dbus::address::SocketAddr;
use berth_systemd::dbus::{Connection, Error, Message, Type, Value};

const DAEMON: &str = "/usr/bin/dbus-daemon";
const T: Duration = Duration::from_secs(10);

struct Bus {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private bus that accepts `auth` mechanisms; None (printed) without dbus-daemon.
fn bus(test: &str, auth: &str) -> Option<Bus> {
    if !Path::new(DAEMON).exists() {
        if std::env::var("BERTH_REQUIRE_SYSTEMD").as_deref() == Ok("1") {
            panic!("{test}: {DAEMON} missing (BERTH_REQUIRE_SYSTEMD=1 forbids skipping)");
        }
        eprintln!("{test}: skipped: {DAEMON} missing (Debian package dbus)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus");
    let config = dir.path().join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>{auth}</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(DAEMON)
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address=1"])
        .stdout(Stdio::piped())
        // it complains that root without CAP_SYS_RESOURCE cannot raise its fd limit
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    // it prints its address once it listens
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&socket.display().to_string()),
        "dbus-daemon printed {line:?}"
    );
    Some(Bus {
        child,
        socket,
        _dir: dir,
    })
}

fn connect(b: &Bus) -> Connection {
    Connection::connect(&SocketAddr::Path(b.socket.clone())).unwrap()
}

fn bus_call(member: &str, body: Vec<Value>) -> Message {
    Message::method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        member,
        body,
    )
}

#[test]
fn hello_gives_a_unique_name_and_calls_return_typed_values() {
    let Some(b) = bus("hello", "EXTERNAL") else {
        return;
    };
    let mut c = connect(&b);
    assert!(c.unique_name().starts_with(":1."), "{}", c.unique_name());
    let reply = c.call(bus_call("ListNames", vec![]), T).unwrap();
    let Some(Value::Array(Type::Str, names)) = reply.body.first() else {
        panic!("ListNames: {:?}", reply.body)
    };
    let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
    assert!(
        names.contains(&"org.freedesktop.DBus") && names.contains(&c.unique_name()),
        "{names:?}"
    );
    let id = c.call(bus_call("GetId", vec![]), T).unwrap();
    let id = id.body[0].as_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
}

#[test]
fn an_error_reply_names_the_method_and_the_error() {
    let Some(b) = bus("error_reply", "EXTERNAL") else {
        return;
    };
    let mut c = connect(&b);
    let e = c
        .call(
            bus_call("GetNameOwner", vec![Value::str("org.berth.Nobody")]),
            T,
        )
        .unwrap_err();
    assert_eq!(
        e.remote_name(),
        Some("org.freedesktop.DBus.Error.NameHasNoOwner"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("org.freedesktop.DBus.GetNameOwner") && msg.contains("org.berth.Nobody"),
        "{msg}"
    );
    // the connection is still usable after an error
    c.call(bus_call("GetId", vec![]), T).unwrap();
}

#[test]
fn signals_reach_a_connection_that_matched_them() {
    let Some(b) = bus("signals", "EXTERNAL") else {
        return;
    };
    let mut watcher = connect(&b);
    let add = watcher
        .send_add_match("type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.berth.Test'")
        .unwrap();
    watcher.reply(&add, T).unwrap();
    let mut owner = connect(&b);
    let r = owner
        .call(
            bus_call(
                "RequestName",
                vec![Value::str("org.berth.Test"), Value::U32(0)],
            ),
            T,
        )
        .unwrap();
    assert_eq!(r.body, vec![Value::U32(1)], "primary owner");
    let sig = watcher
        .wait_signal(Instant::now() + T, |m| {
            m.member.as_deref() == Some("NameOwnerChanged")
        })
        .unwrap()
        .expect("NameOwnerChanged within 10 s");
    assert_eq!(
        sig.body,
        vec![
            Value::str("org.berth.Test"),
            Value::str(""),
            Value::str(owner.unique_name())
        ]
    );
    // nothing else comes: the deadline passes and says so
    let none = watcher
        .wait_signal(Instant::now() + Duration::from_millis(200), |_| true)
        .unwrap();
    assert_eq!(none, None);
}

#[test]
fn a_bus_that_refuses_external_auth_is_an_error_naming_the_socket() {
    let Some(b) = bus("auth_refused", "ANONYMOUS") else {
        return;
    };
    let Err(e) = Connection::connect(&SocketAddr::Path(b.socket.clone())) else {
        panic!("authenticated")
    };
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&b.socket.display().to_string()) && msg.contains("REJECTED"),
        "{msg}"
    );
}

#[test]
fn a_socket_nobody_listens_on_is_a_connect_error() {
    let Some(b) = bus("no_listener", "EXTERNAL") else {
        return;
    };
    let path = b.socket.clone();
    drop(b); // the daemon is gone, its socket file may stay
    let Err(e) = Connection::connect(&SocketAddr::Path(path.clone())) else {
        panic!("connected")
    };
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}
