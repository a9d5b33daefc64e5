//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient
//! unit of systemd (a scope, or a slice when NAME ends in ".slice"), started over D-Bus
//! with the init pid in it, `Delegate=yes` and the resources systemd knows as unit
//! properties. Everything else is the cgroup v2 backend's work on the unit's cgroup: the
//! files systemd has no property for (hugetlb, rdma, unified, the eBPF device filter) are
//! written by the v2 writers, and placement of exec'd processes, pids, freezing, stats and
//! kills go to the cgroup directly, as runc's systemd driver does.
//!
//! The D-Bus connection is only opened by `add_task` of the first pid (after the last
//! fork of `create`), `apply` on a running unit (`update`) and `destroy`: the other verbs
//! never talk to systemd, and a container without `--systemd-cgroup` never gets here.
//!
//! The stored path is `systemd:/REL` (REL: the unit's cgroup under the cgroup2 root, whose
//! last component is the unit's name).

use std::cell::RefCell;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use oci_spec::runtime::LinuxResources;

use super::{Cgroup, Dir, Host, Mode};

mod dbus;
pub mod props;

/// The prefix of a stored cgroup path that belongs to this driver.
pub const PREFIX: &str = "systemd:";
/// After PREFIX: the unit is the user's systemd's (rootless), not the system's.
const USER: &str = "user:";

/// The stored path for `linux.cgroupsPath` under the systemd driver; fails with an error
/// naming `linux.cgroupsPath` for a path not in runc's `SLICE:PREFIX:NAME` form, and on a
/// host that is not pure cgroup v2.
///
/// `user`: rootless, the unit goes to the user's own systemd (as runc's rootless systemd
/// driver), whose cgroups are under /user.slice/user-UID.slice/user@UID.service and whose
/// default slice is user.slice.
pub fn resolve(cgroups_path: Option<&str>, id: &str, user: bool) -> Result<String> {
    let p = props::placement(
        cgroups_path,
        id,
        if user { "user.slice" } else { "system.slice" },
    )?;
    unified_mount(&Host::read()?)?;
    if user {
        let uid = nix::unistd::geteuid();
        return Ok(format!(
            "{PREFIX}{USER}/user.slice/user-{uid}.slice/user@{uid}.service{}",
            p.rel
        ));
    }
    Ok(format!("{PREFIX}{}", p.rel))
}

fn unified_mount(host: &Host) -> Result<PathBuf> {
    if host.mode != Mode::Unified {
        bail!(
            "--systemd-cgroup: berth's systemd driver needs a pure cgroup v2 host (this one \
             has {} cgroups); use the default cgroupfs driver",
            if host.mode == Mode::Hybrid {
                "hybrid"
            } else {
                "v1"
            }
        );
    }
    host.hierarchies
        .iter()
        .find(|h| h.v2)
        .map(|h| h.mountpoint.clone())
        .ok_or_else(|| anyhow!("--systemd-cgroup: no cgroup2 hierarchy is mounted"))
}

pub struct Systemd {
    v2: super::v2::V2,
    dir: Dir,
    unit: String,
    /// The slice the unit belongs to (scopes: Slice=, slices: Wants=).
    slice: String,
    /// The user's systemd (rootless), not the system's.
    user: bool,
    phase: RefCell<Phase>,
}

/// Where the unit is in its life, as this process knows it.
enum Phase {
    /// Set by `create`: the unit is not started yet. `apply` keeps the resources for the
    /// start, which happens when the first pid is added.
    Pending(Option<Box<LinuxResources>>),
    /// systemd refused to start it (a unit of that name exists): not ours to stop.
    Refused,
    /// Started here, or a container's unit opened from its state.
    Ours,
}

/// The backend for a stored `systemd:/REL` path.
pub fn open(stored: &str) -> Result<Box<dyn Cgroup>> {
    let rel = stored
        .strip_prefix(PREFIX)
        .ok_or_else(|| anyhow!("bad systemd cgroup path {stored:?}"))?;
    let (user, rel) = match rel.strip_prefix(USER) {
        Some(r) => (true, r),
        None => (false, rel),
    };
    if !rel.starts_with('/') || rel.len() < 2 {
        bail!("bad systemd cgroup path {stored:?}");
    }
    let mountpoint = unified_mount(&Host::read()?)?;
    let parts = super::components(rel)?;
    let unit = parts
        .last()
        .map(|s| s.to_string())
        .ok_or_else(|| anyhow!("bad systemd cgroup path {stored:?}"))?;
    // The parent slice, by name: the last slice component, or "-.slice" at the root (of
    // the system, or of the user's manager, whose root is its user@UID.service).
    let slice = parts
        .len()
        .checked_sub(2)
        .map(|i| parts[i].to_string())
        .filter(|s| s.ends_with(".slice"))
        .unwrap_or_else(|| "-.slice".into());
    let dir = Dir {
        key: String::new(),
        v2: true,
        mountpoint,
        rel: format!("/{}", parts.join("/")),
    };
    Ok(Box::new(Systemd {
        v2: super::v2::V2::new(dir.clone()),
        dir,
        unit,
        slice,
        user,
        phase: RefCell::new(Phase::Ours),
    }))
}

