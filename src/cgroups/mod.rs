//! Cgroup placement behind one trait, with v1 (legacy and hybrid), v2 and systemd backends.
//! Module order, top down: v1, v2 and systemd/ (the backends; systemd/ uses v2 for all but
//! the unit), limits_v1 (which sets the controllers a hybrid host has only in cgroup2
//! through limits_v2), limits_v2, then writers.rs, resources.rs, bpf_devices, freezer and
//! stats, which import no backend.
//!
//! INTERFACE (used by launch/ and container/; keep these signatures):
//! - `resolve_path(cgroups_path: Option<&str>, id: &str) -> Result<String>`: the cgroup path
//!   the container gets ("/berth/ID" by default; absolute as given; relative joined under
//!   berth's own cgroup). The result is absolute and stored in the state file.
//! - `systemd::resolve(cgroups_path, id)`: the same for `--systemd-cgroup` (runc's
//!   "SLICE:PREFIX:NAME"); its result starts with `systemd:`.
//! - `open(path: &str) -> Result<Box<dyn Cgroup>>`: the backend for a stored path: the
//!   systemd driver for a `systemd:` one, else the one for the host's mode.
//! - `Cgroup::create`, `add_task`, `pids`, `destroy`, `mount_sources`.
//! - `Cgroup::apply(resources)`: writes `linux.resources` into the created cgroup, before
//!   any process is added; `effective_resources(linux)` gives what to pass (the config's
//!   resources plus the device rules every container needs).
//! - `ensure_clean(path)`: used by tests/leftover checks.
//! - `signal_all(cg, sig)`: send a signal to every process in the cgroup.
//!
//! Hierarchies are discovered from /proc/self/mountinfo (every `cgroup` and `cgroup2` mount)
//! matched with the lines of /proc/self/cgroup, so named v1 hierarchies (name=systemd) and
//! co-mounted controllers (cpu,cpuacct: one hierarchy, one line) come out right without a
//! list of controller names. On a hybrid host the container also gets a directory in the
//! cgroup2 hierarchy, as runc does, so that cgroup2-aware tools find it.
//!
//! Paths are "visible" paths: relative to the root of the mount berth sees. That is the
//! hierarchy root on a host, and the delegated subtree inside a container whose cgroupfs is
//! a bind mount of part of the hierarchy (where the true root is unreachable anyway).
//!
//! The string `resolve_path` returns (and `open` takes) is one absolute path used in every
//! hierarchy. A relative `linux.cgroupsPath` is joined under berth's own cgroup *per
//! hierarchy* (as runc does); when berth's own cgroup differs between hierarchies, one
//! path cannot say that, so the string is then one `KEY:PATH` line per hierarchy, KEY being
//! the controller field of /proc/self/cgroup ("cpu,cpuacct", "name=systemd", "" for
//! cgroup2). Every PATH is still absolute; treat the string as opaque.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;

pub mod bpf_devices;
pub mod freezer;
#[cfg(test)]
mod limits_tests;
mod limits_v1;
mod limits_v2;
mod none;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;
mod writers;

pub use resources::effective_resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only cgroup2, mounted at /sys/fs/cgroup.
    Unified,
    /// v1 controllers at /sys/fs/cgroup/CONTROLLER plus cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
    /// Only v1 hierarchies.
    Legacy,
}

pub trait Cgroup {
    /// Create the cgroup directory in every hierarchy (nested dirs included).
    fn create(&self) -> Result<()>;
    /// Move `pid` into the cgroup in every hierarchy.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Every pid in the cgroup (recursively, nested cgroups included), sorted, no duplicates.
    /// A cgroup that does not exist has no pids.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Remove the cgroup directories (nested ones first). Succeeds when they are already gone.
    /// Retries briefly on EBUSY while exiting tasks leave.
    ///
    /// Only the container's own directory (and what is below it) is removed: parents such
    /// as /berth stay, as runc leaves them, since another container may be creating a
    /// sibling at the same moment and removing the shared parent would race with it.
    fn destroy(&self) -> Result<()>;
    /// What to bind-mount for a `cgroup` mount in the container when it has no cgroup
    /// namespace: (name of the entry under the mount point, host directory).
    ///
    /// v1: one entry per hierarchy named like its host mount point ("cpu", "memory",
    /// "systemd", or "cpu,cpuacct" for co-mounted controllers: the caller should then also
    /// add a symlink per comma-separated part, as hosts and runc do), plus ("unified", dir)
    /// on a hybrid host. v2: a single ("", dir): the directory is the mount itself.
    fn mount_sources(&self) -> Result<Vec<(String, PathBuf)>>;
    /// Writes `r` into the cgroup made by `create`, as config-linux.md describes, before
    /// any process is added (the devices rules of v1 are only safe to rewrite then). Fails
    /// naming the field by its JSON path when the host cannot do what a field asks: a
    /// controller that is not mounted or available, a file the kernel does not have, or a
    /// value the kernel refuses. Device rules go to devices.allow/deny on v1 and to an eBPF
    /// program attached to the cgroup on v2.
    fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()>;
    /// Freezes every task and waits until the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    /// Whether this cgroup itself was frozen (a `pause`), not merely a frozen parent's child.
    fn is_frozen(&self) -> Result<bool>;
    /// Whether a task placed in the cgroup now would be frozen at once: the cgroup or any
    /// ancestor frozen, by berth or by anyone else. Placing init there would hang the
    /// runtime waiting for it.
    fn frozen_effective(&self) -> Result<bool>;
    /// The `data` of runc's `events --stats` JSON.
    fn stats(&self) -> Result<serde_json::Value>;
    /// How many processes the kernel's OOM killer has killed in the cgroup.
    fn oom_kills(&self) -> Result<u64>;
    /// SIGKILLs every process of the cgroup atomically where the kernel can (cgroup.kill,
    /// v2 since Linux 5.14), so a fork racing the kill cannot escape. False: not available.
    fn kill_atomic(&self) -> Result<bool> {
        Ok(false)
    }
    /// The memory the cgroup's tasks are charged for, in bytes; None without a memory
    /// controller.
    fn memory_usage(&self) -> Result<Option<u64>> {
        Ok(None)
    }
}

