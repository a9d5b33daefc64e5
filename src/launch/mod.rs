//! Forking the container: the runtime (parent) forks a setup process that joins and creates
//! the namespaces and then forks the container's init, which builds the rootfs and waits on the
//! exec fifo. No re-exec of berth: both children run the code already in memory, which is
//! safe because berth is single-threaded.
//!
//! ```text
//!  runtime (P)                setup (S1)                   init (S2, pid 1 in a new pid ns)
//!  fork ───────────────────▶ wait "go"
//!  join cgroup, send "go"    setns (joined namespaces)
//!                            unshare(user) ─ "userns" ─▶ P writes uid/gid maps ─ "mapped"
//!                            unshare(the rest)
//!                            fork ─────────────────────▶ rootfs, pivot_root, user, caps...
//!  ◀──────── "pid:N" ─────── exit                        "ready" ───▶ P writes state, exits
//!                                                        read(exec fifo) ... `start` writes
//!                                                        execve
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::namespaces::Plan;

mod init;
mod sync;

/// Everything the forked processes need, prepared before the fork.
pub struct Launch<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    /// The exec fifo, opened O_RDWR by the runtime; init blocks reading it until `start`.
    pub exec_fifo: OwnedFd,
    /// Where init sends the pty master (a connected console socket, or the runtime's own end
    /// when `run` proxies the terminal).
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub cgroup: &'a dyn Cgroup,
    pub cgroup_v2: bool,
    pub cgroup_sources: Vec<(String, PathBuf)>,
}

/// Forks the container and waits until its init is ready (blocked on the exec fifo) or failed.
/// Returns init's pid. On failure every process it started is killed.
pub fn launch(l: Launch) -> Result<i32> {
    let plan = Plan::new(&l.bundle.spec)?;
    let (p1, c1) = sync::pair()?;
    let (p2, c2) = sync::pair()?;
    match crate::sys::fork().context("fork")? {
        ForkResult::Child => {
            drop(p1);
            drop(p2);
            init::setup_process(&l, &plan, c1, c2)
        }
        ForkResult::Parent { child } => {
            drop(c1);
            drop(c2);
            // Only init may hold the fifo: once it is gone, `start` must see no reader.
            drop(l.exec_fifo);
            let mut init_pid = None;
            let r = parent(l.cgroup, &plan, child, &p1, &p2, &mut init_pid);
            if r.is_err() {
                let _ = kill(child, Signal::SIGKILL);
                if let Some(p) = init_pid {
                    let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                }
            }
            let _ = waitpid(child, None);
            r
        }
    }
}

fn parent(
    cgroup: &dyn Cgroup,
    plan: &Plan,
    setup: Pid,
    s1: &OwnedFd,
    s2: &OwnedFd,
    init_pid: &mut Option<i32>,
) -> Result<i32> {
    cgroup
        .add_task(setup.as_raw())
        .context("put the container in its cgroup")?;
    sync::send(s1.as_fd(), "go")?;
    loop {
        let msg = sync::recv(s1.as_fd())?
            .ok_or_else(|| anyhow!("container setup process exited during setup"))?;
        if msg == "userns" {
            plan.write_id_maps(setup.as_raw())?;
            sync::send(s1.as_fd(), "mapped")?;
        } else if let Some(p) = msg.strip_prefix("pid:") {
            *init_pid = Some(p.parse().map_err(|_| anyhow!("bad pid message {p:?}"))?);
            break;
        } else if let Some(e) = msg.strip_prefix("error:") {
            bail!("{e}");
        } else {
            bail!("unexpected message from setup process: {msg:?}");
        }
    }
    sync::expect(s2.as_fd(), "ready", "container init")?;
    Ok(init_pid.expect("set above"))
}

/// Where a fifo path is shown in errors; kept here so `start` and `create` agree.
pub fn exec_fifo_path(state_dir: &Path) -> PathBuf {
    state_dir.join("exec.fifo")
}
