//! The `mounts` entries: option parsing and one mount each, made on the fd of a destination
//! resolved inside the rootfs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Mount;

use super::resolve::{clean, create_in_root};
use crate::sys::{self, fd_path};

/// statvfs's ST_RELATIME (Linux's MS_RELATIME bit): not every libc binding names it.
const ST_RELATIME: libc::c_ulong = 0x1000;

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
const UNSUPPORTED: &[&str] = &["copy-symlink"];

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
    let o = parse_options(opts);
    if wants_idmap(m) {
        if !is_bind(m) {
            bail!("options: id-mapped mounts (idmap, ridmap, uidMappings) are bind mounts only");
        }
        for (field, maps) in [
            ("uidMappings", m.uid_mappings()),
            ("gidMappings", m.gid_mappings()),
        ] {
            for (i, map) in maps.iter().flatten().enumerate() {
                if map.size() == 0 {
                    bail!("{field}[{i}].size: 0 maps nothing");
                }
            }
        }
        if m.uid_mappings().is_some() != m.gid_mappings().is_some() {
            bail!("uidMappings and gidMappings: give both or neither");
        }
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if o.tmpcopyup && typ != "tmpfs" {
        bail!("options: \"tmpcopyup\" applies to tmpfs mounts only, not {typ:?}");
    }
    if is_bind(m) && m.source().is_none() {
        bail!("source: a bind mount needs a source");
    }
    let dest = clean(m.destination());
    if dest == Path::new("/") {
        bail!("destination: cannot mount over the container's root");
    }
    // A bind spelt only in the options is a bind all the same.
    check_proc_destination(&dest, if is_bind(m) { "bind" } else { typ })
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
    pub rootless: bool,
    /// linux.mountLabel: the SELinux context of the filesystems the runtime creates.
    pub mount_label: Option<&'a str>,
}

