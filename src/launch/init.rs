//! What runs in the forked processes: the setup process (namespaces) and the container's init
//! (rootfs, process attributes, exec fifo, execve). Neither returns: each ends in execve or
//! _exit, after telling the runtime what went wrong.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::{ForkResult, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::{program, sync, Launch};
use crate::bundle::new_namespace;
use crate::namespaces::Plan;
use crate::{hooks, rootfs, sys, tty};

fn exit(code: i32) -> ! {
    // _exit: no atexit handlers or buffered output of the runtime's run twice.
    sys::exit_now(code)
}

/// S1: joins and creates namespaces, forks init, reports its pid, exits.
pub fn setup_process(l: &Launch, plan: &Plan, s1: OwnedFd, s2: OwnedFd) -> ! {
    // If the runtime dies mid-setup, nothing should be left waiting for it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    for fd in l.close_in_children {
        let _ = nix::unistd::close(*fd);
    }
    let r = (|| -> Result<i32> {
        // Until init's execve nobody else may open this process's /proc entries (its exe
        // above all, CVE-2019-5736; its memory, CVE-2016-9962): a process of another
        // container in the same pid namespace, or one `exec`'d into this one, would
        // otherwise reach them. Init inherits it; execve resets it.
        //
        // Unprivileged, its /proc entries must stay the user's until the runtime (or
        // newuidmap) has written its id maps: a non-dumpable process's are root's.
        let unprivileged = !nix::unistd::geteuid().is_root();
        if !(unprivileged && plan.new_user) {
            nix::sys::prctl::set_dumpable(false).context("make the setup process non-dumpable")?;
        }
        if let Some(adj) = l
            .bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.oom_score_adj())
        {
            // Through the host's procfs, for this process's own entry, before it is owned by
            // a user namespace's root; init inherits the value.
            std::fs::write("/proc/self/oom_score_adj", adj.to_string())
                .map_err(|e| anyhow!("process.oomScoreAdj: write {adj}: {e}"))?;
        }
        // Forked while this process still has the host's privileges: it opens the bind
        // sources once the container's mount namespace exists.
        // Not for an unprivileged runtime: it may not enter a mount namespace it does not
        // own, and the container's root is the same host user, who reaches what it does.
        let opener = if plan.new_user
            && !unprivileged
            && !plan.joins(LinuxNamespaceType::Mount)
            && crate::bundle::has_namespace(&l.bundle.spec, LinuxNamespaceType::Mount)
            && has_bind_mounts(&l.bundle.spec)
        {
            Some(SourceOpener::fork(l)?)
        } else {
            None
        };
        plan.join()?;
        if plan.new_user {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .context("unshare user namespace")?;
            sync::send(s1.as_fd(), "userns")?;
            sync::expect(s1.as_fd(), "mapped", "runtime")?;
            if unprivileged {
                nix::sys::prctl::set_dumpable(false)
                    .context("make the setup process non-dumpable")?;
            }
            if plan.root_mapped() {
                nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                    .context("become root in the user namespace (gid)")?;
                nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                    .context("become root in the user namespace (uid)")?;
            }
        }
        plan.unshare_rest()?;
        let bind_sources = match opener {
            Some(o) => o.open_in_own_mount_namespace()?,
            None => Vec::new(),
        };
        match sys::fork().context("fork init")? {
            ForkResult::Child => {
                // S1's end is for S1 alone; init never returns, so close it by number.
                let _ = nix::unistd::close(s1.as_raw_fd());
                let _ = nix::sys::prctl::set_pdeathsig(None);
                let e = match container_init(l, plan, &s2, &bind_sources) {
                    Err(e) => e,
                    Ok(never) => match never {},
                };
                let _ = sync::send(s2.as_fd(), &format!("error:{e:#}"));
                exit(1)
            }
            ForkResult::Parent { child } => Ok(child.as_raw()),
        }
    })();
    match r {
        Ok(pid) => {
            if let Err(e) = sync::send_pid(s1.as_fd(), pid) {
                let _ = sync::send(s1.as_fd(), &format!("error:{e:#}"));
                exit(1)
            }
            exit(0)
        }
        Err(e) => {
            let _ = sync::send(s1.as_fd(), &format!("error:{e:#}"));
            exit(1)
        }
    }
}

fn has_bind_mounts(spec: &oci_spec::runtime::Spec) -> bool {
    spec.mounts().iter().flatten().any(rootfs::mount::is_bind)
}

/// A child of the setup process that keeps the host's user namespace (and so its root's
/// privileges) while the setup process enters the container's: given the container's new
/// mount namespace, it joins it and opens every bind source there. A mount must be bound
/// from the namespace it is bound into, and in a user namespace mapped to an unprivileged
/// host uid init could not reach a source under a directory only the host's root may
/// search. runc's parent opens the sources the same way.
struct SourceOpener {
    sock: OwnedFd,
    pid: nix::unistd::Pid,
    mounts: usize,
}

