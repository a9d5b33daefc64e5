//! `linux.resources`: what the fields mean, shared by the v1 and v2 appliers.
//!
//! Conventions, the same on both backends and the same as runc's so that engines get what
//! they get elsewhere: a number that is 0 is "not set" (pids.limit excepted: there 0 means
//! no limit, as in runtime-spec 1.3, and hugepage limits, where 0 is a real limit), and -1
//! means "no limit". Every error begins with the JSON path of the field that asked for the
//! write, so a user can find the line of config.json at fault.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Result};
use nix::errno::Errno;
use oci_spec::runtime::{
    Linux, LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources,
};

/// One controller that a spec needs, in the order they are applied: cpuset first because
/// it can refuse later settings (memory migration, cpu placement), unified after all of
/// them because its verbatim keys are meant to override the typed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctl {
    Cpuset,
    Devices,
    Memory,
    Cpu,
    Pids,
    Blkio,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
}

impl Ctl {
    pub(super) fn v1_name(self) -> &'static str {
        match self {
            Ctl::Cpuset => "cpuset",
            Ctl::Devices => "devices",
            Ctl::Memory => "memory",
            Ctl::Cpu => "cpu",
            Ctl::Pids => "pids",
            Ctl::Blkio => "blkio",
            Ctl::Hugetlb => "hugetlb",
            Ctl::NetCls => "net_cls",
            Ctl::NetPrio => "net_prio",
            Ctl::Rdma => "rdma",
        }
    }

    /// The cgroup2 controller doing the same job; None where cgroup2 has none (devices is
    /// an eBPF program there, not a controller).
    pub(super) fn v2_name(self) -> Option<&'static str> {
        match self {
            Ctl::Blkio => Some("io"),
            Ctl::Devices | Ctl::NetCls | Ctl::NetPrio => None,
            c => Some(c.v1_name()),
        }
    }

    pub(super) fn field(self) -> &'static str {
        match self {
            Ctl::Cpuset => "linux.resources.cpu",
            Ctl::Devices => "linux.resources.devices",
            Ctl::Memory => "linux.resources.memory",
            Ctl::Cpu => "linux.resources.cpu",
            Ctl::Pids => "linux.resources.pids",
            Ctl::Blkio => "linux.resources.blockIO",
            Ctl::Hugetlb => "linux.resources.hugepageLimits",
            Ctl::NetCls => "linux.resources.network.classID",
            Ctl::NetPrio => "linux.resources.network.priorities",
            Ctl::Rdma => "linux.resources.rdma",
        }
    }
}

pub(super) fn nz_i(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 0)
}

pub(super) fn nz_u(v: Option<u64>) -> Option<u64> {
    v.filter(|&x| x != 0)
}

fn memory_wanted(m: &LinuxMemory) -> bool {
    nz_i(m.limit()).is_some()
        || nz_i(m.reservation()).is_some()
        || nz_i(m.swap()).is_some()
        || nz_i(m.kernel()).is_some()
        || nz_i(m.kernel_tcp()).is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some()
}

fn cpu_wanted(c: &LinuxCpu) -> bool {
    nz_u(c.shares()).is_some()
        || nz_i(c.quota()).is_some()
        || nz_u(c.period()).is_some()
        || nz_u(c.burst()).is_some()
        || nz_i(c.realtime_runtime()).is_some()
        || nz_u(c.realtime_period()).is_some()
        || nz_i(c.idle()).is_some()
}

fn cpuset_wanted(c: &LinuxCpu) -> bool {
    let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
    set(c.cpus()) || set(c.mems())
}

fn blkio_wanted(b: &LinuxBlockIo) -> bool {
    let any = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || any(b.throttle_read_bps_device())
        || any(b.throttle_write_bps_device())
        || any(b.throttle_read_iops_device())
        || any(b.throttle_write_iops_device())
}

