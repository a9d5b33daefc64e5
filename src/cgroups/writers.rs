//! The cgroup file writers that cgroup v1 and v2 share (the same files, or the same
//! format with another name): both backends and the systemd driver use them, so no
//! backend imports another's writers.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxRdma, LinuxResources};

use super::resources::{bytes, get, pids_max, set};

/// pids.max, the same file on v1 and v2.
pub(super) fn pids(p: &Path, r: &LinuxResources) -> Result<()> {
    let limit = r.pids().as_ref().expect("wanted").limit();
    set(
        p,
        "pids.max",
        &pids_max(limit)?,
        "linux.resources.pids.limit",
    )
}

/// cpuset.cpus and cpuset.mems, the same on v1 and v2 (v1 hierarchies mounted with
/// `noprefix` drop the "cpuset." prefix).
pub(super) fn cpuset(p: &Path, c: &LinuxCpu) -> Result<()> {
    let prefix = if !p.join("cpuset.cpus").exists() && p.join("cpus").exists() {
        ""
    } else {
        "cpuset."
    };
    for (name, v) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            let file = format!("{prefix}{name}");
            set(p, &file, v, &format!("linux.resources.cpu.{name}"))?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.limit_in_bytes (v1) or .max (v2), and the reservation limit beside it
/// where the kernel has one, so that reserved-but-unfaulted pages are capped too.
pub(super) fn hugetlb(p: &Path, limits: &[LinuxHugepageLimit], v2: bool) -> Result<()> {
    for (i, h) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = h.page_size();
        if size.is_empty() || size.contains(['/', '.', '\0']) || size.contains(char::is_whitespace)
        {
            bail!("{field}.pageSize: {size:?} is not a page size such as 2MB");
        }
        let (file, rsvd) = if v2 {
            (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            )
        } else {
            (
                format!("hugetlb.{size}.limit_in_bytes"),
                format!("hugetlb.{size}.rsvd.limit_in_bytes"),
            )
        };
        if !p.join(&file).exists() {
            bail!(
                "{field}.pageSize: this host has no {size} huge pages ({} does not exist)",
                p.join(&file).display()
            );
        }
        let lf = format!("{field}.limit");
        let v = bytes(h.limit(), v2, &lf)?;
        set(p, &file, &v, &lf)?;
        if p.join(&rsvd).exists() {
            set(p, &rsvd, &v, &lf)?;
        }
    }
    Ok(())
}

/// checkBeforeUpdate: refuse a limit below what the cgroup already uses rather than
/// have the kernel reclaim or OOM-kill to meet it.
pub(super) fn check_usage(p: &Path, usage_file: &str, limit: Option<i64>) -> Result<()> {
    let Some(limit) = limit.filter(|&l| l > 0) else {
        return Ok(());
    };
    let field = "linux.resources.memory.limit";
    let usage: u64 = get(p, usage_file, field)?.parse().unwrap_or(0);
    if usage > limit.unsigned_abs() {
        bail!(
            "{field}: {limit} is below the {usage} bytes the cgroup already uses \
             (linux.resources.memory.checkBeforeUpdate is set)"
        );
    }
    Ok(())
}

/// rdma.max, the same file on v1 and v2: one line per device, devices in name order so
/// the writes do not depend on the map's order.
pub(super) fn rdma(p: &Path, m: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devs: Vec<(&String, &LinuxRdma)> = m.iter().collect();
    devs.sort_by_key(|(k, _)| *k);
    for (dev, lim) in devs {
        let field = format!("linux.resources.rdma.{dev}");
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            bail!("{field}: {dev:?} is not an RDMA device name");
        }
        let mut line = dev.clone();
        if let Some(h) = lim.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = lim.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > dev.len() {
            set(p, "rdma.max", &line, &field)?;
        }
    }
    Ok(())
}
