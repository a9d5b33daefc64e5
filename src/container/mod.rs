//! Containers: the state store under `--root` (one locked directory per id) and the lifecycle
//! verbs. berth does not stay around to watch a container: its status is read from the kernel
//! each time (the init pid and its start time, and whether the exec fifo still exists).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

mod exec;
mod lifecycle;
mod store;

pub use exec::{exec, ExecOptions};
pub use lifecycle::{
    create, delete, kill, listen_fds, parse_signal, pause, resume, run, start, CreateOptions,
};
pub use store::Store;

/// runc's `containerState`, its fields in runc's order (what people diff `state` and `list
/// --format json` against); annotations sorted by key, as Go prints a map.
#[derive(Serialize, Debug)]
pub struct OciState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<&'a str, &'a str>,
    pub owner: &'a str,
}

/// What berth keeps of a container between calls, in ROOT/ID/state.json.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct State {
    pub id: String,
    /// 0 while the container is being created.
    pub pid: i32,
    /// The init process's start time, to tell it from a later process with the same pid.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    pub oci_version: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup_path: String,
    /// Kept for the hooks that run after create: poststart (start) and poststop (delete).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The resctrl group of linux.intelRdt, for exec'd processes and for delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resctrl: Option<crate::resctrl::Group>,
    /// While `create` runs: its own pid and start time. A create whose runtime is gone before
    /// it finished (killed) is then seen as stopped, not "creating" forever; its init does
    /// not outlive it either (it waits for the runtime's commit, and sees the runtime's end
    /// of the socket close instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<(i32, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// Whether the init process exists.
    pub fn has_process(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }
}

pub struct Container {
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    pub fn exec_fifo(&self) -> PathBuf {
        crate::launch::exec_fifo_path(&self.dir)
    }

    pub fn status(&self) -> Status {
        if self.state.pid == 0 {
            // Without a live creator the create was abandoned midway: nothing runs.
            let creating = self
                .state
                .creator
                .is_some_and(|(pid, t)| crate::sys::process_start_time(pid) == Some(t));
            return if creating {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        match crate::sys::process_start_time(self.state.pid) {
            Some(t) if t == self.state.start_time => {
                if self.exec_fifo().exists() {
                    Status::Created
                } else if self.cgroup().and_then(|c| c.is_frozen()).unwrap_or(false) {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    /// The runtime-spec state (runtime.md "State"), as runc prints it (`state`, `list`).
    pub fn oci_state(&self) -> OciState<'_> {
        let status = self.status();
        OciState {
            oci_version: &self.state.oci_version,
            id: &self.state.id,
            pid: if status.has_process() {
                self.state.pid
            } else {
                0
            },
            status: status.as_str(),
            bundle: &self.state.bundle,
            rootfs: &self.state.rootfs,
            created: &self.state.created,
            annotations: self
                .state
                .annotations
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            owner: "",
        }
    }

    /// The state hooks get on stdin (runtime.md "State").
    pub fn hook_state(&self, status: Status) -> serde_json::Value {
        crate::hooks::state_json(
            &self.state.oci_version,
            &self.state.id,
            status.as_str(),
            self.state.pid,
            &self.state.bundle,
            &self.state.annotations,
        )
    }

    pub fn cgroup(&self) -> Result<Box<dyn crate::cgroups::Cgroup>> {
        crate::cgroups::open(&self.state.cgroup_path)
    }

    /// Sends `sig` to init, or with `all` to every process in the cgroup; None is signal
    /// 0, the liveness probe (init's: the status check already looked at the others).
    pub fn signal(&self, sig: Option<Signal>, all: bool) -> Result<()> {
        // Without a cgroup there is no list of its processes: init takes its pid namespace
        // along (as with runc, whose rootless containers are the same).
        let all = all && self.state.cgroup_path != crate::cgroups::NO_CGROUP;
        match sig {
            // Every process ends, even in a container forking as fast as it is killed.
            Some(Signal::SIGKILL) if all => {
                let cg = self.cgroup()?;
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                crate::cgroups::kill_all(cg.as_ref(), deadline)
            }
            Some(sig) if all => {
                let cg = self.cgroup()?;
                crate::cgroups::signal_all(cg.as_ref(), sig)
            }
            _ => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.state.pid), sig).map_err(
                |e| {
                    let name = sig.map_or("0", |s| s.as_str());
                    anyhow!("signal {name} to pid {}: {e}", self.state.pid)
                },
            ),
        }
    }

    /// Kills every process of the container and waits (up to 10 s) until they are gone:
    /// init, and without a pid namespace everything else in its cgroup too (see
    /// `cgroups::kill_all`: a fork bomb is frozen, killed and thawed). Processes left in the
    /// cgroup of a stopped container (init gone, its children not) are ended the same way.
    pub fn kill_and_wait(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut delay = std::time::Duration::from_micros(200);
        if let Ok(cg) = self.cgroup() {
            crate::cgroups::kill_all(cg.as_ref(), deadline)?;
        }
        // Init, when it outlived its cgroup (or has none): one look when it is gone.
        if self.state.pid > 0 && self.status().has_process() {
            let _ = self.signal(Some(Signal::SIGKILL), false);
            while self.status().has_process() {
                if std::time::Instant::now() > deadline {
                    bail!("pid {} did not exit after SIGKILL", self.state.pid);
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(std::time::Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Removes the cgroup and the state directory.
    pub fn destroy(&self) -> Result<()> {
        if let Some(g) = &self.state.resctrl {
            g.destroy();
        }
        self.cgroup()?
            .destroy()
            .with_context(|| format!("remove cgroup {}", self.state.cgroup_path))?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(anyhow!("remove {}: {e}", self.dir.display())),
        }
    }
}

/// runc's rule for ids: letters, digits, `_+-.`, and not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    if id.is_empty()
        || id == "."
        || id == ".."
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c))
    {
        bail!("invalid container id {id:?}: use letters, digits and _ + - . only");
    }
    Ok(())
}

pub fn state_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}
