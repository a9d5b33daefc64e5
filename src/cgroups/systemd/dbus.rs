//! The few calls berth makes to systemd's manager over D-Bus, blocking, on libdbus (the
//! `dbus` crate, statically built): it starts no thread, so a connection is safe in a
//! process that forks (and its socket is close-on-exec).
//!
//! Starting a unit costs two round trips: the bus's Hello (made by the connect) and
//! StartTransientUnit. The match rule for JobRemoved goes out just before the call
//! without waiting for its reply (the bus applies a connection's messages in order), and
//! the signal is then read off the same socket.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use dbus::arg::{RefArg, Variant};
use dbus::channel::{BusType, Channel};
use dbus::message::MessageType;
use dbus::Message;

use super::props::{Prop, Value};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long berth waits for systemd to answer and to finish a job.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Bus {
    ch: Channel,
    /// Method calls that waited for their reply (Hello included): the round trips.
    pub round_trips: u32,
}

type Props = Vec<(&'static str, Variant<Box<dyn RefArg>>)>;

fn to_dbus(props: &[Prop]) -> Props {
    props
        .iter()
        .map(|(k, v)| {
            let b: Box<dyn RefArg> = match v {
                Value::Bool(b) => Box::new(*b),
                Value::U64(n) => Box::new(*n),
                Value::Str(s) => Box::new(s.clone()),
                Value::Strs(v) => Box::new(v.clone()),
                Value::U32s(v) => Box::new(v.clone()),
                Value::Bytes(v) => Box::new(v.clone()),
                Value::PathU64s(v) => Box::new(v.clone()),
                Value::PathStrs(v) => Box::new(v.clone()),
            };
            (*k, Variant(b))
        })
        .collect()
}

fn call(method: &str) -> Result<Message> {
    Message::new_method_call(DEST, PATH, MANAGER, method)
        .map_err(|e| anyhow!("D-Bus message {method}: {e}"))
}

/// True when the D-Bus error `e` is systemd's "no such unit".
fn no_such_unit(e: &dbus::Error) -> bool {
    e.name() == Some("org.freedesktop.systemd1.NoSuchUnit")
}

fn describe(e: &dbus::Error) -> String {
    format!(
        "{} ({})",
        e.message().unwrap_or("no message"),
        e.name().unwrap_or("unnamed error")
    )
}

impl Bus {
    /// Connects to the system bus (systemd's manager for root).
    pub fn system() -> Result<Bus> {
        let ch = Channel::get_private(BusType::System).map_err(|e| {
            anyhow!(
                "--systemd-cgroup: connect to the system bus (is systemd running with D-Bus?): {}",
                describe(&e)
            )
        })?;
        Ok(Bus { ch, round_trips: 1 })
    }

    /// Connects to the user's own bus (its systemd user manager, rootless): the session
    /// bus's address, else $XDG_RUNTIME_DIR/bus, where systemd's dbus.socket puts it.
    pub fn user() -> Result<Bus> {
        let addr = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(a) if !a.is_empty() => a,
            _ => match std::env::var("XDG_RUNTIME_DIR") {
                Ok(x) if !x.is_empty() => format!("unix:path={x}/bus"),
                _ => bail!(
                    "--systemd-cgroup, rootless: neither DBUS_SESSION_BUS_ADDRESS nor \
                     XDG_RUNTIME_DIR is set: no way to reach the user's systemd"
                ),
            },
        };
        let fail = |e: &dbus::Error| {
            anyhow!(
                "--systemd-cgroup, rootless: connect to the user's bus {addr} (is the user's \
                 systemd running, with dbus-user-session? loginctl enable-linger): {}",
                describe(e)
            )
        };
        let mut ch = Channel::open_private(&addr).map_err(|e| fail(&e))?;
        ch.register().map_err(|e| fail(&e))?;
        Ok(Bus { ch, round_trips: 1 })
    }

    fn call(&mut self, msg: Message) -> Result<Message, dbus::Error> {
        self.round_trips += 1;
        self.ch.send_with_reply_and_block(msg, JOB_TIMEOUT)
    }

    /// Subscribes to JobRemoved for the jobs of `unit` only (sent without waiting for the
    /// reply: no round trip of its own).
    fn watch_jobs_of(&mut self, unit: &str) -> Result<()> {
        let rule = format!(
            "type='signal',sender='{DEST}',path='{PATH}',interface='{MANAGER}',\
             member='JobRemoved',arg2='{unit}'"
        );
        let m = Message::new_method_call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
        )
        .map_err(|e| anyhow!("D-Bus message AddMatch: {e}"))?
        .append1(rule);
        self.ch
            .send(m)
            .map(drop)
            .map_err(|()| anyhow!("D-Bus: send AddMatch: the connection is gone"))
    }

    /// Asks systemd to start a transient unit; returns its job, for `wait_start`. Once
    /// this succeeds the unit is the caller's (a unit of that name that was there already
    /// makes it fail).
    pub fn start_transient(&mut self, unit: &str, props: &[Prop]) -> Result<dbus::Path<'static>> {
        self.watch_jobs_of(unit)?;
        let start = || -> Result<Message> {
            let aux: Vec<(&str, Props)> = Vec::new();
            Ok(call("StartTransientUnit")?
                .append3(unit, "replace", to_dbus(props))
                .append1(aux))
        };
        let reply = match self.call(start()?) {
            // A failed unit of that name left by an earlier container: let systemd forget
            // it and try once more, as runc does.
            Err(e) if e.name() == Some("org.freedesktop.systemd1.UnitExists") => {
                self.reset_failed(unit);
                self.call(start()?)
            }
            r => r,
        }
        .map_err(|e| anyhow!("systemd: start unit {unit}: {}", describe(&e)))?;
        reply
            .read1::<dbus::Path>()
            .map(|p| p.into_static())
            .map_err(|e| anyhow!("systemd: start unit {unit}: odd reply: {e}"))
    }

    /// Waits until the start `job` of `unit` is done.
    pub fn wait_start(&mut self, unit: &str, job: &dbus::Path) -> Result<()> {
        self.wait_job(unit, job, "start")
    }

    /// Waits for the JobRemoved signal of `job` (its result must be "done").
    fn wait_job(&mut self, unit: &str, job: &dbus::Path, what: &str) -> Result<()> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            while let Some(mut m) = self.ch.pop_message() {
                if m.msg_type() == MessageType::Error {
                    // Only the AddMatch call may answer with an error here.
                    if let Err(e) = m.as_result() {
                        bail!(
                            "systemd: {what} unit {unit}: watch its job: {}",
                            describe(&e)
                        );
                    }
                }
                if m.msg_type() != MessageType::Signal
                    || m.member().as_deref() != Some("JobRemoved")
                {
                    continue;
                }
                let Ok((_, path, _, result)) = m.read4::<u32, dbus::Path, String, String>() else {
                    continue;
                };
                if path != *job {
                    continue;
                }
                if result != "done" {
                    bail!("systemd: {what} unit {unit}: the job ended {result:?}, not \"done\"");
                }
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "systemd: {what} unit {unit}: no answer within {} s",
                    JOB_TIMEOUT.as_secs()
                );
            }
            self.ch
                .read_write(Some(left.min(Duration::from_millis(500))))
                .map_err(|()| anyhow!("systemd: {what} unit {unit}: the bus connection closed"))?;
        }
    }

    /// Stops a unit and waits for the job; a unit that is not there is fine.
    pub fn stop(&mut self, unit: &str) -> Result<()> {
        self.watch_jobs_of(unit)?;
        let m = call("StopUnit")?.append2(unit, "replace");
        match self.call(m) {
            Ok(reply) => {
                let job: dbus::Path = reply
                    .read1()
                    .map_err(|e| anyhow!("systemd: stop unit {unit}: odd reply: {e}"))?;
                if self.wait_job(unit, &job, "stop").is_ok() {
                    return Ok(());
                }
                // A job that ends otherwise than "done" may leave a failed unit behind.
            }
            Err(e) if no_such_unit(&e) => return Ok(()),
            Err(e) => bail!("systemd: stop unit {unit}: {}", describe(&e)),
        }
        self.reset_failed(unit);
        Ok(())
    }

    /// Lets systemd forget a failed unit (best effort).
    pub fn reset_failed(&mut self, unit: &str) {
        if let Ok(m) = call("ResetFailedUnit") {
            let _ = self.call(m.append1(unit));
        }
    }

    /// Changes the properties of a running unit (runtime only, as runc does).
    pub fn set_properties(&mut self, unit: &str, props: &[Prop]) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        let m = call("SetUnitProperties")?.append3(unit, true, to_dbus(props));
        self.call(m)
            .map_err(|e| anyhow!("systemd: set properties of unit {unit}: {}", describe(&e)))?;
        Ok(())
    }
}
