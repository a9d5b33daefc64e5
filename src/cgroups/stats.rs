//! Resource usage of a container's cgroup, as the `data` object of a `berth events` stats
//! event, and OOM-kill counters for reporting OOM events by polling.
//!
//! The JSON is runc's (`runc events --stats`, runc 1.1): the same keys, and the same
//! rule for what is left out. runc's encoder drops zero numbers, empty lists and empty maps
//! from most fields but always writes some (memory `limit` and `failcnt`, cpu `kernel` and
//! `user`, every cpuset number, every top-level object), so tools that parse runc's output
//! see exactly the shapes they know. Keys within an object come out sorted
//! (serde_json::Value keeps no order), which JSON readers do not care about.
//!
//! What the kernel does not have (a controller that is not mounted or not enabled, a file
//! older kernels lack, swap accounting turned off) is simply absent from the result;
//! unreadable or malformed files are errors.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::{sysconf, SysconfVar};
use serde::Serialize;
use serde_json::Value;

use super::{errno, is_errno, read_file};

/// Go's `omitempty` for numbers.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Default, Serialize)]
struct Stats {
    cpu: Cpu,
    cpuset: CpuSet,
    memory: Memory,
    pids: Pids,
    blkio: Blkio,
    hugetlb: BTreeMap<String, Hugetlb>,
    intel_rdt: IntelRdt,
    /// runc only fills this for containers it set up networking for, which it never does
    /// through the OCI spec; an absent list is `null` in its output.
    network_interfaces: Option<Vec<Value>>,
}

#[derive(Debug, Default, Serialize)]
struct Cpu {
    usage: CpuUsage,
    throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize)]
struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_user: Vec<u64>,
    kernel: u64,
    user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cpus: Vec<u16>,
    cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mems: Vec<u16>,
    mem_hardwall: u64,
    mem_exclusive: u64,
    memory_migrate: u64,
    memory_spread_page: u64,
    memory_spread_slab: u64,
    memory_pressure: u64,
    sched_load_balance: u64,
    sched_relax_domain_level: i64,
}

/// Bytes. `max` is the peak usage, not the limit.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct MemoryEntry {
    limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    cache: u64,
    usage: MemoryEntry,
    /// Memory plus swap, as v1's memsw counts it (v2 values are converted to that).
    swap: MemoryEntry,
    kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    /// 0 for no limit.
    #[serde(skip_serializing_if = "is_zero")]
    limit: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    op: String,
    #[serde(skip_serializing_if = "is_zero")]
    value: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_serviced_recursive: Vec<BlkioEntry>,
    // runc's name, without "d".
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sectors_recursive: Vec<BlkioEntry>,
}

/// Bytes. `max` is the peak usage (v1 only; v2 does not track it), not the limit.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

/// Intel RDT is not a cgroup controller (it lives in resctrl) and berth does not read its
/// monitoring counters; runc writes an empty object when it has none.
#[derive(Debug, Default, Serialize)]
struct IntelRdt {}

fn to_json(s: &Stats) -> Result<Value> {
    serde_json::to_value(s).context("encode stats as JSON")
}

// ---------------------------------------------------------------------------------------
// Reading control files.

/// A control file's contents, None when it is not there: the controller is not mounted
/// or not enabled, the kernel predates the file, or the cgroup was just removed (ENODEV
/// when removed while open).
fn read_opt(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    match read_file(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if is_errno(&e, Errno::ENOENT) || is_errno(&e, Errno::ENODEV) => Ok(None),
        Err(e) => Err(errno(e)).with_context(|| format!("read {}", path.display())),
    }
}

/// Reads and parses an optional control file, naming it in a parse error.
fn read_with<T>(
    dir: &Path,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Result<Option<T>> {
    match read_opt(dir, name)? {
        Some(text) => parse(&text)
            .map(Some)
            .with_context(|| format!("parse {}", dir.join(name).display())),
        None => Ok(None),
    }
}

fn read_u64(dir: &Path, name: &str) -> Result<u64> {
    Ok(read_with(dir, name, parse_value)?.unwrap_or(0))
}

/// One number as cgroup files write it. "max" (no limit) is u64::MAX, as runc reports it.
/// A negative number is 0: v1 prints some unset values as -1, which runc reports as 0.
fn parse_value(text: &str) -> Result<u64> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    // Anything too negative for i64 still is a negative number.
    if t.strip_prefix('-')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(0);
    }
    bail!("{t:?} is not a number")
}

/// "KEY VALUE" lines (memory.stat, cpu.stat, memory.events, memory.oom_control), in file
/// order.
fn parse_key_values(text: &str) -> Result<Vec<(String, u64)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(' ')
                .filter(|(k, v)| !k.is_empty() && !v.contains(' '))
                .ok_or_else(|| anyhow!("line {l:?} is not \"KEY VALUE\""))?;
            Ok((
                k.to_string(),
                parse_value(v).with_context(|| format!("line {l:?}"))?,
            ))
        })
        .collect()
}

fn key_value(text: &str, key: &str) -> Result<Option<u64>> {
    Ok(parse_key_values(text)?
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v)))
}

/// Whitespace-separated numbers (cpuacct.usage_percpu).
fn parse_numbers(text: &str) -> Result<Vec<u64>> {
    text.split_whitespace()
        .map(|n| n.parse().with_context(|| format!("{n:?} is not a number")))
        .collect()
}

/// A cpuset list ("0-3,8,10-11").
fn parse_cpu_list(text: &str) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |s: &str| -> Result<u16> {
            s.parse()
                .with_context(|| format!("{s:?} in {part:?} is not a cpu or node number"))
        };
        match part.split_once('-') {
            None => out.push(num(part)?),
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    bail!("range {part:?} runs backwards");
                }
                out.extend(lo..=hi);
            }
        }
    }
    Ok(out)
}