impl SourceOpener {
    fn fork(l: &Launch) -> Result<SourceOpener> {
        let (ours, theirs) = sync::pair()?;
        let mounts = l.bundle.spec.mounts().as_deref().unwrap_or(&[]);
        match sys::fork().context("fork the bind source opener")? {
            ForkResult::Child => {
                drop(ours);
                let r = (|| -> Result<()> {
                    let userns = sync::recv_fd(theirs.as_fd(), "userns")?;
                    let ns = sync::recv_fd(theirs.as_fd(), "mntns")?;
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
                        .context("join the container's mount namespace")?;
                    let fds = rootfs::mount::open_bind_sources(
                        mounts,
                        &l.bundle.dir,
                        Some(userns.as_fd()),
                    )?;
                    for (i, fd) in fds.iter().enumerate() {
                        if let Some(fd) = fd {
                            sync::send_fd(theirs.as_fd(), &format!("source:{i}"), fd.as_fd())?;
                        }
                    }
                    sync::send(theirs.as_fd(), "sources")
                })();
                if let Err(e) = r {
                    let _ = sync::send(theirs.as_fd(), &format!("error:{e:#}"));
                    exit(1)
                }
                exit(0)
            }
            ForkResult::Parent { child } => Ok(SourceOpener {
                sock: ours,
                pid: child,
                mounts: mounts.len(),
            }),
        }
    }

    /// Hands the opener this process's (new) mount namespace and collects the sources, by
    /// mount index.
    fn open_in_own_mount_namespace(self) -> Result<Vec<Option<OwnedFd>>> {
        let r = (|| -> Result<Vec<Option<OwnedFd>>> {
            let ns = sys::open(
                "/proc/self/ns/mnt",
                nix::fcntl::OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
            )
            .context("open the container's mount namespace")?;
            let userns = sys::open(
                "/proc/self/ns/user",
                nix::fcntl::OFlag::O_RDONLY,
                nix::sys::stat::Mode::empty(),
            )
            .context("open the container's user namespace")?;
            sync::send_fd(self.sock.as_fd(), "userns", userns.as_fd())?;
            sync::send_fd(self.sock.as_fd(), "mntns", ns.as_fd())?;
            let mut out: Vec<Option<OwnedFd>> = (0..self.mounts).map(|_| None).collect();
            loop {
                let (msg, fd) = sync::recv_with_fd(self.sock.as_fd())?
                    .ok_or_else(|| anyhow!("the bind source opener exited"))?;
                if msg == "sources" {
                    return Ok(out);
                }
                if let Some(e) = msg.strip_prefix("error:") {
                    bail!("{e}");
                }
                let slot = msg
                    .strip_prefix("source:")
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| out.get_mut(i))
                    .ok_or_else(|| anyhow!("unexpected message from the source opener: {msg:?}"))?;
                *slot = Some(fd.ok_or_else(|| anyhow!("{msg} came without its fd"))?);
            }
        })();
        let _ = nix::sys::wait::waitpid(self.pid, None);
        r
    }
}