/// The controllers `r` writes to, in application order.
pub(super) fn wanted(r: &LinuxResources) -> Vec<Ctl> {
    let mut out = Vec::new();
    let cpu = r.cpu().as_ref();
    if cpu.is_some_and(cpuset_wanted) {
        out.push(Ctl::Cpuset);
    }
    if r.devices().is_some() {
        out.push(Ctl::Devices);
    }
    if r.memory().as_ref().is_some_and(memory_wanted) {
        out.push(Ctl::Memory);
    }
    if cpu.is_some_and(cpu_wanted) {
        out.push(Ctl::Cpu);
    }
    if r.pids().is_some() {
        out.push(Ctl::Pids);
    }
    if r.block_io().as_ref().is_some_and(blkio_wanted) {
        out.push(Ctl::Blkio);
    }
    if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
        out.push(Ctl::Hugetlb);
    }
    if let Some(n) = r.network() {
        if nz_u(n.class_id().map(u64::from)).is_some() {
            out.push(Ctl::NetCls);
        }
        if n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            out.push(Ctl::NetPrio);
        }
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push(Ctl::Rdma);
    }
    out
}

/// Writes `value` to `dir/file` in one write(2) (cgroupfs acts on each write), with the
/// error led by `field`. The underlying errno stays reachable with `downcast_ref::<Errno>`.
pub(super) fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let path = dir.join(file);
    let mut f = match OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) => {
            let n = Errno::from_raw(e.raw_os_error().unwrap_or(0));
            let what = if n == Errno::ENOENT {
                format!(
                    "{field}: {} does not exist (not supported by this kernel or host)",
                    path.display()
                )
            } else {
                format!("{field}: open {}", path.display())
            };
            return Err(anyhow::Error::new(n).context(what));
        }
    };
    match f.write(value.as_bytes()) {
        Ok(n) if n == value.len() => Ok(()),
        Ok(_) => bail!("{field}: short write of {value} to {}", path.display()),
        Err(e) => Err(
            anyhow::Error::new(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
                .context(format!("{field}: write {value} to {}", path.display())),
        ),
    }
}

/// Reads `dir/file`, trimmed.
pub(super) fn get(dir: &Path, file: &str, field: &str) -> Result<String> {
    let path = dir.join(file);
    let mut s = String::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| {
            anyhow::Error::new(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
                .context(format!("{field}: read {}", path.display()))
        })?;
    Ok(s.trim().to_string())
}

pub(super) fn errno_of(e: &anyhow::Error) -> Option<Errno> {
    e.downcast_ref::<Errno>().copied()
}

/// A byte limit as the file wants it: -1 is "no limit", spelt "-1" on v1 and "max" on v2.
pub(super) fn bytes(v: i64, v2: bool, field: &str) -> Result<String> {
    match v {
        -1 if v2 => Ok("max".into()),
        v if v >= -1 => Ok(v.to_string()),
        v => bail!("{field}: {v} is neither a size in bytes nor -1 (no limit)"),
    }
}

/// pids.max for `linux.resources.pids.limit`: 0 and -1 both mean no limit.
pub fn pids_max(limit: i64) -> Result<String> {
    match limit {
        0 | -1 => Ok("max".into()),
        n if n > 0 => Ok(n.to_string()),
        n => bail!("linux.resources.pids.limit: {n} is neither a count nor -1 (no limit)"),
    }
}

/// cpu.weight (1..10000, default 100) for v1 cpu.shares (2..262144, default 1024): a linear
/// map of one range onto the other, the one runc and crun use, so a container gets the same
/// weight whichever runtime starts it. Out-of-range shares are clamped as v1's kernel does.
pub fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + (s - 2) * 9999 / 262_142
}

/// io.weight (1..10000) for a v1 blkio weight (10..1000), linear like the shares map.
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// memory.swap.max for the OCI `limit` and `swap`. OCI's swap is v1's memsw, memory plus
/// swap, while v2 limits swap alone, so the v2 value is their difference. Ok(None) leaves
/// memory.swap.max alone; Ok(Some(-1)) means "max". Zeros are "not set".
pub fn swap_max(limit: Option<i64>, swap: Option<i64>) -> Result<Option<i64>, String> {
    let (limit, swap) = (nz_i(limit), nz_i(swap));
    match (limit, swap) {
        // Lifting the memory limit without a word on swap lifts swap too, as on v1 where
        // memsw must stay at or above the memory limit.
        (Some(-1), None) => Ok(Some(-1)),
        (_, None) => Ok(None),
        (_, Some(-1)) => Ok(Some(-1)),
        (_, Some(s)) if s < -1 => Err(format!("{s} is neither a size in bytes nor -1")),
        (None | Some(-1), Some(_)) => {
            Err("a swap limit needs a memory limit (swap is memory plus swap)".into())
        }
        (Some(l), Some(_)) if l < -1 => Err(format!("memory.limit {l} is invalid")),
        (Some(l), Some(s)) if s < l => Err(format!(
            "{s} is less than memory.limit {l} (swap is memory plus swap)"
        )),
        (Some(l), Some(s)) => Ok(Some(s - l)),
    }
}