/// The page sizes a hugetlb controller has files for, from names like
/// "hugetlb.2MB.<suffix>" ("2MB", "1GB": the kernel's names, which runc uses as keys too).
/// The "hugetlb.2MB.rsvd.*" reservation files are not a page size of their own.
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_errno(&e, Errno::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(errno(e)).with_context(|| format!("list {}", dir.display())),
    };
    let mut sizes = Vec::new();
    for ent in rd {
        let ent = ent
            .map_err(errno)
            .with_context(|| format!("list {}", dir.display()))?;
        let name = ent.file_name();
        let Some(size) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugetlb."))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.strip_suffix('.'))
        else {
            continue;
        };
        if !size.is_empty() && !size.contains('.') {
            sizes.push(size.to_string());
        }
    }
    Ok(sizes)
}

/// `pids` from a cgroup without the pids controller: its processes counted (cgroup.procs
/// refuses to list a threaded cgroup, whose threads are then counted), no limit.
fn count_procs(dir: &Path) -> Result<u64> {
    let path = dir.join("cgroup.procs");
    let text = match read_file(&path) {
        Ok(t) => t,
        Err(e) if is_errno(&e, Errno::EOPNOTSUPP) => match read_opt(dir, "cgroup.threads")? {
            Some(t) => t,
            None => return Ok(0),
        },
        Err(e) if is_errno(&e, Errno::ENOENT) || is_errno(&e, Errno::ENODEV) => return Ok(0),
        Err(e) => return Err(errno(e)).with_context(|| format!("read {}", path.display())),
    };
    Ok(text.lines().filter(|l| !l.trim().is_empty()).count() as u64)
}

/// "max" in pids.max is no limit, which runc reports as 0 (and so leaves out).
fn pids_limit(v: u64) -> u64 {
    if v == u64::MAX {
        0
    } else {
        v
    }
}

// ---------------------------------------------------------------------------------------
// cgroup v1.

/// Stats of a v1 (or hybrid) container from its directory in each hierarchy, keyed by the
/// controller field of /proc/self/cgroup ("memory", "cpu,cpuacct", "name=systemd", "" for
/// the cgroup2 hierarchy of a hybrid host, which runc does not read either). Fails when none
/// of the directories exists: the container's cgroup is gone.
pub fn stats_v1(dirs: &[(String, PathBuf)]) -> Result<Value> {
    if !dirs.iter().any(|(_, d)| d.is_dir()) {
        let all: Vec<String> = dirs.iter().map(|(_, d)| d.display().to_string()).collect();
        bail!(
            "no cgroup directory of the container exists ({})",
            all.join(", ")
        );
    }
    let mut s = Stats::default();
    for (key, dir) in dirs {
        for controller in key.split(',') {
            match controller {
                "memory" => memory_v1(dir, &mut s.memory)?,
                "cpu" => {
                    if let Some(t) = read_opt(dir, "cpu.stat")? {
                        cpu_stat_v1(&t, &mut s.cpu.throttling)
                            .with_context(|| format!("parse {}/cpu.stat", dir.display()))?;
                    }
                }
                "cpuacct" => cpuacct_v1(dir, &mut s.cpu.usage)?,
                "cpuset" => s.cpuset = cpuset_v1(dir)?,
                "pids" => {
                    s.pids = Pids {
                        current: read_u64(dir, "pids.current")?,
                        limit: pids_limit(read_u64(dir, "pids.max")?),
                    }
                }
                "blkio" => s.blkio = blkio_v1(dir)?,
                "hugetlb" => {
                    for size in hugetlb_sizes(dir, "usage_in_bytes")? {
                        let file = |f: &str| format!("hugetlb.{size}.{f}");
                        let h = Hugetlb {
                            usage: read_u64(dir, &file("usage_in_bytes"))?,
                            max: read_u64(dir, &file("max_usage_in_bytes"))?,
                            failcnt: read_u64(dir, &file("failcnt"))?,
                        };
                        s.hugetlb.insert(size, h);
                    }
                }
                _ => {}
            }
        }
    }
    to_json(&s)
}

fn memory_v1(dir: &Path, m: &mut Memory) -> Result<()> {
    if let Some(raw) = read_with(dir, "memory.stat", parse_key_values)? {
        m.raw = raw.into_iter().collect();
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
    }
    m.usage = memory_entry_v1(dir, "memory")?;
    // Without swap accounting (swapaccount=0) the memsw files are missing; kmem ones are
    // missing on kernels built without kernel memory accounting.
    m.swap = memory_entry_v1(dir, "memory.memsw")?;
    m.kernel = memory_entry_v1(dir, "memory.kmem")?;
    m.kernel_tcp = memory_entry_v1(dir, "memory.kmem.tcp")?;
    Ok(())
}

fn memory_entry_v1(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let file = |f: &str| format!("{prefix}.{f}");
    Ok(MemoryEntry {
        limit: read_u64(dir, &file("limit_in_bytes"))?,
        usage: read_u64(dir, &file("usage_in_bytes"))?,
        max: read_u64(dir, &file("max_usage_in_bytes"))?,
        failcnt: read_u64(dir, &file("failcnt"))?,
    })
}

/// v1 cpu.stat: throttling only (usage comes from cpuacct); throttled_time is in ns.
fn cpu_stat_v1(text: &str, t: &mut Throttling) -> Result<()> {
    for (k, v) in parse_key_values(text)? {
        match k.as_str() {
            "nr_periods" => t.periods = v,
            "nr_throttled" => t.throttled_periods = v,
            "throttled_time" => t.throttled_time = v,
            _ => {}
        }
    }
    Ok(())
}

