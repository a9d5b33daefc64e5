//! Loads a bundle's config.json and checks it before anything is created, so that bad input
//! fails with one line naming the field by its JSON path and leaves nothing behind.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A spec that passed every check, with its paths made absolute.
pub struct Bundle {
    /// Absolute, canonical bundle directory.
    pub dir: PathBuf,
    /// Absolute, canonical root filesystem directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// config.json as read: kept in the state directory for `exec`, which must see the
    /// container as it was created even if the bundle changed since.
    pub raw: Vec<u8>,
}

pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| anyhow!("bundle {}: {}", dir.display(), errno_text(&e)))?;
    if !dir.is_dir() {
        bail!("bundle {}: not a directory", dir.display());
    }
    let cfg = dir.join("config.json");
    let text = std::fs::read(&cfg)
        .map_err(|e| anyhow!("bundle {}: config.json: {}", dir.display(), errno_text(&e)))?;
    let spec = parse(&text).with_context(|| format!("bundle {}: config.json", dir.display()))?;
    let rootfs =
        check(&spec, &dir).with_context(|| format!("bundle {}: config.json", dir.display()))?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        raw: text,
    })
}

/// Parses config.json; a type error names the field by its JSON path
/// (`linux.resources.memory.limit: invalid type: ...`).
pub fn parse(text: &[u8]) -> Result<Spec> {
    parse_json(text)
}

/// Parses any part of the spec (a config.json, an exec's process.json) with its JSON path in
/// the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            anyhow!("{inner}")
        } else {
            anyhow!("{path}: {inner}")
        }
    })
}

fn errno_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        _ => e.to_string(),
    }
}

/// Whether the spec asks for a new namespace of `t` (no path).
pub fn new_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec)
        .iter()
        .any(|n| n.typ() == t && n.path().is_none())
}

/// Whether the spec has a namespace of `t`, new or joined.
pub fn has_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == t)
}

fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
}

pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The semantic checks; returns the absolute rootfs path.
/// Without a mount namespace the container shares the runtime's mount table: berth then
/// chroots into the rootfs and mounts nothing, so what would be a mount there is refused
/// (runc 1.1.5 mounts those on the host's table, under the rootfs, and remounts the host's
/// / as a slave).
fn check_without_mount_namespace(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let nonempty = |v: Option<usize>| v.unwrap_or(0) > 0;
    let refused = [
        ("mounts", nonempty(spec.mounts().as_ref().map(Vec::len))),
        (
            "linux.maskedPaths",
            nonempty(linux.and_then(|l| l.masked_paths().as_ref()).map(Vec::len)),
        ),
        (
            "linux.readonlyPaths",
            nonempty(
                linux
                    .and_then(|l| l.readonly_paths().as_ref())
                    .map(Vec::len),
            ),
        ),
        (
            "linux.devices",
            nonempty(linux.and_then(|l| l.devices().as_ref()).map(Vec::len)),
        ),
        (
            "linux.rootfsPropagation",
            linux
                .and_then(|l| l.rootfs_propagation().as_deref())
                .is_some_and(|p| !p.is_empty()),
        ),
        (
            "root.readonly",
            spec.root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
        ),
    ];
    if let Some((field, _)) = refused.iter().find(|(_, set)| *set) {
        bail!(
            "{field}: needs a mount namespace (linux.namespaces has none, and berth does not \
             change the host's mounts)"
        );
    }
    Ok(())
}