/// The mount attributes (`MOUNT_ATTR_*`, for mount_setattr and fsmount) that set and clear
/// the per-mount flags among `flags` and `cleared`. Superblock flags (sync, dirsync...) have
/// no mount attribute and are left out.
pub fn mount_attrs(flags: MsFlags, cleared: MsFlags) -> (u64, u64) {
    let mut set = 0;
    let mut clr = 0;
    for (f, a) in [
        (MsFlags::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, sys::MOUNT_ATTR_NODIRATIME),
        (MS_NOSYMFOLLOW, sys::MOUNT_ATTR_NOSYMFOLLOW),
    ] {
        if flags.contains(f) {
            set |= a;
        } else if cleared.contains(f) {
            clr |= a;
        }
    }
    // The atime modes are one field: clearing MOUNT_ATTR__ATIME selects the new one.
    let atime = if flags.contains(MsFlags::MS_NOATIME) {
        Some(sys::MOUNT_ATTR_NOATIME)
    } else if flags.contains(MsFlags::MS_STRICTATIME) {
        Some(sys::MOUNT_ATTR_STRICTATIME)
    } else if flags.contains(MsFlags::MS_RELATIME)
        || cleared.intersects(MsFlags::MS_NOATIME | MsFlags::MS_STRICTATIME)
    {
        Some(sys::MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    if let Some(a) = atime {
        set |= a;
        clr |= sys::MOUNT_ATTR__ATIME;
    }
    (set, clr)
}

/// Inside a user namespace the kernel locks the nosuid, nodev, noexec and atime flags a mount
/// had when the namespace copied it: an attempt to clear them fails, so leave them as they are.
fn keep_locked(fd: BorrowedFd, set: u64, clr: u64) -> (u64, u64) {
    let Ok(st) = fstatvfs(fd) else {
        return (set, clr);
    };
    let f = st.flags();
    let mut clr = clr;
    let mut set = set;
    for (s, a) in [
        (FsFlags::ST_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (FsFlags::ST_NODEV, sys::MOUNT_ATTR_NODEV),
        (FsFlags::ST_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
    ] {
        if f.contains(s) {
            clr &= !a;
        }
    }
    if f.intersects(FsFlags::ST_NOATIME | FsFlags::ST_NODIRATIME)
        || !f.contains(FsFlags::from_bits_retain(ST_RELATIME))
    {
        set &= !(sys::MOUNT_ATTR__ATIME | sys::MOUNT_ATTR_NODIRATIME);
        clr &= !(sys::MOUNT_ATTR__ATIME | sys::MOUNT_ATTR_NODIRATIME);
    }
    (set, clr)
}

/// Sets the flags of the mount `fd` is the root of, attached or detached, through the fd:
/// no path is looked up, so nothing can redirect them to another mount.
pub fn set_mount_flags(fd: BorrowedFd, set: u64, clr: u64, in_userns: bool) -> nix::Result<()> {
    let (set, clr) = if in_userns {
        keep_locked(fd, set, clr)
    } else {
        (set, clr)
    };
    if set == 0 && clr == 0 {
        return Ok(());
    }
    sys::mount_setattr(fd, false, set, clr, 0)
}

/// Where a bind mount comes from.
pub enum BindSource<'a> {
    /// A host path, looked up as mount(2) would.
    Path(&'a Path),
    /// An fd: a file or directory already resolved.
    Fd(BorrowedFd<'a>),
    /// A detached mount made ready elsewhere (an id-mapped clone): attached as it is.
    Detached(BorrowedFd<'a>),
}

/// Binds `src` onto `target` (an fd resolved inside the rootfs): a detached clone of the
/// source (open_tree), its flags set on it (mount_setattr), then attached (move_mount). The
/// mount is read-only (or nosuid...) before any path leads to it, and no path is looked up
/// again to get there: a container swapping a directory for a symlink cannot make the flags
/// land on another mount. Returns the fd of the new mount.
pub fn bind_onto(
    src: BindSource,
    target: BorrowedFd,
    recursive: bool,
    (set, clr): (u64, u64),
    in_userns: bool,
) -> Result<OwnedFd> {
    let clone = match src {
        BindSource::Path(p) => sys::clone_mount_at(p, recursive),
        BindSource::Fd(fd) => sys::clone_mount(fd, recursive),
        BindSource::Detached(fd) => fd
            .try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))),
    }
    .map_err(|e| anyhow!("clone the source mount: {e}"))?;
    set_mount_flags(clone.as_fd(), set, clr, in_userns)
        .map_err(|e| anyhow!("set mount flags: {e}"))?;
    sys::move_mount(clone.as_fd(), target).map_err(|e| {
        // A file bound onto a directory or the reverse: move_mount says EINVAL, mount(2)
        // (runc's) ENOTDIR. runc's words: Docker reads "not a directory" as the user's
        // mount mistake (exit 127, with a hint).
        let is_dir = |fd: BorrowedFd| {
            nix::sys::stat::fstat(fd.as_raw_fd())
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .ok()
        };
        match (e, is_dir(clone.as_fd()), is_dir(target)) {
            (Errno::EINVAL, Some(from_dir), Some(onto_dir)) if from_dir != onto_dir => {
                let what = if from_dir {
                    "a directory onto a file"
                } else {
                    "a file onto a directory"
                };
                anyhow!("attach {what}: not a directory")
            }
            _ => anyhow!("attach: {e}"),
        }
    })?;
    Ok(clone)
}

/// A new filesystem (`fstype`, from `source`, with the filesystem's `data` options) set up
/// detached with the attributes `attrs`, then attached on `target`. Returns the fd of the new
/// mount's root.
fn new_mount_onto(
    fstype: &str,
    source: &str,
    data: &[String],
    attrs: u64,
    target: BorrowedFd,
) -> std::result::Result<OwnedFd, (Errno, String)> {
    let fd = sys::new_mount(fstype, source, data, attrs)?;
    sys::move_mount(fd.as_fd(), target).map_err(|e| (e, "attach".to_string()))?;
    Ok(fd)
}

/// Refuses a destination that resolved into procfs anywhere but where its path literally
/// says, and then only at the allowed /proc paths: the check is on where the fd landed, not
/// on the configured string (an image's `/etc -> /proc/sys/kernel` would otherwise let a bind
/// at /etc/hostname land on /proc/sys/kernel/hostname).
fn refuse_procfs_target(
    root: BorrowedFd,
    target: BorrowedFd,
    dest: &Path,
    typ: &str,
) -> Result<()> {
    if !super::is_procfs(target) {
        return Ok(());
    }
    let dest = clean(dest);
    let literal = |fd: BorrowedFd| nix::fcntl::readlink(fd_path(fd).as_str()).ok();
    let (Some(at), Some(root_path)) = (literal(target), literal(root)) else {
        bail!("{} resolves into procfs", dest.display());
    };
    let expected = Path::new(&root_path).join(dest.strip_prefix("/").unwrap_or(&dest));
    if Path::new(&at) != expected {
        bail!(
            "{} resolves into procfs through a symlink: refused",
            dest.display()
        );
    }
    check_proc_destination(&dest, typ)
        .with_context(|| format!("{} resolves into procfs", dest.display()))
}

/// Refuses to mount procfs or sysfs where the rootfs has a symlink (or any non-directory):
/// the kernel's own files would appear elsewhere than the container (and every later
/// path rule) expects them (CVE-2019-16884's class); runc's words.
fn refuse_non_directory(root: BorrowedFd, dest: &Path, typ: &str) -> Result<()> {
    let fd = match super::open_in_root(root, dest, OFlag::O_PATH | OFlag::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => bail!("open {}: {e}", dest.display()),
    };
    let st = nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&fd))
        .map_err(|e| anyhow!("stat: {e}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        let what = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            "a symlink in the rootfs"
        } else {
            "not a directory in the rootfs"
        };
        bail!("filesystem {typ:?} must be mounted on ordinary directory ({what})");
    }
    Ok(())
}

/// Whether the entry is a bind mount: type "bind", or "bind"/"rbind" among its options
/// (Docker and Podman spell it either way; runc takes both).
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Whether the mount asks for an id-mapped mount: `idmap`/`ridmap`, or mappings of its own.
pub fn wants_idmap(m: &Mount) -> bool {
    m.uid_mappings().is_some()
        || m.gid_mappings().is_some()
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
}

/// A user namespace with `uid`/`gid` mappings (each "containerID hostID size"), for an
/// id-mapped mount: a child unshares it and waits, this process (the host's root) writes its
/// maps and keeps an fd of it; the child is then killed, the namespace lives on in the fd.
fn mapped_userns(
    uid: &[oci_spec::runtime::LinuxIdMapping],
    gid: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe().context("pipe")?;
    let child = match sys::fork().context("fork for an id-mapped mount's user namespace")? {
        nix::unistd::ForkResult::Child => {
            drop(ready_r);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"y" } else { b"n" });
            loop {
                nix::unistd::pause();
            }
        }
        nix::unistd::ForkResult::Parent { child } => child,
    };
    drop(ready_w);
    let r = (|| -> Result<OwnedFd> {
        let mut b = [0u8; 1];
        let n = nix::unistd::read(ready_r.as_raw_fd(), &mut b).context("wait for the child")?;
        if n != 1 || b[0] != b'y' {
            bail!("unshare a user namespace for the mount failed");
        }
        let lines = |maps: &[oci_spec::runtime::LinuxIdMapping]| -> String {
            maps.iter()
                .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
                .collect()
        };
        for (file, maps) in [("uid_map", uid), ("gid_map", gid)] {
            let path = format!("/proc/{child}/{file}");
            std::fs::write(&path, lines(maps)).map_err(|e| anyhow!("write {path}: {e}"))?;
        }
        sys::open(
            format!("/proc/{child}/ns/user").as_str(),
            OFlag::O_RDONLY,
            nix::sys::stat::Mode::empty(),
        )
        .context("open the mount's user namespace")
    })();
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    r
}

