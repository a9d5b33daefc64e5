//! `exec`: a new process in a running container. As for create, no re-exec of berth: the
//! runtime forks a setup process that joins the container's namespaces (through its init's
//! /proc/PID/ns) and its root, and forks the new process, which then becomes a member of the
//! container's pid namespace.
//!
//! ```text
//!  runtime (P)                 setup (S1)                    process (S2)
//!  fork ─────────────────────▶ non-dumpable, LSM labels,
//!                              setns (user last), chroot
//!                              fork ──────────────────────▶ waits
//!  ◀──────── "pid:N" ───────── exit
//!  put N in the cgroup ─────────────── "placed" ──────────▶ terminal, rlimits, user,
//!                                                            caps, seccomp...
//!  ◀──────────────── EOF (execve closed the socket) or "error:..." ─┘
//! ```
//!
//! The setup process stays non-dumpable from before its first setns to its exit, and the new
//! process until its execve, so that nothing in the container can ptrace them or open their
//! /proc entries while they still hold host fds (CVE-2016-9962).

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::{program, sync};
use crate::cgroups::Cgroup;
use crate::security::seccomp::Filter;
use crate::{namespaces, sys, tty};

pub struct Exec<'a> {
    /// The container's init, and its start time: checked again once its namespaces are open,
    /// so that a recycled pid cannot send the process into someone else's namespaces.
    pub init_pid: i32,
    pub init_start_time: u64,
    /// The container's config as created: its namespaces, seccomp and personality.
    pub spec: &'a Spec,
    pub process: &'a Process,
    /// Where the process's pty master goes (a connected console socket, or the runtime's own
    /// end when it proxies the terminal itself).
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    pub cgroup: &'a dyn Cgroup,
    pub seccomp: Option<&'a Filter>,
    /// The container's state, for a seccomp notify agent (only with a notifying filter).
    pub state: Option<serde_json::Value>,
    /// Wait until the process has exec'd (or failed). Not for a paused container: the process
    /// freezes as soon as it joins the cgroup.
    pub wait_exec: bool,
}

