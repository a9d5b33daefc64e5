//! The container's root filesystem, built in its new mount namespace: propagation, the
//! `mounts` entries, /dev, masked and read-only paths, then pivot_root (or MS_MOVE+chroot).
//!
//! Every destination is resolved inside the rootfs by the kernel and mounted through its fd,
//! never through a path string a container could redirect with a symlink.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::Spec;

mod copyup;
pub mod devices;
pub mod mount;
mod resolve;

pub use mount::{check_mount, propagation_flag};
pub use resolve::{create_in_root, open_in_root};

pub fn is_procfs(fd: BorrowedFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .map(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        .unwrap_or(false)
}

/// Fails unless `fd` is on procfs: writes meant for the kernel must not land in a file a
/// container planted (CVE-2019-16884 and the 2025 procfs redirection class).
pub fn ensure_procfs(fd: BorrowedFd) -> Result<()> {
    if is_procfs(fd) {
        Ok(())
    } else {
        bail!("not on procfs: refusing to write through it")
    }
}

pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_userns: bool,
    pub cgroup_sources: &'a [(String, PathBuf)],
    pub cgroup_v2: bool,
    pub new_cgroupns: bool,
    /// Rootless mode: cgroup mounts are read-only (CVE-2023-25809).
    pub rootless: bool,
    /// Bind sources opened before the user namespace, by mount index (empty: none were).
    pub bind_sources: &'a [Option<OwnedFd>],
    /// Called before the first `cgroup` mount: the container must be in its cgroup (and
    /// namespace) by then.
    pub before_cgroup_mount: &'a mut dyn FnMut() -> Result<()>,
}

/// Runs in the container's mount namespace, before pivot_root: every mount, device and path
/// rule. Returns an O_PATH fd of the rootfs, ready for `pivot_into`.
pub fn prepare(s: &mut Setup) -> Result<OwnedFd> {
    let linux = s.spec.linux().as_ref();
    // The container's mounts must never propagate back to the host. By default it still sees
    // new host mounts (slave). A shared root is made shared only after pivot_root, which
    // refuses shared mounts (see `finish`).
    let prop = match rootfs_propagation(s.spec) {
        Some(p) if !p.contains(MsFlags::MS_SHARED) => p,
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .map_err(|e| anyhow!("set propagation of / to {prop:?}: {e}"))?;
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| anyhow!("bind rootfs {}: {e}", s.rootfs.display()))?;
    let root = crate::sys::open(s.rootfs, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
        .with_context(|| format!("open rootfs {}", s.rootfs.display()))?;

    let ctx = mount::MountContext {
        root: root.as_fd(),
        bundle: s.bundle,
        in_userns: s.in_userns,
        cgroup_sources: s.cgroup_sources,
        cgroup_v2: s.cgroup_v2,
        new_cgroupns: s.new_cgroupns,
        rootless: s.rootless,
        mount_label: linux
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty()),
    };
    let mounts = s.spec.mounts().as_deref().unwrap_or(&[]);
    let is_dev = |m: &oci_spec::runtime::Mount| m.destination() == Path::new("/dev");
    let has_option = |m: &oci_spec::runtime::Mount, names: &[&str]| {
        m.options()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|o| names.contains(&o.as_str()))
    };
    let dev_is_bind = mounts.iter().any(|m| is_dev(m) && mount::is_bind(m));
    // A read-only /dev (not a bind) is mounted writable and made read-only once its
    // devices, links and submounts (/dev/pts, /dev/shm, ...) are in place, as runc does:
    // their mount points and nodes must be made in it first.
    let mut dev_readonly = false;
    for (i, m) in mounts.iter().enumerate() {
        if matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2")) {
            (s.before_cgroup_mount)()?;
        }
        let writable;
        let m = if is_dev(m) && !dev_is_bind && has_option(m, &["ro"]) {
            dev_readonly = true;
            let mut w = m.clone();
            w.set_options(
                m.options()
                    .as_ref()
                    .map(|o| o.iter().filter(|o| o.as_str() != "ro").cloned().collect()),
            );
            writable = w;
            &writable
        } else {
            m
        };
        let source = s
            .bind_sources
            .get(i)
            .and_then(|f| f.as_ref())
            .map(|f| f.as_fd());
        mount::mount_entry(&ctx, m, source)
            .with_context(|| format!("mounts[{i}] {}", m.destination().display()))?;
    }
    if !dev_is_bind {
        let devs = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
        devices::create_devices(root.as_fd(), devs, s.in_userns)?;
        devices::create_links(root.as_fd())?;
    }
    if dev_readonly {
        // The mount on /dev itself only: its submounts keep their own flags.
        let dev = open_in_root(root.as_fd(), Path::new("/dev"), OFlag::O_PATH)
            .map_err(|e| anyhow!("mounts: open /dev: {e}"))?;
        crate::sys::mount_setattr(dev.as_fd(), false, crate::sys::MOUNT_ATTR_RDONLY, 0, 0)
            .map_err(|e| anyhow!("mounts: make /dev read-only: {e}"))?;
    }
    if let Some(p) = s.spec.process() {
        // runc creates a missing cwd; ignore failure here (a read-only image, say): the chdir
        // later reports it with the field's name.
        let _ = create_in_root(root.as_fd(), p.cwd(), false);
    }
    mask_paths(
        root.as_fd(),
        linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[]),
    )?;
    readonly_paths(
        root.as_fd(),
        linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[]),
    )?;
    Ok(root)
}

