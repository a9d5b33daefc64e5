//! Scheduling attributes of the container process: personality, scheduler (sched_setattr),
//! I/O priority, CPU affinity and NUMA memory policy (config.md, config-linux.md). Applied by
//! init while it still holds its capabilities (SCHED_FIFO needs CAP_SYS_NICE).

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;
use oci_spec::runtime::{
    ExecCPUAffinity, IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality,
    LinuxPersonalityDomain, LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType,
    MemoryPolicyModeType, Scheduler,
};

/// Parses a CPU or node list ("0-3,8,10-11") into indices.
pub fn parse_list(s: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a
            .trim()
            .parse()
            .map_err(|_| anyhow!("{part:?} is not a number or range"))?;
        let b: usize = b
            .trim()
            .parse()
            .map_err(|_| anyhow!("{part:?} is not a number or range"))?;
        if a > b || b >= 4096 {
            bail!("{part:?} is not a valid range");
        }
        out.extend(a..=b);
    }
    if out.is_empty() {
        bail!("empty list");
    }
    Ok(out)
}

pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags: no flags are defined by the runtime-spec");
    }
    let persona: libc::c_ulong = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain integer.
    let r = unsafe { libc::personality(persona) };
    Errno::result(r)
        .map(drop)
        .map_err(|e| anyhow!("linux.personality: {e}"))
}

pub fn set_io_priority(io: &LinuxIOPriority) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_SHIFT: i64 = 13;
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&io.priority()) {
        bail!(
            "process.ioPriority.priority: {} is outside 0..7",
            io.priority()
        );
    }
    let value = (class << IOPRIO_CLASS_SHIFT) | io.priority();
    // SAFETY: ioprio_set takes three integers.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) };
    Errno::result(r)
        .map(drop)
        .map_err(|e| anyhow!("process.ioPriority: ioprio_set: {e}"))
}

/// struct sched_attr as sched_setattr(2) takes it (version with utilization clamps).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: `attr` is a sched_attr of the size it declares and outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(r)
        .map(drop)
        .map_err(|e| anyhow!("process.scheduler: sched_setattr: {e}"))
}

/// process.execCPUAffinity: the CPUs the process runs on from execve on ("final" when given,
/// as init is already in the container's cgroup, else "initial").
pub fn set_cpu_affinity(a: &ExecCPUAffinity) -> Result<()> {
    let (field, list) = match (a.cpu_affinity_final(), a.initial()) {
        (Some(f), _) => ("final", f),
        (None, Some(i)) => ("initial", i),
        (None, None) => return Ok(()),
    };
    let cpus = parse_list(list).map_err(|e| anyhow!("process.execCPUAffinity.{field}: {e}"))?;
    let mut set = nix::sched::CpuSet::new();
    for c in cpus {
        set.set(c)
            .map_err(|e| anyhow!("process.execCPUAffinity.{field}: cpu {c}: {e}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| anyhow!("process.execCPUAffinity.{field}: sched_setaffinity: {e}"))
}

pub fn set_memory_policy(m: &LinuxMemoryPolicy) -> Result<()> {
    let mut mode: libc::c_long = match m.mode() {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    };
    for f in m.flags().iter().flatten() {
        mode |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let mut mask = [0 as libc::c_ulong; 64];
    let bits = libc::c_ulong::BITS as usize;
    if let Some(nodes) = m.nodes().as_deref().filter(|n| !n.is_empty()) {
        for n in parse_list(nodes).map_err(|e| anyhow!("linux.memoryPolicy.nodes: {e}"))? {
            mask[n / bits] |= 1 << (n % bits);
        }
    }
    let empty = mask.iter().all(|w| *w == 0);
    let (ptr, maxnode) = if empty {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), (mask.len() * bits) as libc::c_ulong)
    };
    // SAFETY: the mask is a live array of `maxnode` bits (or null with 0).
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    Errno::result(r)
        .map(drop)
        .map_err(|e| anyhow!("linux.memoryPolicy: set_mempolicy: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert_eq!(parse_list("3").unwrap(), vec![3]);
        assert!(parse_list("2-1").is_err());
        assert!(parse_list("x").is_err());
        assert!(parse_list("").is_err());
    }
}