/// A detached clone of `src` (recursive for rbind), id-mapped through the mount's own
/// mappings or, for `idmap`/`ridmap` alone, the container's user namespace (runc 1.2's
/// rule). Done by the host's root: MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the source
/// filesystem. Attached later by init with move_mount.
fn idmapped_clone(
    m: &Mount,
    src: BorrowedFd,
    container_userns: Option<BorrowedFd>,
) -> Result<OwnedFd> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let clone = sys::clone_mount(src, o.recursive_bind)
        .map_err(|e| anyhow!("clone the source mount: {e}"))?;
    let own;
    let userns = match (m.uid_mappings(), m.gid_mappings()) {
        (Some(u), Some(g)) => {
            own = mapped_userns(u, g)?;
            own.as_fd()
        }
        _ => container_userns
            .ok_or_else(|| anyhow!("idmap: the container has no user namespace to map through"))?,
    };
    let recursive = m.options().iter().flatten().any(|x| x == "ridmap");
    sys::mount_setattr_idmap(clone.as_fd(), recursive, userns)
        .map_err(|e| anyhow!("make the mount id-mapped: {e}"))?;
    Ok(clone)
}

/// The source of every bind mount of `mounts`, opened O_PATH now (None for other mounts),
/// while the process still has the host's privileges: in a user namespace whose root is an
/// unprivileged host uid, init could no longer reach a source under a directory only the
/// host's root may search. runc opens them before entering the namespace too. An fd needs no
/// further path walk, so the later open_tree of it checks no permission on the way.
/// An id-mapped mount's entry is its detached, id-mapped clone instead (see
/// `idmapped_clone`), ready to be attached.
pub fn open_bind_sources(
    mounts: &[Mount],
    bundle: &Path,
    container_userns: Option<BorrowedFd>,
) -> Result<Vec<Option<OwnedFd>>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !is_bind(m) {
                return Ok(None);
            }
            let src = m.source().as_ref().expect("checked: bind has a source");
            let src = if src.is_absolute() {
                src.clone()
            } else {
                bundle.join(src)
            };
            let at = || format!("mounts[{i}] {}", m.destination().display());
            let fd = sys::open(&src, OFlag::O_PATH, nix::sys::stat::Mode::empty())
                .map_err(|e| anyhow!("{}: source {}: {e}", at(), src.display()))?;
            if wants_idmap(m) {
                return idmapped_clone(m, fd.as_fd(), container_userns)
                    .with_context(at)
                    .map(Some);
            }
            Ok(Some(fd))
        })
        .collect()
}

