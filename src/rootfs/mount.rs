//! The `mounts` entries: option parsing and one mount each, made on the fd of a destination
//! resolved inside the rootfs.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Mount;

use super::resolve::{clean, create_in_root, open_in_root};
use crate::sys::{self, fd_path};

/// What a mount's `options` ask for.
#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags an option cleared explicitly (`rw`, `suid`...), kept apart so a bind remount
    /// knows not to re-add them from the source mount.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub bind: bool,
    pub recursive_bind: bool,
    /// A tmpfs that starts with a copy of what the image has at its destination.
    pub tmpcopyup: bool,
    /// mount_setattr attributes for the recursive options (rro, rnosuid...).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Everything else, passed to the filesystem as data ("mode=755,size=65536k").
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            bind: false,
            recursive_bind: false,
            tmpcopyup: false,
            rec_set: 0,
            rec_clr: 0,
            data: Vec::new(),
        }
    }
}

const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Options this runtime refuses rather than silently ignores.
const UNSUPPORTED: &[&str] = &["idmap", "ridmap", "copy-symlink"];

pub fn parse_options(opts: &[String]) -> MountOptions {
    use sys::*;
    let mut o = MountOptions::default();
    for opt in opts {
        let set = |o: &mut MountOptions, f: MsFlags| {
            o.flags |= f;
            o.cleared &= !f;
        };
        let clear = |o: &mut MountOptions, f: MsFlags| {
            o.flags &= !f;
            o.cleared |= f;
        };
        let rec = |o: &mut MountOptions, s: u64, c: u64| {
            o.rec_set = (o.rec_set & !c) | s;
            o.rec_clr = (o.rec_clr & !s) | c;
        };
        match opt.as_str() {
            "defaults" => {}
            "ro" => set(&mut o, MsFlags::MS_RDONLY),
            "rw" => clear(&mut o, MsFlags::MS_RDONLY),
            "nosuid" => set(&mut o, MsFlags::MS_NOSUID),
            "suid" => clear(&mut o, MsFlags::MS_NOSUID),
            "nodev" => set(&mut o, MsFlags::MS_NODEV),
            "dev" => clear(&mut o, MsFlags::MS_NODEV),
            "noexec" => set(&mut o, MsFlags::MS_NOEXEC),
            "exec" => clear(&mut o, MsFlags::MS_NOEXEC),
            "sync" => set(&mut o, MsFlags::MS_SYNCHRONOUS),
            "async" => clear(&mut o, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => set(&mut o, MsFlags::MS_DIRSYNC),
            "remount" => set(&mut o, MsFlags::MS_REMOUNT),
            "mand" => set(&mut o, MsFlags::MS_MANDLOCK),
            "nomand" => clear(&mut o, MsFlags::MS_MANDLOCK),
            "noatime" => set(&mut o, MsFlags::MS_NOATIME),
            "atime" => clear(&mut o, MsFlags::MS_NOATIME),
            "nodiratime" => set(&mut o, MsFlags::MS_NODIRATIME),
            "diratime" => clear(&mut o, MsFlags::MS_NODIRATIME),
            "relatime" => set(&mut o, MsFlags::MS_RELATIME),
            "norelatime" => clear(&mut o, MsFlags::MS_RELATIME),
            "strictatime" => set(&mut o, MsFlags::MS_STRICTATIME),
            "nostrictatime" => clear(&mut o, MsFlags::MS_STRICTATIME),
            "nosymfollow" => set(&mut o, MS_NOSYMFOLLOW),
            "symfollow" => clear(&mut o, MS_NOSYMFOLLOW),
            "silent" => set(&mut o, MsFlags::MS_SILENT),
            "loud" => clear(&mut o, MsFlags::MS_SILENT),
            "iversion" => set(&mut o, MsFlags::MS_I_VERSION),
            "noiversion" => clear(&mut o, MsFlags::MS_I_VERSION),
            "lazytime" => set(&mut o, MsFlags::MS_LAZYTIME),
            "nolazytime" => clear(&mut o, MsFlags::MS_LAZYTIME),
            "bind" => o.bind = true,
            "tmpcopyup" => o.tmpcopyup = true,
            "rbind" => {
                o.bind = true;
                o.recursive_bind = true;
            }
            "rro" => rec(&mut o, MOUNT_ATTR_RDONLY, 0),
            "rrw" => rec(&mut o, 0, MOUNT_ATTR_RDONLY),
            "rnosuid" => rec(&mut o, MOUNT_ATTR_NOSUID, 0),
            "rsuid" => rec(&mut o, 0, MOUNT_ATTR_NOSUID),
            "rnodev" => rec(&mut o, MOUNT_ATTR_NODEV, 0),
            "rdev" => rec(&mut o, 0, MOUNT_ATTR_NODEV),
            "rnoexec" => rec(&mut o, MOUNT_ATTR_NOEXEC, 0),
            "rexec" => rec(&mut o, 0, MOUNT_ATTR_NOEXEC),
            "rnodiratime" => rec(&mut o, MOUNT_ATTR_NODIRATIME, 0),
            "rdiratime" => rec(&mut o, 0, MOUNT_ATTR_NODIRATIME),
            "rnosymfollow" => rec(&mut o, MOUNT_ATTR_NOSYMFOLLOW, 0),
            "rsymfollow" => rec(&mut o, 0, MOUNT_ATTR_NOSYMFOLLOW),
            // The atime modes are one field: clearing MOUNT_ATTR__ATIME selects the new one.
            "rnoatime" => rec(&mut o, MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
            "rrelatime" => rec(&mut o, MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME),
            "rstrictatime" => rec(&mut o, MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
            "ratime" | "rnorelatime" | "rnostrictatime" => {
                rec(&mut o, MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME)
            }
            other => match propagation_flag(other) {
                Some(p) => o.propagation.push(p),
                None => o.data.push(other.to_string()),
            },
        }
    }
    o
}

/// /proc paths a container may mount over (as runc allows, for lxcfs and the like); anything
/// else under /proc could hide or fake the kernel's own files.
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Checks one `mounts` entry before anything is created.
pub fn check_mount(m: &Mount) -> Result<()> {
    let opts = m.options().as_deref().unwrap_or(&[]);
    for (i, o) in opts.iter().enumerate() {
        if UNSUPPORTED.contains(&o.as_str()) {
            bail!("options[{i}]: {o:?} is not built into berth yet");
        }
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        bail!("uidMappings: id-mapped mounts are not built into berth yet");
    }
    let o = parse_options(opts);
    let typ = m.typ().as_deref().unwrap_or("");
    if o.tmpcopyup && typ != "tmpfs" {
        bail!("options: \"tmpcopyup\" applies to tmpfs mounts only, not {typ:?}");
    }
    if (o.bind || typ == "bind") && m.source().is_none() {
        bail!("source: a bind mount needs a source");
    }
    let dest = clean(m.destination());
    if dest == Path::new("/") {
        bail!("destination: cannot mount over the container's root");
    }
    check_proc_destination(&dest, typ)
}

fn check_proc_destination(dest: &Path, typ: &str) -> Result<()> {
    if dest == Path::new("/proc") {
        if typ != "proc" && typ != "bind" {
            bail!("destination: /proc may only hold a proc filesystem, not {typ:?}");
        }
    } else if dest.starts_with("/proc") && !PROC_ALLOWED.iter().any(|a| Path::new(a) == dest) {
        bail!(
            "destination: {} is inside /proc, where only {} may be mounted over",
            dest.display(),
            PROC_ALLOWED.join(", ")
        );
    }
    Ok(())
}

/// What the mount code needs to know about the container beyond the entry itself.
pub struct MountContext<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    pub in_userns: bool,
    /// For `cgroup` mounts: (entry name under the mount point, host dir); one entry with an
    /// empty name on cgroup v2.
    pub cgroup_sources: &'a [(String, PathBuf)],
    pub cgroup_v2: bool,
    pub new_cgroupns: bool,
    /// linux.mountLabel: the SELinux context of the filesystems the runtime creates.
    pub mount_label: Option<&'a str>,
}

/// Flags a mount already has that a remount must keep: inside a user namespace the kernel
/// refuses to drop nosuid/nodev/noexec/atime flags it locked.
fn locked_flags(fd: BorrowedFd) -> MsFlags {
    let Ok(st) = fstatvfs(fd) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            out |= m;
        }
    }
    out
}