/// The cpu.max line for OCI quota and period (zeros not set). `current_quota` is the first
/// word of the current cpu.max, kept when only the period changes: "max" would lift a
/// quota nobody asked to lift.
pub fn cpu_max_line(
    quota: Option<i64>,
    period: Option<u64>,
    current_quota: &str,
) -> Option<String> {
    let quota = nz_i(quota).map(|q| {
        if q < 0 {
            "max".to_string()
        } else {
            q.to_string()
        }
    });
    match (quota, nz_u(period)) {
        (None, None) => None,
        (Some(q), None) => Some(q),
        (Some(q), Some(p)) => Some(format!("{q} {p}")),
        (None, Some(p)) => Some(format!("{current_quota} {p}")),
    }
}

pub(super) fn devno(major: i64, minor: i64, field: &str) -> Result<String> {
    if major < 0 || minor < 0 {
        bail!("{field}: device {major}:{minor} has a negative number");
    }
    Ok(format!("{major}:{minor}"))
}

/// The io.max lines for the throttle lists of `b`: one line per device, its limits
/// combined, devices in order of first mention, each with the field that first mentions
/// the device. A rate of 0 means "no limit" in v1's blkio.throttle files and is written
/// as max.
pub fn io_max_lines(b: &LinuxBlockIo) -> Result<Vec<(String, String)>> {
    let lists = [
        (
            "rbps",
            "throttleReadBpsDevice",
            b.throttle_read_bps_device(),
        ),
        (
            "wbps",
            "throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
        ),
        (
            "riops",
            "throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
        ),
        (
            "wiops",
            "throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
        ),
    ];
    struct Dev {
        num: String,
        field: String,
        limits: Vec<(&'static str, String)>,
    }
    let mut devs: Vec<Dev> = Vec::new();
    for (key, name, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let field = format!("linux.resources.blockIO.{name}[{i}]");
            let dev = devno(t.major(), t.minor(), &field)?;
            let rate = match t.rate() {
                0 => "max".to_string(),
                r => r.to_string(),
            };
            let pos = match devs.iter().position(|d| d.num == dev) {
                Some(p) => p,
                None => {
                    devs.push(Dev {
                        num: dev,
                        field,
                        limits: Vec::new(),
                    });
                    devs.len() - 1
                }
            };
            let limits = &mut devs[pos].limits;
            limits.retain(|(k, _)| *k != key);
            limits.push((key, rate));
        }
    }
    Ok(devs
        .into_iter()
        .map(|Dev { num, field, limits }| {
            let mut line = num;
            // The kernel takes the keys in any order; a fixed one keeps lines comparable.
            for k in ["rbps", "wbps", "riops", "wiops"] {
                if let Some((_, v)) = limits.iter().find(|(key, _)| *key == k) {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            (line, field)
        })
        .collect())
}

/// A rule's access as the kernel spells it: the letters r, w and m it has, in that order;
/// absent or empty means all three. Other letters are left out, as runc leaves them (it
/// warns, and so does the caller through `unknown_access`): configs written for runc with
/// "rwa" or "rwmx" keep working. Empty when no letter is known: such a rule matches nothing.
pub fn device_access(access: Option<&str>) -> String {
    match access {
        None | Some("") => "rwm".to_string(),
        Some(a) => "rwm".chars().filter(|c| a.contains(*c)).collect(),
    }
}

/// The letters of a rule's access that are not r, w or m, if any: the caller warns about
/// them naming the field.
pub fn unknown_access(access: Option<&str>) -> Option<String> {
    let odd: String = access?.chars().filter(|c| !"rwm".contains(*c)).collect();
    (!odd.is_empty()).then_some(odd)
}

/// The v1 devices-cgroup writes for one rule: (file, line). A rule for every type of
/// device is written as "a" only when it covers every device and access: the kernel reads
/// "a" as the whole-cgroup default whatever follows it, so a narrower all-types rule is
/// spelt out for block and char devices instead.
pub fn device_lines(rule: &LinuxDeviceCgroup) -> Result<Vec<(&'static str, String)>, String> {
    let file = if rule.allow() {
        "devices.allow"
    } else {
        "devices.deny"
    };
    let access = device_access(rule.access().as_deref());
    if access.is_empty() {
        return Ok(Vec::new());
    }
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        // -1 is the wildcard in runc's configs; JSON null or absent is the OCI one.
        _ => "*".to_string(),
    };
    let (major, minor) = (num(rule.major()), num(rule.minor()));
    let types: &[char] = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A if major == "*" && minor == "*" && access == "rwm" => {
            return Ok(vec![(file, "a".to_string())]);
        }
        LinuxDeviceType::A => &['b', 'c'],
        LinuxDeviceType::B => &['b'],
        // "u" is an unbuffered character device: a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => &['c'],
        LinuxDeviceType::P => {
            return Err("FIFOs are not controlled by the devices cgroup".to_string());
        }
    };
    Ok(types
        .iter()
        .map(|t| (file, format!("{t} {major}:{minor} {access}")))
        .collect())
}