impl Systemd {
    fn bus(&self) -> Result<dbus::Bus> {
        if self.user {
            dbus::Bus::user()
        } else {
            dbus::Bus::system()
        }
    }

    fn ours(&self) -> bool {
        matches!(*self.phase.borrow(), Phase::Ours)
    }

    /// Starts the unit with `pid` in it and the resources as properties, waits for the
    /// job, then writes the resources to the cgroup files.
    fn start(&self, pid: i32, r: Option<&LinuxResources>) -> Result<()> {
        let placement = props::Placement {
            slice: self.slice.clone(),
            unit: self.unit.clone(),
            rel: self.dir.rel.clone(),
        };
        let scope = self.unit.ends_with(".scope");
        let mut p = props::base(&placement, Some(pid));
        if let Some(r) = r {
            p.extend(props::resources(r)?);
        }
        let mut bus = self.bus()?;
        let job = match bus.start_transient(&self.unit, &p) {
            Ok(job) => job,
            Err(e) => {
                *self.phase.borrow_mut() = Phase::Refused;
                return Err(e);
            }
        };
        *self.phase.borrow_mut() = Phase::Ours;
        if let Err(e) = bus.wait_start(&self.unit, &job) {
            bus.reset_failed(&self.unit);
            return Err(e);
        }
        crate::log::debug(&format!(
            "systemd: unit {} started ({} D-Bus round trips)",
            self.unit, bus.round_trips
        ));
        if !scope {
            // A slice takes no PIDs property: the pid joins its cgroup directly.
            self.v2.add_task(pid)?;
        }
        if let Some(r) = r {
            self.v2.apply(r)?;
        }
        Ok(())
    }
}

impl Cgroup for Systemd {
    fn create(&self) -> Result<()> {
        *self.phase.borrow_mut() = Phase::Pending(None);
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        let pending = match &mut *self.phase.borrow_mut() {
            Phase::Pending(r) => Some(r.take()),
            _ => None,
        };
        match pending {
            Some(r) => self.start(pid, r.as_deref()),
            None => self.v2.add_task(pid),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Before the start, or when systemd refused it, the cgroup at this path is not
        // ours (it may be another unit's of the same name).
        if !self.ours() {
            return Ok(Vec::new());
        }
        self.v2.pids()
    }

    fn destroy(&self) -> Result<()> {
        if !self.ours() {
            return Ok(());
        }
        let mut bus = self.bus()?;
        bus.stop(&self.unit)?;
        crate::log::debug(&format!(
            "systemd: unit {} stopped ({} D-Bus round trips)",
            self.unit, bus.round_trips
        ));
        self.v2.destroy()
    }

    fn mount_sources(&self) -> Result<Vec<(String, PathBuf)>> {
        self.v2.mount_sources()
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        if let Phase::Pending(p) = &mut *self.phase.borrow_mut() {
            // Converted now too, so a value systemd cannot take fails before the fork.
            props::resources(r)?;
            *p = Some(Box::new(r.clone()));
            return Ok(());
        }
        let p = props::resources(r)?;
        if !p.is_empty() {
            self.bus()?.set_properties(&self.unit, &p)?;
        }
        self.v2.apply(r)
    }

    fn freeze(&self) -> Result<()> {
        self.v2.freeze()
    }

    fn thaw(&self) -> Result<()> {
        self.v2.thaw()
    }

    fn is_frozen(&self) -> Result<bool> {
        self.v2.is_frozen()
    }

    fn frozen_effective(&self) -> Result<bool> {
        self.v2.frozen_effective()
    }

    fn stats(&self) -> Result<serde_json::Value> {
        self.v2.stats()
    }

    fn oom_kills(&self) -> Result<u64> {
        self.v2.oom_kills()
    }

    fn memory_usage(&self) -> Result<Option<u64>> {
        if !self.ours() {
            return Ok(None);
        }
        self.v2.memory_usage()
    }

    fn kill_atomic(&self) -> Result<bool> {
        if !self.ours() {
            return Ok(true); // nothing of ours to kill
        }
        self.v2.kill_atomic()
    }
}
