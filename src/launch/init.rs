//! What runs in the forked processes: the setup process (namespaces) and the container's init
//! (rootfs, process attributes, exec fifo, execve). Neither returns: each ends in execve or
//! _exit, after telling the runtime what went wrong.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::{ForkResult, Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType;

use super::{sync, Launch};
use crate::bundle::new_namespace;
use crate::namespaces::Plan;
use crate::{hooks, process, rootfs, sched, sys, tty};

fn exit(code: i32) -> ! {
    // _exit: no atexit handlers or buffered output of the runtime's run twice.
    sys::exit_now(code)
}

/// S1: joins and creates namespaces, forks init, reports its pid, exits.
pub fn setup_process(l: &Launch, plan: &Plan, s1: OwnedFd, s2: OwnedFd) -> ! {
    // If the runtime dies mid-setup, nothing should be left waiting for it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let r = (|| -> Result<i32> {
        plan.join()?;
        if plan.new_user {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                .context("unshare user namespace")?;
            sync::send(s1.as_fd(), "userns")?;
            sync::expect(s1.as_fd(), "mapped", "runtime")?;
            if plan.root_mapped() {
                nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                    .context("become root in the user namespace (gid)")?;
                nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                    .context("become root in the user namespace (uid)")?;
            }
        }
        plan.unshare_rest()?;
        match sys::fork().context("fork init")? {
            ForkResult::Child => {
                // S1's end is for S1 alone; init never returns, so close it by number.
                let _ = nix::unistd::close(s1.as_raw_fd());
                let _ = nix::sys::prctl::set_pdeathsig(None);
                let e = match container_init(l, plan, &s2) {
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
            let _ = sync::send(s1.as_fd(), &format!("pid:{pid}"));
            exit(0)
        }
        Err(e) => {
            let _ = sync::send(s1.as_fd(), &format!("error:{e:#}"));
            exit(1)
        }
    }
}

/// S2, the container's init, up to execve.
fn container_init(l: &Launch, plan: &Plan, s2: &OwnedFd) -> Result<Infallible> {
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
    if let Some(adj) = proc_.oom_score_adj() {
        // Through the host's procfs, before pivot_root, for this process's own entry.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| anyhow!("process.oomScoreAdj: write {adj}: {e}"))?;
    }
    if !l.no_new_keyring {
        match sys::join_session_keyring(l.id) {
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => bail!("join a new session keyring: {e}"),
        }
    }
    let in_userns = crate::bundle::has_namespace(spec, LinuxNamespaceType::User);
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
    let root = rootfs::prepare(&mut rootfs::Setup {
        spec,
        rootfs: &l.bundle.rootfs,
        bundle: &l.bundle.dir,
        in_userns,
        cgroup_sources: &l.cgroup_sources,
        cgroup_v2: l.cgroup_v2,
        new_cgroupns: new_namespace(spec, LinuxNamespaceType::Cgroup),
        before_cgroup_mount: &mut wait_placed,
    })
    .context("rootfs")?;
    wait_placed()?;
    let mut hook_state = hook_state.expect("set by wait_placed");
    // In the container's namespaces, before pivot_root.
    hooks::run_all(
        spec.hooks().as_ref(),
        hooks::Kind::CreateContainer,
        &hook_state,
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
    rootfs::pivot_into(root.as_fd(), l.no_pivot).context("pivot_root")?;
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
        rootfs::devices::mount_console(slash.as_fd(), &slave)?;
        tty::send_pty_master(console.as_fd(), master.as_fd())
            .context("send the pty master to the console socket")?;
        drop(master);
        // Whoever listens on the console socket may wait for it to close.
        let _ = nix::unistd::close(console.as_raw_fd());
        tty::setup_slave_stdio(&slave).context("make the pty the process's terminal")?;
    }
    rootfs::finish(spec)?;

    process::apply_rlimits(proc_.rlimits().as_deref().unwrap_or(&[]))?;
    // While init still holds its capabilities (a real-time policy needs CAP_SYS_NICE).
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|x| x.personality().as_ref()) {
        sched::set_personality(p)?;
    }
    if let Some(s) = proc_.scheduler() {
        sched::set_scheduler(s)?;
    }
    if let Some(io) = proc_.io_priority() {
        sched::set_io_priority(io)?;
    }
    if let Some(m) = linux.and_then(|x| x.memory_policy().as_ref()) {
        sched::set_memory_policy(m)?;
    }
    if let Some(a) = proc_.exec_cpu_affinity() {
        sched::set_cpu_affinity(a)?;
    }
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    // The kernel takes a filter from a process with no_new_privs or with CAP_SYS_ADMIN.
    // Without no_new_privs that means now, before the capabilities go (as runc); with it,
    // as late as possible: right before execve, or before "ready" when the runtime must
    // pass a notify listener on.
    let notify = l.seccomp.as_ref().is_some_and(|f| f.uses_notify());
    let load_seccomp = || -> Result<()> {
        if let Some(f) = &l.seccomp {
            if let Some(fd) = f.load().context("linux.seccomp: load the filter")? {
                sync::send_fd(s2.as_fd(), "seccomp", fd.as_fd())?;
            }
        }
        Ok(())
    };
    if !nnp {
        load_seccomp()?;
    }
    let caps = proc_.capabilities().as_ref();
    process::drop_bounding(caps)?;
    let setgroups_allowed = true;
    process::set_user(proc_, setgroups_allowed)?;
    let cwd = proc_.cwd();
    nix::unistd::chdir(cwd).map_err(|e| anyhow!("process.cwd: chdir {}: {e}", cwd.display()))?;
    // CVE-2024-21626: a cwd reached through an fd the runtime still holds would lie outside
    // the container's root; the kernel then reports it as unreachable.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => bail!(
            "process.cwd: {} resolves outside the container's root",
            cwd.display()
        ),
    }
    process::set_capabilities(caps)?;
    let umask = proc_.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask & 0o777));
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("process.noNewPrivileges")?;
    }
    let env = process::environment(proc_);
    let args = proc_.args().as_deref().expect("checked by bundle");
    let exe = process::find_executable(&args[0], &env)?;
    process::refuse_runtime_exe(&exe, runtime_exe)?;
    let exe = std::ffi::CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("process.args[0] contains a NUL byte"))?;
    let argv = process::cstrings(args)?;
    let envp = process::cstrings(&env)?;
    sys::reset_signals();
    if nnp && notify {
        load_seccomp()?;
    }

    sync::send(s2.as_fd(), "ready")?;
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
    // In the container, after `start`, before the user's program.
    hooks::run_all(
        spec.hooks().as_ref(),
        hooks::Kind::StartContainer,
        &hook_state,
    )?;
    for fd in 3..3 + l.preserve_fds as i32 {
        let _ = sys::clear_cloexec(fd);
    }
    sys::cloexec_from(3 + l.preserve_fds).context("mark fds close-on-exec")?;
    if nnp && !notify {
        // Last step before execve; an error now can only go to stderr (the runtime is gone).
        if let Err(e) = load_seccomp() {
            eprintln!("berth: {e:#}");
            exit(1);
        }
    }
    let e = nix::unistd::execve(&exe, &argv, &envp).unwrap_err();
    // The runtime is gone by now: stderr is the only place left to say why.
    eprintln!("berth: exec {:?}: {e}", args[0]);
    exit(127)
}