/// Splits `r` into what is written before the container's processes exist and its memory
/// limit (`limit` and `swap`), which waits for `apply_memory_limit`: with the limit in
/// place before init, an init that needs more than the limit (8192 bytes, or 1) stalls in
/// the kernel's OOM handling halfway through its setup (forever with disableOOMKiller) or
/// is OOM-killed, and the runtime could only report a lost socket. runc too writes the
/// limit once init is ready.
pub fn split_memory_limit(r: &LinuxResources) -> (LinuxResources, Option<LinuxResources>) {
    let Some(m) = r.memory().as_ref() else {
        return (r.clone(), None);
    };
    if m.limit().is_none() && m.swap().is_none() {
        return (r.clone(), None);
    }
    let mut early = r.clone();
    let mut rest = *m;
    rest.set_limit(None);
    rest.set_swap(None);
    early.set_memory(Some(rest));
    let mut late_mem = oci_spec::runtime::LinuxMemory::default();
    late_mem.set_limit(m.limit());
    late_mem.set_swap(m.swap());
    let mut late = LinuxResources::default();
    late.set_memory(Some(late_mem));
    (early, Some(late))
}

/// Writes the memory limit split off by `split_memory_limit`, once init is in the cgroup
/// and waits for `start`. A limit below what the container already uses fails, naming the
/// field, rather than have the kernel reclaim what it cannot (v1 refuses with EBUSY, v2
/// OOM-kills init).
pub fn apply_memory_limit(cg: &dyn Cgroup, late: &LinuxResources) -> Result<()> {
    let limit = late
        .memory()
        .as_ref()
        .and_then(|m| m.limit())
        .filter(|&l| l > 0);
    let below = |usage: u64| {
        anyhow!(
            "linux.resources.memory.limit: {} is below the container's current usage of \
             {usage} bytes",
            limit.unwrap_or(0)
        )
    };
    if let (Some(l), Some(usage)) = (limit, cg.memory_usage()?) {
        if usage > l.unsigned_abs() {
            return Err(below(usage));
        }
    }
    match cg.apply(late) {
        // The kernel's limit is whole pages, and usage moves: it may still not fit.
        Err(e) if limit.is_some() && resources::errno_of(&e) == Some(Errno::EBUSY) => {
            match cg.memory_usage() {
                Ok(Some(usage)) => Err(below(usage)),
                _ => Err(e),
            }
        }
        r => r,
    }
}

pub fn resolve_path(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    match cgroups_path.filter(|p| !p.is_empty()) {
        None => {
            if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\n']) {
                bail!("container id {id:?} cannot name a cgroup");
            }
            Ok(format!("/berth/{id}"))
        }
        Some(p) if p.starts_with('/') => {
            let parts = components(p)?;
            if parts.is_empty() {
                bail!("linux.cgroupsPath {p:?}: the root cgroup cannot hold a container");
            }
            Ok(format!("/{}", parts.join("/")))
        }
        Some(p) => {
            let parts = components(p)?;
            if parts.is_empty() {
                bail!("linux.cgroupsPath {p:?}: berth's own cgroup cannot hold a container");
            }
            resolve_relative(&Host::read()?, &parts.join("/"))
        }
    }
}

/// The state's cgroup path of a container that has no cgroup (see none.rs).
pub const NO_CGROUP: &str = "";