/// Mounts one entry; `source` is its bind source opened beforehand, if it was.
pub fn mount_entry(ctx: &MountContext, m: &Mount, source: Option<BorrowedFd>) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = m.destination();
    let flags = o.flags & !MsFlags::MS_REMOUNT;
    let attrs = mount_attrs(flags, o.cleared);
    let mounted = if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroup(ctx, dest, flags)?
    } else if is_bind(m) {
        let src = m.source().as_ref().expect("checked: bind has a source");
        let src = if src.is_absolute() {
            src.clone()
        } else {
            ctx.bundle.join(src)
        };
        // One lookup of the source: the fd is what is checked and what is bound.
        let opened;
        let pre_made = source.is_some();
        if wants_idmap(m) && !pre_made {
            bail!("id-mapped mounts need the container's own user namespace (linux.namespaces)");
        }
        let source = match source {
            Some(fd) => fd,
            None => {
                opened = sys::open(&src, OFlag::O_PATH, nix::sys::stat::Mode::empty())
                    .map_err(|e| anyhow!("source {}: {e}", src.display()))?;
                opened.as_fd()
            }
        };
        let is_dir = nix::sys::stat::fstat(source.as_raw_fd())
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .map_err(|e| anyhow!("source {}: {e}", src.display()))?;
        // As runc's checkProcMount: /proc may hold the host's procfs bound there, never
        // another tree that could fake the kernel's files.
        if clean(dest) == Path::new("/proc") && !super::is_procfs(source) {
            bail!(
                "destination: /proc may only hold a proc filesystem; source {} is not one",
                src.display()
            );
        }
        let target = create_in_root(ctx.root, dest, !is_dir)?;
        refuse_procfs_target(ctx.root, target.as_fd(), dest, "bind")?;
        bind_onto(
            if wants_idmap(m) && pre_made {
                BindSource::Detached(source)
            } else {
                BindSource::Fd(source)
            },
            target.as_fd(),
            o.recursive_bind,
            attrs,
            ctx.in_userns,
        )
        .with_context(|| format!("bind {} on {}", src.display(), dest.display()))?
    } else {
        if matches!(typ, "proc" | "sysfs") {
            refuse_non_directory(ctx.root, dest, typ)?;
        }
        let target = create_in_root(ctx.root, dest, false)?;
        refuse_procfs_target(ctx.root, target.as_fd(), dest, typ)?;
        let mut data = o.data.clone();
        if let Some(label) = ctx.mount_label {
            if matches!(typ, "tmpfs" | "devpts" | "mqueue") {
                data.push(format!("context=\"{label}\""));
            }
        }
        // Superblock flags a new filesystem takes as options.
        for (f, name) in [
            (MsFlags::MS_SYNCHRONOUS, "sync"),
            (MsFlags::MS_DIRSYNC, "dirsync"),
            (MsFlags::MS_LAZYTIME, "lazytime"),
            (MsFlags::MS_MANDLOCK, "mand"),
            (MsFlags::MS_SILENT, "silent"),
        ] {
            if flags.contains(f) {
                data.push(name.to_string());
            }
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        // The image's directory, still reachable through this fd once the tmpfs covers it.
        let below = if o.tmpcopyup {
            Some(
                sys::openat(
                    target.as_fd(),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| anyhow!("tmpcopyup: open {}: {e}", dest.display()))?,
            )
        } else {
            None
        };
        let top = match new_mount_onto(typ, &source, &data, attrs.0, target.as_fd()) {
            Ok(fd) => fd,
            // Without its own network namespace a user namespace may not mount sysfs (nor
            // mqueue without an ipc one): bind the host's instead, as runc does.
            Err((Errno::EPERM, _)) if ctx.in_userns && matches!(typ, "sysfs" | "mqueue") => {
                let host = Path::new(if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                });
                bind_onto(BindSource::Path(host), target.as_fd(), true, attrs, true)
                    .with_context(|| format!("bind {} on {}", host.display(), dest.display()))?
            }
            Err((e, what)) if what.starts_with("fs") || what.starts_with("create") => {
                bail!("mount {typ} on {}: {e}", dest.display())
            }
            Err((e, what)) => bail!("mount {typ} on {} ({what}): {e}", dest.display()),
        };
        if let Some(below) = below {
            let top = sys::openat(
                top.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| anyhow!("tmpcopyup: open the tmpfs on {}: {e}", dest.display()))?;
            let keep_mode = o.data.iter().any(|d| d.starts_with("mode="));
            super::copyup::copy_dir(below.as_fd(), top.as_fd(), keep_mode)
                .with_context(|| format!("tmpcopyup: copy {} into its tmpfs", dest.display()))?;
        }
        top
    };
    // On the new mount itself, through its fd, now that it is attached.
    for p in &o.propagation {
        sys::mount_setattr(
            mounted.as_fd(),
            p.contains(MsFlags::MS_REC),
            0,
            0,
            (*p & !MsFlags::MS_REC).bits(),
        )
        .map_err(|e| anyhow!("set propagation of {}: {e}", dest.display()))?;
    }
    if o.rec_set != 0 || o.rec_clr != 0 {
        sys::mount_setattr_recursive(mounted.as_fd(), o.rec_set, o.rec_clr)
            .map_err(|e| anyhow!("mount_setattr {}: {e}", dest.display()))?;
    }
    Ok(())
}

