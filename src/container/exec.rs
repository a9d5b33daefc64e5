//! `exec`: runs another process in a created or running container, as runc does: the
//! process comes from `--process FILE`, or from the container's own `process` with the
//! command line's changes.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};

use super::store::{write_pid_file, Store};
use super::{Container, Status};
use crate::{bundle, launch};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// A process.json to run instead of the container's process with changes.
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// UID[:GID]
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// `--cgroup`: [CONTROLLER[,...]:]PATH below the container's cgroup.
    pub sub_cgroups: Vec<String>,
}

/// Returns the process's exit code (in the foreground) or 0 (detached).
pub fn exec(store: &Store, id: &str, opts: &ExecOptions) -> Result<i32> {
    let c = store.load(id).with_context(|| format!("exec {id}"))?;
    exec_in(store, &c, opts).with_context(|| format!("exec {id}"))
}

fn exec_in(store: &Store, c: &Container, opts: &ExecOptions) -> Result<i32> {
    let status = c.status();
    match status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container: resume it first, or use --ignore-paused")
        }
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Creating => bail!("the container is still being created"),
    }
    let spec = c.spec()?;
    let (mut process, at) = match &opts.process {
        Some(path) => {
            let text =
                std::fs::read(path).map_err(|e| anyhow!("--process {}: {e}", path.display()))?;
            let p: Process = parse_process_json(&text)
                .with_context(|| format!("--process {}", path.display()))?;
            (p, format!("--process {}: ", path.display()))
        }
        None => (process_from_flags(&spec, opts)?, "process.".to_string()),
    };
    let check = || -> Result<()> {
        bundle::check_process(&process, "")?;
        crate::security::lsm::check_process(&process, "")
    };
    check().map_err(|e| anyhow!("{at}{e:#}"))?;
    let terminal = process.terminal().unwrap_or(false);

    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(|s| crate::security::seccomp::compile_cached(s, &store.root.join("seccomp")))
        .transpose()
        .context("linux.seccomp")?;
    let console = crate::tty::console_for(terminal, opts.console_socket.as_deref(), !opts.detach)?;
    if console.ours.is_some() && process.console_size().is_none() {
        // Sized by the process itself before it runs: its first look at the terminal sees
        // the caller's size, not 0x0.
        if let Some((rows, cols)) = crate::tty::stdin_size() {
            let size = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(rows))
                .width(u64::from(cols))
                .build()
                .context("console size")?;
            process.set_console_size(Some(size));
        }
    }
    if !opts.detach {
        // The setup process exits at once: become the reaper that inherits the process.
        nix::sys::prctl::set_child_subreaper(true).context("set child subreaper")?;
    }
    let cgroup = if opts.sub_cgroups.is_empty() {
        c.cgroup()?
    } else {
        crate::cgroups::open_sub(&c.state.cgroup_path, &opts.sub_cgroups)?
    };
    // A cgroup frozen from above (not by `pause`) would stop the new process before its
    // execve, and waiting for that would hang: refuse it as a paused container is refused.
    let frozen = status == Status::Paused
        || cgroup
            .frozen_effective()
            .context("read the container's freezer state")?;
    if frozen && !opts.ignore_paused {
        bail!("the container's cgroup is frozen by a parent cgroup: thaw that, or use --ignore-paused");
    }
    let pid = launch::exec(launch::Exec {
        init_pid: c.state.pid,
        init_start_time: c.state.start_time,
        spec: &spec,
        process: &process,
        console: console.theirs,
        preserve_fds: opts.preserve_fds,
        cgroup: cgroup.as_ref(),
        seccomp: seccomp.as_ref(),
        state: seccomp
            .as_ref()
            .filter(|f| f.uses_notify())
            .map(|_| c.hook_state(status)),
        wait_exec: !frozen,
    })?;
    if let Some(g) = &c.state.resctrl {
        if let Err(e) = g.add_task(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(e);
        }
    }
    if let Some(pf) = &opts.pid_file {
        write_pid_file(pf, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    let master = match console.ours {
        Some(s) => Some(
            crate::tty::recv_pty_master(std::os::fd::AsFd::as_fd(&s))
                .context("receive the pty master")?,
        ),
        None => None,
    };
    crate::tty::foreground_wait(nix::unistd::Pid::from_raw(pid), master)
}

/// A process.json; with no `user` it runs as uid 0, gid 0, as runc's (Go's zero value).
fn parse_process_json(text: &[u8]) -> Result<Process> {
    let mut v: serde_json::Value = bundle::parse_json(text)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    bundle::parse_json(&serde_json::to_vec(&v)?)
}

/// runc's rules: the container's process, with the command line's args, terminal, cwd, env
/// (added, replacing a variable of the same name), user, groups, capabilities (added to the
/// bounding, effective and permitted sets), no_new_privs and labels.
fn process_from_flags(spec: &Spec, opts: &ExecOptions) -> Result<Process> {
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| anyhow!("the container's config has no process"))?;
    if opts.args.is_empty() {
        bail!("no command given: name one after the container id, or use --process");
    }
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(opts.tty));
    // The container's size was for its own terminal; this one takes the caller's.
    p.set_console_size(None);
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    if !opts.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for (i, kv) in opts.env.iter().enumerate() {
            let key = match kv.split_once('=') {
                Some((k, _)) if !k.is_empty() => k,
                _ => bail!("--env {kv:?} (number {}): not KEY=VALUE", i + 1),
            };
            env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &opts.user {
        let (uid, gid) = parse_user(u)?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    if !opts.additional_gids.is_empty() {
        let mut gids = p.user().additional_gids().clone().unwrap_or_default();
        gids.extend(&opts.additional_gids);
        p.user_mut().set_additional_gids(Some(gids));
    }
    if !opts.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_else(empty_caps);
        for name in &opts.caps {
            let cap = parse_cap(name)?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (bounding, effective, permitted) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(bounding);
            caps.set_effective(effective);
            caps.set_permitted(permitted);
        }
        p.set_capabilities(Some(caps));
    }
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &opts.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

fn empty_caps() -> LinuxCapabilities {
    let none = || Some(Default::default());
    let mut c = LinuxCapabilities::default();
    c.set_bounding(none());
    c.set_effective(none());
    c.set_permitted(none());
    c.set_inheritable(none());
    c.set_ambient(none());
    c
}

/// `UID[:GID]`, numbers as runc takes them.
fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let bad = || anyhow!("--user {u:?}: expected UID or UID:GID (numbers)");
    match u.split_once(':') {
        Some((a, b)) => Ok((
            a.parse().map_err(|_| bad())?,
            Some(b.parse().map_err(|_| bad())?),
        )),
        None => Ok((u.parse().map_err(|_| bad())?, None)),
    }
}

