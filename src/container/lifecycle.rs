//! create, start, kill, delete and run.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use super::store::{make_exec_fifo, save, write_pid_file, write_private, Store};
use super::{Container, State, Status};
use crate::{bundle, cgroups, launch, log, notify};

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// `--systemd-cgroup`: the cgroup is a transient systemd unit.
    pub systemd_cgroup: bool,
    /// Rootless mode (see rootless.rs): without a cgroup when none can be made or is needed.
    pub rootless: bool,
}

/// Undoes a create that failed midway: kills what it started, removes the cgroup and the
/// state directory. Disarmed once create succeeds.
struct Undo {
    dir: Option<PathBuf>,
    cgroup: Option<Box<dyn cgroups::Cgroup>>,
    resctrl: Option<crate::resctrl::Group>,
    pid: Option<i32>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(cg) = &self.cgroup {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            if let Err(e) = cgroups::kill_all(cg.as_ref(), deadline) {
                log::warn(&format!("undo create: {e:#}"));
            }
            if let Err(e) = cg.destroy() {
                log::warn(&format!("undo create: remove cgroup: {e:#}"));
            }
        }
        if let Some(g) = &self.resctrl {
            g.destroy();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn create(store: &Store, id: &str, opts: &CreateOptions) -> Result<()> {
    let (b, opts) = load(store, id, opts)?;
    let console = crate::tty::console_for(terminal(&b), opts.console_socket.as_deref(), false)
        .with_context(|| format!("create {id}"))?;
    create_bundle(store, id, &opts, console.theirs, &b)
        .with_context(|| format!("create {id}"))
        .map(drop)
}

/// The checked bundle, and the options with the fds of systemd socket activation added
/// (copied only then). With NOTIFY_SOCKET set, the process gets berth's notify socket
/// instead (see notify.rs).
fn load<'a>(
    store: &Store,
    id: &str,
    opts: &'a CreateOptions,
) -> Result<(bundle::Bundle, std::borrow::Cow<'a, CreateOptions>)> {
    super::check_id(id).with_context(|| format!("create {id}"))?;
    let mut b = bundle::load(&opts.bundle).with_context(|| format!("create {id}"))?;
    if opts.rootless {
        crate::rootless::check_config(&b.spec).with_context(|| format!("create {id}"))?;
    }
    if notify::host_socket().is_some() {
        add_notify_socket(&mut b.spec, &super::state_dir(&store.root, id))?;
    }
    let mut opts = std::borrow::Cow::Borrowed(opts);
    let n = listen_fds();
    if n > 0 {
        // As runc: the fds systemd passed (3..3+n) go first, --preserve-fds ones after
        // them, and the process is told in LISTEN_FDS, as its own pid 1.
        opts.to_mut().preserve_fds += n;
        if let Some(mut p) = b.spec.process().clone() {
            let mut env = p.env().clone().unwrap_or_default();
            env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
            env.push(format!("LISTEN_FDS={n}"));
            env.push("LISTEN_PID=1".to_string());
            p.set_env(Some(env));
            b.spec.set_process(Some(p));
        }
    }
    Ok((b, opts))
}

/// Mounts the directory of berth's notify socket at /run/notify (read-only, as runc) and
/// points the process's NOTIFY_SOCKET at the socket there.
fn add_notify_socket(
    spec: &mut oci_spec::runtime::Spec,
    state_dir: &std::path::Path,
) -> Result<()> {
    let m: oci_spec::runtime::Mount = serde_json::from_value(serde_json::json!({
        "destination": notify::CONTAINER_DIR,
        "source": notify::dir(state_dir),
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    }))
    .context("the notify socket mount")?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(m);
    spec.set_mounts(Some(mounts));
    if let Some(mut p) = spec.process().clone() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={}", notify::CONTAINER_SOCKET));
        p.set_env(Some(env));
        spec.set_process(Some(p));
    }
    Ok(())
}