/// A `cgroup` mount shows the container its own cgroup: with a cgroup namespace on v2 a fresh
/// cgroup2 mount does that by itself; otherwise the container's directories are bound from the
/// host (under a tmpfs, one per hierarchy, on v1), so the host's tree stays hidden. Returns the
/// fd of the mount at `dest`.
fn mount_cgroup(ctx: &MountContext, dest: &Path, flags: MsFlags) -> Result<OwnedFd> {
    let target = create_in_root(ctx.root, dest, false)?;
    // CVE-2023-25809: a rootless container bound the runtime's cgroups (it has no cgroup of
    // its own, or no cgroup namespace) must not write them, whatever its config says; a
    // fresh cgroup2 mount in its own cgroup namespace shows only what it may write anyway.
    let flags = if ctx.rootless && !(ctx.cgroup_v2 && ctx.new_cgroupns) {
        flags | MsFlags::MS_RDONLY
    } else {
        flags
    };
    let attrs = mount_attrs(flags, MsFlags::empty());
    if ctx.cgroup_v2 {
        if ctx.new_cgroupns {
            return new_mount_onto("cgroup2", "cgroup2", &[], attrs.0, target.as_fd())
                .map_err(|(e, _)| anyhow!("mount cgroup2 on {}: {e}", dest.display()));
        }
        let (_, host) = ctx
            .cgroup_sources
            .first()
            .ok_or_else(|| anyhow!("no cgroup to mount on {}", dest.display()))?;
        return bind_onto(
            BindSource::Path(host),
            target.as_fd(),
            false,
            attrs,
            ctx.in_userns,
        )
        .with_context(|| format!("bind {} on {}", host.display(), dest.display()));
    }
    // The tmpfs stays writable until its mount points are made, then takes the flags.
    let rw = attrs.0 & !sys::MOUNT_ATTR_RDONLY;
    let tmpfs = new_mount_onto(
        "tmpfs",
        "tmpfs",
        &["mode=755".to_string()],
        rw,
        target.as_fd(),
    )
    .map_err(|(e, _)| anyhow!("mount tmpfs on {}: {e}", dest.display()))?;
    for (name, host) in ctx.cgroup_sources {
        let sub = dest.join(name);
        // Inside the tmpfs just made, through its fd: nothing of the image is below it.
        match nix::sys::stat::mkdirat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&tmpfs)),
            name.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("create {}: {e}", sub.display()),
        }
        let t = sys::openat(
            tmpfs.as_fd(),
            name.as_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("open {}: {e}", sub.display()))?;
        bind_onto(
            BindSource::Path(host),
            t.as_fd(),
            false,
            attrs,
            ctx.in_userns,
        )
        .with_context(|| format!("bind {} on {}", host.display(), sub.display()))?;
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        sys::mount_setattr(tmpfs.as_fd(), false, sys::MOUNT_ATTR_RDONLY, 0, 0)
            .map_err(|e| anyhow!("make {} read-only: {e}", dest.display()))?;
    }
    Ok(tmpfs)
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
