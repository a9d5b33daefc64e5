//! Unit names, slice paths and the unit properties for `linux.resources`, as systemd knows
//! them (systemd.resource-control(5)). Pure functions: the D-Bus side is in dbus.rs.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use crate::cgroups::resources::{blkio_weight_to_io, nz_i, nz_u, shares_to_weight, swap_max};

/// A unit property value, in the D-Bus types systemd expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    U64(u64),
    Str(String),
    /// `as`: unit names (Wants=).
    Strs(Vec<String>),
    /// `au`: PIDs.
    U32s(Vec<u32>),
    /// `ay`: a CPU or NUMA node bitmask, byte 0 holding CPUs 0-7.
    Bytes(Vec<u8>),
    /// `a(st)`: IO limits per device node.
    PathU64s(Vec<(String, u64)>),
    /// `a(ss)`: DeviceAllow entries (device, access).
    PathStrs(Vec<(String, String)>),
}

pub type Prop = (&'static str, Value);

/// systemd's "infinity" for limits (USEC_INFINITY, CGROUP_LIMIT_MAX).
const INFINITY: u64 = u64::MAX;

/// Where a container's unit goes: the unit's name and its cgroup, relative to the cgroup2
/// root (e.g. "/system.slice/berth-ID.scope").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The slice the unit sits in (`Slice=` for a scope, `Wants=` for a slice).
    pub slice: String,
    pub unit: String,
    pub rel: String,
}

/// `linux.cgroupsPath` in runc's systemd form `SLICE:PREFIX:NAME` (empty: the default
/// `system.slice:berth:ID`). A NAME ending in ".slice" is a slice unit of its own.
pub fn placement(cgroups_path: Option<&str>, id: &str, default_slice: &str) -> Result<Placement> {
    let field = "linux.cgroupsPath";
    let text = cgroups_path.unwrap_or("");
    let (slice, prefix, name) = if text.is_empty() {
        (default_slice, "berth", id)
    } else {
        let parts: Vec<&str> = text.split(':').collect();
        let [slice, prefix, name] = parts.as_slice() else {
            bail!(
                "{field} {text:?}: with --systemd-cgroup it must be \"SLICE:PREFIX:NAME\" \
                 (e.g. \"system.slice:berth:{id}\")"
            );
        };
        (
            if slice.is_empty() {
                default_slice
            } else {
                slice
            },
            *prefix,
            *name,
        )
    };
    let slice_path = expand_slice(slice)
        .map_err(|e| anyhow::anyhow!("{field} {text:?}: slice {slice:?}: {e}"))?;
    if name.is_empty() {
        bail!("{field} {text:?}: the NAME part is empty");
    }
    for (what, s) in [("PREFIX", prefix), ("NAME", name)] {
        if !s.chars().all(unit_char) {
            bail!("{field} {text:?}: {what} {s:?} has characters a systemd unit name cannot hold");
        }
    }
    if name.ends_with(".slice") {
        // systemd puts a slice by its own name, whatever the parent asked for.
        let rel = expand_slice(name)
            .map_err(|e| anyhow::anyhow!("{field} {text:?}: slice {name:?}: {e}"))?;
        if rel == "/" {
            bail!("{field} {text:?}: the root slice cannot hold a container");
        }
        return Ok(Placement {
            slice: slice.to_string(),
            unit: name.to_string(),
            rel,
        });
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let rel = if slice_path == "/" {
        format!("/{unit}")
    } else {
        format!("{slice_path}/{unit}")
    };
    Ok(Placement {
        slice: slice.to_string(),
        unit,
        rel,
    })
}

/// The characters systemd allows in a unit name (unit_name_is_valid).
fn unit_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":-_.\\@".contains(c)
}

/// A slice's cgroup path: "a-b-c.slice" lives at "/a.slice/a-b.slice/a-b-c.slice", "-.slice"
/// is the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(base) = slice.strip_suffix(".slice").filter(|b| !b.is_empty()) else {
        bail!("a slice name ends in \".slice\"");
    };
    if !slice.chars().all(unit_char) {
        bail!("not a valid unit name");
    }
    if base == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            bail!("empty component between dashes");
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The properties every container unit gets when it is started.
pub fn base(p: &Placement, pid: Option<i32>) -> Vec<Prop> {
    let mut out: Vec<Prop> = vec![(
        "Description",
        Value::Str(format!("berth container {}", p.unit)),
    )];
    let scope = p.unit.ends_with(".scope");
    if scope {
        out.push(("Slice", Value::Str(p.slice.clone())));
        if let Some(pid) = pid {
            out.push(("PIDs", Value::U32s(vec![pid.unsigned_abs()])));
        }
        out.push(("Delegate", Value::Bool(true)));
    } else {
        out.push(("Wants", Value::Strs(vec![p.slice.clone()])));
    }
    for a in [
        "MemoryAccounting",
        "CPUAccounting",
        "IOAccounting",
        "TasksAccounting",
    ] {
        out.push((a, Value::Bool(true)));
    }
    out.push(("DefaultDependencies", Value::Bool(false)));
    out
}