/// Devices every container may use whatever its rules say: mknod of any device (the
/// rootfs is the container's own; opening is what matters), the runtime-spec's default
/// devices, the console and pseudo-terminals, and /dev/net/tun, which runc allows too and
/// rootless networking tools expect.
/// (device node it stands for, if one, type, major, minor, access).
type DefaultRule = (
    Option<&'static str>,
    LinuxDeviceType,
    Option<i64>,
    Option<i64>,
    &'static str,
);

const ALWAYS_ALLOWED: &[DefaultRule] = &[
    (None, LinuxDeviceType::C, None, None, "m"),
    (None, LinuxDeviceType::B, None, None, "m"),
    (
        Some("/dev/null"),
        LinuxDeviceType::C,
        Some(1),
        Some(3),
        "rwm",
    ),
    (
        Some("/dev/zero"),
        LinuxDeviceType::C,
        Some(1),
        Some(5),
        "rwm",
    ),
    (
        Some("/dev/full"),
        LinuxDeviceType::C,
        Some(1),
        Some(7),
        "rwm",
    ),
    (
        Some("/dev/random"),
        LinuxDeviceType::C,
        Some(1),
        Some(8),
        "rwm",
    ),
    (
        Some("/dev/urandom"),
        LinuxDeviceType::C,
        Some(1),
        Some(9),
        "rwm",
    ),
    (
        Some("/dev/tty"),
        LinuxDeviceType::C,
        Some(5),
        Some(0),
        "rwm",
    ),
    (
        Some("/dev/console"),
        LinuxDeviceType::C,
        Some(5),
        Some(1),
        "rwm",
    ),
    // ptmx and tun name no node, as in runc's list: a config that lists /dev/ptmx or
    // /dev/net/tun in linux.devices (engines do for `--device`) keeps their rules.
    (None, LinuxDeviceType::C, Some(5), Some(2), "rwm"),
    (None, LinuxDeviceType::C, Some(136), None, "rwm"),
    (None, LinuxDeviceType::C, Some(10), Some(200), "rwm"),
];

fn allow_rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(true);
    d.set_typ(Some(typ));
    d.set_major(major);
    d.set_minor(minor);
    d.set_access(Some(access.to_string()));
    d
}