/// Starts the process; returns its pid once it runs the program (or, without `wait_exec`, once
/// it is in the container's cgroup).
pub fn exec(e: Exec) -> Result<i32> {
    let joins = namespaces::open_of_process(e.spec, e.init_pid)?;
    let root = sys::open(
        format!("/proc/{}/root", e.init_pid).as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .context("open the container's root")?;
    if sys::process_start_time(e.init_pid) != Some(e.init_start_time) {
        bail!("the container's init (pid {}) has exited", e.init_pid);
    }
    let runtime_exe = nix::sys::stat::stat("/proc/self/exe")
        .map(|st| (st.st_dev, st.st_ino))
        .context("stat /proc/self/exe")?;
    let (ours, theirs) = sync::pair()?;
    match sys::fork().context("fork")? {
        ForkResult::Child => {
            drop(ours);
            setup_process(&e, &joins, root, theirs, runtime_exe)
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            drop(joins);
            drop(root);
            let mut pid = None;
            let r = parent(&e, child, &ours, &mut pid);
            if r.is_err() {
                let _ = kill(child, Signal::SIGKILL);
                if let Some((_, pidfd)) = &pid {
                    let _ = sys::pidfd_kill(pidfd.as_fd());
                }
            }
            let _ = waitpid(child, None);
            r
        }
    }
}

fn parent(e: &Exec, setup: Pid, sock: &OwnedFd, pid: &mut Option<(i32, OwnedFd)>) -> Result<i32> {
    let (msg, fd) = sync::recv_with_fd(sock.as_fd())?
        .ok_or_else(|| anyhow!("the exec setup process exited during setup"))?;
    if let Some(err) = msg.strip_prefix("error:") {
        bail!("{err}");
    }
    let (p, pidfd) = sync::parse_pid(&msg, fd)
        .ok_or_else(|| anyhow!("unexpected message from the exec setup process: {msg:?}"))?;
    *pid = Some((p, pidfd));
    // The setup process holds the other end too: reap it so that the end closes with the
    // process's execve alone.
    let _ = waitpid(setup, None);
    if let Err(err) = e.cgroup.add_task(p) {
        if let Some(msg) = sync::pending_error(sock.as_fd()) {
            bail!("{msg}");
        }
        return Err(err.context("put the process in the container's cgroup"));
    }
    let _ = sync::send(sock.as_fd(), "placed");
    if !e.wait_exec {
        return Ok(p);
    }
    if e.seccomp.is_some_and(|f| f.uses_notify()) {
        let state = e
            .state
            .as_ref()
            .expect("the state comes with a notifying filter");
        super::pass_seccomp_listener(e.spec, sock, state)?;
    }
    // The socket is close-on-exec: its end of file is the execve.
    match sync::recv(sock.as_fd())? {
        None => Ok(p),
        Some(m) => match m.strip_prefix("error:") {
            Some(err) => bail!("{err}"),
            None => bail!("unexpected message from the exec'd process: {m:?}"),
        },
    }
}

/// S1: joins the container and forks the process; reports its pid and exits.
fn setup_process(
    e: &Exec,
    joins: &[(LinuxNamespaceType, OwnedFd)],
    root: OwnedFd,
    sock: OwnedFd,
    runtime_exe: (u64, u64),
) -> ! {
    let r = (|| -> Result<i32> {
        nix::sys::prctl::set_dumpable(false).context("make the setup process non-dumpable")?;
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
        // Through the host's procfs, before the container's takes its place.
        crate::security::lsm::set_exec_labels(e.process)?;
        if let Some(adj) = e.process.oom_score_adj() {
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|err| anyhow!("process.oomScoreAdj: write {adj}: {err}"))?;
        }
        namespaces::join_all(joins).context("enter the container")?;
        // The container's root as its init sees it: right after pivot_root and with
        // --no-pivot alike (the mount namespace's own root is the host's old root then).
        nix::unistd::fchdir(root.as_raw_fd()).context("enter the container's root")?;
        nix::unistd::chroot(".").context("chroot into the container's root")?;
        nix::unistd::chdir("/").context("chdir /")?;
        drop(root);
        match sys::fork().context("fork the process")? {
            ForkResult::Child => {
                // The namespace fds this process inherited: never handed over, even at a
                // --preserve-fds number (main already refuses numbers the caller left free).
                let joined: Vec<RawFd> = joins.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
                let err = match process(e, &sock, runtime_exe, &joined) {
                    Err(err) => err,
                    Ok(never) => match never {},
                };
                let _ = sync::send(sock.as_fd(), &format!("error:{err:#}"));
                sys::exit_now(127)
            }
            ForkResult::Parent { child } => Ok(child.as_raw()),
        }
    })();
    let r = r.and_then(|pid| sync::send_pid(sock.as_fd(), pid));
    if let Err(err) = r {
        let _ = sync::send(sock.as_fd(), &format!("error:{err:#}"));
    }
    sys::exit_now(0)
}

/// S2, the new process, up to execve.
fn process(
    e: &Exec,
    sock: &OwnedFd,
    runtime_exe: (u64, u64),
    joined: &[RawFd],
) -> Result<std::convert::Infallible> {
    sync::expect(sock.as_fd(), "placed", "runtime")?;
    if e.process.terminal().unwrap_or(false) {
        let console = e
            .console
            .as_ref()
            .ok_or_else(|| anyhow!("process.terminal: a terminal needs --console-socket"))?;
        // The container's /dev/ptmx: the pty belongs to its devpts.
        let (master, slave) = tty::open_pty().context("open a pty in the container")?;
        if let Some(sz) = e.process.console_size() {
            let clamp = |v: u64| v.min(u16::MAX as u64) as u16;
            tty::set_size(master.as_fd(), clamp(sz.height()), clamp(sz.width()))
                .context("process.consoleSize")?;
        }
        tty::send_pty_master(console.as_fd(), master.as_fd())
            .context("send the pty master to the console socket")?;
        drop(master);
        let _ = nix::unistd::close(console.as_raw_fd());
        tty::setup_slave_stdio(&slave).context("make the pty the process's terminal")?;
        tty::chown_terminal(e.process.user().uid())?;
    } else {
        nix::unistd::setsid().context("setsid")?;
    }
    let prepared = program::prepare(
        e.process,
        e.spec.linux().as_ref(),
        e.seccomp,
        sock.as_fd(),
        runtime_exe,
    )?;
    let mut internal = vec![
        sock.as_raw_fd(),
        e.console.as_ref().map_or(-1, |c| c.as_raw_fd()),
    ];
    internal.extend_from_slice(joined);
    Err(program::exec(
        &prepared,
        e.seccomp,
        e.preserve_fds,
        &internal,
    ))
}