pub fn open(path: &str) -> Result<Box<dyn Cgroup>> {
    if path == NO_CGROUP {
        return Ok(Box::new(none::NoCgroup));
    }
    if path.starts_with(systemd::PREFIX) {
        return systemd::open(path);
    }
    let (mode, dirs) = placement_dirs(&Host::read()?, path)?;
    Ok(match mode {
        Mode::Unified => {
            let dir = dirs
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("cgroup {path}: no cgroup2 hierarchy is mounted"))?;
            Box::new(v2::V2::new(dir))
        }
        Mode::Hybrid | Mode::Legacy => Box::new(v1::V1::new(dirs)),
    })
}

/// The cgroup for `exec --cgroup`: the container's cgroup at `path`, with each hierarchy
/// that a `[CONTROLLER[,...]:]SUB` entry names (every one, without controllers) moved to the
/// existing sub-cgroup SUB below it, as runc does. The sub-cgroups must exist: exec joins,
/// it does not create.
pub fn open_sub(path: &str, subs: &[String]) -> Result<Box<dyn Cgroup>> {
    if path.starts_with(systemd::PREFIX) {
        bail!("--cgroup: sub-cgroups of a systemd unit are not built into berth yet");
    }
    let mut wanted: Vec<(Vec<&str>, String)> = Vec::new();
    for s in subs {
        let (ctls, sub) = match s.split_once(':') {
            Some((c, p)) => (c.split(',').filter(|c| !c.is_empty()).collect(), p),
            None => (Vec::new(), s.as_str()),
        };
        let parts = components(sub).with_context(|| format!("--cgroup {s}"))?;
        if parts.is_empty() {
            bail!("--cgroup {s}: no sub-cgroup named");
        }
        wanted.push((ctls, parts.join("/")));
    }
    let (_, dirs) = placement_dirs(&Host::read()?, path)?;
    let mut lines = Vec::new();
    for d in &dirs {
        let matches =
            |ctls: &Vec<&str>| ctls.is_empty() || d.key.split(',').any(|k| ctls.contains(&k));
        let rel = match wanted.iter().rev().find(|(c, _)| matches(c)) {
            Some((_, sub)) => {
                let rel = format!("{}/{sub}", d.rel);
                let dir = d.mountpoint.join(rel.trim_start_matches('/'));
                if !dir.is_dir() {
                    bail!("--cgroup {sub}: cgroup {} does not exist", dir.display());
                }
                rel
            }
            None => d.rel.clone(),
        };
        lines.push(format!("{}:{rel}", d.key));
    }
    for (ctls, sub) in &wanted {
        if let Some(c) = ctls
            .iter()
            .find(|c| !dirs.iter().any(|d| d.key.split(',').any(|k| k == **c)))
        {
            bail!("--cgroup {c}:{sub}: no {c} hierarchy holds the container");
        }
    }
    open(&lines.join("\n"))
}

/// Fails, naming them, when any directory of the cgroup at `path` still exists in any
/// hierarchy: a check for leftovers after `destroy`, it removes nothing.
// Part of the interface for tests and leftover checks; not every build calls it.
#[allow(dead_code)]
pub fn ensure_clean(path: &str) -> Result<()> {
    let path = path.strip_prefix(systemd::PREFIX).unwrap_or(path);
    let path = path.strip_prefix("user:").unwrap_or(path);
    let (_, dirs) = placement_dirs(&Host::read()?, path)?;
    let left: Vec<String> = dirs
        .iter()
        .map(Dir::path)
        .filter(|d| d.exists())
        .map(|d| d.display().to_string())
        .collect();
    if !left.is_empty() {
        bail!("cgroup {path} left behind: {}", left.join(", "));
    }
    Ok(())
}

/// Sends `sig` to every process in the cgroup; processes that exit meanwhile are fine.
///
/// Not atomic: a process forked after the pid list was read escapes. Callers that need all
/// of them gone should freeze first or use SIGKILL in a loop until `pids` is empty.
pub fn signal_all(cg: &dyn Cgroup, sig: Signal) -> Result<()> {
    if sig == Signal::SIGKILL && cg.kill_atomic()? {
        return Ok(());
    }
    for pid in cg.pids()? {
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("send {sig} to pid {pid}")),
        }
    }
    Ok(())
}

/// SIGKILLs every process of the cgroup and waits until none is left, failing at
/// `deadline`. One pass (or cgroup.kill) ends a usual container. A container without a pid
/// namespace that forks as fast as it is killed (a fork bomb under pids.max: each kill frees
/// a slot that a sibling takes at once) outlives pid-by-pid passes, so a cgroup still
/// populated after a few of them is frozen, every pid in it killed while none can fork, and
/// thawed so the kills take effect, round after round until it is empty. A paused
/// container is thawed too: on v1 frozen tasks die only once thawed.
pub fn kill_all(cg: &dyn Cgroup, deadline: Instant) -> Result<()> {
    // A cgroup that cannot be listed (gone, or not ours) has nothing to kill; a failed kill
    // shows as processes still listed.
    let left = || cg.pids().map(|p| p.len()).unwrap_or(0);
    let mut nap = Duration::from_micros(200);
    let mut round = 0u32;
    loop {
        if left() == 0 {
            return Ok(());
        }
        if !cg.kill_atomic().unwrap_or(false) {
            if round >= 3 {
                // A freeze that fails (a task that cannot stop) still leaves the kill pass.
                let _ = cg.freeze();
            }
            let _ = signal_all(cg, Signal::SIGKILL);
            let _ = cg.thaw();
        }
        // Killed tasks leave the cgroup a moment after the signal.
        let wait_until = Instant::now() + Duration::from_millis(if round >= 3 { 100 } else { 5 });
        loop {
            let n = left();
            if n == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{n} processes of the container are left after SIGKILL");
            }
            if Instant::now() > wait_until {
                break;
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(10));
        }
        round += 1;
    }
}

