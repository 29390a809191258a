//! systemd's manager interface (org.freedesktop.systemd1.Manager): the calls the cgroup
//! driver makes, each waiting for its job where systemd runs one.

use std::time::{Duration, Instant};

use crate::dbus::conn::reply_error;
use crate::dbus::message::NO_REPLY_EXPECTED;
use crate::dbus::{Connection, DEFAULT_TIMEOUT, Message, Value};
use crate::error::{Error, Result};
use crate::plan::ScopePlan;
use crate::props::{self, Property};
use crate::unit::{UnitKind, UnitPath};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const UNIT_EXISTS: &str = "org.freedesktop.systemd1.UnitExists";

/// Only the signal we wait for: the bus filters the rest out before it reaches us.
const JOB_REMOVED_MATCH: &str = "type='signal',sender='org.freedesktop.systemd1',\
     interface='org.freedesktop.systemd1.Manager',member='JobRemoved',path='/org/freedesktop/systemd1'";

/// How long a start or stop job may take. A stop waits for the unit's processes to die:
/// systemd sends SIGTERM, then SIGKILL after the unit's TimeoutStopSec (90 s by default).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// A unit's state as `systemctl show` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitState {
    /// `active`, `inactive`, `failed`, `activating`, `deactivating`, ...
    pub active_state: String,
}

/// A connection to systemd on the system bus.
pub struct Systemd {
    conn: Connection,
    subscribed: bool,
    pub job_timeout: Duration,
}

impl Systemd {
    /// Connect to the system bus. Without one, the error names the socket it tried.
    pub fn connect() -> Result<Systemd> {
        Ok(Systemd::with_connection(Connection::system()?))
    }