fn cpuacct_v1(dir: &Path, u: &mut CpuUsage) -> Result<()> {
    u.total = read_u64(dir, "cpuacct.usage")?;
    if let Some(percpu) = read_with(dir, "cpuacct.usage_percpu", parse_numbers)? {
        u.percpu = percpu;
    }
    // cpuacct.stat counts in USER_HZ ticks: runc reports them converted to ns, so coarse.
    let hz = ticks_per_second()?;
    if let Some((user, system)) = read_with(dir, "cpuacct.stat", |t| parse_cpuacct_stat(t, hz))? {
        u.user = user;
        u.kernel = system;
    }
    // Kernels before 4.7 have no cpuacct.usage_all.
    if let Some((user, system)) = read_with(dir, "cpuacct.usage_all", parse_usage_all)? {
        u.percpu_user = user;
        u.percpu_kernel = system;
    }
    Ok(())
}

fn ticks_per_second() -> Result<u64> {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => Ok(n as u64),
        other => bail!("sysconf(_SC_CLK_TCK) gave {other:?}"),
    }
}

/// cpuacct.stat ("user TICKS\nsystem TICKS") as (user, system) in ns.
fn parse_cpuacct_stat(text: &str, ticks_per_second: u64) -> Result<(u64, u64)> {
    let kv = parse_key_values(text)?;
    let get = |key: &str| {
        kv.iter()
            .find_map(|(k, v)| (k == key).then_some(*v))
            .ok_or_else(|| anyhow!("no {key:?} line"))
    };
    let ns = |ticks: u64| {
        // u128: ticks * 1e9 overflows u64 after ~580 years of cpu time at 100 Hz, but cheap
        // to rule out.
        (u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_second)) as u64
    };
    Ok((ns(get("user")?), ns(get("system")?)))
}

/// cpuacct.usage_all: a "cpu user system" header, then one "CPU USER SYSTEM" line (ns)
/// per cpu. Gives (per-cpu user, per-cpu system).
fn parse_usage_all(text: &str) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(h) if h.split_whitespace().eq(["cpu", "user", "system"]) => {}
        h => bail!("unexpected header {h:?}"),
    }
    let (mut user, mut system) = (Vec::new(), Vec::new());
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [_, u, s] = f[..] else {
            bail!("line {l:?} is not \"CPU USER SYSTEM\"");
        };
        user.push(u.parse().with_context(|| format!("line {l:?}"))?);
        system.push(s.parse().with_context(|| format!("line {l:?}"))?);
    }
    Ok((user, system))
}

fn cpuset_v1(dir: &Path) -> Result<CpuSet> {
    let list =
        |f: &str| Ok::<_, anyhow::Error>(read_with(dir, f, parse_cpu_list)?.unwrap_or_default());
    let num = |f: &str| read_u64(dir, f);
    Ok(CpuSet {
        cpus: list("cpuset.cpus")?,
        cpu_exclusive: num("cpuset.cpu_exclusive")?,
        mems: list("cpuset.mems")?,
        mem_hardwall: num("cpuset.mem_hardwall")?,
        mem_exclusive: num("cpuset.mem_exclusive")?,
        memory_migrate: num("cpuset.memory_migrate")?,
        memory_spread_page: num("cpuset.memory_spread_page")?,
        memory_spread_slab: num("cpuset.memory_spread_slab")?,
        // Only the root cpuset has memory_pressure_enabled; the per-cgroup file is there.
        memory_pressure: num("cpuset.memory_pressure")?,
        sched_load_balance: num("cpuset.sched_load_balance")?,
        sched_relax_domain_level: read_with(dir, "cpuset.sched_relax_domain_level", |t| {
            t.trim()
                .parse::<i64>()
                .with_context(|| format!("{:?} is not a number", t.trim()))
        })?
        .unwrap_or(0),
    })
}

#[derive(Debug, Clone, Copy)]
enum BlkioList {
    ServiceBytes,
    Serviced,
    Queued,
    ServiceTime,
    WaitTime,
    Merged,
    Time,
    Sectors,
}

impl Blkio {
    fn list(&mut self, which: BlkioList) -> &mut Vec<BlkioEntry> {
        match which {
            BlkioList::ServiceBytes => &mut self.io_service_bytes_recursive,
            BlkioList::Serviced => &mut self.io_serviced_recursive,
            BlkioList::Queued => &mut self.io_queued_recursive,
            BlkioList::ServiceTime => &mut self.io_service_time_recursive,
            BlkioList::WaitTime => &mut self.io_wait_time_recursive,
            BlkioList::Merged => &mut self.io_merged_recursive,
            BlkioList::Time => &mut self.io_time_recursive,
            BlkioList::Sectors => &mut self.sectors_recursive,
        }
    }
}

/// Where v1 blkio numbers can come from, best first: which files exist depends on the I/O
/// scheduler (BFQ, with or without its debug statistics; CFQ before 5.0) and the blkio
/// throttling layer is always there. Like runc, the first source whose first file has
/// entries is used, so the numbers in one result never mix two accountings.
const BLKIO_SOURCES: &[&[(&str, BlkioList)]] = {
    use BlkioList::*;
    &[
        &[
            ("blkio.bfq.sectors_recursive", Sectors),
            ("blkio.bfq.io_service_time_recursive", ServiceTime),
            ("blkio.bfq.io_wait_time_recursive", WaitTime),
            ("blkio.bfq.io_merged_recursive", Merged),
            ("blkio.bfq.io_queued_recursive", Queued),
            ("blkio.bfq.time_recursive", Time),
            ("blkio.bfq.io_serviced_recursive", Serviced),
            ("blkio.bfq.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.bfq.io_serviced_recursive", Serviced),
            ("blkio.bfq.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.sectors_recursive", Sectors),
            ("blkio.io_service_time_recursive", ServiceTime),
            ("blkio.io_wait_time_recursive", WaitTime),
            ("blkio.io_merged_recursive", Merged),
            ("blkio.io_queued_recursive", Queued),
            ("blkio.time_recursive", Time),
            ("blkio.io_serviced_recursive", Serviced),
            ("blkio.io_service_bytes_recursive", ServiceBytes),
        ],
        &[
            ("blkio.throttle.io_serviced_recursive", Serviced),
            ("blkio.throttle.io_service_bytes_recursive", ServiceBytes),
        ],
        // Older kernels lack the recursive throttle files.
        &[
            ("blkio.throttle.io_serviced", Serviced),
            ("blkio.throttle.io_service_bytes", ServiceBytes),
        ],
    ]
};