/// `CAP_NET_ADMIN`, as runc takes it; `NET_ADMIN` and lower case are accepted too.
fn parse_cap(name: &str) -> Result<Capability> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    serde_json::from_value(serde_json::Value::String(full))
        .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))
}

impl Container {
    /// The config the container was created with (kept in its state directory; a container
    /// made by an older berth falls back to its bundle's).
    pub fn spec(&self) -> Result<Spec> {
        let kept = self.dir.join("config.json");
        let (path, text) = match std::fs::read(&kept) {
            Ok(t) => (kept, t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let p = self.state.bundle.join("config.json");
                let t = std::fs::read(&p).map_err(|e| anyhow!("read {}: {e}", p.display()))?;
                (p, t)
            }
            Err(e) => return Err(anyhow!("read {}: {e}", kept.display())),
        };
        bundle::parse(&text).with_context(|| format!("{}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        serde_json::from_str(
            r#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0,"additionalGids":[5]},
            "cwd":"/","args":["sh"],"env":["PATH=/bin","A=1"],"terminal":true,
            "consoleSize":{"height":10,"width":20},
            "capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn flags_change_the_containers_process_as_runc_does() {
        let opts = ExecOptions {
            args: vec!["ls".into(), "-l".into()],
            env: vec!["A=2".into(), "B=3".into()],
            user: Some("1000:1001".into()),
            additional_gids: vec![7],
            caps: vec!["CAP_NET_ADMIN".into(), "sys_admin".into()],
            cwd: Some("/tmp".into()),
            no_new_privs: true,
            ..Default::default()
        };
        let p = process_from_flags(&spec(), &opts).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["ls", "-l"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.user().additional_gids().as_deref().unwrap(), [5, 7]);
        assert_eq!(p.cwd(), std::path::Path::new("/tmp"));
        assert_eq!(p.terminal(), Some(false));
        assert!(p.console_size().is_none());
        assert_eq!(p.no_new_privileges(), Some(true));
        let c = p.capabilities().as_ref().unwrap();
        for set in [c.bounding(), c.effective(), c.permitted()] {
            let s = set.as_ref().unwrap();
            assert!(s.contains(&Capability::NetAdmin) && s.contains(&Capability::SysAdmin));
            assert!(s.contains(&Capability::Chown));
        }
        // CVE-2022-29162: --cap never reaches the inheritable set.
        assert!(c.inheritable().as_ref().is_none_or(|s| s.is_empty()));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let s = spec();
        let e = |o: ExecOptions| format!("{:#}", process_from_flags(&s, &o).unwrap_err());
        let args = vec!["sh".to_string()];
        assert!(e(ExecOptions::default()).starts_with("no command given"));
        assert!(e(ExecOptions {
            args: args.clone(),
            user: Some("root".into()),
            ..Default::default()
        })
        .starts_with("--user \"root\""));
        assert!(e(ExecOptions {
            args: args.clone(),
            caps: vec!["CAP_NOPE".into()],
            ..Default::default()
        })
        .starts_with("--cap \"CAP_NOPE\""));
        assert!(e(ExecOptions {
            args,
            env: vec!["novalue".into()],
            ..Default::default()
        })
        .starts_with("--env \"novalue\""));
    }
}