/// How many fds systemd's socket activation handed to this process (LISTEN_FDS, honoured
/// only when LISTEN_PID names us, so an inherited variable is not taken for ours).
pub fn listen_fds() -> u32 {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    if !ours {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn terminal(b: &bundle::Bundle) -> bool {
    b.spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// Creates a container from a checked bundle; `console` is where init sends its pty master
/// (see `tty::console_for`). Returns init's pid.
fn create_bundle(
    store: &Store,
    id: &str,
    opts: &CreateOptions,
    console: Option<OwnedFd>,
    b: &bundle::Bundle,
) -> Result<i32> {
    let spec = &b.spec;
    let linux = spec.linux().as_ref().expect("checked by bundle");
    // Before anything is written under it (the seccomp cache first).
    store.ensure_root()?;
    // Compiled (or read from the cache) before anything is created: a profile libseccomp
    // refuses leaves nothing to undo.
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(|s| crate::security::seccomp::compile_cached(s, &store.root.join("seccomp")))
        .transpose()
        .context("linux.seccomp")?;
    if let Some(f) = &seccomp {
        log::debug(&format!(
            "seccomp filter: {} BPF instructions",
            f.instructions()
        ));
    }
    let cgroups_path = linux.cgroups_path().as_ref().map(|p| p.to_string_lossy());
    let cgroup_path = if opts.systemd_cgroup {
        // Rootless and unprivileged: the user's own systemd. Root of a user namespace
        // (rootless Podman) cannot authenticate to the user's bus as uid 0: it gets the
        // system's, as before.
        let user = opts.rootless && !nix::unistd::geteuid().is_root();
        cgroups::systemd::resolve(cgroups_path.as_deref(), id, user)?
    } else {
        cgroups::resolve_path(cgroups_path.as_deref(), id)?
    };
    let cg = cgroups::open(&cgroup_path)?;

    let dir = store.create_dir(id)?;
    // Held until the state is complete, so a `delete --force` of the same id waits for it
    // instead of racing it. The forked processes close their copy at once.
    let lock = store.lock(&dir)?;
    let mut undo = Undo {
        dir: Some(dir.clone()),
        cgroup: None,
        resctrl: None,
        pid: None,
    };
    if notify::host_socket().is_some() {
        let d = notify::dir(&dir);
        std::fs::create_dir(&d).with_context(|| format!("create {}", d.display()))?;
    }
    // No flock here: init would inherit it across the fork and hold it until `start`. The
    // mkdir above already makes the id ours.
    let mut c = Container {
        state: State {
            id: id.to_string(),
            pid: 0,
            start_time: 0,
            bundle: b.dir.clone(),
            rootfs: b.rootfs.clone(),
            created: log::rfc3339_now(),
            owner: String::new(),
            oci_version: spec.version().clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            cgroup_path,
            hooks: spec.hooks().clone(),
            resctrl: None,
            creator: Some((
                std::process::id() as i32,
                crate::sys::process_start_time(std::process::id() as i32).unwrap_or(0),
            )),
        },
        dir: dir.clone(),
    };
    save(&c)?;
    // 0600 like the state: it holds the process's environment, secrets included.
    write_private(&dir.join("config.json"), &b.raw)
        .with_context(|| format!("keep config.json in {}", dir.display()))?;
    let fifo = make_exec_fifo(&c.exec_fifo())?;
    let (resources, memory_limit) =
        cgroups::split_memory_limit(&cgroups::effective_resources(linux));
    let cg = match cg.create() {
        Ok(()) => cg,
        // As runc: a rootless container whose user may not make its cgroup runs without
        // one, as long as it asks for nothing only a cgroup gives.
        Err(e) if opts.rootless && crate::rootless::is_permission_error(&e) => {
            let _ = cg.destroy();
            let e = e.context(format!("create cgroup {}", c.state.cgroup_path));
            if let Some(field) = linux
                .resources()
                .as_ref()
                .and_then(crate::rootless::resource_asked)
            {
                bail!(
                    "{field}: a rootless container gets resource limits only in a cgroup its \
                     user may write (a delegated cgroup v2 subtree): {e:#}"
                );
            }
            log::debug(&format!("rootless, running without a cgroup: {e:#}"));
            c.state.cgroup_path = cgroups::NO_CGROUP.to_string();
            cgroups::open(cgroups::NO_CGROUP)?
        }
        Err(e) => return Err(e.context(format!("create cgroup {}", c.state.cgroup_path))),
    };
    let cgroup_sources = cg.mount_sources()?;
    // One unnamed source is the single cgroup2 tree: no second read of the host's mounts.
    let cgroup_v2 = matches!(cgroup_sources.as_slice(), [(name, _)] if name.is_empty());
    undo.cgroup = Some(cg);
    // Always: the device policy (deny all but the defaults) applies to every container.
    // Rootless, as runc: device rules are not expected to work (no devices controller or
    // eBPF program an unprivileged user may set); its devices are bound from the host.
    let resources = if opts.rootless {
        let mut r = resources;
        r.set_devices(None);
        r
    } else {
        resources
    };
    undo.cgroup
        .as_deref()
        .expect("set above")
        .apply(&resources)?;
    // Init placed in a frozen cgroup stops before it can answer, and create would wait for
    // it forever (runc 1.1.5 does): refuse the cgroup instead.
    if undo
        .cgroup
        .as_deref()
        .expect("set above")
        .frozen_effective()?
    {
        let field = if cgroups_path.as_deref().is_some_and(|p| !p.is_empty()) {
            "linux.cgroupsPath: "
        } else {
            ""
        };
        bail!(
            "{field}cgroup {} is frozen (it or a parent cgroup is paused): thaw it before \
             creating a container in it",
            c.state.cgroup_path
        );
    }

    if let Some(rdt) = linux.intel_rdt() {
        undo.resctrl = Some(crate::resctrl::prepare(
            rdt,
            id,
            std::path::Path::new(crate::resctrl::ROOT),
        )?);
    }

    let launched = launch::launch(launch::Launch {
        id,
        bundle: b,
        close_in_children: &[Store::lock_fd(&lock)],
        exec_fifo: Some(fifo),
        console,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        cgroup: undo.cgroup.as_deref().expect("set above"),
        cgroup_v2,
        cgroup_sources,
        rootless: opts.rootless,
        seccomp,
    })?;
    let pid = launched.pid;
    undo.pid = Some(pid);
    if let Some(m) = &memory_limit {
        cgroups::apply_memory_limit(undo.cgroup.as_deref().expect("set above"), m)?;
    }
    if let Some(g) = &undo.resctrl {
        // Init waits on the exec fifo: the user's program starts in the group.
        g.add_task(pid)?;
    }
    c.state.resctrl = undo.resctrl.clone();
    c.state.pid = pid;
    c.state.start_time = crate::sys::process_start_time(pid)
        .ok_or_else(|| anyhow!("container init (pid {pid}) exited during create"))?;
    c.state.creator = None;
    save(&c)?;
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    // Only now does init go on to wait for `start`; had the runtime died before this, init
    // would have seen the end of the socket and exited.
    launched.commit()?;
    drop(lock);
    undo.dir = None;
    undo.cgroup = None;
    undo.resctrl = None;
    undo.pid = None;
    Ok(pid)
}

pub fn start(store: &Store, id: &str) -> Result<()> {
    let c = store.load(id).with_context(|| format!("start {id}"))?;
    let lock = store.lock(&c.dir)?;
    match c.status() {
        Status::Created => {}
        Status::Running | Status::Paused => {
            bail!("start {id}: cannot start an already running container")
        }
        Status::Stopped => bail!("start {id}: cannot start a container that has stopped"),
        Status::Creating => bail!("start {id}: the container is still being created"),
    }
    let fifo = c.exec_fifo();
    // Init holds the fifo open (O_RDWR, close-on-exec) until its execve: a read end of ours,
    // opened before our write end (a reader sees a hang-up only from writers that came after
    // it), hangs up exactly then. Init reads our byte; what it writes after that is why it
    // failed before its execve (startContainer hooks, execve itself). Never read before the
    // hang-up: the byte is init's.
    let watch = crate::sys::open(&fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())
        .map_err(|e| anyhow!("start {id}: open exec fifo: {e}"))?;
    // Bound before init can run the program, so no notification is missed.
    let host_notify = notify::host_socket();
    let notify_sock = match &host_notify {
        Some(_) if notify::dir(&c.dir).is_dir() => {
            Some(notify::bind_socket(&notify::dir(&c.dir)).with_context(|| format!("start {id}"))?)
        }
        _ => None,
    };
    let fd = crate::sys::open(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty())
        .map_err(|e| anyhow!("start {id}: open exec fifo: {e}"))?;
    std::fs::File::from(fd)
        .write_all(b"0")
        .with_context(|| format!("start {id}: write exec fifo"))?;
    std::fs::remove_file(&fifo).with_context(|| format!("start {id}: remove exec fifo"))?;
    wait_hangup(&watch);
    let mut left = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(watch), &mut left);
    match left.as_slice() {
        [] => {}
        b"0" => bail!("start {id}: the container's init is not waiting"),
        msg => bail!("start {id}: {}", String::from_utf8_lossy(msg).trim_end()),
    }
    crate::hooks::run_all_warn(
        c.state.hooks.as_ref(),
        crate::hooks::Kind::Poststart,
        &c.hook_state(Status::Running),
    );
    drop(lock);
    if let (Some(sock), Some(host)) = (notify_sock, host_notify) {
        // As runc: start returns once the container said READY=1 (or its init is gone).
        notify::relay(&sock, &host, c.state.pid, || {
            crate::sys::process_start_time(c.state.pid) == Some(c.state.start_time)
        })
        .with_context(|| format!("start {id}"))?;
    }
    Ok(())
}

/// Waits until no process has the fifo open for writing (init exec'd or exited). Events 0:
/// only the hang-up is of interest, never the byte meant for init.
fn wait_hangup(fd: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// A signal by name or number; None is signal 0, kill(2)'s liveness probe.
pub fn parse_signal(s: &str) -> Result<Option<Signal>> {
    if let Ok(n) = s.parse::<i32>() {
        if n == 0 {
            return Ok(None);
        }
        return Signal::try_from(n)
            .map(Some)
            .map_err(|_| anyhow!("invalid signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(Some)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

/// Sends `sig` (None: signal 0, only checks that the processes exist).
pub fn kill(store: &Store, id: &str, sig: Option<Signal>, all: bool) -> Result<()> {
    let c = store.load(id).with_context(|| format!("kill {id}"))?;
    if all && c.status() == Status::Stopped {
        // As runc: `kill --all` signals whatever is left in the cgroup, and a stopped
        // container with nothing left is no error (containerd sends it after the task ended).
        return match (sig, c.cgroup()) {
            (Some(sig), Ok(cg)) if cg.pids().is_ok() => c
                .signal(Some(sig), true)
                .with_context(|| format!("kill {id}")),
            _ => Ok(()),
        };
    }
    // runc's words: containerd's shim reads a kill error with "container not running" as
    // "process already finished" (ErrNotFound), and only then can its stop and delete go on.
    if !c.status().has_process() {
        bail!("kill {id}: container not running ({})", c.status().as_str());
    }
    c.signal(sig, all).with_context(|| format!("kill {id}"))
}

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let c = store.load(id).with_context(|| format!("pause {id}"))?;
    match c.status() {
        Status::Running | Status::Created => {}
        s => bail!("pause {id}: container not running ({})", s.as_str()),
    }
    c.cgroup()?.freeze().with_context(|| format!("pause {id}"))
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let c = store.load(id).with_context(|| format!("resume {id}"))?;
    if c.status() != Status::Paused {
        bail!(
            "resume {id}: the container is {}, not paused",
            c.status().as_str()
        );
    }
    c.cgroup()?.thaw().with_context(|| format!("resume {id}"))
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    // Not only through load: a forced delete of a missing container must not act in a root
    // that is not ours alone either.
    store.check_root().with_context(|| format!("delete {id}"))?;
    // The lock first, then the state: a create of this id in flight holds the lock until
    // its state is complete, and what it saved is what gets deleted.
    let dir = super::check_id(id).map(|()| super::state_dir(&store.root, id));
    let mut tries = 0;
    let (_lock, c) = loop {
        tries += 1;
        let lock = match &dir {
            Ok(dir) if dir.is_dir() => match store.lock(dir) {
                Ok(l) => Some(l),
                // Removed meanwhile: the create failed and undid itself.
                Err(_) if !dir.exists() => None,
                Err(e) => return Err(e.context(format!("delete {id}"))),
            },
            _ => None,
        };
        let loaded = store.load(id);
        // No directory when we looked, one now: a create of this id began in between.
        // Its lock (held until its state is complete) is the one to wait for.
        if lock.is_none() && tries < 3 && dir.as_ref().is_ok_and(|d| d.is_dir()) {
            continue;
        }
        match loaded {
            Ok(c) => break (lock, c),
            // As runc: a forced delete of what is not there succeeds (engines call it after
            // a plain delete), and clears a state directory a crashed create left without a
            // state.
            Err(_) if force && dir.is_ok() && !store.has_state(id) => {
                store.remove_leftover(id);
                return Ok(());
            }
            Err(e) => return Err(e.context(format!("delete {id}"))),
        }
    };
    match c.status() {
        // Init is gone, but without a pid namespace its children may not be (nor the
        // processes of a create abandoned midway): the cgroup cannot go while they run.
        Status::Stopped => c.kill_and_wait().with_context(|| format!("delete {id}"))?,
        // A created container never ran the user's program: deleting it is what undoes create.
        Status::Created => c.kill_and_wait().with_context(|| format!("delete {id}"))?,
        s if force => {
            let _ = s;
            c.kill_and_wait().with_context(|| format!("delete {id}"))?
        }
        s => bail!(
            "delete {id}: the container is {}: stop it first or use --force",
            s.as_str()
        ),
    }
    crate::hooks::run_all_warn(
        c.state.hooks.as_ref(),
        crate::hooks::Kind::Poststop,
        &c.hook_state(Status::Stopped),
    );
    c.destroy().with_context(|| format!("delete {id}"))
}

/// create + start; in the foreground also wait for the container, proxy its terminal, delete
/// it and return its exit code.
pub fn run(store: &Store, id: &str, opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
    let (b, opts) = load(store, id, opts)?;
    let opts = opts.as_ref();
    let console = crate::tty::console_for(terminal(&b), opts.console_socket.as_deref(), !detach)
        .with_context(|| format!("run {id}"))?;
    if !detach {
        // Init's parent (the setup process) exits at once: become the reaper that inherits it.
        nix::sys::prctl::set_child_subreaper(true).context("set child subreaper")?;
    }
    let pid = create_bundle(store, id, opts, console.theirs, &b)
        .with_context(|| format!("create {id}"))?;
    // Init sent the master during create. Sized before start, so the program's first look
    // at its terminal sees the caller's size, not 0x0.
    let master = match console.ours {
        Some(s) => match crate::tty::recv_pty_master(std::os::fd::AsFd::as_fd(&s)) {
            Ok(m) => {
                if let Some((rows, cols)) = crate::tty::stdin_size() {
                    let _ = crate::tty::set_size(std::os::fd::AsFd::as_fd(&m), rows, cols);
                }
                Some(m)
            }
            Err(e) => {
                let _ = delete(store, id, true);
                return Err(e.context(format!("run {id}: receive the pty master")));
            }
        },
        None => None,
    };
    if let Err(e) = start(store, id) {
        let _ = delete(store, id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = crate::tty::foreground_wait(nix::unistd::Pid::from_raw(pid), master)
        .with_context(|| format!("run {id}"));
    if !keep {
        delete(store, id, true)?;
    }
    code
}