/// The unit properties for `r`. Whatever systemd has no property for (hugetlb, rdma, the
/// device rules, most unified keys) is left to the cgroup files.
pub fn resources(r: &LinuxResources) -> Result<Vec<Prop>> {
    let mut out: Vec<Prop> = Vec::new();
    let limit = |v: i64| if v < 0 { INFINITY } else { v.unsigned_abs() };
    if let Some(m) = r.memory() {
        if let Some(l) = nz_i(m.limit()) {
            out.push(("MemoryMax", Value::U64(limit(l))));
        }
        if let Some(l) = nz_i(m.reservation()) {
            out.push(("MemoryLow", Value::U64(limit(l))));
        }
        match swap_max(m.limit(), m.swap()) {
            Ok(Some(s)) => out.push(("MemorySwapMax", Value::U64(limit(s)))),
            Ok(None) => {}
            Err(e) => bail!("linux.resources.memory.swap: {e}"),
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = nz_u(c.shares()) {
            out.push(("CPUWeight", Value::U64(shares_to_weight(s))));
        }
        cpu_quota(&mut out, nz_i(c.quota()), nz_u(c.period()));
        for (name, v, field) in [
            ("AllowedCPUs", c.cpus(), "cpus"),
            ("AllowedMemoryNodes", c.mems(), "mems"),
        ] {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                let bits = range_bits(v)
                    .map_err(|e| anyhow::anyhow!("linux.resources.cpu.{field}: {e}"))?;
                out.push((name, Value::Bytes(bits)));
            }
        }
    }
    if let Some(p) = r.pids() {
        match p.limit() {
            0 | -1 => out.push(("TasksMax", Value::U64(INFINITY))),
            n if n > 0 => out.push(("TasksMax", Value::U64(n.unsigned_abs()))),
            n => bail!("linux.resources.pids.limit: {n} is neither a count nor -1 (no limit)"),
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w > 0) {
            out.push(("IOWeight", Value::U64(blkio_weight_to_io(w))));
        }
        let lists = [
            ("IOReadBandwidthMax", b.throttle_read_bps_device()),
            ("IOWriteBandwidthMax", b.throttle_write_bps_device()),
            ("IOReadIOPSMax", b.throttle_read_iops_device()),
            ("IOWriteIOPSMax", b.throttle_write_iops_device()),
        ];
        for (name, list) in lists {
            let devs: Vec<(String, u64)> = list
                .iter()
                .flatten()
                .filter(|d| d.major() >= 0 && d.minor() >= 0)
                .map(|d| {
                    let rate = if d.rate() == 0 { INFINITY } else { d.rate() };
                    (format!("/dev/block/{}:{}", d.major(), d.minor()), rate)
                })
                .collect();
            if !devs.is_empty() {
                out.push((name, Value::PathU64s(devs)));
            }
        }
    }
    let mut unified: Vec<(&String, &String)> = r.unified().iter().flatten().collect();
    unified.sort();
    for (k, v) in unified {
        unified_prop(&mut out, k, v.trim())?;
    }
    if let Some(rules) = r.devices() {
        out.extend(devices(rules));
    }
    Ok(out)
}

/// A rule for every device of its type with every access: one that decides everything.
fn catch_all(r: &LinuxDeviceCgroup) -> bool {
    matches!(r.typ(), None | Some(LinuxDeviceType::A))
        && r.major().is_none_or(|n| n < 0)
        && r.minor().is_none_or(|n| n < 0)
        && r.access()
            .as_deref()
            .is_none_or(|a| a.is_empty() || ["r", "w", "m"].iter().all(|c| a.contains(c)))
}

