//! Parsing of `/proc/<pid>/mountinfo` (proc(5)).
//!
//! Tests read mountinfo both on the host (to prove a runtime leaked nothing
//! and mounted nothing outside the container) and inside the container (to
//! check the options and propagation the config asked for).

use std::path::Path;

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u64,
    pub parent_id: u64,
    /// The `major:minor` field.
    pub dev: String,
    /// Root of the mount within its filesystem (bind mounts show a sub path).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options: ro/rw, nosuid, nodev, noexec, relatime...
    pub mount_opts: Vec<String>,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options: size=, mode=, ...
    pub super_opts: Vec<String>,
}

impl MountEntry {
    /// True if the per-mount options contain `opt` (e.g. "nosuid").
    pub fn has_mount_opt(&self, opt: &str) -> bool {
        self.mount_opts.iter().any(|o| o == opt)
    }

    /// True if the superblock options contain `opt` (e.g. "size=1024k").
    pub fn has_super_opt(&self, opt: &str) -> bool {
        self.super_opts.iter().any(|o| o == opt)
    }

    /// The read-only flag may be set on the mount or on the superblock
    /// (sysfs mounted with `ro` shows it in both); either makes it read-only.
    pub fn is_readonly(&self) -> bool {
        self.has_mount_opt("ro")
    }

    /// True if an optional field starts with `prefix` ("shared:", "master:").
    pub fn has_optional(&self, prefix: &str) -> bool {
        self.optional.iter().any(|o| o.starts_with(prefix))
    }
}

/// Decodes the octal escapes (`\040` for a space, ...) the kernel uses for
/// paths in mountinfo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_opts(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses mountinfo text; lines that don't have the documented shape are
/// skipped (so shell noise around the text does no harm).
pub fn parse(text: &str) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 3 {
            continue;
        }
        let (Ok(mount_id), Ok(parent_id)) = (fields[0].parse(), fields[1].parse()) else {
            continue;
        };
        out.push(MountEntry {
            mount_id,
            parent_id,
            dev: fields[2].to_string(),
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
            mount_opts: split_opts(fields[5]),
            optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
            fstype: fields[sep + 1].to_string(),
            source: unescape(fields[sep + 2]),
            super_opts: fields
                .get(sep + 3)
                .map(|s| split_opts(s))
                .unwrap_or_default(),
        });
    }
    out
}

/// The mount table of the test process (the host's mount namespace).
pub fn host() -> Vec<MountEntry> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    parse(&text)
}

/// The topmost (last mounted, hence visible) entry at `mount_point`.
pub fn find<'a>(entries: &'a [MountEntry], mount_point: &str) -> Option<&'a MountEntry> {
    entries.iter().rev().find(|e| e.mount_point == mount_point)
}

/// Host mount points at or below `dir`, in mount order.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    host()
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|mp| *mp == dir || mp.starts_with(&prefix))
        .collect()
}

/// Host mountinfo lines whose mount point or root mention `needle` (a path).
/// Used by the leftover checks: a runtime must not leave any mount that
/// refers to a bundle, its rootfs or its state directory.
pub fn host_lines_mentioning(needle: &str) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    text.lines()
        .filter(|l| unescape(l).contains(needle))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        let e = parse(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].mount_point, "/mnt x");
        assert_eq!(e[0].optional, vec!["master:1", "shared:2"]);
        assert!(e[0].has_mount_opt("noatime"));
        assert!(e[0].has_super_opt("errors=continue"));
        assert_eq!(e[1].fstype, "proc");
        assert!(e[1].optional.is_empty());
    }
}
