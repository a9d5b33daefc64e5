//! The runtime's own binary, kept out of the container's reach (CVE-2019-5736).
//!
//! berth forks its container processes without a second exec, so until each of them execs
//! the container's program its /proc/self/exe is the binary berth runs from. If that is the
//! host's writable file, a container that gets a process to run it (a `#!/proc/self/exe`
//! script, an exec'd binary swapped at the right moment, a process of another container
//! opening /proc/PID/exe) can reopen it for writing and replace the runtime on the host. No
//! path check can close that. So the verbs that start container processes first re-execute
//! berth from a read-only view of itself, as crun does: a detached bind mount of the binary
//! (open_tree), made read-only (mount_setattr), executed through its fd (execveat). Every
//! process they fork then has a /proc/self/exe that cannot be opened for writing (EROFS).
//! Where a detached mount is not allowed (no CAP_SYS_ADMIN), a sealed memfd copy serves,
//! unless no container process could write the binary anyway: berth runs as an ordinary
//! user of the host's user namespace (its containers are that user or its sub-ids) and
//! the binary is root's, writable by no group or other. Copying a 5 MB binary at every
//! create, run and exec cost a rootless `run` about 3 ms (issue 16).

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use anyhow::{anyhow, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, OFlag, SealFlag};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

/// Whether this command line may start container processes: `create`, `run` or `exec`
/// anywhere in it. A false positive (an id or flag value spelled so) costs one exec; a
/// false negative would be a hole, so this errs on the side of the exec.
pub fn starts_container_processes(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .any(|a| matches!(a.as_bytes(), b"create" | b"run" | b"exec"))
}

/// Re-executes berth from a read-only view of its binary unless it already runs from one (a
/// binary on a read-only mount, the view itself after the re-exec, or a sealed memfd).
/// Returns only when nothing needs doing; otherwise execs or fails.
pub fn ensure_read_only(args: &[OsString]) -> Result<()> {
    let exe = crate::sys::open("/proc/self/exe", OFlag::O_RDONLY, Mode::empty())
        .context("open /proc/self/exe")?;
    let on_ro_mount = fstatvfs(exe.as_fd())
        .map(|s| s.flags().contains(FsFlags::ST_RDONLY))
        .context("statvfs /proc/self/exe")?;
    if on_ro_mount || is_sealed(&exe) || beyond_containers_reach(&exe) {
        return Ok(());
    }
    let view = match read_only_mount(&exe) {
        Ok(fd) => fd,
        Err(_) => sealed_copy(&exe).context("make a sealed copy of the runtime's binary")?,
    };
    drop(exe);
    let argv = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("an argument contains a NUL byte"))?;
    let envp = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("an environment variable contains a NUL byte"))?;
    let e = nix::unistd::execveat(
        Some(view.as_raw_fd()),
        c"",
        &argv,
        &envp,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(anyhow!(
        "re-execute berth from a read-only view of itself: {e}"
    ))
}

/// Whether the binary is out of reach of every process a container of this berth can have:
/// berth is an ordinary user in the host's user namespace (so no container process holds
/// a capability over host files, and each runs as that user or one of its sub-ids, none of
/// them root), and the file is root's with no group or other write bit (so none of them
/// may write it or change its mode).
fn beyond_containers_reach(exe: &OwnedFd) -> bool {
    if nix::unistd::geteuid().is_root() || crate::rootless::in_user_namespace() {
        return false;
    }
    nix::sys::stat::fstat(exe.as_raw_fd()).is_ok_and(|st| st.st_uid == 0 && st.st_mode & 0o022 == 0)
}

/// A detached, read-only bind mount of the binary.
fn read_only_mount(exe: &OwnedFd) -> nix::Result<OwnedFd> {
    let view = crate::sys::clone_mount(exe.as_fd(), false)?;
    crate::sys::mount_setattr(view.as_fd(), false, crate::sys::MOUNT_ATTR_RDONLY, 0, 0)?;
    Ok(view)
}

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

fn is_sealed(exe: &OwnedFd) -> bool {
    fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|s| SealFlag::from_bits_truncate(s).contains(SEALS))
}

/// A memfd holding a copy of the binary, sealed against any write.
fn sealed_copy(exe: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let memfd = memfd_create(
        c"berth",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let mut from = std::fs::File::from(exe.try_clone()?);
    let mut to = std::fs::File::from(memfd);
    std::io::copy(&mut from, &mut to).context("copy the binary")?;
    let memfd = OwnedFd::from(to);
    fcntl(memfd.as_raw_fd(), FcntlArg::F_ADD_SEALS(SEALS)).context("seal the copy")?;
    Ok(memfd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn verbs_that_start_processes() {
        assert!(starts_container_processes(&args(&["berth", "create", "x"])));
        assert!(starts_container_processes(&args(&[
            "berth", "--root", "/r", "run", "x"
        ])));
        assert!(starts_container_processes(&args(&[
            "berth", "exec", "x", "sh"
        ])));
        assert!(!starts_container_processes(&args(&["berth", "state", "x"])));
        assert!(!starts_container_processes(&args(&["create"])));
    }

    #[test]
    fn host_root_never_runs_its_binary_in_place() {
        // The tests run as the host's root, whose containers may hold capabilities over
        // host files: only a read-only view or a sealed copy will do.
        let exe = crate::sys::open("/proc/self/exe", OFlag::O_RDONLY, Mode::empty()).unwrap();
        assert!(!beyond_containers_reach(&exe));
    }

    #[test]
    fn sealed_copy_refuses_writes() {
        let exe = crate::sys::open("/proc/self/exe", OFlag::O_RDONLY, Mode::empty()).unwrap();
        let copy = sealed_copy(&exe).unwrap();
        assert!(is_sealed(&copy));
        let r = nix::unistd::write(&copy, b"x");
        assert_eq!(r, Err(nix::errno::Errno::EPERM));
    }

    #[test]
    fn read_only_view_refuses_writes() {
        let f = std::env::temp_dir().join(format!("berth-exe-view-{}", std::process::id()));
        std::fs::write(&f, b"binary").unwrap();
        let file = crate::sys::open(&f, OFlag::O_RDONLY, Mode::empty()).unwrap();
        let view = read_only_mount(&file).unwrap();
        assert!(fstatvfs(view.as_fd())
            .unwrap()
            .flags()
            .contains(FsFlags::ST_RDONLY));
        // Reopening for writing, as an attacker would through /proc/PID/exe: the view refuses,
        // the file itself (the control) does not.
        let reopen = |fd: &OwnedFd| {
            let path = crate::sys::fd_path(fd.as_fd());
            nix::fcntl::open(path.as_str(), OFlag::O_WRONLY, Mode::empty()).map(drop)
        };
        assert_eq!(reopen(&view), Err(nix::errno::Errno::EROFS));
        assert_eq!(reopen(&file), Ok(()));
        std::fs::remove_file(&f).unwrap();
    }
}
