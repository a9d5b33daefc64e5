//! Namespaces: which to create, which to join by path, and the id maps and time offsets that
//! must be written between creating a namespace and starting the first process in it.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::bundle::ns_name;

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // nix 0.29 has no CLONE_NEWTIME; the kernel value is 0x80.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// The entry of /proc/PID/ns/ that names a process's namespace of type `t`.
pub fn proc_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespaces of a running container, to be joined by a process exec'd into it: every
/// type its config lists (created or joined at create), opened through its init before any
/// fork. User comes last, for the reason `Plan::joins` gives.
pub fn open_of_process(spec: &Spec, pid: i32) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    let mut types: Vec<LinuxNamespaceType> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or(&[])
        .iter()
        .map(|n| n.typ())
        .collect();
    // Each type appears once: the bundle check refuses duplicates.
    types.sort_by_key(|t| user_join_rank(*t));
    let mut out = Vec::with_capacity(types.len());
    for t in types {
        let path = format!("/proc/{pid}/ns/{}", proc_file(t));
        let fd = crate::sys::open(
            path.as_str(),
            OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .with_context(|| format!("open the container's {} namespace ({path})", ns_name(t)))?;
        out.push((t, fd));
    }
    Ok(out)
}

/// Where the user namespace goes among the joins (sorted by this): last for a privileged
/// runtime, so that it joins the others with the host's privileges; first for an
/// unprivileged one, which may join the others only as the owner of the user namespace
/// that owns them.
fn user_join_rank(t: LinuxNamespaceType) -> bool {
    (t == LinuxNamespaceType::User) == nix::unistd::geteuid().is_root()
}

/// Joins opened namespaces, in order (`Plan`'s, or those of `open_of_process`).
pub fn join_all(joins: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in joins {
        nix::sched::setns(fd.as_fd(), clone_flag(*t))
            .with_context(|| format!("join the {} namespace", ns_name(*t)))?;
    }
    Ok(())
}

/// The namespace work of one container, prepared in the runtime before it forks.
pub struct Plan {
    /// Namespaces to join: fds opened before the fork, non-user ones first, user last, so the
    /// joins happen while the process still has the host's privileges.
    joins: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// Namespaces to create, except user and cgroup.
    pub new_flags: CloneFlags,
    /// A new cgroup namespace is made by init itself, once the runtime has put it in its
    /// cgroup, so that the namespace's root is the container's cgroup.
    pub new_cgroupns: bool,
    pub new_user: bool,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    /// (clock id as /proc/PID/timens_offsets names it, secs, nanosecs)
    pub time_offsets: Vec<(&'static str, i64, u32)>,
}

impl Plan {
    pub fn new(spec: &Spec) -> Result<Plan> {
        let mut joins = Vec::new();
        let mut new_flags = CloneFlags::empty();
        let mut new_user = false;
        let mut new_cgroupns = false;
        let linux = spec.linux().as_ref();
        for (i, ns) in linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            match ns.path() {
                Some(p) => {
                    let fd = crate::sys::open(p, OFlag::O_RDONLY, nix::sys::stat::Mode::empty())
                        .with_context(|| {
                            format!("linux.namespaces[{i}].path: open {}", p.display())
                        })?;
                    joins.push((ns.typ(), fd));
                }
                None if ns.typ() == LinuxNamespaceType::User => new_user = true,
                None if ns.typ() == LinuxNamespaceType::Cgroup => new_cgroupns = true,
                None => new_flags |= clone_flag(ns.typ()),
            }
        }
        joins.sort_by_key(|(t, _)| user_join_rank(*t));
        let mut time_offsets = Vec::new();
        if let Some(offs) = linux.and_then(|l| l.time_offsets().as_ref()) {
            for (clock, o) in offs {
                let name = if clock == "boottime" {
                    "boottime"
                } else {
                    "monotonic"
                };
                time_offsets.push((name, o.secs().unwrap_or(0), o.nanosecs().unwrap_or(0)));
            }
        }
        Ok(Plan {
            joins,
            new_flags,
            new_cgroupns,
            new_user,
            uid_mappings: linux
                .and_then(|l| l.uid_mappings().clone())
                .unwrap_or_default(),
            gid_mappings: linux
                .and_then(|l| l.gid_mappings().clone())
                .unwrap_or_default(),
            time_offsets,
        })
    }

