//! `linux.resources` on cgroup v1: each controller's files in its own hierarchy. On a
//! hybrid host a controller that only the cgroup2 hierarchy has (hugetlb, when no v1
//! hierarchy took it) is set there, the v2 way.

use std::path::Path;

use anyhow::{bail, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::limits_v2;
use super::resources::{bytes, device_lines, devno, errno_of, get, nz_i, nz_u, set, wanted, Ctl};
use super::writers::{check_usage, cpuset, hugetlb, pids, rdma};
use super::Dir;

pub(super) fn apply(dirs: &[Dir], r: &LinuxResources) -> Result<()> {
    if let Some(u) = r.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        bail!(
            "linux.resources.unified: cgroup v2 files ({}) cannot be set on this cgroup v1 host",
            keys.iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let unified = dirs.iter().find(|d| d.v2);
    for ctl in wanted(r) {
        if let Some(d) = dirs.iter().find(|d| d.has_v1_controller(ctl.v1_name())) {
            apply_ctl(ctl, &d.path(), r)?;
            continue;
        }
        let v2 = match (unified, ctl.v2_name()) {
            (Some(u), Some(name)) if limits_v2::available(u)?.iter().any(|a| a == name) => {
                Some((u, name))
            }
            _ => None,
        };
        let Some((u, name)) = v2 else {
            bail!(
                "{}: the {} controller is not mounted on this host",
                ctl.field(),
                ctl.v1_name()
            );
        };
        limits_v2::enable(u, &[(name.to_string(), ctl.field().to_string())])?;
        limits_v2::apply_ctl(ctl, &u.path(), r)?;
    }
    Ok(())
}

fn apply_ctl(ctl: Ctl, p: &Path, r: &LinuxResources) -> Result<()> {
    match ctl {
        Ctl::Cpuset => cpuset(p, r.cpu().as_ref().expect("wanted")),
        Ctl::Devices => devices(p, r.devices().as_deref().unwrap_or_default()),
        Ctl::Memory => memory(p, r.memory().as_ref().expect("wanted")),
        Ctl::Cpu => cpu(p, r.cpu().as_ref().expect("wanted")),
        Ctl::Pids => pids(p, r),
        Ctl::Blkio => blkio(p, r.block_io().as_ref().expect("wanted")),
        Ctl::Hugetlb => hugetlb(p, r.hugepage_limits().as_deref().unwrap_or_default(), false),
        Ctl::NetCls => {
            let id = r.network().as_ref().and_then(|n| n.class_id()).unwrap_or(0);
            set(
                p,
                "net_cls.classid",
                &id.to_string(),
                "linux.resources.network.classID",
            )
        }
        Ctl::NetPrio => {
            let prios = r.network().as_ref().and_then(|n| n.priorities().clone());
            for (i, pr) in prios.iter().flatten().enumerate() {
                let field = format!("linux.resources.network.priorities[{i}]");
                if pr.name().is_empty() || pr.name().contains(char::is_whitespace) {
                    bail!("{field}.name: {:?} is not an interface name", pr.name());
                }
                let line = format!("{} {}", pr.name(), pr.priority());
                set(p, "net_prio.ifpriomap", &line, &field)?;
            }
            Ok(())
        }
        Ctl::Rdma => rdma(p, r.rdma().as_ref().expect("wanted")),
    }
}

/// Starts from "deny everything" so the rules are the whole policy, whatever the parent
/// allowed, then applies the rules in order, later ones overriding earlier ones as the
/// kernel's exception list does.
fn devices(p: &Path, rules: &[oci_spec::runtime::LinuxDeviceCgroup]) -> Result<()> {
    set(p, "devices.deny", "a", "linux.resources.devices")?;
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let lines = device_lines(rule).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
        for (file, line) in lines {
            set(p, file, &line, &field)?;
        }
    }
    Ok(())
}

fn memory(p: &Path, m: &LinuxMemory) -> Result<()> {
    const F: &str = "linux.resources.memory";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let limit = nz_i(m.limit());
    let swap = nz_i(m.swap());
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s >= 0 && s < l {
            bail!("{F}.swap: {s} is less than {F}.limit {l} (swap is memory plus swap)");
        }
    }
    // An unlimited memory limit must lift memsw too, or the old memsw would still cap
    // memory; only where the host accounts swap at all.
    let swap = swap.or_else(|| (limit == Some(-1) && p.join(MEMSW).exists()).then_some(-1));
    if m.check_before_update() == Some(true) {
        check_usage(p, "memory.usage_in_bytes", limit)?;
    }
    let write_limit = |l: i64| {
        let f = format!("{F}.limit");
        set(p, "memory.limit_in_bytes", &bytes(l, false, &f)?, &f)
    };
    let write_swap = |s: i64| {
        let f = format!("{F}.swap");
        set(p, MEMSW, &bytes(s, false, &f)?, &f)
    };
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // The kernel keeps memory.limit <= memsw.limit at every step, so whichever
            // moves first must not cross the other's current value.
            let cur = get(p, MEMSW, &format!("{F}.swap"))?
                .parse::<u64>()
                .unwrap_or(u64::MAX);
            let want = u64::try_from(l).unwrap_or(u64::MAX);
            if want > cur {
                write_swap(s)?;
                write_limit(l)?;
            } else {
                write_limit(l)?;
                write_swap(s)?;
            }
        }
        (Some(l), None) => write_limit(l)?,
        (None, Some(s)) => write_swap(s)?,
        (None, None) => {}
    }
    let opt = |v: Option<i64>, name: &str, file: &str| -> Result<()> {
        if let Some(v) = nz_i(v) {
            let f = format!("{F}.{name}");
            set(p, file, &bytes(v, false, &f)?, &f)?;
        }
        Ok(())
    };
    opt(m.reservation(), "reservation", "memory.soft_limit_in_bytes")?;
    opt(m.kernel(), "kernel", "memory.kmem.limit_in_bytes")?;
    opt(
        m.kernel_tcp(),
        "kernelTCP",
        "memory.kmem.tcp.limit_in_bytes",
    )?;
    if let Some(s) = m.swappiness() {
        if s > 100 {
            bail!("{F}.swappiness: {s} is not between 0 and 100");
        }
        set(
            p,
            "memory.swappiness",
            &s.to_string(),
            &format!("{F}.swappiness"),
        )?;
    }
    if m.disable_oom_killer() == Some(true) {
        set(
            p,
            "memory.oom_control",
            "1",
            &format!("{F}.disableOOMKiller"),
        )?;
    }
    if let Some(h) = m.use_hierarchy() {
        let v = if h { "1" } else { "0" };
        set(p, "memory.use_hierarchy", v, &format!("{F}.useHierarchy"))?;
    }
    Ok(())
}