/// One cgroup mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    mountpoint: PathBuf,
    /// Path inside the hierarchy that is mounted there ("/" unless a subtree is bind-mounted).
    root: String,
    v2: bool,
    super_opts: Vec<String>,
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcCgroup {
    id: u32,
    /// "cpu,cpuacct", "name=systemd", or "" for cgroup2.
    controllers: String,
    path: String,
}

/// A mounted hierarchy berth places containers in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    key: String,
    v2: bool,
    mountpoint: PathBuf,
    /// berth's own cgroup as a visible path; None when it lies outside the mounted subtree.
    own: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Host {
    mode: Mode,
    hierarchies: Vec<Hierarchy>,
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    key: String,
    v2: bool,
    mountpoint: PathBuf,
    /// Absolute visible path, never "/".
    rel: String,
}

impl Dir {
    fn path(&self) -> PathBuf {
        self.mountpoint.join(self.rel.trim_start_matches('/'))
    }

    /// Whether this is the directory in the v1 hierarchy of controller `name`.
    fn has_v1_controller(&self, name: &str) -> bool {
        !self.v2 && self.key.split(',').any(|c| c == name)
    }
}

impl Host {
    /// This process's view of the cgroup mounts and its own cgroups. A verb asks for it more
    /// than once (delete: to kill, then to remove), so it is kept for the process that read
    /// it. Only berth's own host-side processes place cgroups; a forked one (which may have
    /// moved cgroup or mount namespace) still reads its own, by its pid.
    fn read() -> Result<Host> {
        thread_local! {
            static SEEN: std::cell::RefCell<Option<(u32, Host)>> = const { std::cell::RefCell::new(None) };
        }
        let me = std::process::id();
        if let Some(h) =
            SEEN.with_borrow(|s| s.as_ref().filter(|(p, _)| *p == me).map(|(_, h)| h.clone()))
        {
            return Ok(h);
        }
        let mountinfo = crate::sys::read_text("/proc/self/mountinfo")
            .map_err(errno)
            .context("read /proc/self/mountinfo")?;
        let cgroup = crate::sys::read_text("/proc/self/cgroup")
            .map_err(errno)
            .context("read /proc/self/cgroup")?;
        let host = Host::parse(&mountinfo, &cgroup)?;
        SEEN.with_borrow_mut(|s| *s = Some((me, host.clone())));
        Ok(host)
    }

    fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Host> {
        let mounts = parse_mountinfo(mountinfo).context("parse /proc/self/mountinfo")?;
        let lines = parse_proc_cgroup(proc_cgroup).context("parse /proc/self/cgroup")?;

        let has_v1 = mounts.iter().any(|m| !m.v2);
        let has_v2 = mounts.iter().any(|m| m.v2);
        // A cgroup2 tree at the usual place makes the host unified even if some tool mounted
        // a stray named v1 hierarchy for old containers (runc decides the same way, by the
        // filesystem type of /sys/fs/cgroup).
        let v2_at_top = mounts
            .iter()
            .any(|m| m.v2 && m.mountpoint == Path::new("/sys/fs/cgroup"));
        let mode = if v2_at_top || (has_v2 && !has_v1) {
            Mode::Unified
        } else if has_v1 && has_v2 {
            Mode::Hybrid
        } else if has_v1 {
            Mode::Legacy
        } else {
            bail!("no cgroup or cgroup2 filesystem is mounted");
        };

        let mut hierarchies = Vec::new();
        for line in &lines {
            let v2 = line.id == 0 && line.controllers.is_empty();
            if mode == Mode::Unified && !v2 {
                continue;
            }
            let wanted: Vec<&str> = line.controllers.split(',').collect();
            let candidates = mounts.iter().filter(|m| {
                m.v2 == v2 && (v2 || wanted.iter().all(|c| m.super_opts.iter().any(|o| o == c)))
            });
            // The same hierarchy can be mounted more than once; the widest view is best, then
            // the conventional location.
            let Some(m) = candidates
                .min_by_key(|m| (m.root.len(), !m.mountpoint.starts_with("/sys/fs/cgroup")))
            else {
                // A hierarchy nobody mounted (or cgroup2 on a legacy host): nothing to place in.
                continue;
            };
            hierarchies.push(Hierarchy {
                key: line.controllers.clone(),
                v2,
                mountpoint: m.mountpoint.clone(),
                own: visible(&m.root, &line.path),
            });
        }
        if hierarchies.is_empty() {
            bail!("no mounted cgroup hierarchy matches /proc/self/cgroup");
        }
        Ok(Host { mode, hierarchies })
    }
}

