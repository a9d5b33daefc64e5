//! The seccomp(2) calls berth makes itself instead of through libseccomp: loading a BPF program
//! (compiled now or read from the cache) and probing which filter flags the kernel knows.
//! Each `unsafe` is one system call on memory that outlives it.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::errno::Errno;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS in linux/bpf_common.h).
pub const BPF_MAXINSNS: usize = 4096;

/// Flags the spec can ask for, as the kernel numbers them.
pub const FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
pub const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
pub const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
/// Flags berth adds itself when the filter has SCMP_ACT_NOTIFY rules.
const FLAG_NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
pub const FLAG_TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): the raw return value (0, a listener fd, or
/// with TSYNC the id of a thread that could not be synchronized).
fn set_mode_filter(prog: &[libc::sock_filter], flags: u32) -> Result<libc::c_long, Errno> {
    let len = u16::try_from(prog.len()).map_err(|_| Errno::EINVAL)?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer (it copies the program in).
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` and the `prog` slice it points at are live for the whole call; the
    // kernel copies `len` instructions from it and keeps no reference afterwards.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    Errno::result(r)
}

/// What loading a filter gave back.
pub enum Loaded {
    Plain,
    Listener(OwnedFd),
    /// TSYNC failed for this thread id (the filter was not loaded).
    TsyncFailed(libc::c_long),
}

/// Installs `prog` on the calling thread. With `notify`, asks the kernel for the listener fd
/// (SECCOMP_FILTER_FLAG_NEW_LISTENER; the fd is close-on-exec).
///
/// Allocation-free, so it can run in a child forked from a multithreaded process.
pub fn load(prog: &[libc::sock_filter], flags: u32, notify: bool) -> Result<Loaded, Errno> {
    let mut flags = flags;
    if notify {
        flags |= FLAG_NEW_LISTENER;
        // TSYNC reports a failed thread through the return value, which NEW_LISTENER needs
        // for the fd: the kernel wants TSYNC_ESRCH to make that failure an errno instead.
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }
    let r = set_mode_filter(prog, flags)?;
    if notify {
        let fd = i32::try_from(r).map_err(|_| Errno::EBADF)?;
        // SAFETY: with NEW_LISTENER a successful seccomp() returns a new fd that nothing else
        // in this process owns.
        Ok(Loaded::Listener(unsafe { OwnedFd::from_raw_fd(fd) }))
    } else if r > 0 {
        Ok(Loaded::TsyncFailed(r))
    } else {
        Ok(Loaded::Plain)
    }
}

/// Whether the kernel knows filter flag `flag`. The kernel checks flags before it reads the
/// program, so a NULL program gives EFAULT when the flag is known and EINVAL when it is not,
/// without loading anything (the probe libseccomp itself uses).
pub fn flag_supported(flag: u32) -> bool {
    // WAIT_KILLABLE_RECV is refused on its own: it only means something with a listener.
    let flags = if flag == FLAG_WAIT_KILLABLE_RECV {
        flag | FLAG_NEW_LISTENER
    } else {
        flag
    };
    // SAFETY: the NULL program pointer is only handed to the kernel, whose copy_from_user
    // fails with EFAULT; no memory of ours is read or written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r == -1 && Errno::last() == Errno::EFAULT
}