fn blkio_v1(dir: &Path) -> Result<Blkio> {
    for source in BLKIO_SOURCES {
        let mut b = Blkio::default();
        let first = read_with(dir, source[0].0, parse_blkio_v1)?.unwrap_or_default();
        if first.is_empty() {
            continue;
        }
        *b.list(source[0].1) = first;
        for &(file, which) in &source[1..] {
            *b.list(which) = read_with(dir, file, parse_blkio_v1)?.unwrap_or_default();
        }
        return Ok(b);
    }
    Ok(Blkio::default())
}

/// A v1 blkio file: "MAJ:MIN OP VALUE" lines (or "MAJ:MIN VALUE" for files without
/// operations, like sectors and time) and a closing "Total VALUE" line, which is left out.
fn parse_blkio_v1(text: &str) -> Result<Vec<BlkioEntry>> {
    let mut out = Vec::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (dev, op, value) = match f[..] {
            ["Total", _] => continue,
            [dev, value] => (dev, "", value),
            [dev, op, value] => (dev, op, value),
            _ => bail!("malformed line {l:?}"),
        };
        let (major, minor) = parse_dev(dev).with_context(|| format!("line {l:?}"))?;
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: value.parse().with_context(|| format!("line {l:?}"))?,
        });
    }
    Ok(out)
}

fn parse_dev(dev: &str) -> Result<(u64, u64)> {
    let (maj, min) = dev
        .split_once(':')
        .ok_or_else(|| anyhow!("{dev:?} is not MAJOR:MINOR"))?;
    Ok((
        maj.parse()
            .with_context(|| format!("{dev:?} is not MAJOR:MINOR"))?,
        min.parse()
            .with_context(|| format!("{dev:?} is not MAJOR:MINOR"))?,
    ))
}

// ---------------------------------------------------------------------------------------
// cgroup v2.

/// Stats of the cgroup2 cgroup `dir`, in v1's terms as runc gives them. Fails when `dir`
/// does not exist: the container's cgroup is gone.
pub fn stats_v2(dir: &Path) -> Result<Value> {
    if !dir.is_dir() {
        bail!("cgroup {} does not exist", dir.display());
    }
    let pids = match read_with(dir, "pids.current", parse_value)? {
        Some(current) => Pids {
            current,
            limit: pids_limit(read_u64(dir, "pids.max")?),
        },
        None => Pids {
            current: count_procs(dir)?,
            limit: 0,
        },
    };
    let mut s = Stats {
        pids,
        ..Stats::default()
    };
    memory_v2(dir, &mut s.memory)?;
    if let Some(b) = read_with(dir, "io.stat", parse_io_stat)? {
        s.blkio = b;
    }
    // cpu.stat is there even without the cpu controller (usage only, then).
    if let Some(t) = read_opt(dir, "cpu.stat")? {
        cpu_stat_v2(&t, &mut s.cpu).with_context(|| format!("parse {}/cpu.stat", dir.display()))?;
    }
    for size in hugetlb_sizes(dir, "current")? {
        let events = format!("hugetlb.{size}.events");
        let h = Hugetlb {
            usage: read_u64(dir, &format!("hugetlb.{size}.current"))?,
            max: 0,
            // Allocations refused for hitting hugetlb.<size>.max, v1's failcnt.
            failcnt: read_with(dir, &events, |t| key_value(t, "max"))?
                .flatten()
                .unwrap_or(0),
        };
        s.hugetlb.insert(size, h);
    }
    to_json(&s)
}

fn memory_v2(dir: &Path, m: &mut Memory) -> Result<()> {
    if let Some(raw) = read_with(dir, "memory.stat", parse_key_values)? {
        m.raw = raw.into_iter().collect();
        // v2's page cache is "file" (v1's "cache").
        m.cache = m.raw.get("file").copied().unwrap_or(0);
    }
    let Some(usage) = read_with(dir, "memory.current", parse_value)? else {
        // No memory controller enabled for this cgroup.
        return Ok(());
    };
    m.usage = MemoryEntry {
        limit: read_u64(dir, "memory.max")?,
        usage,
        // memory.peak: kernel 5.19 and later.
        max: read_u64(dir, "memory.peak")?,
        failcnt: 0,
    };
    // v1 accounts memory+swap together and runc keeps reporting that sum: without swap
    // accounting (no memory.swap.* files) the sum is memory alone.
    let swap_usage = read_u64(dir, "memory.swap.current")?;
    let swap_limit = read_u64(dir, "memory.swap.max")?;
    m.swap = MemoryEntry {
        limit: if swap_limit == u64::MAX {
            u64::MAX
        } else {
            swap_limit.saturating_add(m.usage.limit)
        },
        usage: swap_usage.saturating_add(usage),
        // Peaks of memory and of swap happen at different times and do not add up.
        max: 0,
        failcnt: 0,
    };
    Ok(())
}

/// v2 cpu.stat: usage and throttling, in µs where v1 gives ns.
fn cpu_stat_v2(text: &str, c: &mut Cpu) -> Result<()> {
    for (k, v) in parse_key_values(text)? {
        let ns = v.saturating_mul(1000);
        match k.as_str() {
            "usage_usec" => c.usage.total = ns,
            "user_usec" => c.usage.user = ns,
            "system_usec" => c.usage.kernel = ns,
            "nr_periods" => c.throttling.periods = v,
            "nr_throttled" => c.throttling.throttled_periods = v,
            "throttled_usec" => c.throttling.throttled_time = ns,
            _ => {}
        }
    }
    Ok(())
}

