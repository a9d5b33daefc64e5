//! Capability names (as written in config.json) to bit numbers, and the
//! `Cap*` masks of `/proc/<pid>/status`.

use std::collections::HashMap;

/// Bit numbers from linux/capability.h. Only the kernel's numbering matters
/// here, so the table is the plain list in order.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bit number of a capability name like "CAP_KILL".
pub fn number(name: &str) -> u32 {
    NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The mask the kernel prints for a set of capability names.
pub fn mask(names: &[&str]) -> u64 {
    names.iter().fold(0u64, |m, n| m | (1u64 << number(n)))
}

/// Parses the `CapInh/CapPrm/CapEff/CapBnd/CapAmb` lines of a
/// /proc/<pid>/status text into masks keyed by the line name.
pub fn parse_status(status: &str) -> HashMap<String, u64> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.starts_with("Cap") {
                return None;
            }
            Some((k.to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(number("CAP_KILL"), 5);
        assert_eq!(number("CAP_AUDIT_WRITE"), 29);
        // runc's default set prints as 20000420 in /proc/self/status.
        assert_eq!(
            mask(&["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
            0x2000_0420
        );
        let m = parse_status("CapInh:\t0000000000000000\nCapEff:\t0000000020000420\nUid:\t0\n");
        assert_eq!(m["CapEff"], 0x2000_0420);
        assert_eq!(m["CapInh"], 0);
        assert_eq!(m.len(), 2);
    }
}