/// The resources to apply for a container: `linux.resources` with its device rules
/// followed by allow rules for the devices every container has (runc's list), so the
/// standard nodes keep working under a config that denies all. A default whose node the
/// config lists in `linux.devices` is left out: that config then decides about it in
/// `linux.resources.devices`, as with runc. `linux.devices` entries get no rule of their
/// own (the engines that add devices add their rules too). Returned even when
/// `linux.resources` is absent, so the device policy applies to every container.
pub fn effective_resources(linux: &Linux) -> LinuxResources {
    let mut r = linux.resources().clone().unwrap_or_default();
    let mut rules = r.devices().clone().unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(odd) = unknown_access(rule.access().as_deref()) {
            crate::log::warn(&format!(
                "linux.resources.devices[{i}].access: ignoring {odd:?}: only r, w and m mean \
                 anything"
            ));
        }
    }
    let listed = |path: &str| {
        linux
            .devices()
            .iter()
            .flatten()
            .any(|d| d.path() == std::path::Path::new(path))
    };
    for (path, t, major, minor, access) in ALWAYS_ALLOWED {
        if path.is_some_and(listed) {
            continue;
        }
        rules.push(allow_rule(*t, *major, *minor, access));
    }
    r.set_devices(Some(rules));
    r
}

/// A `linux.resources.unified` key must name a file in the container's own cgroup.
pub(super) fn check_unified_key(key: &str) -> Result<()> {
    let field = format!("linux.resources.unified.{key}");
    if key.is_empty() || key == "." || key == ".." || key.contains(['/', '\0']) {
        bail!("{field}: {key:?} is not the name of a file in the cgroup");
    }
    // Moving processes is the runtime's business, and a container has none yet.
    if matches!(key, "cgroup.procs" | "cgroup.threads") {
        bail!("{field}: processes cannot be moved through linux.resources.unified");
    }
    Ok(())
}