fn check(spec: &Spec, dir: &Path) -> Result<PathBuf> {
    if !spec.version().starts_with("1.") {
        bail!(
            "ociVersion: {:?} is not a runtime-spec 1.x version",
            spec.version()
        );
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| anyhow!("root: missing"))?;
    if root.path().as_os_str().is_empty() {
        bail!("root.path: missing");
    }
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| anyhow!("root.path: {}: {}", rootfs.display(), errno_text(&e)))?;
    if !rootfs.is_dir() {
        bail!("root.path: {}: not a directory", rootfs.display());
    }
    if rootfs == Path::new("/") {
        bail!("root.path: the host's / cannot be a container's root");
    }

    let p = spec
        .process()
        .as_ref()
        .ok_or_else(|| anyhow!("process: missing (create needs a process to run)"))?;
    check_process(p, "process.")?;
    if let Some(h) = spec.hooks() {
        crate::hooks::check(h)?;
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| anyhow!("linux: missing"))?;

    let mut seen = HashSet::new();
    for (i, ns) in namespaces(spec).iter().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!(
                "linux.namespaces[{i}].type: duplicate {} namespace",
                ns_name(ns.typ())
            );
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                bail!("linux.namespaces[{i}].path: {:?} is not absolute", p);
            }
            if let Err(e) = std::fs::metadata(p) {
                bail!(
                    "linux.namespaces[{i}].path: {}: {}",
                    p.display(),
                    errno_text(&e)
                );
            }
            check_namespace_file(p, ns.typ())
                .with_context(|| format!("linux.namespaces[{i}].path: {}", p.display()))?;
        }
    }
    if !has_namespace(spec, LinuxNamespaceType::Mount) {
        check_without_mount_namespace(spec)?;
    }
    let new_user = new_namespace(spec, LinuxNamespaceType::User);
    for (field, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        let maps = maps.as_deref().unwrap_or(&[]);
        if !maps.is_empty() && !new_user {
            bail!("{field}: id mappings need a new user namespace in linux.namespaces");
        }
        if new_user && maps.is_empty() {
            bail!("{field}: a new user namespace needs id mappings");
        }
        // The kernel takes at most 340 lines in uid_map/gid_map (since Linux 4.15).
        if maps.len() > 340 {
            bail!(
                "{field}: {} ranges, more than the kernel's limit of 340",
                maps.len()
            );
        }
        for (i, m) in maps.iter().enumerate() {
            if m.size() == 0 {
                bail!("{field}[{i}].size: must be greater than 0");
            }
            if m.container_id().checked_add(m.size()).is_none()
                || m.host_id().checked_add(m.size()).is_none()
            {
                bail!("{field}[{i}]: range overflows 32-bit ids");
            }
            // Overlapping ranges are what makes the kernel refuse the map with EINVAL.
            for (j, o) in maps[..i].iter().enumerate() {
                let within = |x: u32, y: u32| x < y.saturating_add(o.size()) && y < x + m.size();
                if within(m.container_id(), o.container_id()) {
                    bail!(
                        "{field}[{i}]: container ids {}..{} overlap those of {field}[{j}]",
                        m.container_id(),
                        u64::from(m.container_id()) + u64::from(m.size())
                    );
                }
                if within(m.host_id(), o.host_id()) {
                    bail!(
                        "{field}[{i}]: host ids {}..{} overlap those of {field}[{j}]",
                        m.host_id(),
                        u64::from(m.host_id()) + u64::from(m.size())
                    );
                }
            }
        }
    }
    // A uts namespace of the container's own, new or joined by path (as runc): never the
    // host's.
    for (field, name) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let name = name.as_deref().unwrap_or("");
        // The kernel's limit for both (HOST_NAME_MAX; __NEW_UTS_LEN).
        if name.len() > 64 {
            bail!(
                "{field}: {} bytes, longer than the kernel's limit of 64",
                name.len()
            );
        }
        if name.contains('\0') {
            bail!("{field}: contains a NUL byte");
        }
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_namespace(spec, LinuxNamespaceType::Uts)
    {
        bail!("hostname: setting the hostname needs a uts namespace");
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
        && !has_namespace(spec, LinuxNamespaceType::Uts)
    {
        bail!("domainname: setting the domainname needs a uts namespace");
    }
    if let Some(offsets) = linux.time_offsets() {
        if !offsets.is_empty() && !new_namespace(spec, LinuxNamespaceType::Time) {
            bail!("linux.timeOffsets: time offsets need a new time namespace");
        }
        for (k, o) in offsets {
            if k != "monotonic" && k != "boottime" {
                bail!("linux.timeOffsets.{k}: unknown clock (expected monotonic or boottime)");
            }
            check_time_offset(k, o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0))?;
        }
    }
    for (i, m) in spec.mounts().as_deref().unwrap_or(&[]).iter().enumerate() {
        if !m.destination().is_absolute() {
            bail!(
                "mounts[{i}].destination: {:?} is not an absolute path",
                m.destination()
            );
        }
        crate::rootfs::check_mount(m).with_context(|| format!("mounts[{i}]"))?;
        if crate::rootfs::mount::wants_idmap(m)
            && !has_namespace(spec, oci_spec::runtime::LinuxNamespaceType::User)
        {
            bail!("mounts[{i}]: an id-mapped mount needs a user namespace (linux.namespaces)");
        }
    }
    for (field, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.as_deref().unwrap_or(&[]).iter().enumerate() {
            if !p.starts_with('/') {
                bail!("{field}[{i}]: {p:?} is not an absolute path");
            }
        }
    }
    for (i, d) in linux.devices().as_deref().unwrap_or(&[]).iter().enumerate() {
        if !d.path().starts_with("/dev/") {
            bail!("linux.devices[{i}].path: {:?} must be under /dev", d.path());
        }
        if d.typ() == oci_spec::runtime::LinuxDeviceType::A {
            bail!("linux.devices[{i}].type: \"a\" is not a device type (expected c, b, u or p)");
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        if !p.is_empty() {
            crate::rootfs::propagation_flag(p)
                .ok_or_else(|| anyhow!("linux.rootfsPropagation: unknown propagation {p:?}"))?;
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for k in sysctl.keys() {
            crate::sysctl::check(
                k,
                new_namespace(spec, LinuxNamespaceType::Network),
                new_namespace(spec, LinuxNamespaceType::Ipc),
                new_namespace(spec, LinuxNamespaceType::Uts),
            )
            .with_context(|| format!("linux.sysctl.{k}"))?;
        }
    }
    if let Some(s) = linux.seccomp() {
        crate::security::seccomp::check(s)?;
    }
    if let Some(rdt) = linux.intel_rdt() {
        crate::resctrl::check(rdt)?;
    }
    crate::security::lsm::check(spec)?;
    if let Some(devs) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) {
        if !new_namespace(spec, LinuxNamespaceType::Network) {
            bail!("linux.netDevices: moving host devices needs a new network namespace");
        }
        crate::netdev::check(devs)?;
    }
    if let Some(cg) = linux.cgroups_path() {
        let s = cg.to_string_lossy();
        if s.split('/').any(|c| c == "..") {
            bail!("linux.cgroupsPath: {s:?} must not contain \"..\"");
        }
    }
    Ok(rootfs)
}