/// io.stat: one "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" line per device,
/// as v1's bytes and operations serviced, Read and Write (runc has no place for the
/// discard numbers and the rest). Devices come in the file's order.
fn parse_io_stat(text: &str) -> Result<Blkio> {
    let mut b = Blkio::default();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut f = l.split_whitespace();
        let dev = f.next().unwrap_or_default();
        let (major, minor) = parse_dev(dev).with_context(|| format!("line {l:?}"))?;
        for item in f {
            let Some((key, value)) = item.split_once('=') else {
                continue;
            };
            let (which, op) = match key {
                "rbytes" => (BlkioList::ServiceBytes, "Read"),
                "wbytes" => (BlkioList::ServiceBytes, "Write"),
                "rios" => (BlkioList::Serviced, "Read"),
                "wios" => (BlkioList::Serviced, "Write"),
                _ => continue,
            };
            b.list(which).push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: value.parse().with_context(|| format!("line {l:?}"))?,
            });
        }
    }
    Ok(b)
}

// ---------------------------------------------------------------------------------------
// OOM kills.

/// How many processes the OOM killer has killed in the v1 memory cgroup `memory_dir`
/// (the `oom_kill` line of memory.oom_control, kernel 4.13 and later). A rising count is
/// an OOM event.
pub fn oom_kill_count_v1(memory_dir: &Path) -> Result<u64> {
    oom_kill_count(memory_dir, "memory.oom_control", "kernel 4.13")
}

/// How many processes the OOM killer has killed in the cgroup2 cgroup `dir` and below it
/// (the `oom_kill` field of memory.events, kernel 4.13 and later).
pub fn oom_kill_count_v2(dir: &Path) -> Result<u64> {
    oom_kill_count(dir, "memory.events", "kernel 4.13")
}

fn oom_kill_count(dir: &Path, file: &str, since: &str) -> Result<u64> {
    let path = dir.join(file);
    let text = read_file(&path)
        .map_err(errno)
        .with_context(|| format!("read {}", path.display()))?;
    key_value(&text, "oom_kill")
        .with_context(|| format!("parse {}", path.display()))?
        .ok_or_else(|| anyhow!("{} has no oom_kill count (needs {since})", path.display()))
}

#[cfg(test)]
pub(super) mod tests {
    use std::io::Write;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::super::{open, placement_dirs, resolve_path, write_file, Cgroup, Dir, Host, Mode};
    use super::*;

    /// A directory of fake control files, removed when dropped.
    struct FakeDir(PathBuf);

    impl FakeDir {
        fn new(tag: &str, files: &[(&str, &str)]) -> FakeDir {
            let dir =
                std::env::temp_dir().join(format!("berth-stats-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                fs::write(dir.join(name), text).unwrap();
            }
            FakeDir(dir)
        }
    }

    impl Drop for FakeDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_values() {
        assert_eq!(parse_value("42\n").unwrap(), 42);
        assert_eq!(parse_value("max\n").unwrap(), u64::MAX);
        assert_eq!(parse_value("-1").unwrap(), 0);
        assert_eq!(parse_value("-99999999999999999999999").unwrap(), 0);
        assert!(parse_value("").is_err());
        assert!(parse_value("-").is_err());
        assert!(parse_value("12k").is_err());
    }

    #[test]
    fn parses_key_values() {
        let kv = parse_key_values("cache 4096\nrss 0\n\nhierarchical_memory_limit max\n").unwrap();
        assert_eq!(
            kv,
            [
                ("cache".to_string(), 4096),
                ("rss".to_string(), 0),
                ("hierarchical_memory_limit".to_string(), u64::MAX)
            ]
        );
        assert!(parse_key_values("cache\n").is_err());
        assert!(parse_key_values("cache 1 2\n").is_err());
        assert!(parse_key_values("cache x\n").is_err());
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(key_value(oom, "oom_kill").unwrap(), Some(3));
        assert_eq!(key_value(oom, "oom").unwrap(), None);
    }