/// The cgroup2 controller a unified key belongs to, if its prefix names one: "memory" for
/// "memory.high"; None for the core "cgroup." files.
pub(super) fn unified_controller<'a>(key: &'a str, available: &[String]) -> Option<&'a str> {
    // Controllers the kernel may have that the host has not made available still count:
    // asking for one is then an error that names it.
    const KNOWN: &[&str] = &[
        "cpu", "cpuset", "io", "memory", "hugetlb", "pids", "rdma", "misc", "dmem",
    ];
    let prefix = key.split('.').next()?;
    (prefix != key && (KNOWN.contains(&prefix) || available.iter().any(|a| a == prefix)))
        .then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDevice, LinuxThrottleDevice};

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(512), 20);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1, "clamped like v1's kernel");
        assert_eq!(shares_to_weight(1 << 40), 10_000);
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
        assert_eq!(blkio_weight_to_io(5), 1);
    }

    #[test]
    fn swap_arithmetic() {
        let mib = 1 << 20;
        assert_eq!(
            swap_max(Some(64 * mib), Some(128 * mib)),
            Ok(Some(64 * mib))
        );
        assert_eq!(swap_max(Some(64 * mib), Some(64 * mib)), Ok(Some(0)));
        assert_eq!(swap_max(Some(64 * mib), Some(-1)), Ok(Some(-1)));
        assert_eq!(swap_max(Some(64 * mib), None), Ok(None));
        assert_eq!(swap_max(Some(64 * mib), Some(0)), Ok(None));
        assert_eq!(swap_max(Some(-1), None), Ok(Some(-1)));
        assert_eq!(swap_max(None, None), Ok(None));
        assert_eq!(swap_max(None, Some(-1)), Ok(Some(-1)));
        assert!(swap_max(Some(64 * mib), Some(32 * mib)).is_err());
        assert!(swap_max(None, Some(64 * mib)).is_err());
        assert!(swap_max(Some(-1), Some(64 * mib)).is_err());
        assert!(swap_max(Some(64), Some(-7)).is_err());
    }

    #[test]
    fn pids_and_bytes() {
        assert_eq!(pids_max(0).unwrap(), "max");
        assert_eq!(pids_max(-1).unwrap(), "max");
        assert_eq!(pids_max(64).unwrap(), "64");
        assert!(pids_max(-2).is_err());
        assert_eq!(bytes(-1, true, "f").unwrap(), "max");
        assert_eq!(bytes(-1, false, "f").unwrap(), "-1");
        assert_eq!(bytes(4096, true, "f").unwrap(), "4096");
        let e = bytes(-3, false, "linux.resources.memory.limit").unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.memory.limit: "),
            "{e}"
        );
    }

    #[test]
    fn cpu_max() {
        assert_eq!(cpu_max_line(None, None, "max"), None);
        assert_eq!(cpu_max_line(Some(0), Some(0), "max"), None);
        assert_eq!(
            cpu_max_line(Some(50_000), Some(100_000), "max").unwrap(),
            "50000 100000"
        );
        assert_eq!(
            cpu_max_line(Some(-1), Some(100_000), "max").unwrap(),
            "max 100000"
        );
        assert_eq!(cpu_max_line(Some(20_000), None, "max").unwrap(), "20000");
        assert_eq!(
            cpu_max_line(None, Some(50_000), "30000").unwrap(),
            "30000 50000"
        );
    }

    fn throttle(major: i64, minor: i64, rate: u64) -> LinuxThrottleDevice {
        serde_json::from_value(serde_json::json!({"major": major, "minor": minor, "rate": rate}))
            .unwrap()
    }

    #[test]
    fn io_max() {
        let mut b = LinuxBlockIo::default();
        b.set_throttle_write_bps_device(Some(vec![throttle(8, 0, 2048)]));
        b.set_throttle_read_bps_device(Some(vec![throttle(8, 0, 1024), throttle(254, 0, 0)]));
        b.set_throttle_read_iops_device(Some(vec![throttle(254, 0, 100)]));
        b.set_throttle_write_iops_device(Some(vec![throttle(8, 16, 7), throttle(8, 16, 9)]));
        let lines = io_max_lines(&b).unwrap();
        let text: Vec<&str> = lines.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            text,
            [
                "8:0 rbps=1024 wbps=2048",
                "254:0 rbps=max riops=100",
                "8:16 wiops=9"
            ]
        );
        assert_eq!(
            lines[0].1,
            "linux.resources.blockIO.throttleReadBpsDevice[0]"
        );
        assert_eq!(
            lines[2].1,
            "linux.resources.blockIO.throttleWriteIOPSDevice[0]"
        );
        b.set_throttle_read_iops_device(Some(vec![throttle(-1, 0, 1)]));
        let e = io_max_lines(&b).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.resources.blockIO.throttleReadIOPSDevice[0]: "),
            "{e}"
        );
        assert!(io_max_lines(&LinuxBlockIo::default()).unwrap().is_empty());
    }

    fn rule(
        allow: bool,
        typ: Option<LinuxDeviceType>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> LinuxDeviceCgroup {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(allow);
        d.set_typ(typ);
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(access.map(str::to_string));
        d
    }

    #[test]
    fn device_rule_lines() {
        use LinuxDeviceType::*;
        let one = |r| device_lines(&r).unwrap();
        assert_eq!(
            one(rule(false, None, None, None, Some("rwm"))),
            [("devices.deny", "a".to_string())]
        );
        assert_eq!(
            one(rule(true, Some(A), None, None, None)),
            [("devices.allow", "a".to_string())]
        );
        assert_eq!(
            one(rule(true, Some(C), Some(1), Some(3), Some("mwr"))),
            [("devices.allow", "c 1:3 rwm".to_string())]
        );
        assert_eq!(
            one(rule(false, Some(B), Some(8), None, Some("w"))),
            [("devices.deny", "b 8:* w".to_string())]
        );
        assert_eq!(
            one(rule(true, Some(U), Some(-1), Some(-1), Some("r"))),
            [("devices.allow", "c *:* r".to_string())]
        );
        // All types but not everything: spelt out, never a bare "a".
        assert_eq!(
            one(rule(true, Some(A), Some(10), Some(229), None)),
            [
                ("devices.allow", "b 10:229 rwm".to_string()),
                ("devices.allow", "c 10:229 rwm".to_string())
            ]
        );
        assert_eq!(
            one(rule(true, None, None, None, Some("m"))),
            [
                ("devices.allow", "b *:* m".to_string()),
                ("devices.allow", "c *:* m".to_string())
            ]
        );
        // runc's tolerant form: unknown letters are left out, a rule with none known is
        // left out whole.
        assert_eq!(
            one(rule(true, Some(C), None, None, Some("rwa"))),
            [("devices.allow", "c *:* rw".to_string())]
        );
        assert_eq!(
            one(rule(true, Some(C), None, None, Some("rwmr"))),
            [("devices.allow", "c *:* rwm".to_string())]
        );
        assert!(one(rule(true, Some(C), None, None, Some("x"))).is_empty());
        assert_eq!(unknown_access(Some("rwa")).as_deref(), Some("a"));
        assert_eq!(unknown_access(Some("rw")), None);
        assert!(device_lines(&rule(true, Some(P), None, None, None)).is_err());
    }

    #[test]
    fn effective_adds_defaults_except_listed_devices() {
        let mut linux = Linux::default();
        let mut fuse = LinuxDevice::default();
        fuse.set_typ(LinuxDeviceType::C);
        fuse.set_path("/dev/fuse".into());
        fuse.set_major(10);
        fuse.set_minor(229);
        let mut full = LinuxDevice::default();
        full.set_typ(LinuxDeviceType::C);
        full.set_path("/dev/full".into());
        full.set_major(1);
        full.set_minor(7);
        linux.set_devices(Some(vec![fuse, full]));
        let r = effective_resources(&linux);
        let lines: Vec<String> = r
            .devices()
            .as_ref()
            .unwrap()
            .iter()
            .flat_map(|d| device_lines(d).unwrap())
            .map(|(f, l)| format!("{f} {l}"))
            .collect();
        // /dev/full is listed, so its default rule is left to the config; fuse gets none.
        assert_eq!(lines.len(), ALWAYS_ALLOWED.len() - 1, "{lines:?}");
        assert!(lines.contains(&"devices.allow c 1:3 rwm".to_string()));
        assert!(lines.contains(&"devices.allow c 136:* rwm".to_string()));
        assert!(!lines.contains(&"devices.allow c 1:7 rwm".to_string()));
        assert!(!lines.contains(&"devices.allow c 10:229 rwm".to_string()));
        assert!(r.memory().is_none());

        // The config's own rules come first, so the defaults win over a deny of them.
        let mut res = LinuxResources::default();
        res.set_devices(Some(vec![rule(false, None, None, None, Some("rwm"))]));
        linux.set_resources(Some(res));
        let r = effective_resources(&linux);
        assert!(!r.devices().as_ref().unwrap()[0].allow());
        assert_eq!(r.devices().as_ref().unwrap().len(), ALWAYS_ALLOWED.len());
    }

    #[test]
    fn wanted_controllers() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":0,"swappiness":null},"pids":{"limit":0},
                "cpu":{"shares":512,"cpus":""},"blockIO":{"weight":0},
                "network":{"classID":0,"priorities":[{"name":"eth0","priority":1}]}}"#,
        )
        .unwrap();
        assert_eq!(wanted(&r), [Ctl::Cpu, Ctl::Pids, Ctl::NetPrio]);
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[],"memory":{"limit":1},"cpu":{"mems":"0"},
                "blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1}]},
                "hugepageLimits":[{"pageSize":"2MB","limit":0}],"rdma":{"m":{}}}"#,
        )
        .unwrap();
        assert_eq!(
            wanted(&r),
            [
                Ctl::Cpuset,
                Ctl::Devices,
                Ctl::Memory,
                Ctl::Blkio,
                Ctl::Hugetlb,
                Ctl::Rdma
            ]
        );
        assert_eq!(Ctl::Blkio.v2_name(), Some("io"));
        assert_eq!(Ctl::NetCls.v2_name(), None);
    }

    #[test]
    fn unified_keys() {
        assert!(check_unified_key("memory.high").is_ok());
        assert!(check_unified_key("../memory.high").is_err());
        assert!(check_unified_key("").is_err());
        assert!(check_unified_key("cgroup.procs").is_err());
        let avail = vec!["memory".to_string(), "newctl".to_string()];
        assert_eq!(unified_controller("memory.high", &avail), Some("memory"));
        assert_eq!(unified_controller("misc.max", &avail), Some("misc"));
        assert_eq!(unified_controller("newctl.max", &avail), Some("newctl"));
        assert_eq!(unified_controller("cgroup.max.depth", &avail), None);
        assert_eq!(unified_controller("memory", &avail), None);
    }
}