/// Remounts the mount at `dest` (resolved again: the new mount, not what was under it) with
/// `flags` as a bind remount, keeping what the kernel locked.
pub fn remount_bind(ctx_root: BorrowedFd, dest: &Path, flags: MsFlags, keep: bool) -> Result<()> {
    let fd = open_in_root(ctx_root, dest, OFlag::O_PATH)
        .map_err(|e| anyhow!("reopen {}: {e}", dest.display()))?;
    let mut f = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    if keep {
        f |= locked_flags(fd.as_fd());
    }
    mount(
        None::<&str>,
        fd_path(fd.as_fd()).as_str(),
        None::<&str>,
        f,
        None::<&str>,
    )
    .map_err(|e| anyhow!("remount {} ({f:?}): {e}", dest.display()))
}

fn refuse_procfs_target(fd: BorrowedFd, dest: &Path, typ: &str) -> Result<()> {
    if super::is_procfs(fd) {
        // A symlink in the rootfs may point a harmless-looking destination into /proc.
        check_proc_destination(dest, typ)
            .with_context(|| format!("{} resolves into procfs", dest.display()))?;
    }
    Ok(())
}

/// Mounts one entry.
pub fn mount_entry(ctx: &MountContext, m: &Mount) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let flags = o.flags & !MsFlags::MS_REMOUNT;
    if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(ctx, dest, flags)?;
    } else if o.bind || typ == "bind" {
        let src = m.source().as_ref().expect("checked: bind has a source");
        let src = if src.is_absolute() {
            src.clone()
        } else {
            ctx.bundle.join(src)
        };
        let meta = std::fs::metadata(&src).map_err(|e| anyhow!("source {}: {e}", src.display()))?;
        let target = create_in_root(ctx.root, dest, !meta.is_dir())?;
        refuse_procfs_target(target.as_fd(), dest, "bind")?;
        let mut bf = MsFlags::MS_BIND;
        if o.recursive_bind {
            bf |= MsFlags::MS_REC;
        }
        mount(
            Some(&src),
            fd_path(target.as_fd()).as_str(),
            None::<&str>,
            bf,
            None::<&str>,
        )
        .map_err(|e| anyhow!("bind {} on {}: {e}", src.display(), dest.display()))?;
        let extra = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            remount_bind(ctx.root, dest, extra, ctx.in_userns)?;
        }
    } else {
        let target = create_in_root(ctx.root, dest, false)?;
        refuse_procfs_target(target.as_fd(), dest, typ)?;
        let mut data = o.data.clone();
        if let Some(label) = ctx.mount_label {
            if matches!(typ, "tmpfs" | "devpts" | "mqueue") {
                data.push(format!("context=\"{label}\""));
            }
        }
        let data = data.join(",");
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        let tp = fd_path(target.as_fd());
        // The image's directory, still reachable through this fd once the tmpfs covers it.
        let below = if o.tmpcopyup {
            Some(
                sys::open(
                    tp.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| anyhow!("tmpcopyup: open {}: {e}", dest.display()))?,
            )
        } else {
            None
        };
        let r = mount(
            Some(source.as_str()),
            tp.as_str(),
            Some(typ),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        );
        match (r, typ) {
            (Ok(()), _) => {}
            // Without its own network namespace a user namespace may not mount sysfs (nor
            // mqueue without an ipc one): bind the host's instead, as runc does.
            (Err(Errno::EPERM), "sysfs") | (Err(Errno::EPERM), "mqueue") if ctx.in_userns => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                mount(
                    Some(host),
                    tp.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| anyhow!("bind {host} on {}: {e}", dest.display()))?;
                remount_bind(ctx.root, dest, flags, true)?;
            }
            (Err(e), _) => bail!("mount {typ} on {}: {e}", dest.display()),
        }
        if let Some(below) = below {
            let top = open_in_root(ctx.root, dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| anyhow!("tmpcopyup: reopen {}: {e}", dest.display()))?;
            let keep_mode = o.data.iter().any(|d| d.starts_with("mode="));
            super::copyup::copy_dir(below.as_fd(), top.as_fd(), keep_mode)
                .with_context(|| format!("tmpcopyup: copy {} into its tmpfs", dest.display()))?;
        }
    }
    if !o.propagation.is_empty() || o.rec_set != 0 || o.rec_clr != 0 {
        let fd = open_in_root(ctx.root, dest, OFlag::O_PATH)
            .map_err(|e| anyhow!("reopen {}: {e}", dest.display()))?;
        for p in &o.propagation {
            mount(
                None::<&str>,
                fd_path(fd.as_fd()).as_str(),
                None::<&str>,
                *p,
                None::<&str>,
            )
            .map_err(|e| anyhow!("set propagation of {}: {e}", dest.display()))?;
        }
        if o.rec_set != 0 || o.rec_clr != 0 {
            sys::mount_setattr_recursive(fd.as_fd(), o.rec_set, o.rec_clr)
                .map_err(|e| anyhow!("mount_setattr {}: {e}", dest.display()))?;
        }
    }
    Ok(())
}