    /// setns into every namespace given by path.
    /// Whether the container joins an existing namespace of type `t` (by path).
    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.joins.iter().any(|(k, _)| *k == t)
    }

    pub fn join(&self) -> Result<()> {
        join_all(&self.joins)
    }

    /// In init, after the runtime placed it in its cgroup.
    pub fn unshare_cgroupns(&self) -> Result<()> {
        if self.new_cgroupns {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare cgroup namespace")?;
        }
        Ok(())
    }

    /// Creates the new namespaces other than user and cgroup. A new pid namespace takes effect for the
    /// caller's next child; a new time namespace too, after its offsets are written.
    pub fn unshare_rest(&self) -> Result<()> {
        if self.new_flags.is_empty() {
            return Ok(());
        }
        nix::sched::unshare(self.new_flags).context("unshare namespaces")?;
        if !self.time_offsets.is_empty() {
            let mut s = String::new();
            for (clock, secs, nanos) in &self.time_offsets {
                s.push_str(&format!("{clock} {secs} {nanos}\n"));
            }
            std::fs::write("/proc/self/timens_offsets", s)
                .context("linux.timeOffsets: write /proc/self/timens_offsets")?;
        }
        Ok(())
    }

    /// Writes uid_map, setgroups and gid_map of `pid`'s new user namespace (from the parent,
    /// which is privileged in the namespace's parent).
    pub fn write_id_maps(&self, pid: i32) -> Result<()> {
        // The config checks catch overlaps and too many ranges; what is left for the kernel
        // to refuse is mostly a host id that berth's own user namespace does not map.
        let why = |e: std::io::Error| {
            let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                " (the kernel refused the ranges: a host id not mapped in berth's own user \
                 namespace, overlapping ranges, or more than 340 of them)"
            } else {
                ""
            };
            anyhow::anyhow!("{e}{hint}")
        };
        match id_map_writer(&self.uid_mappings, &self.gid_mappings) {
            MapWriter::Direct { deny_setgroups } => {
                std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&self.uid_mappings))
                    .map_err(why)
                    .context("linux.uidMappings: write uid_map")?;
                if deny_setgroups {
                    // An unprivileged user may map its own gid only once setgroups is
                    // denied (user_namespaces(7)): else it could drop a group that denies
                    // it access.
                    std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                        .context("linux.gidMappings: write setgroups")?;
                }
                std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&self.gid_mappings))
                    .map_err(why)
                    .context("linux.gidMappings: write gid_map")?;
            }
            MapWriter::Helpers => {
                run_map_helper("newuidmap", "linux.uidMappings", pid, &self.uid_mappings)?;
                run_map_helper("newgidmap", "linux.gidMappings", pid, &self.gid_mappings)?;
            }
        }
        Ok(())
    }

    /// Whether container uid/gid 0 exist in the new user namespace.
    pub fn root_mapped(&self) -> bool {
        let has0 = |m: &[LinuxIdMapping]| m.iter().any(|m| m.container_id() == 0);
        has0(&self.uid_mappings) && has0(&self.gid_mappings)
    }
}

/// Who writes a new user namespace's maps.
#[derive(Debug, PartialEq, Eq)]
enum MapWriter {
    /// The runtime itself: privileged over the namespace's parent, or unprivileged and
    /// mapping only its own uid and gid (then with setgroups denied).
    Direct { deny_setgroups: bool },
    /// newuidmap/newgidmap (setuid helpers of the uidmap package), which map the ranges
    /// /etc/subuid and /etc/subgid grant the user: what an unprivileged user needs for more.
    Helpers,
}

fn id_map_writer(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> MapWriter {
    use nix::unistd::{getegid, geteuid};
    if geteuid().is_root() {
        // Root of this user namespace (the host's, or rootless Podman's): CAP_SETUID and
        // CAP_SETGID over the new namespace's parent let it write any ranges it maps.
        return MapWriter::Direct {
            deny_setgroups: false,
        };
    }
    let own = |m: &[LinuxIdMapping], id: u32| matches!(m, [one] if one.size() == 1 && one.host_id() == id);
    if own(uid, geteuid().as_raw()) && own(gid, getegid().as_raw()) {
        MapWriter::Direct {
            deny_setgroups: true,
        }
    } else {
        MapWriter::Helpers
    }
}

/// Runs newuidmap or newgidmap for `pid` with `maps`; its own message (a range /etc/subuid
/// does not grant, say) goes into the error.
fn run_map_helper(helper: &str, field: &str, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = match cmd.stdin(std::process::Stdio::null()).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{field}: {helper} not found: an unprivileged user needs it (Debian's uidmap \
             package) to map more than its own id"
        ),
        Err(e) => anyhow::bail!("{field}: run {helper}: {e}"),
    };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim();
        anyhow::bail!(
            "{field}: {helper} failed ({}){}{msg} (the ranges must be the user's own and \
             granted in /etc/sub{}id)",
            out.status,
            if msg.is_empty() { "" } else { ": " },
            if helper == "newuidmap" { "u" } else { "g" }
        );
    }
    Ok(())
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_text_is_kernel_format() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_str(r#"[{"containerID":0,"hostID":100000,"size":65536},{"containerID":65536,"hostID":5,"size":1}]"#)
                .unwrap();
        assert_eq!(map_text(&m), "0 100000 65536\n65536 5 1\n");
    }

    #[test]
    fn plan_splits_new_and_joined() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"pid"},{"type":"user"},{"type":"network","path":"/proc/self/ns/net"}]}}"#,
        )
        .unwrap();
        let p = Plan::new(&spec).unwrap();
        assert!(p.new_user);
        assert_eq!(p.new_flags, CloneFlags::CLONE_NEWPID);
        assert_eq!(p.joins.len(), 1);
    }
}