fn cpu(p: &Path, c: &LinuxCpu) -> Result<()> {
    const F: &str = "linux.resources.cpu";
    if let Some(s) = nz_u(c.shares()) {
        set(p, "cpu.shares", &s.to_string(), &format!("{F}.shares"))?;
    }
    let quota = nz_i(c.quota()).map(|q| if q < 0 { -1 } else { q });
    let write_quota = |q: i64| set(p, "cpu.cfs_quota_us", &q.to_string(), &format!("{F}.quota"));
    let mut quota_done = false;
    if let Some(period) = nz_u(c.period()) {
        let pf = format!("{F}.period");
        match set(p, "cpu.cfs_period_us", &period.to_string(), &pf) {
            Ok(()) => {}
            // A period the current quota does not fit: set the new quota first.
            Err(e) if errno_of(&e) == Some(Errno::EINVAL) && quota.is_some() => {
                write_quota(quota.expect("checked"))?;
                quota_done = true;
                set(p, "cpu.cfs_period_us", &period.to_string(), &pf)?;
            }
            Err(e) => return Err(e),
        }
    }
    if let (Some(q), false) = (quota, quota_done) {
        write_quota(q)?;
    }
    if let Some(b) = nz_u(c.burst()) {
        set(p, "cpu.cfs_burst_us", &b.to_string(), &format!("{F}.burst"))?;
    }
    // The period first: a runtime is checked against the period in force.
    if let Some(rp) = nz_u(c.realtime_period()) {
        set(
            p,
            "cpu.rt_period_us",
            &rp.to_string(),
            &format!("{F}.realtimePeriod"),
        )?;
    }
    if let Some(rt) = nz_i(c.realtime_runtime()) {
        set(
            p,
            "cpu.rt_runtime_us",
            &rt.to_string(),
            &format!("{F}.realtimeRuntime"),
        )?;
    }
    if let Some(idle) = nz_i(c.idle()) {
        set(p, "cpu.idle", &idle.to_string(), &format!("{F}.idle"))?;
    }
    Ok(())
}

/// The first of `files` that exists in `p`: the weight files depend on the I/O scheduler
/// (CFQ had blkio.weight, BFQ has blkio.bfq.weight).
fn first_existing<'a>(p: &Path, files: &[&'a str], field: &str) -> Result<&'a str> {
    files
        .iter()
        .find(|f| p.join(f).exists())
        .copied()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{field}: none of {} exists in {} (no I/O scheduler with weights on this host)",
                files.join(", "),
                p.display()
            )
        })
}

fn blkio(p: &Path, b: &LinuxBlockIo) -> Result<()> {
    const F: &str = "linux.resources.blockIO";
    let weight_files = ["blkio.weight", "blkio.bfq.weight"];
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let f = format!("{F}.weight");
        let file = first_existing(p, &weight_files, &f)?;
        set(p, file, &w.to_string(), &f)?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        set(
            p,
            "blkio.leaf_weight",
            &w.to_string(),
            &format!("{F}.leafWeight"),
        )?;
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("{F}.weightDevice[{i}]");
        let dev = devno(wd.major(), wd.minor(), &f)?;
        if let Some(w) = wd.weight() {
            let wf = format!("{f}.weight");
            let file = first_existing(p, &["blkio.weight_device", "blkio.bfq.weight_device"], &wf)?;
            set(p, file, &format!("{dev} {w}"), &wf)?;
        }
        if let Some(w) = wd.leaf_weight() {
            let lf = format!("{f}.leafWeight");
            set(p, "blkio.leaf_weight_device", &format!("{dev} {w}"), &lf)?;
        }
    }
    let lists = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, file, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let f = format!("{F}.{name}[{i}]");
            let dev = devno(t.major(), t.minor(), &f)?;
            set(p, file, &format!("{dev} {}", t.rate()), &f)?;
        }
    }
    Ok(())
}