/// A namespace file to join must be a namespace, of the kind its entry names: setns would
/// otherwise fail later with a bare EINVAL.
fn check_namespace_file(p: &Path, t: LinuxNamespaceType) -> Result<()> {
    use nix::fcntl::OFlag;
    let fd = crate::sys::open(
        p,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| anyhow!("open: {e}"))?;
    let want = crate::namespaces::clone_flag(t).bits();
    match crate::sys::ns_type(std::os::fd::AsFd::as_fd(&fd)) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => {
            let kind = [
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Cgroup,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::User,
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Time,
            ]
            .into_iter()
            .find(|k| crate::namespaces::clone_flag(*k).bits() == got)
            .map_or("unknown", ns_name);
            bail!("a {kind} namespace, not a {} namespace", ns_name(t))
        }
        Err(nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL) => {
            bail!(
                "not a namespace (expected a {} namespace file such as /proc/PID/ns/{})",
                ns_name(t),
                crate::namespaces::proc_file(t)
            )
        }
        Err(e) => bail!("cannot tell its namespace type: {e}"),
    }
}

/// The kernel's bounds for a time namespace offset (kernel/time/namespace.c): nanoseconds
/// below one second, seconds within half of KTIME_SEC_MAX either way, and a clock that
/// does not go below zero (its value now plus the offset).
fn check_time_offset(clock: &str, secs: i64, nanos: u32) -> Result<()> {
    const HALF_KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000 / 2;
    let f = format!("linux.timeOffsets.{clock}");
    if nanos >= 1_000_000_000 {
        bail!("{f}.nanosecs: {nanos} is not below one second (1000000000)");
    }
    if !(-HALF_KTIME_SEC_MAX..=HALF_KTIME_SEC_MAX).contains(&secs) {
        bail!("{f}.secs: {secs} is outside the kernel's range of ±{HALF_KTIME_SEC_MAX}");
    }
    let id = if clock == "boottime" {
        libc::CLOCK_BOOTTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    if let Some(now) = crate::sys::clock_secs(id) {
        if now.saturating_add(secs) < 0 {
            bail!("{f}.secs: {secs} would put the clock below zero (it reads {now} s now)");
        }
    }
    Ok(())
}

/// At most this much of a user's string is echoed back in an error.
fn shown(s: &str) -> String {
    if s.len() <= 64 {
        return format!("{s:?}");
    }
    let mut end = 64;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &s[..end], s.len())
}