/// DevicePolicy and DeviceAllow for the device rules (applied in order, everything denied
/// at first, a later rule winning). systemd's list only allows, so only a list that is
/// "deny all, then allow these" becomes DevicePolicy=strict with those entries; anything
/// else (an allow-all, a deny after an allow, a "*:N" rule) leaves systemd's policy at
/// "auto", never stricter than the rules: berth's eBPF filter on the cgroup (attached
/// beside systemd's, both must allow) enforces the rules exactly either way.
pub fn devices(rules: &[LinuxDeviceCgroup]) -> Vec<Prop> {
    let auto = || {
        vec![
            ("DevicePolicy", Value::Str("auto".into())),
            ("DeviceAllow", Value::PathStrs(Vec::new())),
        ]
    };
    let start = rules
        .iter()
        .rposition(|r| !r.allow() && catch_all(r))
        .map_or(0, |i| i + 1);
    let mut entries = Vec::new();
    for r in &rules[start..] {
        if !r.allow() {
            if entries.is_empty() {
                continue; // denies what is denied already
            }
            return auto();
        }
        if catch_all(r) {
            return auto();
        }
        let kinds: &[&str] = match r.typ() {
            None | Some(LinuxDeviceType::A) => &["char", "block"],
            Some(LinuxDeviceType::B) => &["block"],
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => &["char"],
            Some(LinuxDeviceType::P) => continue,
        };
        let access = match r.access().as_deref() {
            None | Some("") => "rwm".to_string(),
            Some(a) => a.to_string(),
        };
        let major = r.major().filter(|n| *n >= 0);
        let minor = r.minor().filter(|n| *n >= 0);
        for k in kinds {
            let dev = match (major, minor) {
                (None, None) => format!("{k}-*"),
                (Some(m), None) => format!("{k}-{m}"),
                (Some(m), Some(n)) => format!("/dev/{k}/{m}:{n}"),
                // systemd has no way to say "any major, this minor".
                (None, Some(_)) => return auto(),
            };
            entries.push((dev, access.clone()));
        }
    }
    vec![
        ("DevicePolicy", Value::Str("strict".into())),
        ("DeviceAllow", Value::PathStrs(entries)),
    ]
}

