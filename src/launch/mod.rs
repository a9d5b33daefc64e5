//! Forking the container: the runtime (parent) forks a setup process that joins and creates
//! the namespaces and then forks the container's init, which builds the rootfs and waits on the
//! exec fifo. No re-exec of berth: both children run the code already in memory, which is
//! safe because berth is single-threaded.
//!
//! ```text
//!  runtime (P)                setup (S1)                   init (S2, pid 1 in a new pid ns)
//!  fork ───────────────────▶ setns (joined namespaces)
//!                            unshare(user) ─ "userns" ─▶ P writes uid/gid maps ─ "mapped"
//!                            unshare(the rest)
//!                            fork ─────────────────────▶ rootfs: mounts...
//!  ◀──────── "pid:N" ─────── exit
//!  put N in its cgroups  ─────────── "placed" ─────────▶ unshare(cgroup), cgroup mounts,
//!                                                        pivot_root, user, caps...
//!                       ◀──────────── "ready" ────────── read(exec fifo) ... until `start`
//!  write state, exit                                     execve
//! ```
//!
//! Joining a cgroup costs the kernel an RCU grace period (milliseconds on v1); init builds
//! most of its rootfs meanwhile, on the other core.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use crate::bundle::Bundle;
use crate::cgroups::Cgroup;
use crate::hooks;
use crate::namespaces::Plan;

mod exec;
mod init;
mod program;
mod sync;

pub use exec::{exec, Exec};

/// Everything the forked processes need, prepared before the fork.
pub struct Launch<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    /// The runtime's fds the forked processes close first thing (the state lock).
    pub close_in_children: &'a [std::os::fd::RawFd],
    /// The exec fifo, opened O_RDWR by the runtime; init blocks reading it until `start`.
    pub exec_fifo: Option<OwnedFd>,
    /// Where init sends the pty master (a connected console socket, or the runtime's own end
    /// when `run` proxies the terminal).
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub cgroup: &'a dyn Cgroup,
    pub cgroup_v2: bool,
    pub cgroup_sources: Vec<(String, PathBuf)>,
    pub rootless: bool,
    /// Compiled before the fork; init loads it.
    pub seccomp: Option<crate::security::seccomp::Filter>,
}

/// A container whose init is ready: it waits for `commit` before it blocks on the exec fifo.
pub struct Launched {
    pub pid: i32,
    sync: OwnedFd,
}

impl Launched {
    /// Tells init the create is complete (state saved): it then waits for `start`. Dropped
    /// without this, init sees the end of the socket and exits.
    pub fn commit(self) -> Result<()> {
        sync::send(self.sync.as_fd(), "commit").context("tell container init to wait for start")
    }
}

/// Forks the container and waits until its init is ready or failed. On failure every
/// process it started is killed.
pub fn launch(mut l: Launch) -> Result<Launched> {
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
            drop(l.exec_fifo.take());
            let mut init_pid = None;
            let r = parent(&l, &plan, child, &p1, &p2, &mut init_pid);
            if r.is_err() {
                let _ = kill(child, Signal::SIGKILL);
                if let Some((_, pidfd)) = &init_pid {
                    let _ = crate::sys::pidfd_kill(pidfd.as_fd());
                }
            }
            let _ = waitpid(child, None);
            r.map(|pid| Launched { pid, sync: p2 })
        }
    }
}

fn parent(
    l: &Launch,
    plan: &Plan,
    setup: Pid,
    s1: &OwnedFd,
    s2: &OwnedFd,
    init_pid: &mut Option<(i32, OwnedFd)>,
) -> Result<i32> {
    loop {
        let (msg, fd) = sync::recv_with_fd(s1.as_fd())?
            .ok_or_else(|| anyhow!("container setup process exited during setup"))?;
        if msg == "userns" {
            plan.write_id_maps(setup.as_raw())?;
            sync::send(s1.as_fd(), "mapped")?;
        } else if msg.starts_with("pid:") {
            *init_pid =
                Some(sync::parse_pid(&msg, fd).ok_or_else(|| anyhow!("bad pid message {msg:?}"))?);
            break;
        } else if let Some(e) = msg.strip_prefix("error:") {
            bail!("{e}");
        } else {
            bail!("unexpected message from setup process: {msg:?}");
        }
    }
    let pid = init_pid.as_ref().expect("set above").0;
    if let Err(e) = l.cgroup.add_task(pid) {
        // Init may have failed meanwhile: its own message says more than ESRCH would.
        if let Some(msg) = sync::pending_error(s2.as_fd()) {
            bail!("{msg}");
        }
        return Err(e.context("put the container in its cgroup"));
    }
    let spec = &l.bundle.spec;
    if let Some(devs) = spec
        .linux()
        .as_ref()
        .and_then(|x| x.net_devices().as_ref())
        .filter(|d| !d.is_empty())
    {
        // From the runtime, into init's network namespace, before any hook sees it.
        let ns = crate::sys::open(
            format!("/proc/{pid}/ns/net").as_str(),
            nix::fcntl::OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .context("open the container's network namespace")?;
        crate::netdev::move_into(devs, ns.as_fd())?;
    }
    let state = hooks::state_json(
        spec.version(),
        l.id,
        "creating",
        pid,
        &l.bundle.dir,
        spec.annotations().as_ref().unwrap_or(&Default::default()),
    );
    // In the runtime's namespaces, after the container's exist and before pivot_root (init
    // waits for "placed" before it gets there).
    hooks::run_all(spec.hooks().as_ref(), hooks::Kind::Prestart, &state)?;
    hooks::run_all(spec.hooks().as_ref(), hooks::Kind::CreateRuntime, &state)?;
    // A failed send means init is gone; what it said before going is read next. The state
    // goes along for the hooks init runs itself.
    let _ = sync::send(s2.as_fd(), &format!("placed:{state}"));
    if l.seccomp.as_ref().is_some_and(|f| f.uses_notify()) {
        // Init loads a notifying filter before "ready" and hands us the listener, which goes
        // to the agent at listenerPath while init still waits (runtime-spec seccomp notify).
        pass_seccomp_listener(spec, s2, &state)?;
    }
    sync::expect(s2.as_fd(), "ready", "container init")?;
    Ok(pid)
}

/// Receives the seccomp notify listener from a process over `sock` and sends it, with the
/// container's state, to the agent at linux.seccomp.listenerPath.
fn pass_seccomp_listener(
    spec: &oci_spec::runtime::Spec,
    sock: &OwnedFd,
    state: &serde_json::Value,
) -> Result<()> {
    let fd = sync::recv_fd(sock.as_fd(), "seccomp")?;
    let sc = spec
        .linux()
        .as_ref()
        .and_then(|x| x.seccomp().as_ref())
        .expect("a filter comes from linux.seccomp");
    let path = sc
        .listener_path()
        .as_ref()
        .expect("checked: notify needs listenerPath");
    crate::security::seccomp::send_listener(
        path,
        sc.listener_metadata().as_deref().unwrap_or(""),
        state,
        fd.as_fd(),
    )
    .with_context(|| format!("linux.seccomp.listenerPath {}", path.display()))
}

/// Where a fifo path is shown in errors; kept here so `start` and `create` agree.
pub fn exec_fifo_path(state_dir: &Path) -> PathBuf {
    state_dir.join("exec.fifo")
}