    #[test]
    fn parses_cpuacct() {
        assert_eq!(
            parse_cpuacct_stat("user 19\nsystem 3\n", 100).unwrap(),
            (190_000_000, 30_000_000)
        );
        assert!(parse_cpuacct_stat("user 19\n", 100).is_err());
        let all = "cpu user system\n0 0 4000000\n1 200000000 0\n";
        assert_eq!(
            parse_usage_all(all).unwrap(),
            (vec![0, 200_000_000], vec![4_000_000, 0])
        );
        assert!(parse_usage_all("0 1 2\n").is_err());
        assert!(parse_usage_all("cpu user system\n0 1\n").is_err());
        assert_eq!(
            parse_numbers("4094444 199664605 \n").unwrap(),
            [4094444, 199664605]
        );
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,4,6-7\n").unwrap(), [0, 1, 2, 4, 6, 7]);
        assert_eq!(parse_cpu_list("0\n").unwrap(), [0]);
        assert!(parse_cpu_list("\n").unwrap().is_empty());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn parses_blkio() {
        let text = "8:0 Read 4096\n8:0 Write 0\n8:16 Discard 7\nTotal 4103\n";
        let e = parse_blkio_v1(text).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        assert_eq!(e[2].minor, 16);
        // sectors and time files have no operation column.
        assert_eq!(parse_blkio_v1("8:0 123\n").unwrap()[0].op, "");
        assert!(parse_blkio_v1("Total 0\n").unwrap().is_empty());
        assert!(parse_blkio_v1("8-0 Read 1\n").is_err());
        assert!(parse_blkio_v1("8:0 Read 1 2\n").is_err());

        let io = "254:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n\
                  8:0 rbytes=7 wbytes=8 rios=9 wios=10 dbytes=0 dios=0\n";
        let b = parse_io_stat(io).unwrap();
        let pick = |l: &[BlkioEntry]| {
            l.iter()
                .map(|e| (e.major, e.minor, e.op.clone(), e.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            pick(&b.io_service_bytes_recursive),
            [
                (254, 16, "Read".into(), 1),
                (254, 16, "Write".into(), 2),
                (8, 0, "Read".into(), 7),
                (8, 0, "Write".into(), 8)
            ]
        );
        assert_eq!(
            pick(&b.io_serviced_recursive)[3],
            (8, 0, "Write".into(), 10)
        );
        assert!(b.sectors_recursive.is_empty());
        assert!(parse_io_stat("nodev rbytes=1\n").is_err());
    }

    /// What runc 1.1 prints for a container it can read nothing about.
    #[test]
    fn empty_shape_is_runcs() {
        let v = to_json(&Stats::default()).unwrap();
        let zero_entry = json!({"limit": 0, "failcnt": 0});
        assert_eq!(
            v,
            json!({
                "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
                "cpuset": {
                    "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                    "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                    "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0
                },
                "memory": {
                    "usage": zero_entry, "swap": zero_entry,
                    "kernel": zero_entry, "kernelTCP": zero_entry
                },
                "pids": {},
                "blkio": {},
                "hugetlb": {},
                "intel_rdt": {},
                "network_interfaces": null
            })
        );
    }

    #[test]
    fn v1_from_files() {
        let mem = FakeDir::new(
            "v1mem",
            &[
                ("memory.stat", "cache 8192\nrss 53248\ntotal_rss 53248\n"),
                ("memory.usage_in_bytes", "659456\n"),
                ("memory.max_usage_in_bytes", "2772992\n"),
                ("memory.limit_in_bytes", "209715200\n"),
                ("memory.failcnt", "0\n"),
                ("memory.kmem.tcp.limit_in_bytes", "9223372036854771712\n"),
                ("memory.kmem.tcp.usage_in_bytes", "0\n"),
                ("memory.kmem.tcp.failcnt", "0\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
            ],
        );
        let cpu = FakeDir::new(
            "v1cpu",
            &[
                (
                    "cpu.stat",
                    "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\n",
                ),
                ("cpuacct.usage", "203759049\n"),
                ("cpuacct.usage_percpu", "4094444 199664605 \n"),
                (
                    "cpuacct.usage_all",
                    "cpu user system\n0 0 4000000\n1 200000000 0\n",
                ),
                ("cpuacct.stat", "user 19\nsystem 0\n"),
            ],
        );
        let other = FakeDir::new(
            "v1other",
            &[
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
                ("cpuset.cpus", "0-1\n"),
                ("cpuset.mems", "0\n"),
                ("cpuset.sched_load_balance", "1\n"),
                ("cpuset.sched_relax_domain_level", "-1\n"),
                ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
                (
                    "blkio.throttle.io_serviced_recursive",
                    "8:0 Read 2\n8:0 Write 1\nTotal 3\n",
                ),
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 8192\nTotal 8192\n",
                ),
                ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
                ("hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
                ("hugetlb.2MB.failcnt", "1\n"),
                ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
            ],
        );
        let dirs = vec![
            ("name=systemd".to_string(), PathBuf::from("/nonexistent")),
            ("memory".to_string(), mem.0.clone()),
            ("cpu,cpuacct".to_string(), cpu.0.clone()),
            ("pids".to_string(), other.0.clone()),
            ("cpuset".to_string(), other.0.clone()),
            ("blkio".to_string(), other.0.clone()),
            ("hugetlb".to_string(), other.0.clone()),
            ("".to_string(), cpu.0.clone()),
        ];
        let v = stats_v1(&dirs).unwrap();
        assert_eq!(
            v["cpu"],
            json!({
                "usage": {
                    "total": 203759049u64,
                    "percpu": [4094444, 199664605u64],
                    "percpu_kernel": [4000000, 0],
                    "percpu_user": [0, 200000000],
                    "kernel": 0,
                    "user": ticks_to_ns(19)
                },
                "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 5000}
            })
        );
        assert_eq!(
            v["memory"],
            json!({
                "cache": 8192,
                "usage": {"limit": 209715200, "usage": 659456, "max": 2772992, "failcnt": 0},
                "swap": {"limit": 0, "failcnt": 0},
                "kernel": {"limit": 0, "failcnt": 0},
                "kernelTCP": {"limit": 9223372036854771712u64, "failcnt": 0},
                "raw": {"cache": 8192, "rss": 53248, "total_rss": 53248}
            })
        );
        assert_eq!(v["pids"], json!({"current": 3}));
        assert_eq!(v["cpuset"]["cpus"], json!([0, 1]));
        assert_eq!(v["cpuset"]["sched_relax_domain_level"], json!(-1));
        assert_eq!(
            v["blkio"],
            json!({
                "ioServicedRecursive": [
                    {"major": 8, "op": "Read", "value": 2},
                    {"major": 8, "op": "Write", "value": 1}
                ],
                "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 8192}]
            })
        );
        assert_eq!(
            v["hugetlb"],
            json!({"2MB": {"usage": 2097152, "max": 4194304, "failcnt": 1}})
        );
        assert_eq!(oom_kill_count_v1(&mem.0).unwrap(), 2);
        let e = oom_kill_count_v1(&cpu.0).unwrap_err();
        assert!(format!("{e:#}").contains("ENOENT"), "{e:#}");

        let gone = [("memory".to_string(), PathBuf::from("/nonexistent/x"))];
        assert!(stats_v1(&gone).is_err());
    }

    fn ticks_to_ns(ticks: u64) -> u64 {
        ticks * 1_000_000_000 / ticks_per_second().unwrap()
    }

    #[test]
    fn v2_from_files() {
        let d = FakeDir::new(
            "v2",
            &[
                ("cgroup.procs", "12\n13\n"),
                ("memory.stat", "anon 4096\nfile 8192\n"),
                ("memory.current", "12288\n"),
                ("memory.max", "max\n"),
                ("memory.peak", "65536\n"),
                ("memory.swap.current", "4096\n"),
                ("memory.swap.max", "max\n"),
                (
                    "memory.events",
                    "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
                ),
                (
                    "cpu.stat",
                    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n\
                     nr_throttled 3\nthrottled_usec 20\nnr_bursts 0\nburst_usec 0\n",
                ),
                (
                    "io.stat",
                    "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
                ),
                ("hugetlb.2MB.current", "0\n"),
                ("hugetlb.2MB.max", "max\n"),
                ("hugetlb.2MB.events", "max 5\n"),
                ("hugetlb.2MB.rsvd.current", "0\n"),
            ],
        );
        let v = stats_v2(&d.0).unwrap();
        assert_eq!(
            v,
            json!({
                "cpu": {
                    "usage": {"total": 1_500_000, "kernel": 500_000, "user": 1_000_000},
                    "throttling": {"periods": 7, "throttledPeriods": 3, "throttledTime": 20_000}
                },
                "cpuset": {
                    "cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                    "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                    "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0
                },
                "memory": {
                    "cache": 8192,
                    "usage": {"limit": u64::MAX, "usage": 12288, "max": 65536, "failcnt": 0},
                    "swap": {"limit": u64::MAX, "usage": 16384, "failcnt": 0},
                    "kernel": {"limit": 0, "failcnt": 0},
                    "kernelTCP": {"limit": 0, "failcnt": 0},
                    "raw": {"anon": 4096, "file": 8192}
                },
                // No pids controller: counted from cgroup.procs.
                "pids": {"current": 2},
                "blkio": {
                    "ioServiceBytesRecursive": [
                        {"major": 8, "op": "Read", "value": 4096},
                        {"major": 8, "op": "Write"}
                    ],
                    "ioServicedRecursive": [
                        {"major": 8, "op": "Read", "value": 1},
                        {"major": 8, "op": "Write"}
                    ]
                },
                "hugetlb": {"2MB": {"failcnt": 5}},
                "intel_rdt": {},
                "network_interfaces": null
            })
        );
        assert_eq!(oom_kill_count_v2(&d.0).unwrap(), 1);

        // A finite swap limit is reported as memory+swap, and pids.max "max" as no limit.
        let d = FakeDir::new(
            "v2b",
            &[
                ("pids.current", "1\n"),
                ("pids.max", "max\n"),
                ("memory.current", "100\n"),
                ("memory.max", "1000\n"),
                ("memory.swap.current", "10\n"),
                ("memory.swap.max", "500\n"),
                ("memory.events", "low 0\n"),
            ],
        );
        let v = stats_v2(&d.0).unwrap();
        assert_eq!(v["pids"], json!({"current": 1}));
        assert_eq!(
            v["memory"]["usage"],
            json!({"limit": 1000, "usage": 100, "failcnt": 0})
        );
        assert_eq!(
            v["memory"]["swap"],
            json!({"limit": 1500, "usage": 110, "failcnt": 0})
        );
        assert!(oom_kill_count_v2(&d.0).is_err());
        assert!(stats_v2(Path::new("/nonexistent/x")).is_err());
    }

    /// A real cgroup for one test, named after it and placed under the test's own cgroup
    /// in every hierarchy; its processes are killed and it is removed when dropped, even on
    /// panic. Shared with the freezer tests.
    pub(in crate::cgroups) struct Scratch {
        pub(in crate::cgroups) mode: Mode,
        dirs: Vec<Dir>,
        cg: Box<dyn Cgroup>,
        children: Vec<Child>,
    }

    impl Scratch {
        /// None, and a note, when not root: the test is then skipped.
        pub(in crate::cgroups) fn new(tag: &str) -> Option<Scratch> {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipped: needs root");
                return None;
            }
            let rel = format!("berth-{tag}-test-{}", std::process::id());
            let path = resolve_path(Some(&rel), "unused").unwrap();
            let (mode, dirs) = placement_dirs(&Host::read().unwrap(), &path).unwrap();
            let cg = open(&path).unwrap();
            // A leftover of a crashed run with the same pid would skew the checks.
            let _ = cg.destroy();
            cg.create().unwrap();
            Some(Scratch {
                mode,
                dirs,
                cg,
                children: Vec::new(),
            })
        }

        /// Runs `script` in the cgroup. It starts only once moved in, so everything it does
        /// (memory included, which is charged where it is allocated) is accounted there.
        pub(in crate::cgroups) fn spawn(&mut self, script: &str) -> i32 {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(format!("read go; {script}"))
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let mut go = child.stdin.take().unwrap();
            self.children.push(child);
            self.cg.add_task(pid).unwrap();
            go.write_all(b"go\n").unwrap();
            pid
        }

        /// The directory in the v1 hierarchy that has `controller`.
        pub(in crate::cgroups) fn v1(&self, controller: &str) -> Option<PathBuf> {
            self.dirs
                .iter()
                .find(|d| !d.v2 && d.key.split(',').any(|c| c == controller))
                .map(Dir::path)
        }

        /// The directory in the cgroup2 hierarchy (hybrid or unified host).
        pub(in crate::cgroups) fn v2(&self) -> Option<PathBuf> {
            self.dirs.iter().find(|d| d.v2).map(Dir::path)
        }

        fn v1_dirs(&self) -> Vec<(String, PathBuf)> {
            self.dirs
                .iter()
                .map(|d| (d.key.clone(), d.path()))
                .collect()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            // v1 frozen tasks do not even die of SIGKILL until thawed.
            if let Some(d) = self.v1("freezer") {
                let _ = crate::cgroups::freezer::thaw_v1(&d);
            }
            if let Some(d) = self.v2() {
                let _ = crate::cgroups::freezer::thaw_v2(&d);
            }
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            if let Err(e) = self.cg.destroy() {
                eprintln!("leaving a test cgroup behind: {e:#}");
            }
        }
    }

    /// Polls `f` until it gives Some, for at most `secs` seconds.
    fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    const BUSY: &str = "x=$(cat /proc/self/status); while :; do :; done";

    #[test]
    fn real_cgroup_round_trip() {
        let Some(mut cg) = Scratch::new("stats") else {
            return;
        };
        const MEM: u64 = 256 << 20;
        if cg.mode == Mode::Unified {
            let d = cg.v2().unwrap();
            write_file(&d.join("memory.max"), &MEM.to_string()).unwrap();
            write_file(&d.join("pids.max"), "50").unwrap();
        } else {
            let mem = cg.v1("memory").unwrap();
            write_file(&mem.join("memory.limit_in_bytes"), &MEM.to_string()).unwrap();
            write_file(&cg.v1("pids").unwrap().join("pids.max"), "50").unwrap();
        }
        cg.spawn(BUSY);
        let read = || {
            if cg.mode == Mode::Unified {
                stats_v2(&cg.v2().unwrap()).unwrap()
            } else {
                stats_v1(&cg.v1_dirs()).unwrap()
            }
        };
        // Until the command substitution's subshell has gone, there are two processes.
        let settled = |v: &Value| {
            v["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0 && v["pids"]["current"] == 1
        };
        let v = eventually(10, || Some(read()).filter(settled))
            .unwrap_or_else(|| panic!("no cpu usage or not 1 process: {:#}", read()));
        eprintln!("{v:#}");
        assert!(v["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{v:#}");
        assert_eq!(v["memory"]["usage"]["limit"], json!(MEM));
        assert!(!v["memory"]["raw"].as_object().unwrap().is_empty());
        assert_eq!(v["pids"]["current"], json!(1), "{v:#}");
        assert_eq!(v["pids"]["limit"], json!(50));
        assert!(v["cpu"]["usage"]["user"].as_u64().is_some());

        // On a hybrid host the cgroup2 side has no controllers of note, but cpu.stat and
        // cgroup.procs are always there.
        if let (Mode::Hybrid, Some(d)) = (cg.mode, cg.v2()) {
            // The subshell can linger here a little after the v1 side lets it go.
            let busy = |v: &Value| {
                v["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0 && v["pids"]["current"] == 1
            };
            let v =
                eventually(10, || Some(stats_v2(&d).unwrap()).filter(busy)).unwrap_or_else(|| {
                    panic!(
                        "cgroup2: no cpu usage or not 1 process: {:#}",
                        stats_v2(&d).unwrap()
                    )
                });
            assert_eq!(v["pids"], json!({"current": 1}), "{v:#}");
        }
    }

    #[test]
    fn real_oom_kill_is_counted() {
        let Some(mut cg) = Scratch::new("oom") else {
            return;
        };
        let (dir, count): (PathBuf, fn(&Path) -> Result<u64>) = if cg.mode == Mode::Unified {
            let d = cg.v2().unwrap();
            write_file(&d.join("memory.max"), &(16u64 << 20).to_string()).unwrap();
            if d.join("memory.swap.max").exists() {
                write_file(&d.join("memory.swap.max"), "0").unwrap();
            }
            (d, oom_kill_count_v2)
        } else {
            let d = cg.v1("memory").unwrap();
            write_file(&d.join("memory.limit_in_bytes"), &(16u64 << 20).to_string()).unwrap();
            if d.join("memory.memsw.limit_in_bytes").exists() {
                write_file(
                    &d.join("memory.memsw.limit_in_bytes"),
                    &(16u64 << 20).to_string(),
                )
                .unwrap();
            }
            (d, oom_kill_count_v1)
        };
        assert_eq!(count(&dir).unwrap(), 0);
        // A shell variable of 64 MiB: sh itself is the one the OOM killer picks.
        cg.spawn("x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 100");
        let n = eventually(30, || count(&dir).ok().filter(|n| *n > 0));
        assert!(n.is_some(), "no OOM kill counted in {}", dir.display());
    }

    /// Compares with runc on a container paused so that both read the same numbers:
    /// BERTH_COMPARE_RUNC=ID cargo test compare_with_runc -- --ignored
    #[test]
    #[ignore]
    fn compare_with_runc() {
        let Ok(id) = std::env::var("BERTH_COMPARE_RUNC") else {
            eprintln!("skipped: set BERTH_COMPARE_RUNC to a running runc container's id");
            return;
        };
        let runc = |args: &[&str]| {
            let out = Command::new("runc").args(args).output().unwrap();
            assert!(out.status.success(), "runc {args:?}: {out:?}");
            out.stdout
        };
        let state: Value = serde_json::from_slice(&runc(&["state", &id])).unwrap();
        let pid = state["pid"].as_i64().unwrap();
        let host = Host::read().unwrap();
        let lines = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let mut v1 = Vec::new();
        let mut v2 = None;
        for l in lines.lines() {
            let mut f = l.splitn(3, ':');
            let (_, key, path) = (f.next(), f.next().unwrap(), f.next().unwrap());
            let Some(h) = host.hierarchies.iter().find(|h| h.key == key) else {
                continue;
            };
            let dir = h.mountpoint.join(path.trim_start_matches('/'));
            if host.mode == Mode::Unified {
                v2 = Some(dir);
            } else {
                v1.push((key.to_string(), dir));
            }
        }
        runc(&["pause", &id]);
        let theirs: Value = serde_json::from_slice(&runc(&["events", "--stats", &id])).unwrap();
        let ours = match &v2 {
            Some(d) => stats_v2(d),
            None => stats_v1(&v1),
        };
        runc(&["resume", &id]);
        let mut theirs = theirs["data"].clone();
        let mut ours = ours.unwrap();
        // cgroup2 flushes memory.stat's per-cpu counters lazily, so two reads of a paused
        // cgroup can still differ there: only its keys must agree.
        for v in [&mut ours, &mut theirs] {
            if let Some(raw) = v["memory"]["raw"].as_object_mut() {
                raw.values_mut().for_each(|n| *n = json!(0));
            }
        }
        // runc before 1.2 does not read memory.peak (kernel 5.19); berth reports it.
        if theirs["memory"]["usage"].get("max").is_none() {
            if let Some(usage) = ours["memory"]["usage"].as_object_mut() {
                usage.remove("max");
            }
        }
        assert_eq!(ours, theirs, "\nours: {ours}\nrunc: {theirs}");
    }
}