/// The kernel's fs.nr_open: no open-file limit may exceed it, whatever the capabilities.
fn nr_open() -> Option<u64> {
    crate::sys::read_text("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Checks a process (config.json's, or an exec's); `at` is the JSON path it sits at
/// ("process." or "" for a process.json of its own).
pub fn check_process(p: &oci_spec::runtime::Process, at: &str) -> Result<()> {
    match p.args().as_deref() {
        Some([first, ..]) if !first.is_empty() => {}
        _ => bail!("{at}args: must name the program to run"),
    }
    for (i, a) in p.args().as_deref().unwrap_or(&[]).iter().enumerate() {
        if a.contains('\0') {
            bail!("{at}args[{i}]: contains a NUL byte");
        }
    }
    let cwd = p.cwd().as_os_str().as_encoded_bytes();
    if cwd.contains(&0) {
        bail!("{at}cwd: contains a NUL byte");
    }
    // PATH_MAX and NAME_MAX: longer, and chdir fails with ENAMETOOLONG inside the container.
    if cwd.len() >= 4096 {
        bail!(
            "{at}cwd: {} bytes, longer than the kernel's path limit of 4095 (PATH_MAX)",
            cwd.len()
        );
    }
    if let Some(c) = cwd.split(|&b| b == b'/').find(|c| c.len() > 255) {
        bail!(
            "{at}cwd: a component of {} bytes, longer than the kernel's limit of 255 (NAME_MAX)",
            c.len()
        );
    }
    if !p.cwd().is_absolute() {
        bail!(
            "{at}cwd: {} is not an absolute path",
            shown(&p.cwd().to_string_lossy())
        );
    }
    for (i, e) in p.env().as_deref().unwrap_or(&[]).iter().enumerate() {
        if e.contains('\0') {
            bail!("{at}env[{i}]: contains a NUL byte");
        }
        if !e.contains('=') || e.starts_with('=') {
            bail!("{at}env[{i}]: {} is not KEY=VALUE", shown(e));
        }
    }
    let mut seen = Vec::new();
    for (i, r) in p.rlimits().as_deref().unwrap_or(&[]).iter().enumerate() {
        if seen.contains(&r.typ()) {
            bail!("{at}rlimits[{i}].type: duplicate {:?}", r.typ());
        }
        seen.push(r.typ());
        if r.soft() > r.hard() {
            bail!(
                "{at}rlimits[{i}]: soft limit {} is above hard limit {}",
                r.soft(),
                r.hard()
            );
        }
        if r.typ() == oci_spec::runtime::PosixRlimitType::RlimitNofile {
            // No capability lifts this one: setrlimit fails with EPERM above it.
            if let Some(max) = nr_open().filter(|&m| r.hard() > m) {
                bail!(
                    "{at}rlimits[{i}]: RLIMIT_NOFILE hard limit {} exceeds fs.nr_open ({max}), \
                     the kernel's ceiling for open files",
                    r.hard()
                );
            }
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            bail!("{at}oomScoreAdj: {adj} is outside -1000..1000");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_error_names_json_path() {
        let e = parse(br#"{"ociVersion":"1.0.0","linux":{"resources":{"memory":{"limit":"x"}}}}"#)
            .unwrap_err();
        let s = format!("{e:#}");
        assert!(
            s.starts_with("linux.resources.memory.limit: invalid type"),
            "{s}"
        );
    }

    #[test]
    fn array_index_in_path() {
        let e = parse(
            br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").starts_with("linux.namespaces[1].type: unknown variant"));
    }

    #[test]
    fn malformed_json_is_one_line() {
        let e = parse(b"{\"ociVersion\": ").unwrap_err();
        assert!(!format!("{e:#}").contains('\n'));
    }
}
