//! `linux.resources` on cgroup v2: controllers enabled down the tree to the container's
//! parent, then the files in the container's directory.
//!
//! Device rules have no file on cgroup2: they become an eBPF program attached to the
//! container's cgroup (bpf_devices).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::resources::{
    blkio_weight_to_io, bytes, check_unified_key, cpu_max_line, devno, errno_of, get, io_max_lines,
    nz_i, nz_u, set, shares_to_weight, swap_max, unified_controller, wanted, Ctl,
};
use super::writers::{check_usage, cpuset, hugetlb, pids, rdma};
use super::Dir;

pub(super) fn apply(dir: &Dir, r: &LinuxResources) -> Result<()> {
    let ctls: Vec<Ctl> = wanted(r)
        .into_iter()
        .filter(|c| *c != Ctl::Devices)
        .collect();
    let mut needs = Vec::new();
    for &ctl in &ctls {
        let Some(name) = ctl.v2_name() else {
            bail!(
                "{}: cgroup v2 has no {} controller (this host is cgroup v2 only)",
                ctl.field(),
                ctl.v1_name()
            );
        };
        needs.push((name.to_string(), ctl.field().to_string()));
    }
    let mut unified: Vec<(&String, &String)> = r.unified().iter().flatten().collect();
    unified.sort();
    if !unified.is_empty() {
        let avail = available(dir)?;
        for (key, _) in &unified {
            check_unified_key(key)?;
            if let Some(c) = unified_controller(key, &avail) {
                needs.push((c.to_string(), format!("linux.resources.unified.{key}")));
            }
        }
    }
    enable(dir, &needs)?;
    let p = dir.path();
    for ctl in ctls {
        apply_ctl(ctl, &p, r)?;
    }
    for (key, value) in unified {
        set(&p, key, value, &format!("linux.resources.unified.{key}"))?;
    }
    if let Some(rules) = r.devices().as_deref() {
        let prog = super::bpf_devices::program(rules)?;
        super::bpf_devices::attach(&p, &prog).map_err(|e| {
            anyhow!(
                "linux.resources.devices: attach the device filter to {}: {e:#}",
                p.display()
            )
        })?;
    }
    Ok(())
}

/// The controllers the hierarchy's visible root offers.
pub(super) fn available(dir: &Dir) -> Result<Vec<String>> {
    words(&dir.mountpoint, "cgroup.controllers", "linux.resources")
}