    /// Connect to the bus at a D-Bus address (`unix:path=/run/dbus/system_bus_socket`).
    pub fn connect_address(address: &str) -> Result<Systemd> {
        let addrs = crate::dbus::address::parse(address)?;
        let mut last = None;
        for a in &addrs {
            match Connection::connect(a) {
                Ok(c) => return Ok(Systemd::with_connection(c)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("parse returns at least one address").into())
    }

    pub fn with_connection(conn: Connection) -> Systemd {
        Systemd {
            conn,
            subscribed: false,
            job_timeout: DEFAULT_JOB_TIMEOUT,
        }
    }

    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn manager(member: &str, body: Vec<Value>) -> Message {
        Message::method_call(DEST, PATH, MANAGER, member, body)
    }

    fn call(&mut self, m: Message) -> Result<Message> {
        Ok(self.conn.call(m, DEFAULT_TIMEOUT)?)
    }

    /// Send `m` (a call that starts a job) and wait for its reply. On the first such call
    /// the match rule for JobRemoved and Subscribe go out right before it: the bus and
    /// systemd handle one connection's messages in order, so the match is in place before
    /// the job can end, and the three calls cost one round trip.
    fn call_for_job(
        &mut self,
        m: Message,
    ) -> Result<(Message, crate::dbus::error::Result<Message>)> {
        let pending = if self.subscribed {
            vec![]
        } else {
            vec![
                self.conn.send_add_match(JOB_REMOVED_MATCH)?,
                self.conn.send(Systemd::manager("Subscribe", vec![]))?,
            ]
        };
        let call = self.conn.send(m)?;
        // their replies come first: a reply is only matched to the call awaited
        for p in &pending {
            self.conn.reply(p, DEFAULT_TIMEOUT)?;
        }
        self.subscribed = true;
        let reply = self.conn.reply(&call, DEFAULT_TIMEOUT);
        Ok((call, reply))
    }

    /// The job path of a reply of signature `o`.
    fn job_of(call: &Message, reply: &Message) -> Result<String> {
        match reply.body.first() {
            Some(Value::ObjectPath(p)) => Ok(p.clone()),
            _ => Err(reply_error(call, "o", reply).into()),
        }
    }

    /// Wait for JobRemoved of `job`; its result must be `done`.
    fn wait_job(&mut self, job: &str, unit: &str, what: &'static str) -> Result<()> {
        let deadline = Instant::now() + self.job_timeout;
        let signal = self.conn.wait_signal(deadline, |m| {
            m.member.as_deref() == Some("JobRemoved")
                && m.body.get(1).and_then(Value::as_str) == Some(job)
        })?;
        let Some(signal) = signal else {
            return Err(Error::JobTimeout {
                unit: unit.into(),
                what,
                job: job.into(),
                secs: self.job_timeout.as_secs(),
            });
        };
        match signal.body.get(3).and_then(Value::as_str) {
            Some("done") => Ok(()),
            r => Err(Error::JobFailed {
                unit: unit.into(),
                what,
                job: job.into(),
                result: r.unwrap_or("(none)").into(),
            }),
        }
    }

    /// Start a planned scope for the container's init.
    pub fn start(&mut self, plan: &ScopePlan, pid: u32) -> Result<()> {
        self.start_scope(
            &plan.unit,
            pid,
            &plan.description,
            &plan.resources.properties,
        )
    }

    /// Start the container's scope: the process `pid` moves into a new unit in its slice,
    /// delegated, with the resources' properties. Returns when systemd's job is done.
    pub fn start_scope(
        &mut self,
        unit: &UnitPath,
        pid: u32,
        description: &str,
        resources: &[Property],
    ) -> Result<()> {
        let mut all = match unit.kind {
            UnitKind::Scope => props::scope_base(&unit.slice, description, pid),
            // a slice holds no processes: the runtime joins the pid to it through the files
            UnitKind::Slice => vec![
                Property::new("Description", Value::str(description)),
                Property::new("Wants", Value::str(unit.slice.clone())),
                Property::new("DefaultDependencies", Value::Bool(false)),
                Property::new("Delegate", Value::Bool(true)),
            ],
        };
        all.extend_from_slice(resources);
        self.start_transient(&unit.unit, &all)
    }

    /// StartTransientUnit and wait for its job. A unit of the same name that failed earlier
    /// is reset and the start tried once more (as runc does); one that is still there is
    /// [`Error::UnitExists`].
    pub fn start_transient(&mut self, unit: &str, properties: &[Property]) -> Result<()> {
        let body = || {
            vec![
                Value::str(unit),
                Value::str("fail"),
                props::to_array(properties),
                Value::Array(
                    crate::dbus::Type::parse_single("(sa(sv))").expect("a valid signature"),
                    vec![],
                ),
            ]
        };
        let mut retried = false;
        loop {
            let (call, reply) =
                self.call_for_job(Systemd::manager("StartTransientUnit", body()))?;
            match reply {
                Ok(reply) => {
                    let job = Systemd::job_of(&call, &reply)?;
                    return self.wait_job(&job, unit, "start");
                }
                Err(e) if e.remote_name() == Some(UNIT_EXISTS) => {
                    if retried {
                        return Err(Error::UnitExists { unit: unit.into() });
                    }
                    retried = true;
                    match self.call(Systemd::manager("ResetFailedUnit", vec![Value::str(unit)])) {
                        // not failed: a live unit of that name
                        Err(Error::Bus(e)) if e.remote_name().is_some() => {
                            return Err(Error::UnitExists { unit: unit.into() });
                        }
                        r => {
                            r?;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// SetUnitProperties (runtime, not persisted): systemd writes the cgroup files itself.
    pub fn set_properties(&mut self, unit: &str, properties: &[Property]) -> Result<()> {
        let m = Systemd::manager(
            "SetUnitProperties",
            vec![
                Value::str(unit),
                Value::Bool(true),
                props::to_array(properties),
            ],
        );
        match self.call(m) {
            Err(Error::Bus(e)) if e.remote_name() == Some(NO_SUCH_UNIT) => {
                Err(Error::NoSuchUnit { unit: unit.into() })
            }
            r => r.map(drop),
        }
    }

    /// Stop the unit (its processes are killed) and wait until it is gone. Ok(false) when
    /// there was no such unit, which is what `delete` of a half-made container meets.
    pub fn stop_unit(&mut self, unit: &str) -> Result<bool> {
        let (call, reply) = self.call_for_job(Systemd::manager(
            "StopUnit",
            vec![Value::str(unit), Value::str("replace")],
        ))?;
        let reply = match reply {
            Err(e) if e.remote_name() == Some(NO_SUCH_UNIT) => return Ok(false),
            r => r?,
        };
        let job = Systemd::job_of(&call, &reply)?;
        self.wait_job(&job, unit, "stop")?;
        // A unit whose processes died badly stays loaded as failed and keeps its name taken;
        // resetting it lets systemd collect it. No reply needed: nothing waits on it.
        let mut reset = Systemd::manager("ResetFailedUnit", vec![Value::str(unit)]);
        reset.flags |= NO_REPLY_EXPECTED;
        self.conn.send(reset)?;
        Ok(true)
    }

    /// The unit's object path, or None when it is not loaded.
    fn unit_path(&mut self, unit: &str) -> Result<Option<String>> {
        let call = Systemd::manager("GetUnit", vec![Value::str(unit)]);
        let c2 = call.clone();
        match self.call(call) {
            Err(Error::Bus(e)) if e.remote_name() == Some(NO_SUCH_UNIT) => Ok(None),
            Err(e) => Err(e),
            Ok(reply) => Systemd::job_of(&c2, &reply).map(Some),
        }
    }

    fn get_property(&mut self, object: &str, interface: &str, name: &str) -> Result<Value> {
        let call = Message::method_call(
            DEST,
            object,
            PROPERTIES,
            "Get",
            vec![Value::str(interface), Value::str(name)],
        );
        let c2 = call.clone();
        let reply = self.call(call)?;
        match reply.body.first() {
            Some(Value::Variant(v)) => Ok((**v).clone()),
            _ => Err(reply_error(&c2, "v", &reply).into()),
        }
    }

    /// The unit's cgroup, relative to the cgroup root (`/system.slice/x.scope`).
    pub fn control_group(&mut self, unit: &str) -> Result<String> {
        let path = self
            .unit_path(unit)?
            .ok_or_else(|| Error::NoSuchUnit { unit: unit.into() })?;
        let interface = if unit.ends_with(".slice") {
            "org.freedesktop.systemd1.Slice"
        } else {
            "org.freedesktop.systemd1.Scope"
        };
        match self.get_property(&path, interface, "ControlGroup")? {
            Value::Str(s) => Ok(s),
            v => Err(crate::dbus::Error::Reply {
                method: format!("{PROPERTIES}.Get(ControlGroup)"),
                expected: "s",
                got: v.ty().to_string(),
            }
            .into()),
        }
    }

    /// The unit's state, or None when systemd has no such unit loaded.
    pub fn unit_state(&mut self, unit: &str) -> Result<Option<UnitState>> {
        let Some(path) = self.unit_path(unit)? else {
            return Ok(None);
        };
        match self.get_property(&path, "org.freedesktop.systemd1.Unit", "ActiveState") {
            Ok(Value::Str(s)) => Ok(Some(UnitState { active_state: s })),
            Ok(v) => Err(crate::dbus::Error::Reply {
                method: format!("{PROPERTIES}.Get(ActiveState)"),
                expected: "s",
                got: v.ty().to_string(),
            }
            .into()),
            // collected between the two calls
            Err(Error::Bus(e)) if e.remote_name().is_some_and(|n| n.contains("UnknownObject")) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// systemd's version string (`252.38-1~deb12u1`); the number before the dot tells
    /// which properties it knows (CPUQuotaPeriodUSec since 242, AllowedCPUs since 244).
    pub fn version(&mut self) -> Result<String> {
        match self.get_property(PATH, MANAGER, "Version")? {
            Value::Str(s) => Ok(s),
            v => Err(crate::dbus::Error::Reply {
                method: format!("{PROPERTIES}.Get(Version)"),
                expected: "s",
                got: v.ty().to_string(),
            }
            .into()),
        }
    }
}