/// Strips the mount's root from a hierarchy path; None when the path is outside it.
fn visible(root: &str, path: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() {
        Some("/".to_string())
    } else if rest.starts_with('/') {
        Some(rest.to_string())
    } else {
        None
    }
}

/// The cgroup mounts of a mountinfo text.
fn parse_mountinfo(text: &str) -> Result<Vec<CgroupMount>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields
            .iter()
            .position(|f| *f == "-")
            .filter(|&i| i >= 6 && fields.len() >= i + 4)
            .ok_or_else(|| anyhow!("malformed mountinfo line {line:?}"))?;
        let v2 = match fields[sep + 1] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        out.push(CgroupMount {
            mountpoint: PathBuf::from(unescape(fields[4])),
            root: unescape(fields[3]),
            v2,
            super_opts: fields[sep + 3].split(',').map(str::to_string).collect(),
        });
    }
    Ok(out)
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash in mountinfo.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_proc_cgroup(text: &str) -> Result<Vec<ProcCgroup>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut it = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) = (it.next(), it.next(), it.next())
            else {
                bail!("malformed line {line:?}");
            };
            Ok(ProcCgroup {
                id: id
                    .parse()
                    .with_context(|| format!("bad hierarchy id in {line:?}"))?,
                controllers: controllers.to_string(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The normal components of a cgroup path; `..` is refused because it would let a config
/// escape the subtree it names (and make the stored path ambiguous).
fn components(p: &str) -> Result<Vec<&str>> {
    if p.contains(['\n', '\0']) {
        bail!("linux.cgroupsPath {p:?}: newline and NUL are not allowed");
    }
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("linux.cgroupsPath {p:?}: \"..\" components are not allowed"),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn resolve_relative(host: &Host, rel: &str) -> Result<String> {
    let mut per = Vec::new();
    for h in &host.hierarchies {
        let own = h.own.as_deref().ok_or_else(|| {
            anyhow!(
                "linux.cgroupsPath {rel:?} is relative, but berth's own cgroup in hierarchy \
                 {:?} is outside what is mounted at {}",
                h.key,
                h.mountpoint.display()
            )
        })?;
        let joined = format!("{}/{rel}", own.trim_end_matches('/'));
        per.push((h.key.clone(), joined));
    }
    if per.windows(2).all(|w| w[0].1 == w[1].1) {
        return Ok(per.swap_remove(0).1);
    }
    Ok(per
        .iter()
        .map(|(k, p)| format!("{k}:{p}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The container's directory in each hierarchy for a path from `resolve_path`.
fn placement_dirs(host: &Host, path: &str) -> Result<(Mode, Vec<Dir>)> {
    let check = |p: &str| -> Result<String> {
        let parts = components(p).with_context(|| format!("cgroup path {path:?}"))?;
        if !p.starts_with('/') || parts.is_empty() {
            bail!("cgroup path {path:?} is not an absolute, non-root path");
        }
        Ok(format!("/{}", parts.join("/")))
    };
    let per: Option<Vec<(String, String)>> = if path.starts_with('/') {
        None
    } else {
        Some(
            path.lines()
                .map(|l| {
                    let (k, p) = l
                        .split_once(':')
                        .ok_or_else(|| anyhow!("malformed cgroup path {path:?}"))?;
                    Ok((k.to_string(), check(p)?))
                })
                .collect::<Result<_>>()?,
        )
    };
    let uniform = match per {
        None => Some(check(path)?),
        Some(_) => None,
    };
    let mut dirs = Vec::new();
    for h in &host.hierarchies {
        let rel = match (&uniform, &per) {
            (Some(p), _) => p.clone(),
            (None, Some(per)) => match per.iter().find(|(k, _)| *k == h.key) {
                Some((_, p)) => p.clone(),
                // Mounted after the container was placed: it has nothing there.
                None => continue,
            },
            (None, None) => unreachable!("either uniform or per-hierarchy"),
        };
        dirs.push(Dir {
            key: h.key.clone(),
            v2: h.v2,
            mountpoint: h.mountpoint.clone(),
            rel,
        });
    }
    Ok((host.mode, dirs))
}

/// Turns an io::Error into its errno so messages read "EACCES: Permission denied".
fn errno(e: io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).into(),
        None => e.into(),
    }
}

fn is_errno(e: &io::Error, n: Errno) -> bool {
    e.raw_os_error() == Some(n as i32)
}

/// Creates every missing level of `dir` below its mount point, calling `level` on each
/// level (new or not) from the top down so a backend can initialise what the kernel leaves
/// empty.
fn mkdir_levels(dir: &Dir, mut level: impl FnMut(&Path) -> Result<()>) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut cur = dir.mountpoint.clone();
    for part in dir.rel.split('/').filter(|p| !p.is_empty()) {
        cur.push(part);
        // 0755 as runc's, less the umask: a caller's umask 000 must not let other users
        // make cgroups inside the container's (which would keep delete from removing it).
        match fs::DirBuilder::new().mode(0o755).create(&cur) {
            Ok(()) => {}
            Err(e) if is_errno(&e, Errno::EEXIST) => {}
            Err(e) => {
                return Err(errno(e)).with_context(|| format!("create cgroup {}", cur.display()))
            }
        }
        level(&cur)?;
    }
    Ok(())
}

fn read_file(path: &Path) -> io::Result<String> {
    crate::sys::read_text(path)
}

/// Writes `value` in one write(2): cgroupfs acts on each write and a split one would be
/// two requests.
fn write_file(path: &Path, value: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(errno)
        .with_context(|| format!("open {}", path.display()))?;
    let n = f
        .write(value.as_bytes())
        .map_err(errno)
        .with_context(|| format!("write {value:?} to {}", path.display()))?;
    if n != value.len() {
        bail!("short write of {value:?} to {}", path.display());
    }
    Ok(())
}

/// A memory usage file's bytes; None when there is no such file (no memory controller).
fn memory_usage_file(path: &Path) -> Result<Option<u64>> {
    match read_file(path) {
        Ok(t) => t
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("parse {}", path.display())),
        Err(e) if is_errno(&e, Errno::ENOENT) || is_errno(&e, Errno::ENODEV) => Ok(None),
        Err(e) => Err(errno(e)).with_context(|| format!("read {}", path.display())),
    }
}

fn add_pid(dir: &Dir, pid: i32) -> Result<()> {
    let path = dir.path();
    write_file(&path.join("cgroup.procs"), &pid.to_string())
        .with_context(|| format!("add pid {pid} to cgroup {}", path.display()))
}

/// Pids in `dir` and every cgroup below it. A directory that vanishes meanwhile (the
/// container removing a nested cgroup) just has no pids.
fn pids_below(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = match read_file(&procs) {
        Ok(t) => t,
        Err(e) if is_errno(&e, Errno::ENOENT) || is_errno(&e, Errno::ENODEV) => return Ok(()),
        Err(e) => return Err(errno(e)).with_context(|| format!("read {}", procs.display())),
    };
    for l in text.lines().filter(|l| !l.is_empty()) {
        out.push(
            l.trim()
                .parse()
                .with_context(|| format!("bad pid {l:?} in {}", procs.display()))?,
        );
    }
    for sub in subdirs(dir)? {
        pids_below(&sub, out)?;
    }
    Ok(())
}

fn all_pids(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    pids_below(dir, &mut out)?;
    // v1 does not promise cgroup.procs is free of duplicates.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_errno(&e, Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(errno(e)).with_context(|| format!("list {}", dir.display())),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent
            .map_err(errno)
            .with_context(|| format!("list {}", dir.display()))?;
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(ent.path());
        }
    }
    Ok(out)
}

/// How long `destroy` waits for killed tasks to leave before giving up on EBUSY.
const DESTROY_PATIENCE: Duration = Duration::from_secs(1);

/// Removes `dir` and the cgroups below it, deepest first (cgroupfs only removes empty
/// cgroups, and its control files go with the rmdir).
fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    // Usually the directory has no sub-cgroup and goes at once: one rmdir, no listing.
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if is_errno(&e, Errno::ENOENT) => return Ok(()),
        Err(_) => {}
    }
    for sub in subdirs(dir)? {
        remove_tree(&sub, deadline)?;
    }
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if is_errno(&e, Errno::ENOENT) => return Ok(()),
            // Tasks that were just killed leave the cgroup a little after they die.
            Err(e) if is_errno(&e, Errno::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(errno(e)).with_context(|| format!("remove cgroup {}", dir.display()))
            }
        }
    }
}