/// CPUQuotaPerSecUSec and CPUQuotaPeriodUSec. systemd keeps the quota as a whole percentage
/// of a CPU, so a fraction is rounded up to the next 10 ms per second (the cgroup file then
/// gets the exact value), as runc does.
fn cpu_quota(out: &mut Vec<Prop>, quota: Option<i64>, period: Option<u64>) {
    if let Some(p) = period {
        out.push(("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    if quota.is_none() && period.is_none() {
        return;
    }
    let per_sec = match quota {
        Some(q) if q > 0 => {
            let p = period.unwrap_or(100_000);
            let v = q.unsigned_abs().saturating_mul(1_000_000) / p;
            if !v.is_multiple_of(10_000) {
                (v / 10_000 + 1) * 10_000
            } else {
                v
            }
        }
        _ => INFINITY,
    };
    out.push(("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// The unified keys systemd has a property for; the rest only go to the files.
fn unified_prop(out: &mut Vec<Prop>, key: &str, v: &str) -> Result<()> {
    let field = format!("linux.resources.unified.{key}");
    let num = |v: &str| -> Result<u64> {
        if v == "max" {
            return Ok(INFINITY);
        }
        v.parse()
            .map_err(|_| anyhow::anyhow!("{field}: {v:?} is not a number or \"max\""))
    };
    let name = match key {
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        "cpuset.cpus" | "cpuset.mems" => {
            let bits = range_bits(v).map_err(|e| anyhow::anyhow!("{field}: {e}"))?;
            let name = if key == "cpuset.cpus" {
                "AllowedCPUs"
            } else {
                "AllowedMemoryNodes"
            };
            out.push((name, Value::Bytes(bits)));
            return Ok(());
        }
        "cpu.max" => {
            let words: Vec<&str> = v.split_whitespace().collect();
            let (q, p) = match words.as_slice() {
                [q] => (*q, None),
                [q, p] => (*q, Some(*p)),
                _ => bail!("{field}: {v:?} is not \"QUOTA [PERIOD]\""),
            };
            let quota = if q == "max" {
                None
            } else {
                Some(
                    q.parse::<i64>()
                        .map_err(|_| anyhow::anyhow!("{field}: bad quota {q:?}"))?,
                )
            };
            let period = p
                .map(|p| {
                    p.parse::<u64>()
                        .map_err(|_| anyhow::anyhow!("{field}: bad period {p:?}"))
                })
                .transpose()?;
            cpu_quota(out, quota, Some(period.unwrap_or(100_000)));
            return Ok(());
        }
        _ => return Ok(()),
    };
    out.push((name, Value::U64(num(v)?)));
    Ok(())
}

/// A cpu list ("0-3,8") as the bitmask systemd's AllowedCPUs takes: byte i holds CPUs
/// 8i..8i+7, lowest bit first.
pub fn range_bits(list: &str) -> Result<Vec<u8>, String> {
    let mut bits: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n < 8192)
                .ok_or_else(|| format!("{list:?} is not a CPU list such as 0-3,8"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            return Err(format!("{list:?}: range {part:?} runs backwards"));
        }
        for n in a..=b {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    if bits.is_empty() {
        return Err(format!("{list:?} names no CPU"));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("kubepods-burstable-pod123.slice").unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a.scope",
            ".slice",
            "a/b.slice",
            "a-.slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placements() {
        let p = placement(None, "c1", "system.slice").unwrap();
        assert_eq!(p.unit, "berth-c1.scope");
        assert_eq!(p.rel, "/system.slice/berth-c1.scope");
        let p = placement(Some("machine.slice:libpod:abc"), "x", "system.slice").unwrap();
        assert_eq!(
            (p.slice.as_str(), p.unit.as_str(), p.rel.as_str()),
            (
                "machine.slice",
                "libpod-abc.scope",
                "/machine.slice/libpod-abc.scope"
            )
        );
        let p = placement(
            Some("kubepods-burstable-pod1.slice:cri-containerd:ID"),
            "x",
            "system.slice",
        )
        .unwrap();
        assert_eq!(
            p.rel,
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-ID.scope"
        );
        let p = placement(
            Some("system.slice:x:berthtest-a.slice"),
            "x",
            "system.slice",
        )
        .unwrap();
        assert_eq!(p.unit, "berthtest-a.slice");
        assert_eq!(p.rel, "/berthtest.slice/berthtest-a.slice");
        assert_eq!(
            placement(Some(":p:n"), "x", "system.slice").unwrap().slice,
            "system.slice"
        );
        for bad in [
            "/a/b",
            "a:b",
            "a:b:c:d",
            "nope:b:c",
            "system.slice:p:",
            "system.slice:p:a/b",
        ] {
            let e = placement(Some(bad), "x", "system.slice").unwrap_err();
            assert!(
                format!("{e:#}").contains("linux.cgroupsPath"),
                "{bad}: {e:#}"
            );
        }
    }

    #[test]
    fn cpu_props() {
        let mut out = Vec::new();
        cpu_quota(&mut out, Some(50_000), Some(100_000));
        assert_eq!(
            out,
            [
                ("CPUQuotaPeriodUSec", Value::U64(100_000)),
                ("CPUQuotaPerSecUSec", Value::U64(500_000))
            ]
        );
        let mut out = Vec::new();
        cpu_quota(&mut out, Some(12_345), None);
        // 123450 us per second, rounded up to whole 10 ms.
        assert_eq!(out, [("CPUQuotaPerSecUSec", Value::U64(130_000))]);
        assert_eq!(range_bits("0-3,8").unwrap(), [0x0f, 0x01]);
        assert_eq!(range_bits("1").unwrap(), [0x02]);
        assert!(range_bits("3-1").is_err());
        assert!(range_bits("x").is_err());
    }

    #[test]
    fn resource_props() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 42},
            "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}]},
            "unified": {"memory.high": "50000000", "hugetlb.2MB.max": "0"}
        }))
        .unwrap();
        let p = resources(&r).unwrap();
        let get = |n: &str| p.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(67_108_864)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(33_554_432)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(67_108_864)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(200_000)));
        assert_eq!(get("AllowedCPUs"), Some(Value::Bytes(vec![1])));
        assert_eq!(get("TasksMax"), Some(Value::U64(42)));
        assert_eq!(get("IOWeight"), Some(Value::U64(blkio_weight_to_io(500))));
        assert_eq!(
            get("IOReadBandwidthMax"),
            Some(Value::PathU64s(vec![(
                "/dev/block/254:0".into(),
                1_048_576
            )]))
        );
        assert_eq!(get("MemoryHigh"), Some(Value::U64(50_000_000)));
        assert_eq!(p.iter().filter(|(k, _)| k.starts_with("Huge")).count(), 0);
    }

    #[test]
    fn device_props() {
        let rules =
            |v: serde_json::Value| -> Vec<LinuxDeviceCgroup> { serde_json::from_value(v).unwrap() };
        let strict = devices(&rules(serde_json::json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 5, "minor": 1},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "a", "access": "m"},
        ])));
        assert_eq!(strict[0], ("DevicePolicy", Value::Str("strict".into())));
        assert_eq!(
            strict[1],
            (
                "DeviceAllow",
                Value::PathStrs(vec![
                    ("/dev/char/1:3".into(), "rwm".into()),
                    ("char-136".into(), "rwm".into()),
                    ("char-*".into(), "m".into()),
                    ("block-*".into(), "m".into()),
                ])
            )
        );
        for loose in [
            serde_json::json!([{"allow": true, "access": "rwm"}]),
            serde_json::json!([{"allow": false, "access": "rwm"},
                               {"allow": true, "type": "c", "major": 1, "minor": 3},
                               {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"}]),
            serde_json::json!([{"allow": false, "access": "rwm"},
                               {"allow": true, "type": "c", "minor": 3}]),
        ] {
            let p = devices(&rules(loose.clone()));
            assert_eq!(p[0], ("DevicePolicy", Value::Str("auto".into())), "{loose}");
        }
        // No rule at all: everything is denied.
        assert_eq!(devices(&[])[1], ("DeviceAllow", Value::PathStrs(vec![])));
    }
}
