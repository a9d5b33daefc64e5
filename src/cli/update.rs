//! `berth update ID`: new resource limits for a running container, from `--resources FILE`
//! (`-` for stdin, an OCI `linux.resources` object) and runc's single-value flags, which win.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::container::Store;

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// A JSON file with the resources (linux.resources of config.json), or - for stdin.
    #[arg(long, short = 'r')]
    pub resources: Option<String>,
    /// Memory limit in bytes (suffixes k, m, g allowed; -1 for no limit).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit in bytes (-1 for no limit).
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit in bytes.
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// CFS quota in microseconds per period (-1 for none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPUs the container may use (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 or 0 for no limit).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000.
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU realtime period in microseconds (cgroup v1 cpu.rt_period_us).
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds per period (-1 for no limit).
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Intel RDT/CAT L3 cache schema ("L3:0=ff;1=ff") for the container's resctrl group.
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema ("MB:0=70") for the container's resctrl group.
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

/// "64m" → 67108864; "-1" stays -1.
fn bytes(field: &str, s: &str) -> Result<i64> {
    let s = s.trim();
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.find('k').unwrap_or(0)], 1i64 << 10),
        Some('m') => (&lower[..lower.find('m').unwrap_or(0)], 1 << 20),
        Some('g') => (&lower[..lower.find('g').unwrap_or(0)], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("--{field}: {s:?} is not a size in bytes"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("--{field}: {s:?} is too large"))
}

/// The resources to apply, as JSON so flags can be merged over the file's object.
pub fn resources(a: &UpdateArgs) -> Result<LinuxResources> {
    let mut v: Value = match a.resources.as_deref() {
        None => json!({}),
        Some(path) => {
            let mut text = String::new();
            if path == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("--resources: read stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("--resources {path}: {e}"))?;
            }
            serde_json::from_str(&text).map_err(|e| anyhow!("--resources: {e}"))?
        }
    };
    if !v.is_object() {
        bail!("--resources: expected a JSON object (linux.resources)");
    }
    // As runc's update: the device rules stay those of create. containerd's CRI sends the
    // whole linux.resources of the spec, whose devices list is only the deny-all (create
    // adds the default allowed devices after it); applying that would take /dev/null away
    // from a running container, and v1 rules are not safe to rewrite under running tasks.
    if let Some(o) = v.as_object_mut() {
        o.remove("devices");
    }
    let mut set = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    if let Some(m) = &a.memory {
        set("memory", "limit", json!(bytes("memory", m)?));
    }
    if let Some(m) = &a.memory_swap {
        set("memory", "swap", json!(bytes("memory-swap", m)?));
    }
    if let Some(m) = &a.memory_reservation {
        set(
            "memory",
            "reservation",
            json!(bytes("memory-reservation", m)?),
        );
    }
    if let Some(q) = a.cpu_quota {
        set("cpu", "quota", json!(q));
    }
    if let Some(p) = a.cpu_period {
        set("cpu", "period", json!(p));
    }
    if let Some(s) = a.cpu_share {
        set("cpu", "shares", json!(s));
    }
    if let Some(c) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(c));
    }
    if let Some(m) = &a.cpuset_mems {
        set("cpu", "mems", json!(m));
    }
    if let Some(p) = a.pids_limit {
        set("pids", "limit", json!(p));
    }
    if let Some(p) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(p));
    }
    if let Some(r) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(r));
    }
    if let Some(w) = a.blkio_weight {
        if !(10..=1000).contains(&w) {
            bail!("--blkio-weight: {w} is outside 10..1000");
        }
        set("blockIO", "weight", json!(w));
    }
    let de = serde_json::to_string(&v)?;
    let de = &mut serde_json::Deserializer::from_str(&de);
    serde_path_to_error::deserialize(de)
        .map_err(|e| anyhow!("linux.resources.{}: {}", e.path(), e.inner()))
}

pub fn run(store: &Store, a: &UpdateArgs) -> Result<i32> {
    let id = &a.id;
    let c = store.load(id).with_context(|| format!("update {id}"))?;
    if !c.status().has_process() {
        bail!(
            "update {id}: container not running ({})",
            c.status().as_str()
        );
    }
    let r = resources(a).with_context(|| format!("update {id}"))?;
    c.cgroup()?
        .apply(&r)
        .with_context(|| format!("update {id}"))?;
    update_rdt(c.state.resctrl.as_ref(), a).with_context(|| format!("update {id}"))?;
    Ok(0)
}

/// `--l3-cache-schema` and `--mem-bw-schema`: new lines for the container's resctrl group.
/// A container made without linux.intelRdt has no group to change, as with runc.
fn update_rdt(group: Option<&crate::resctrl::Group>, a: &UpdateArgs) -> Result<()> {
    let lines: Vec<(&str, &String)> = [
        ("--l3-cache-schema", a.l3_cache_schema.as_ref()),
        ("--mem-bw-schema", a.mem_bw_schema.as_ref()),
    ]
    .into_iter()
    .filter_map(|(flag, v)| Some((flag, v?)))
    .filter(|(_, v)| !v.trim().is_empty())
    .collect();
    let Some((flag, _)) = lines.first() else {
        return Ok(());
    };
    let Some(g) = group else {
        bail!(
            "{flag}: the container has no Intel RDT group (it was created without linux.intelRdt)"
        );
    };
    let text: String = lines
        .iter()
        .map(|(_, v)| format!("{}\n", v.trim()))
        .collect();
    let file = g.dir.join("schemata");
    std::fs::write(&file, text).map_err(|e| anyhow!("{flag}: write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_rules_are_left_as_create_made_them() {
        let dir = std::env::temp_dir().join(format!("berth-update-{}", std::process::id()));
        std::fs::write(
            &dir,
            r#"{"devices": [{"allow": false, "access": "rwm"}], "memory": {"limit": 1048576}}"#,
        )
        .unwrap();
        let a = UpdateArgs {
            resources: Some(dir.to_string_lossy().into()),
            memory: None,
            memory_swap: None,
            memory_reservation: None,
            cpu_quota: None,
            cpu_period: None,
            cpu_share: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            pids_limit: None,
            blkio_weight: None,
            cpu_rt_period: None,
            cpu_rt_runtime: None,
            l3_cache_schema: None,
            mem_bw_schema: None,
            id: "x".into(),
        };
        let r = resources(&a);
        let _ = std::fs::remove_file(&dir);
        let r = r.unwrap();
        assert!(r.devices().is_none(), "{r:?}");
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(1048576));
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes("memory", "64m").unwrap(), 64 << 20);
        assert_eq!(bytes("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(bytes("memory", "512").unwrap(), 512);
        assert_eq!(bytes("memory", "-1").unwrap(), -1);
        assert!(bytes("memory", "lots").is_err());
    }
}