/// A `cgroup` mount shows the container its own cgroup: with a cgroup namespace on v2 a fresh
/// cgroup2 mount does that by itself; otherwise the container's directories are bound from the
/// host (under a tmpfs, one per hierarchy, on v1), so the host's tree stays hidden.
fn mount_cgroup(ctx: &MountContext, dest: &Path, flags: MsFlags) -> Result<()> {
    let target = create_in_root(ctx.root, dest, false)?;
    let tp = fd_path(target.as_fd());
    if ctx.cgroup_v2 {
        if ctx.new_cgroupns {
            mount(
                Some("cgroup2"),
                tp.as_str(),
                Some("cgroup2"),
                flags,
                None::<&str>,
            )
            .map_err(|e| anyhow!("mount cgroup2 on {}: {e}", dest.display()))?;
            return Ok(());
        }
        let (_, host) = ctx
            .cgroup_sources
            .first()
            .ok_or_else(|| anyhow!("no cgroup to mount on {}", dest.display()))?;
        mount(
            Some(host),
            tp.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| anyhow!("bind {} on {}: {e}", host.display(), dest.display()))?;
        return remount_bind(ctx.root, dest, flags, true);
    }
    let tmpfs_flags = flags & !MsFlags::MS_RDONLY;
    mount(
        Some("tmpfs"),
        tp.as_str(),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(|e| anyhow!("mount tmpfs on {}: {e}", dest.display()))?;
    for (name, host) in ctx.cgroup_sources {
        let sub = dest.join(name);
        let t = create_in_root(ctx.root, &sub, false)?;
        mount(
            Some(host),
            fd_path(t.as_fd()).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| anyhow!("bind {} on {}: {e}", host.display(), sub.display()))?;
        remount_bind(ctx.root, &sub, flags, true)?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let fd = open_in_root(ctx.root, dest, OFlag::O_PATH)
            .map_err(|e| anyhow!("reopen {}: {e}", dest.display()))?;
        mount(
            None::<&str>,
            fd_path(fd.as_fd()).as_str(),
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .map_err(|e| anyhow!("remount {} read-only: {e}", dest.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> MountOptions {
        parse_options(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data() {
        let o = p(&["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = p(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_propagation_recursive() {
        let o = p(&["rbind", "rprivate", "rro", "rnoatime"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert_eq!(o.rec_set, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, sys::MOUNT_ATTR__ATIME);
    }

    #[test]
    fn proc_destinations() {
        assert!(check_proc_destination(Path::new("/proc"), "proc").is_ok());
        assert!(check_proc_destination(Path::new("/proc"), "tmpfs").is_err());
        assert!(check_proc_destination(Path::new("/proc/self"), "bind").is_err());
        assert!(check_proc_destination(Path::new("/proc/cpuinfo"), "bind").is_ok());
        assert_eq!(
            clean(Path::new("/x/../proc/./sys")),
            PathBuf::from("/proc/sys")
        );
    }
}