/// `linux.maskedPaths`: a read-only empty tmpfs over a directory, the real /dev/null over a file.
fn mask_paths(root: BorrowedFd, paths: &[String]) -> Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let null = devices::real_dev_null()?;
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("linux.maskedPaths {p}: open: {e}"),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).with_context(|| format!("stat {p}"))?;
        let r = if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            crate::sys::new_mount("tmpfs", "tmpfs", &[], crate::sys::MOUNT_ATTR_RDONLY)
                .map_err(|(e, _)| e)
                .and_then(|m| crate::sys::move_mount(m.as_fd(), fd.as_fd()))
                .map_err(|e| anyhow!("linux.maskedPaths {p}: mask: {e}"))
        } else {
            mount::bind_onto(
                mount::BindSource::Fd(null.as_fd()),
                fd.as_fd(),
                false,
                (0, 0),
                false,
            )
            .map(drop)
            .with_context(|| format!("linux.maskedPaths {p}: mask"))
        };
        r?;
    }
    Ok(())
}

/// `linux.readonlyPaths`: each bound on itself, read-only from the moment it is attached.
fn readonly_paths(root: BorrowedFd, paths: &[String]) -> Result<()> {
    for p in paths {
        let fd = match open_in_root(root, Path::new(p), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("linux.readonlyPaths {p}: open: {e}"),
        };
        mount::bind_onto(
            mount::BindSource::Fd(fd.as_fd()),
            fd.as_fd(),
            true,
            (crate::sys::MOUNT_ATTR_RDONLY, 0),
            false,
        )
        .with_context(|| format!("linux.readonlyPaths {p}"))?;
    }
    Ok(())
}

/// Makes the rootfs the process's root. pivot_root(".", ".") stacks the old root on the new
/// one; it is then detached, so no path leads back to the host's tree.
pub fn pivot_into(root: BorrowedFd, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir to rootfs")?;
    if no_pivot {
        hide_host_kernel_filesystems(root)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .map_err(|e| anyhow!("move rootfs to /: {e}"))?;
        nix::unistd::chroot(".").context("chroot")?;
    } else {
        let old = crate::sys::open("/", OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty())
            .context("open old root")?;
        nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        nix::unistd::fchdir(old.as_raw_fd()).context("chdir to old root")?;
        // Detaching must not propagate the unmount to the host's mounts.
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| anyhow!("make old root a slave: {e}"))?;
        umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// Before a `--no-pivot` chroot: detaches every procfs and sysfs of the mount namespace that
/// is not the container's own (or covers it with an empty read-only tmpfs if it cannot be
/// detached). Under chroot the host's mounts stay in the namespace, and the kernel lets a
/// process with CAP_SYS_ADMIN in the container's user namespace mount a fresh procfs or
/// sysfs whenever a fully visible one is in its mount namespace: with the host's /proc
/// there, a fresh /proc would come without the container's masked and read-only paths.
/// (runc does the same before its MS_MOVE.) The namespace's mounts are slaves by now, so
/// nothing here reaches the host.
fn hide_host_kernel_filesystems(root: BorrowedFd) -> Result<()> {
    let rootfs = std::fs::read_link(crate::sys::fd_path(root)).context("read the rootfs path")?;
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let mut targets: Vec<std::path::PathBuf> = mountinfo
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(sep + 1)?;
            let point = std::path::PathBuf::from(crate::cgroups::unescape(fields.get(4)?));
            (matches!(*fstype, "proc" | "sysfs") && !point.starts_with(&rootfs)).then_some(point)
        })
        .collect();
    // Shallowest first: detaching /proc takes /proc/sys/fs/binfmt_misc along with it.
    targets.sort_by_key(|p| p.components().count());
    for t in &targets {
        match umount2(t, MntFlags::MNT_DETACH) {
            // Gone with a parent detached before it, or no longer a mount point.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => {
                mount(
                    Some("tmpfs"),
                    t,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("size=0"),
                )
                .map_err(|m| {
                    anyhow!("--no-pivot: hide {}: detach: {e}; cover: {m}", t.display())
                })?;
            }
        }
    }
    Ok(())
}

/// Without a mount namespace: only chroot into the rootfs (no pivot_root, no mount: the
/// mount table is the host's).
pub fn chroot_into(root: BorrowedFd) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir to rootfs")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

fn rootfs_propagation(spec: &Spec) -> Option<MsFlags> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
        .map(|p| propagation_flag(p).expect("checked by bundle"))
}

/// After pivot_root: a shared `linux.rootfsPropagation`, and `root.readonly`.
pub fn finish(spec: &Spec) -> Result<()> {
    if let Some(p) = rootfs_propagation(spec).filter(|p| p.contains(MsFlags::MS_SHARED)) {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .map_err(|e| anyhow!("linux.rootfsPropagation: make / shared: {e}"))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        // On the root mount itself, through its fd: after pivot_root a path such as
        // /proc/self/fd/N would resolve through the container's own /proc, or the image.
        let root = crate::sys::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        crate::sys::mount_setattr(root.as_fd(), false, crate::sys::MOUNT_ATTR_RDONLY, 0, 0)
            .map_err(|e| anyhow!("root.readonly: make the root read-only: {e}"))?;
    }
    Ok(())
}