fn words(p: &Path, file: &str, field: &str) -> Result<Vec<String>> {
    Ok(get(p, file, field)?
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

/// Enables each (controller, field asking for it) in cgroup.subtree_control of every
/// ancestor of `dir`, from the visible root down to its parent, so that the controller's
/// files appear in `dir`. One controller per write so a failure names its field.
pub(super) fn enable(dir: &Dir, needs: &[(String, String)]) -> Result<()> {
    let mut uniq: Vec<&(String, String)> = Vec::new();
    for n in needs {
        if !uniq.iter().any(|u| u.0 == n.0) {
            uniq.push(n);
        }
    }
    if uniq.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = dir.rel.split('/').filter(|p| !p.is_empty()).collect();
    let mut level = dir.mountpoint.clone();
    for part in parts {
        let avail = words(&level, "cgroup.controllers", "linux.resources")?;
        let on = words(&level, "cgroup.subtree_control", "linux.resources")?;
        for (ctl, field) in &uniq {
            if on.contains(ctl) {
                continue;
            }
            if !avail.contains(ctl) {
                bail!(
                    "{field}: the {ctl} controller is not available in {}",
                    level.display()
                );
            }
            set(&level, "cgroup.subtree_control", &format!("+{ctl}"), field).map_err(|e| {
                if errno_of(&e) == Some(Errno::EBUSY) {
                    e.context(format!(
                        "{} has processes of its own, and cgroup v2 lets a cgroup hand \
                         controllers to its children only when it has none",
                        level.display()
                    ))
                } else {
                    e
                }
            })?;
        }
        level.push(part);
    }
    Ok(())
}

pub(super) fn apply_ctl(ctl: Ctl, p: &Path, r: &LinuxResources) -> Result<()> {
    match ctl {
        Ctl::Cpuset => cpuset(p, r.cpu().as_ref().expect("wanted")),
        Ctl::Memory => memory(p, r.memory().as_ref().expect("wanted")),
        Ctl::Cpu => cpu(p, r.cpu().as_ref().expect("wanted")),
        Ctl::Pids => pids(p, r),
        Ctl::Blkio => io(p, r.block_io().as_ref().expect("wanted")),
        Ctl::Hugetlb => hugetlb(p, r.hugepage_limits().as_deref().unwrap_or_default(), true),
        Ctl::Rdma => rdma(p, r.rdma().as_ref().expect("wanted")),
        Ctl::Devices | Ctl::NetCls | Ctl::NetPrio => {
            bail!("{}: not a cgroup v2 controller", ctl.field())
        }
    }
}

fn memory(p: &Path, m: &LinuxMemory) -> Result<()> {
    const F: &str = "linux.resources.memory";
    let unsupported = |name: &str, why: &str| anyhow!("{F}.{name}: {why}");
    if nz_i(m.kernel()).is_some() {
        return Err(unsupported(
            "kernel",
            "cgroup v2 has no separate kernel memory limit",
        ));
    }
    if nz_i(m.kernel_tcp()).is_some() {
        return Err(unsupported(
            "kernelTCP",
            "cgroup v2 has no separate TCP memory limit",
        ));
    }
    if m.swappiness().is_some() {
        return Err(unsupported(
            "swappiness",
            "cgroup v2 has no per-cgroup swappiness",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "disableOOMKiller",
            "cgroup v2 cannot turn the OOM killer off",
        ));
    }
    if m.use_hierarchy() == Some(false) {
        return Err(unsupported(
            "useHierarchy",
            "cgroup v2 is always hierarchical",
        ));
    }
    let limit = nz_i(m.limit());
    let swap = swap_max(limit, m.swap()).map_err(|e| anyhow!("{F}.swap: {e}"))?;
    if m.check_before_update() == Some(true) {
        check_usage(p, "memory.current", limit)?;
    }
    if let Some(l) = limit {
        let f = format!("{F}.limit");
        set(p, "memory.max", &bytes(l, true, &f)?, &f)?;
    }
    // Derived from an unlimited memory limit rather than asked for: skipped where the
    // kernel does not account swap.
    let derived = nz_i(m.swap()).is_none();
    if let Some(s) = swap.filter(|_| !derived || p.join("memory.swap.max").exists()) {
        let f = format!("{F}.swap");
        set(p, "memory.swap.max", &bytes(s, true, &f)?, &f)?;
    }
    if let Some(r) = nz_i(m.reservation()) {
        let f = format!("{F}.reservation");
        set(p, "memory.low", &bytes(r, true, &f)?, &f)?;
    }
    Ok(())
}

fn cpu(p: &Path, c: &LinuxCpu) -> Result<()> {
    const F: &str = "linux.resources.cpu";
    if nz_i(c.realtime_runtime()).is_some() || nz_u(c.realtime_period()).is_some() {
        let name = if nz_i(c.realtime_runtime()).is_some() {
            "realtimeRuntime"
        } else {
            "realtimePeriod"
        };
        bail!("{F}.{name}: cgroup v2 has no real-time group scheduling");
    }
    if let Some(s) = nz_u(c.shares()) {
        let w = shares_to_weight(s).to_string();
        set(p, "cpu.weight", &w, &format!("{F}.shares"))?;
    }
    // Errors name the quota when one is given: it is what the kernel checks a period against.
    let field = if nz_i(c.quota()).is_some() {
        format!("{F}.quota")
    } else {
        format!("{F}.period")
    };
    let current = if nz_i(c.quota()).is_none() && nz_u(c.period()).is_some() {
        get(p, "cpu.max", &field)?
            .split_whitespace()
            .next()
            .unwrap_or("max")
            .to_string()
    } else {
        String::new()
    };
    if let Some(line) = cpu_max_line(c.quota(), c.period(), &current) {
        set(p, "cpu.max", &line, &field)?;
    }
    // After cpu.max: the kernel refuses a burst larger than the quota in force.
    if let Some(b) = nz_u(c.burst()) {
        set(p, "cpu.max.burst", &b.to_string(), &format!("{F}.burst"))?;
    }
    if let Some(idle) = nz_i(c.idle()) {
        set(p, "cpu.idle", &idle.to_string(), &format!("{F}.idle"))?;
    }
    Ok(())
}

/// io.bfq.weight takes blkio's 1..1000 scale as it is; io.weight (the io.cost controller)
/// has its own 1..10000 scale. Where both exist BFQ is the one in charge of the devices
/// that use it, and runc prefers it too.
fn io(p: &Path, b: &LinuxBlockIo) -> Result<()> {
    const F: &str = "linux.resources.blockIO";
    if b.leaf_weight().is_some_and(|w| w != 0) {
        bail!("{F}.leafWeight: cgroup v2 has no leaf weights");
    }
    let bfq = p.join("io.bfq.weight").exists();
    let weight_file = |field: &str| -> Result<&'static str> {
        if bfq {
            Ok("io.bfq.weight")
        } else if p.join("io.weight").exists() {
            Ok("io.weight")
        } else {
            bail!(
                "{field}: neither io.bfq.weight nor io.weight exists in {} (no I/O \
                 scheduler or io.cost with weights on this host)",
                p.display()
            )
        }
    };
    let scaled = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_weight_to_io(w)
        }
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let f = format!("{F}.weight");
        set(p, weight_file(&f)?, &format!("default {}", scaled(w)), &f)?;
    }
    for (i, wd) in b.weight_device().iter().flatten().enumerate() {
        let f = format!("{F}.weightDevice[{i}]");
        if wd.leaf_weight().is_some() {
            bail!("{f}.leafWeight: cgroup v2 has no leaf weights");
        }
        let dev = devno(wd.major(), wd.minor(), &f)?;
        if let Some(w) = wd.weight() {
            let wf = format!("{f}.weight");
            set(p, weight_file(&wf)?, &format!("{dev} {}", scaled(w)), &wf)?;
        }
    }
    for (line, field) in io_max_lines(b)? {
        set(p, "io.max", &line, &field)?;
    }
    Ok(())
}