/// Removes every directory, trying all of them before reporting the first failure so one
/// busy hierarchy does not leave the others behind.
fn remove_all(dirs: &[Dir]) -> Result<()> {
    let deadline = Instant::now() + DESTROY_PATIENCE;
    let mut first_err = None;
    for d in dirs {
        if let Err(e) = remove_tree(&d.path(), deadline) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};

    const HYBRID_MOUNTINFO: &str = "\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 22 0:32 /docker /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    const HYBRID_CGROUP: &str = "\
12:name=systemd:/user.slice
4:memory:/process_api/abc
3:cpuset:/
2:cpu,cpuacct:/user.slice
1:net_cls,net_prio:/
0::/user.slice
";

    fn hybrid() -> Host {
        Host::parse(HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap()
    }

    #[test]
    fn parses_mountinfo() {
        let m = parse_mountinfo(HYBRID_MOUNTINFO).unwrap();
        assert_eq!(m.len(), 6, "only cgroup mounts: {m:?}");
        assert_eq!(m[0].mountpoint, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m[0].super_opts, ["rw", "cpu", "cpuacct"]);
        assert!(!m[0].v2);
        assert!(m[4].v2);
        assert_eq!(m[5].mountpoint, Path::new("/mnt/mem x"));
        assert_eq!(m[5].root, "/docker");
        assert!(parse_mountinfo("1 2 3\n").is_err());
        assert_eq!(unescape(r"a\134b\011c\012"), "a\\b\tc\n");
        assert_eq!(unescape(r"odd\9x\04"), r"odd\9x\04");
    }

    #[test]
    fn parses_proc_cgroup() {
        let l = parse_proc_cgroup(HYBRID_CGROUP).unwrap();
        assert_eq!(l.len(), 6);
        assert_eq!(
            l[3],
            ProcCgroup {
                id: 2,
                controllers: "cpu,cpuacct".into(),
                path: "/user.slice".into()
            }
        );
        assert_eq!(l[5].controllers, "");
        // Paths may contain ':'; only the first two separate fields.
        assert_eq!(parse_proc_cgroup("0::/a:b").unwrap()[0].path, "/a:b");
        assert!(parse_proc_cgroup("garbage").is_err());
    }

    #[test]
    fn hybrid_hierarchies() {
        let h = hybrid();
        assert_eq!(h.mode, Mode::Hybrid);
        let keys: Vec<&str> = h.hierarchies.iter().map(|h| h.key.as_str()).collect();
        // net_cls is not mounted; memory picks the whole-hierarchy mount over /mnt/mem x.
        assert_eq!(
            keys,
            ["name=systemd", "memory", "cpuset", "cpu,cpuacct", ""]
        );
        let mem = &h.hierarchies[1];
        assert_eq!(mem.mountpoint, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own.as_deref(), Some("/process_api/abc"));
        assert!(h.hierarchies[4].v2);
        assert_eq!(
            h.hierarchies[4].mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn modes() {
        let unified = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
                       31 30 0:40 / /run/old rw - cgroup cgroup rw,name=systemd\n";
        let h = Host::parse(unified, "1:name=systemd:/\n0::/init.scope\n").unwrap();
        assert_eq!(h.mode, Mode::Unified);
        assert_eq!(h.hierarchies.len(), 1);
        assert_eq!(h.hierarchies[0].own.as_deref(), Some("/init.scope"));

        let legacy = "32 31 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let h = Host::parse(legacy, "3:pids:/x\n0::/\n").unwrap();
        assert_eq!(h.mode, Mode::Legacy);
        assert_eq!(h.hierarchies.len(), 1, "unmounted cgroup2 is skipped");

        assert!(Host::parse("22 1 259:1 / / rw - ext4 /dev/root rw\n", "0::/\n").is_err());
    }

    #[test]
    fn nested_container_view() {
        // Inside a container without a cgroup namespace: a subtree is bind-mounted.
        let mi = "50 40 0:32 /docker/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  51 40 0:33 /docker/c1 /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let h = Host::parse(mi, "5:memory:/docker/c1/sub\n6:pids:/elsewhere\n").unwrap();
        assert_eq!(h.hierarchies[0].own.as_deref(), Some("/sub"));
        assert_eq!(h.hierarchies[1].own, None);
        assert!(resolve_relative(&h, "x").is_err());
        assert_eq!(visible("/", "/a"), Some("/a".into()));
        assert_eq!(visible("/a", "/a"), Some("/".into()));
        assert_eq!(visible("/a", "/ab"), None);
    }

    #[test]
    fn resolves_paths() {
        assert_eq!(resolve_path(None, "c1").unwrap(), "/berth/c1");
        assert_eq!(resolve_path(Some(""), "c1").unwrap(), "/berth/c1");
        assert_eq!(resolve_path(Some("/a//b/./c/"), "c1").unwrap(), "/a/b/c");
        let e = resolve_path(Some("/a/../b"), "c1").unwrap_err();
        assert!(format!("{e:#}").contains("linux.cgroupsPath"), "{e:#}");
        assert!(resolve_path(Some("../x"), "c1").is_err());
        assert!(resolve_path(Some("/"), "c1").is_err());
        assert!(resolve_path(Some("."), "c1").is_err());
        assert!(resolve_path(None, "a/b").is_err());
        // Real host: whatever it is, a relative path lands under berth's own cgroups.
        let p = resolve_path(Some("rel/x"), "c1").unwrap();
        assert!(p.lines().all(|l| l.ends_with("/rel/x")), "{p}");
    }

    #[test]
    fn relative_paths_per_hierarchy() {
        let h = hybrid();
        let p = resolve_relative(&h, "ctr").unwrap();
        assert_eq!(
            p,
            "name=systemd:/user.slice/ctr\nmemory:/process_api/abc/ctr\ncpuset:/ctr\n\
             cpu,cpuacct:/user.slice/ctr\n:/user.slice/ctr"
        );
        let (mode, dirs) = placement_dirs(&h, &p).unwrap();
        assert_eq!(mode, Mode::Hybrid);
        assert_eq!(
            dirs[1].path(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc/ctr")
        );
        assert_eq!(
            dirs[4].path(),
            Path::new("/sys/fs/cgroup/unified/user.slice/ctr")
        );

        let same = "0::/init.scope\n";
        let u = Host::parse("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", same).unwrap();
        assert_eq!(resolve_relative(&u, "a/b").unwrap(), "/init.scope/a/b");

        let (_, dirs) = placement_dirs(&h, "/berth/c1").unwrap();
        assert_eq!(dirs.len(), 5);
        assert_eq!(
            dirs[3].path(),
            Path::new("/sys/fs/cgroup/cpu,cpuacct/berth/c1")
        );
        assert!(placement_dirs(&h, "/berth/../x").is_err());
        assert!(placement_dirs(&h, "memory:/a\ncpuset:relative").is_err());
        assert!(placement_dirs(&h, "/").is_err());
    }

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("100")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep")
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn round_trip_on_this_host() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let path = format!("/berth-unit-test-{}", std::process::id());
        let cg = open(&path).unwrap();
        let host = Host::read().unwrap();
        let (_, dirs) = placement_dirs(&host, &path).unwrap();
        // A leftover from a crashed earlier run with the same pid would skew the checks.
        let _ = cg.destroy();

        cg.create().unwrap();
        cg.create().unwrap(); // idempotent
        assert!(ensure_clean(&path).is_err());
        let sources = cg.mount_sources().unwrap();
        assert_eq!(sources.len(), dirs.len());
        for (name, dir) in &sources {
            assert!(dir.is_dir(), "{name}: {}", dir.display());
            if host.mode == Mode::Unified {
                assert_eq!(name, "");
            } else {
                assert!(!name.is_empty());
            }
        }

        let mut a = sleeper();
        let mut b = sleeper();
        cg.add_task(a.id() as i32).unwrap();
        // b goes into a nested cgroup, as a container with its own sub-cgroups would have.
        cg.add_task(b.id() as i32).unwrap();
        for d in &dirs {
            let sub = d.path().join("sub");
            fs::create_dir(&sub).unwrap();
            write_file(&sub.join("cgroup.procs"), &b.id().to_string())
                .or_else(|e| {
                    // A fresh v1 cpuset child has no cpus/mems; give it its parent's.
                    if d.key.split(',').any(|c| c == "cpuset") {
                        v1::fill_cpuset(&sub)?;
                        write_file(&sub.join("cgroup.procs"), &b.id().to_string())
                    } else {
                        Err(e)
                    }
                })
                .unwrap();
        }
        for d in &dirs {
            let own = fs::read_to_string(format!("/proc/{}/cgroup", a.id())).unwrap();
            assert!(
                own.lines().any(|l| l.ends_with(&format!(":{}", d.rel))),
                "{own}"
            );
        }
        let mut want = vec![a.id() as i32, b.id() as i32];
        want.sort_unstable();
        assert_eq!(cg.pids().unwrap(), want);

        signal_all(cg.as_ref(), Signal::SIGKILL).unwrap();
        // Destroy straight away: the EBUSY retry covers tasks still on their way out.
        cg.destroy().unwrap();
        // Another test may reap these children first (foreground_wait reaps any child).
        let _ = a.wait();
        let _ = b.wait();
        for d in &dirs {
            assert!(!d.path().exists(), "{}", d.path().display());
        }
        ensure_clean(&path).unwrap();
        assert_eq!(cg.pids().unwrap(), Vec::<i32>::new());
        cg.destroy().unwrap(); // already gone is fine
    }

    #[test]
    fn nested_default_path_round_trip() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let parent = format!("/berth-unit-test-{}-n", std::process::id());
        let path = format!("{parent}/a/b");
        let cg = open(&path).unwrap();
        cg.create().unwrap();
        let mut c = sleeper();
        cg.add_task(c.id() as i32).unwrap();
        assert_eq!(cg.pids().unwrap(), [c.id() as i32]);
        c.kill().unwrap();
        let _ = c.wait();
        cg.destroy().unwrap();
        ensure_clean(&path).unwrap();
        // Parents are left, as documented; clean them up here.
        let top = open(&parent).unwrap();
        assert!(ensure_clean(&parent).is_err());
        top.destroy().unwrap();
        ensure_clean(&parent).unwrap();
    }
}
