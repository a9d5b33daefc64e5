//! /dev: the default devices every container gets, `linux.devices`, and the standard links.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::create_in_root;

struct Dev<'a> {
    path: &'a Path,
    kind: LinuxDeviceType,
    major: i64,
    minor: i64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices the runtime-spec requires in every container (config-linux.md, "Default
/// Devices").
const DEFAULTS: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub fn create_devices(root: BorrowedFd, devices: &[LinuxDevice], in_userns: bool) -> Result<()> {
    for (path, major, minor) in DEFAULTS {
        if devices.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        create(
            root,
            &Dev {
                path: Path::new(path),
                kind: LinuxDeviceType::C,
                major: *major,
                minor: *minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
            in_userns,
        )
        .with_context(|| format!("default device {path}"))?;
    }
    for (i, d) in devices.iter().enumerate() {
        create(
            root,
            &Dev {
                path: d.path(),
                kind: d.typ(),
                major: d.major(),
                minor: d.minor(),
                mode: d.file_mode().unwrap_or(0o666),
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            },
            in_userns,
        )
        .with_context(|| format!("linux.devices[{i}] {}", d.path().display()))?;
    }
    Ok(())
}

fn create(root: BorrowedFd, d: &Dev, in_userns: bool) -> Result<()> {
    let parent = d.path.parent().unwrap_or(Path::new("/dev"));
    let name = d.path.file_name().ok_or_else(|| anyhow!("no file name"))?;
    let pfd = create_in_root(root, parent, false)?;
    let dir = crate::sys::openat(
        pfd.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        Mode::empty(),
    )?;
    if in_userns {
        // mknod is not allowed in a user namespace: bind the host's node instead.
        let target = create_in_root(root, d.path, true)?;
        return super::mount::bind_onto(
            super::mount::BindSource::Path(d.path),
            target.as_fd(),
            false,
            (0, 0),
            true,
        )
        .map(drop)
        .with_context(|| format!("bind host {}", d.path.display()));
    }
    let kind = match d.kind {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(anyhow!("type \"a\" is not a device")),
    };
    // A file already there (from the image) is replaced, as runc does.
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!("remove existing {}: {e}", d.path.display())),
    }
    let dev = makedev(d.major as u64, d.minor as u64);
    mknodat(
        Some(dir.as_raw_fd()),
        name,
        kind,
        Mode::from_bits_truncate(d.mode & 0o7777),
        dev,
    )
    .map_err(|e| anyhow!("mknod: {e}"))?;
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(d.uid.into()),
        Some(d.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| anyhow!("chown: {e}"))?;
    Ok(())
}

/// /dev/fd, /dev/std{in,out,err}, /dev/ptmx -> pts/ptmx, and /dev/core when /proc/kcore exists.
pub fn create_links(root: BorrowedFd) -> Result<()> {
    let dev = create_in_root(root, Path::new("/dev"), false)?;
    let dir = crate::sys::openat(
        dev.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY,
        Mode::empty(),
    )?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        if name == "ptmx" {
            let _ = nix::unistd::unlinkat(
                Some(dir.as_raw_fd()),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(anyhow!("symlink /dev/{name} -> {target}: {e}")),
        }
    }
    Ok(())
}

/// Binds the terminal's slave onto /dev/console, by fd: this runs after pivot_root, where a
/// path through /proc/self/fd would resolve in the container's own /proc.
pub fn mount_console(root: BorrowedFd, slave: &Path) -> Result<()> {
    let target = create_in_root(root, Path::new("/dev/console"), true)?;
    let pty = super::resolve::open_in_root(root, slave, OFlag::O_PATH)
        .map_err(|e| anyhow!("open {}: {e}", slave.display()))?;
    super::mount::bind_onto(
        super::mount::BindSource::Fd(pty.as_fd()),
        target.as_fd(),
        false,
        (0, 0),
        false,
    )
    .map(drop)
    .with_context(|| format!("bind {} on /dev/console", slave.display()))
}

/// Opens the host's /dev/null and checks it is the real device (char 1:3), so masking never
/// binds a file someone planted there (CVE-2025-31133).
pub fn real_dev_null() -> Result<std::os::fd::OwnedFd> {
    let fd =
        crate::sys::open("/dev/null", OFlag::O_PATH, Mode::empty()).context("open /dev/null")?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).context("stat /dev/null")?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
        || st.st_rdev != makedev(1, 3)
    {
        return Err(anyhow!("/dev/null is not the null device (char 1:3)"));
    }
    Ok(fd)
}