/// S2, the container's init, up to execve.
fn container_init(
    l: &Launch,
    plan: &Plan,
    s2: &OwnedFd,
    bind_sources: &[Option<OwnedFd>],
) -> Result<Infallible> {
    let spec = &l.bundle.spec;
    let proc_ = spec.process().as_ref().expect("checked by bundle");
    let terminal = proc_.terminal().unwrap_or(false);
    if !terminal {
        nix::unistd::setsid().context("setsid")?;
    }
    // Modes in config.json (devices, tmpfs) are meant exactly; umask is set for the process
    // itself just before exec.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    // Who we are on the host, for the CVE-2019-5736 check before execve.
    let runtime_exe = nix::sys::stat::stat("/proc/self/exe")
        .map(|st| (st.st_dev, st.st_ino))
        .context("stat /proc/self/exe")?;
    if !l.no_new_keyring {
        match sys::join_session_keyring(l.id) {
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => bail!("join a new session keyring: {e}"),
        }
    }
    // A rootless runtime is as unprivileged on the host as a container in a user namespace:
    // no mknod, locked mount flags. Rootless already says it: an ordinary user's config has
    // a user namespace (rootless::check_config), and a rootless root is root of one
    // (rootless Podman), so no second read of /proc/self/uid_map here.
    let in_userns = crate::bundle::has_namespace(spec, LinuxNamespaceType::User) || l.rootless;
    let mut hook_state: Option<serde_json::Value> = None;
    let mut wait_placed = || -> Result<()> {
        if hook_state.is_none() {
            let msg =
                sync::recv(s2.as_fd())?.ok_or_else(|| anyhow!("runtime exited during setup"))?;
            let state = msg
                .strip_prefix("placed:")
                .ok_or_else(|| anyhow!("unexpected message from runtime: {msg:?}"))?;
            hook_state = Some(serde_json::from_str(state).context("state from runtime")?);
            plan.unshare_cgroupns()?;
        }
        Ok(())
    };
    // Without a mount namespace of its own the container shares the host's mount table:
    // nothing is mounted (the config check refused what would be), init only chroots.
    let own_mounts = crate::bundle::has_namespace(spec, LinuxNamespaceType::Mount);
    let root = if !own_mounts {
        sys::open(
            &l.bundle.rootfs,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open rootfs {}", l.bundle.rootfs.display()))?
    } else {
        rootfs::prepare(&mut rootfs::Setup {
            spec,
            rootfs: &l.bundle.rootfs,
            bundle: &l.bundle.dir,
            in_userns,
            cgroup_sources: &l.cgroup_sources,
            cgroup_v2: l.cgroup_v2,
            new_cgroupns: new_namespace(spec, LinuxNamespaceType::Cgroup),
            rootless: l.rootless,
            bind_sources,
            before_cgroup_mount: &mut wait_placed,
        })
        .context("rootfs")?
    };
    wait_placed()?;
    let mut hook_state = hook_state.expect("set by wait_placed");
    // In the container's namespaces, before pivot_root.
    hooks::run_all_in(
        spec.hooks().as_ref(),
        hooks::Kind::CreateContainer,
        &hook_state,
        Some(&l.bundle.rootfs),
    )?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| anyhow!("hostname: set {h:?}: {e}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sys::setdomainname(d).map_err(|e| anyhow!("domainname: set {d:?}: {e}"))?;
    }
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        crate::sysctl::apply(s).context("linux.sysctl")?;
    }
    // Through the host's procfs, before the container's /proc takes its place.
    crate::security::lsm::set_exec_labels(proc_)?;
    if own_mounts {
        rootfs::pivot_into(root.as_fd(), l.no_pivot).context("pivot_root")?;
    } else {
        rootfs::chroot_into(root.as_fd()).context("chroot")?;
    }
    drop(root);
    if terminal {
        let console = l
            .console
            .as_ref()
            .ok_or_else(|| anyhow!("process.terminal: a terminal needs --console-socket"))?;
        let (master, slave) = tty::open_pty().context("open the container's pty")?;
        if let Some(sz) = proc_.console_size() {
            let clamp = |v: u64| v.min(u16::MAX as u64) as u16;
            tty::set_size(master.as_fd(), clamp(sz.height()), clamp(sz.width()))
                .context("process.consoleSize")?;
        }
        let slash = sys::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )?;
        if own_mounts {
            rootfs::devices::mount_console(slash.as_fd(), &slave)?;
        }
        tty::send_pty_master(console.as_fd(), master.as_fd())
            .context("send the pty master to the console socket")?;
        drop(master);
        // Whoever listens on the console socket may wait for it to close.
        let _ = nix::unistd::close(console.as_raw_fd());
        tty::setup_slave_stdio(&slave).context("make the pty the process's terminal")?;
        tty::chown_terminal(proc_.user().uid())?;
    }
    rootfs::finish(spec)?;

    let prepared = program::prepare(
        proc_,
        spec.linux().as_ref(),
        l.seccomp.as_ref(),
        s2.as_fd(),
        runtime_exe,
    )?;

    sync::send(s2.as_fd(), "ready")?;
    // The runtime saves the state, then commits; if it dies first, so does init.
    sync::expect(s2.as_fd(), "commit", "runtime")?;
    // Blocks until `start` writes a byte: create must not run the user's program.
    let mut b = [0u8; 1];
    loop {
        let fifo = l.exec_fifo.as_ref().expect("init holds the fifo");
        match nix::unistd::read(fifo.as_raw_fd(), &mut b) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(1) => break,
            Ok(_) => bail!("exec fifo closed before start"),
            Err(e) => bail!("read exec fifo: {e}"),
        }
    }
    hook_state["status"] = "created".into();
    let e = (|| -> anyhow::Error {
        // In the container, after `start`, before the user's program.
        if let Err(e) = hooks::run_all(
            spec.hooks().as_ref(),
            hooks::Kind::StartContainer,
            &hook_state,
        ) {
            return e;
        }
        let internal = [
            s2.as_raw_fd(),
            l.exec_fifo.as_ref().map_or(-1, |f| f.as_raw_fd()),
        ];
        program::exec(&prepared, l.seccomp.as_ref(), l.preserve_fds, &internal)
    })();
    // The runtime is gone by now; `start` waits for the fifo to close (our execve) and
    // reads what is left in it: this error, for its caller.
    let fifo = l.exec_fifo.as_ref().expect("init holds the fifo");
    let msg = format!("{e:#}");
    let mut end = msg.len().min(START_ERROR_MAX);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    if nix::unistd::write(fifo, &msg.as_bytes()[..end]).is_err() {
        eprintln!("berth: {msg}");
    }
    exit(127)
}

/// Below PIPE_BUF: the error reaches the fifo in one write, whoever reads.
const START_ERROR_MAX: usize = 4000;
