//! Healthchecks, run by the monitor itself (no systemd timers): every interval a probe
//! process (a fork of the monitor) runs the check in the container through the runtime
//! core's exec, its output captured; the result goes into the record's State.Health
//! (docker's rules: `retries` consecutive failures make it unhealthy, failures during the
//! start period do not count, a probe over its timeout fails).

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_container::ops::{ExecArgs, ExecOptions, ExecProcess};

use crate::Engine;
use crate::config::HealthConfig;
use crate::record::{ContainerRecord, Health, HealthLog};
use crate::sys;

/// The check in force: the flags', else the image's (`--no-healthcheck` disables both).
pub fn config_of(record: &ContainerRecord) -> Option<HealthConfig> {
    if record.config.no_healthcheck {
        return None;
    }
    record
        .config
        .health
        .clone()
        .or_else(|| record.image.healthcheck.clone())
        .filter(|h| h.argv().is_some())
}

/// State.Health at a start: "starting", or none without a check.
pub fn initial(record: &ContainerRecord) -> Option<Health> {
    config_of(record).map(|_| Health {
        status: "starting".into(),
        failing_streak: 0,
        log: Vec::new(),
    })
}

struct Probe {
    pid: i32,
    output: OwnedFd,
    captured: Vec<u8>,
    start: String,
    deadline: Instant,
    timed_out: bool,
}

/// The healthcheck schedule of one run of the container.
pub struct Checker {
    config: Option<HealthConfig>,
    started: Instant,
    next: Instant,
    probe: Option<Probe>,
}

impl Checker {
    pub fn new(record: &ContainerRecord) -> Self {
        let config = config_of(record);
        let now = Instant::now();
        let next = now + config.as_ref().map(|c| c.interval).unwrap_or_default();
        Checker {
            config,
            started: now,
            next,
            probe: None,
        }
    }

    /// How long the monitor may sleep before [`Checker::tick`] has work.
    pub fn timeout(&self) -> Option<Duration> {
        self.config.as_ref()?;
        let now = Instant::now();
        let at = match &self.probe {
            Some(p) => p.deadline.min(now + Duration::from_millis(50)),
            None => self.next,
        };
        Some(at.saturating_duration_since(now))
    }

    /// The probe's output pipe, to poll.
    pub fn probe_fd(&self) -> Option<&OwnedFd> {
        self.probe.as_ref().map(|p| &p.output)
    }

    pub fn on_probe_output(&mut self) {
        if let Some(p) = &mut self.probe {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rustix::io::read(&p.output, &mut buf) {
                if n == 0 {
                    break;
                }
                // docker keeps at most 4 KiB of a probe's output.
                if p.captured.len() < 4096 {
                    p.captured.extend_from_slice(&buf[..n]);
                }
            }
        }
    }

    /// Starts a due probe, finishes one that exited or timed out.
    pub fn tick(&mut self, engine: &Engine, id: &str) {
        let Some(config) = self.config.clone() else {
            return;
        };
        if let Some(p) = &mut self.probe {
            if Instant::now() >= p.deadline && !p.timed_out {
                p.timed_out = true;
                // The probe (the runtime's exec) passes SIGTERM on to the check's process.
                if let Some(pid) = rustix::process::Pid::from_raw(p.pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
            }
            let Some(pid) = rustix::process::Pid::from_raw(p.pid) else {
                return;
            };
            let status =
                match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG) {
                    Ok(Some((_, status))) => status,
                    Ok(None) => return,
                    Err(_) => return self.probe = None,
                };
            self.on_probe_output();
            let p = self.probe.take().expect("probe is set");
            let code = if p.timed_out {
                -1
            } else {
                status.exit_status().unwrap_or(1)
            };
            let mut output = String::from_utf8_lossy(&p.captured).into_owned();
            if p.timed_out {
                output = format!("Health check exceeded timeout ({:?})", config.timeout);
            }
            let in_start_period = self.started.elapsed() < config.start_period;
            let entry = HealthLog {
                start: p.start,
                end: crate::time::now(),
                exit_code: code,
                output,
            };
            let _ = engine.records.update(id, |r| {
                let health = r.state.health.get_or_insert_with(Default::default);
                if code == 0 {
                    health.status = "healthy".into();
                    health.failing_streak = 0;
                } else if !in_start_period {
                    health.failing_streak += 1;
                    if health.failing_streak >= config.retries.max(1) {
                        health.status = "unhealthy".into();
                    }
                }
                health.log.push(entry);
                // docker keeps the last 5.
                let excess = health.log.len().saturating_sub(5);
                health.log.drain(..excess);
            });
            self.next = Instant::now() + config.interval;
            return;
        }
        if Instant::now() >= self.next {
            self.probe = launch(engine, id, &config);
            if self.probe.is_none() {
                self.next = Instant::now() + config.interval;
            }
        }
    }

    /// The container exited: a running probe is killed and reaped.
    pub fn abandon(&mut self) {
        if let Some(p) = self.probe.take()
            && let Some(pid) = rustix::process::Pid::from_raw(p.pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
    }
}

/// Forks the probe: it runs the check through the runtime's exec with its stdout and
/// stderr on a pipe, and exits with the check's code.
fn launch(engine: &Engine, id: &str, config: &HealthConfig) -> Option<Probe> {
    let argv = config.argv()?;
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ok()?;
    let start = crate::time::now();
    // SAFETY: the monitor is single-threaded.
    match unsafe { sys::fork() }.ok()? {
        sys::Forked::Child => {
            let _ = sys::dup_onto(w.as_fd(), 1);
            let _ = sys::dup_onto(w.as_fd(), 2);
            drop(w);
            drop(r);
            let code = berth_container::ops::exec(
                &engine.runtime(),
                id,
                ExecOptions {
                    process: ExecProcess::Args(ExecArgs {
                        args: argv,
                        ..Default::default()
                    }),
                    console_socket: None,
                    preserve_fds: 0,
                    detach: false,
                    pid_file: None,
                    ignore_paused: false,
                },
            );
            match code {
                Ok(c) => sys::exit_now(c),
                Err(e) => {
                    let _ = rustix::io::write(std::io::stderr(), format!("{e}\n").as_bytes());
                    sys::exit_now(crate::error::start_exit_code(&e.to_string()) as i32)
                }
            }
        }
        sys::Forked::Parent(pid) => {
            drop(w);
            if let Ok(flags) = rustix::fs::fcntl_getfl(&r) {
                let _ = rustix::fs::fcntl_setfl(&r, flags | rustix::fs::OFlags::NONBLOCK);
            }
            Some(Probe {
                pid,
                output: r,
                captured: Vec::new(),
                start,
                deadline: Instant::now() + config.timeout,
                timed_out: false,
            })
        }
    }
}
