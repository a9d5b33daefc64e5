//! Small wrappers for the few system calls that need `unsafe` or that nix does not model.
//! Each keeps its `unsafe` to one call with the reason it is sound.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::ForkResult;

/// fork(2).
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: berth never starts a thread (DEVELOPERS.md: "Start no thread before a fork"), so
    // the child is a full copy of a single-threaded process: no lock can be held by a thread
    // that does not exist in the child, and allocation in the child is safe.
    unsafe { nix::unistd::fork() }
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): every fd from `first` up closes at execve,
/// whoever opened it (CVE-2024-21626: no runtime fd may reach the container).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags; its arguments are plain integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(r).map(drop)
}

/// Has `cmd`'s child mark every fd from 3 up close-on-exec right before its execve, so
/// the program gets only stdin, stdout and stderr whatever its parent held (fds from the
/// caller, --preserve-fds ones, the runtime's own).
pub fn cloexec_from_at_spawn(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before execve and makes only
    // async-signal-safe system calls (close_range, getrlimit, fcntl), allocating nothing.
    // CLOEXEC rather than close: std's own error pipe (close-on-exec already) must stay open.
    unsafe {
        cmd.pre_exec(|| {
            if cloexec_from(3).is_err() {
                // Where close_range is denied (a seccomp filter) or missing: every number.
                let mut rl = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
                    rl.rlim_max.min(1 << 20) as RawFd
                } else {
                    1024
                };
                for fd in 3..max {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}

/// Sets FD_CLOEXEC on one fd (the fallback where close_range is not allowed).
pub fn set_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

/// Clears FD_CLOEXEC so that a --preserve-fds fd survives execve.
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// mount_setattr(fd, "", AT_EMPTY_PATH|AT_RECURSIVE): the recursive mount options (rro,
/// rnosuid, ...) that mount(2) cannot apply to a whole tree.
/// MOUNT_ATTR_IDMAP on the detached mount `fd` (and below it with `recursive`): its files'
/// owners are mapped through the user namespace `userns`. The mount must not be attached yet.
pub fn mount_setattr_idmap(fd: BorrowedFd, recursive: bool, userns: BorrowedFd) -> nix::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr(
        fd,
        recursive,
        &MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        },
    )
}

pub fn mount_setattr_recursive(fd: BorrowedFd, set: u64, clr: u64) -> nix::Result<()> {
    mount_setattr(fd, true, set, clr, 0)
}

/// mount_setattr(fd, "", AT_EMPTY_PATH[|AT_RECURSIVE]): changes the flags (and, when
/// `propagation` is not 0, the propagation: MS_SHARED, MS_SLAVE, ...) of the mount `fd` is
/// on, attached or not. No path is looked up: the flags land on that very mount.
pub fn mount_setattr(
    fd: BorrowedFd,
    recursive: bool,
    set: u64,
    clr: u64,
    propagation: u64,
) -> nix::Result<()> {
    setattr(
        fd,
        recursive,
        &MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation,
            userns_fd: 0,
        },
    )
}

fn setattr(fd: BorrowedFd, recursive: bool, attr: &MountAttr) -> nix::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` lives across the call
    // and its size is passed with it; the fds it names are borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(r).map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;

/// open_tree(fd, "", OPEN_TREE_CLONE|AT_EMPTY_PATH[|AT_RECURSIVE]): a detached copy of the
/// mount (and with `recursive` the mounts below it) at what `fd` refers to, a directory or a
/// file: a bind mount not yet attached anywhere, whose flags can be set before anyone sees it.
pub fn clone_mount(fd: BorrowedFd, recursive: bool) -> nix::Result<std::os::fd::OwnedFd> {
    open_tree(
        fd.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH as libc::c_uint,
        recursive,
    )
}

/// The same as `clone_mount`, for a path looked up from the caller's cwd and root.
pub fn clone_mount_at(
    path: &std::path::Path,
    recursive: bool,
) -> nix::Result<std::os::fd::OwnedFd> {
    let p =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    open_tree(libc::AT_FDCWD, &p, 0, recursive)
}

fn open_tree(
    dir: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
    recursive: bool,
) -> nix::Result<std::os::fd::OwnedFd> {
    let flags = flags
        | OPEN_TREE_CLONE
        | OPEN_TREE_CLOEXEC
        | if recursive {
            libc::AT_RECURSIVE as libc::c_uint
        } else {
            0
        };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call; the flags are
    // plain integers.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags) };
    Errno::result(r).map(|fd| owned(fd as RawFd))
}

/// move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH): attaches the detached mount `from`
/// on what `to` refers to (an O_PATH fd resolved inside the rootfs), with no path lookup.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
    // SAFETY: both paths are valid NUL-terminated empty strings; the fds are borrowed for
    // the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(r).map(drop)
}

/// A new, detached filesystem mount: fsopen(fstype), fsconfig for `source` and each of
/// `options` ("key=value" as a string, "key" as a flag), fsmount with the mount attributes
/// `attrs`. The caller attaches it with `move_mount` once it is set up.
pub fn new_mount(
    fstype: &str,
    source: &str,
    options: &[String],
    attrs: u64,
) -> Result<std::os::fd::OwnedFd, (Errno, String)> {
    use std::ffi::CString;
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let cstr = |s: &str| CString::new(s).map_err(|_| (Errno::EINVAL, s.to_string()));
    let t = cstr(fstype)?;
    // SAFETY: `t` is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) };
    let fsfd = Errno::result(r)
        .map(|fd| owned(fd as RawFd))
        .map_err(|e| (e, format!("fsopen {fstype}")))?;
    let config = |cmd: libc::c_uint, key: Option<&CString>, value: Option<&CString>| {
        // SAFETY: key and value are NULL or valid NUL-terminated strings that outlive the
        // call; the fd is borrowed for it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                cmd,
                key.map_or(std::ptr::null(), |k| k.as_ptr()),
                value.map_or(std::ptr::null(), |v| v.as_ptr()),
                0,
            )
        };
        Errno::result(r).map(drop)
    };
    let src = cstr(source)?;
    let key = cstr("source")?;
    match config(FSCONFIG_SET_STRING, Some(&key), Some(&src)) {
        // Filesystems with no source of their own (proc, sysfs...) may refuse one.
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(e) => return Err((e, format!("source={source}"))),
    }
    for o in options {
        let r = match o.split_once('=') {
            Some((k, v)) => config(FSCONFIG_SET_STRING, Some(&cstr(k)?), Some(&cstr(v)?)),
            None => config(FSCONFIG_SET_FLAG, Some(&cstr(o)?), None),
        };
        r.map_err(|e| (e, o.clone()))?;
    }
    config(FSCONFIG_CMD_CREATE, None, None).map_err(|e| (e, format!("create {fstype}")))?;
    // SAFETY: plain integer arguments; the fd is borrowed for the call.
    let r = unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    Errno::result(r)
        .map(|fd| owned(fd as RawFd))
        .map_err(|e| (e, format!("fsmount {fstype}")))
}

/// The program's arguments from the argc/argv that libc passes to `main`.
///
/// # Safety
/// `argv[0..argc]` must be valid NUL-terminated strings, as libc passes them to `main`.
#[cfg_attr(test, allow(dead_code))]
pub unsafe fn args_from(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the caller's promise: argv[0..argc] are valid C strings.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

/// What berth keeps of Rust's runtime start-up (main.rs has its own entry point):
/// - fds 0, 1 and 2 opened on /dev/null when closed, so that no file berth opens lands on
///   them (a state file taken for stdout would be written by the next print);
/// - SIGPIPE ignored, so that a write to a closed pipe is an EPIPE error berth reports,
///   not a silent death (container processes get SIG_DFL back: `reset_signals`).
#[cfg_attr(test, allow(dead_code))]
pub fn init_process() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the duration of the call; a zero
    // timeout makes it return at once.
    let polled = loop {
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
        if r != -1 || Errno::last() != Errno::EINTR {
            break r != -1;
        }
    };
    for p in &fds {
        let closed = if polled {
            p.revents & libc::POLLNVAL != 0
        } else {
            nix::fcntl::fcntl(p.fd, nix::fcntl::FcntlArg::F_GETFD) == Err(Errno::EBADF)
        };
        if closed {
            // SAFETY: a NUL-terminated path; the fd returned is the lowest free one, the
            // closed standard fd being checked, and stays open for the process's life.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != p.fd {
                std::process::abort();
            }
        }
    }
    // SAFETY: SIG_IGN runs no handler code; berth installs no SIGPIPE handler of its own.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// setdomainname(2), which nix does not wrap.
pub fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(r).map(drop)
}

/// Unblocks every signal and restores default dispositions, so the container process does not
/// inherit what the runtime set up for itself (`run` blocks signals to forward them).
pub fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let _ = SigSet::empty().thread_set_mask();
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s == Signal::SIGKILL || s == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL has no handler code to make sound.
        let _ = unsafe { sigaction(s, &dfl) };
    }
}

/// The kernel's start time of a process (field 22 of /proc/PID/stat, in clock ticks), used with
/// the pid to recognise the same process later despite pid reuse. None: no such process, or a
/// zombie (which counts as gone: it has exited).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = read_text(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start_time(&stat)
}

/// The whole of a small kernel file (procfs, cgroupfs) as text. std's `read_to_string` asks
/// the file's size first (0 for these files), then reads in steps from 32 bytes up: seven
/// system calls for a mountinfo that one read of a page-sized buffer returns (issue 16).
/// Invalid UTF-8 is replaced, as no file read here is expected to hold any.
pub fn read_text<P: AsRef<std::path::Path>>(path: P) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let len = buf.len();
        // The spare room is zeroed and read into as a plain slice: no uninitialised bytes.
        buf.resize(buf.capacity(), 0);
        match f.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                break;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(e),
        }
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn parse_stat_start_time(stat: &str) -> Option<u64> {
    // comm (field 2) may hold spaces and parentheses: fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); field 22 is rest[19].
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Sends `data` with `fd` attached (SCM_RIGHTS) to the first part; the rest of a stream
/// socket's partial send follows without it. A receiver that went away gives EPIPE, not a
/// SIGPIPE.
pub fn send_with_fd(sock: BorrowedFd, data: &[u8], fd: BorrowedFd) -> nix::Result<()> {
    use nix::sys::socket::{send, sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let fds = [fd.as_raw_fd()];
    let flags = MsgFlags::MSG_NOSIGNAL;
    let mut sent = loop {
        match sendmsg::<UnixAddr>(
            sock.as_raw_fd(),
            &[std::io::IoSlice::new(data)],
            &[ControlMessage::ScmRights(&fds)],
            flags,
            None,
        ) {
            Err(Errno::EINTR) => continue,
            r => break r?,
        }
    };
    while sent < data.len() {
        match send(sock.as_raw_fd(), &data[sent..], flags) {
            Err(Errno::EINTR) => continue,
            Ok(0) => return Err(Errno::EPIPE),
            r => sent += r?,
        }
    }
    Ok(())
}

/// One message received with `recv_with_fds`.
pub struct Received {
    /// Bytes of data, in the caller's buffer.
    pub len: usize,
    /// The fds it carried, close-on-exec and owned here.
    pub fds: Vec<std::os::fd::OwnedFd>,
    /// The kernel dropped fds that did not fit (MSG_CTRUNC).
    pub truncated: bool,
}

/// Receives one message into `buf` with up to 4 fds (more than any sender of berth's
/// passes, so a stray extra does not truncate the one that matters).
pub fn recv_with_fds(sock: BorrowedFd, buf: &mut [u8]) -> nix::Result<Received> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(list) = c {
            fds.extend(list.into_iter().map(owned));
        }
    }
    Ok(Received {
        len: msg.bytes,
        fds,
        truncated: msg.flags.contains(MsgFlags::MSG_CTRUNC),
    })
}

/// Takes ownership of an fd a system call just returned.
fn owned(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: only called with an fd freshly returned by the kernel to this process, which
    // nothing else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// pidfd_open(2): a handle on process `pid` that keeps naming that process, not whichever
/// later gets its number. Only sound for a pid that cannot have been reaped yet (the
/// caller's own child).
pub fn pidfd_open(pid: i32) -> nix::Result<std::os::fd::OwnedFd> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(r).map(|fd| owned(fd as RawFd))
}

/// pidfd_send_signal(2) of SIGKILL: kills the process behind the pidfd, and only it (ESRCH
/// once it has exited), never a process that reused its pid.
pub fn pidfd_kill(pidfd: BorrowedFd) -> nix::Result<()> {
    // SAFETY: a borrowed fd, a signal number and NULL info.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// open(2) with O_CLOEXEC always added.
pub fn open<P: ?Sized + nix::NixPath>(
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> nix::Result<std::os::fd::OwnedFd> {
    nix::fcntl::open(path, flags | nix::fcntl::OFlag::O_CLOEXEC, mode).map(owned)
}

/// openat2(2) with O_CLOEXEC always added.
pub fn openat2<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd,
    path: &P,
    flags: nix::fcntl::OFlag,
    resolve: nix::fcntl::ResolveFlag,
) -> nix::Result<std::os::fd::OwnedFd> {
    let how = nix::fcntl::OpenHow::new()
        .flags(flags | nix::fcntl::OFlag::O_CLOEXEC)
        .resolve(resolve);
    loop {
        match nix::fcntl::openat2(dir.as_raw_fd(), path, how) {
            // openat2 with RESOLVE_IN_ROOT returns EAGAIN when a rename raced the lookup.
            Err(Errno::EAGAIN) => continue,
            r => return r.map(owned),
        }
    }
}

/// openat(2) with O_CLOEXEC always added.
pub fn openat<P: ?Sized + nix::NixPath>(
    dir: BorrowedFd,
    path: &P,
    flags: nix::fcntl::OFlag,
    mode: nix::sys::stat::Mode,
) -> nix::Result<std::os::fd::OwnedFd> {
    nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        mode,
    )
    .map(owned)
}

/// The path the kernel uses to reach an fd: mounting on it mounts on the fd's file, not on
/// whatever a path string would resolve to now.
pub fn fd_path(fd: BorrowedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a session keyring of the container's own, so it
/// does not share the runtime caller's keys (runc does this unless --no-new-keyring).
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the name is a valid NUL-terminated string that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(r).map(drop)
}

/// _exit(2): leaves without running atexit handlers or flushing buffers the parent also holds
/// (the forked children share the runtime's memory image).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

/// capset(2) of effective, permitted and inheritable in one call: set one at a time, an
/// intermediate state (effective above permitted, say) is refused by the kernel.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and the two data words are the v3 layout the kernel expects and live
    // across the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    Errno::result(r).map(drop)
}

/// The kind of namespace `fd` refers to, as its CLONE_NEW* flag (ioctl NS_GET_NSTYPE, Linux
/// 4.11); ENOTTY when `fd` is not a namespace at all.
pub fn ns_type(fd: BorrowedFd) -> nix::Result<libc::c_int> {
    // _IO(0xb7, 0x3) in linux/nsfs.h.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and writes no memory; a bad fd is EBADF.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    Errno::result(r)
}

/// The whole seconds of clock `id` (CLOCK_MONOTONIC, CLOCK_BOOTTIME), None if the kernel
/// has no such clock.
pub fn clock_secs(id: libc::clockid_t) -> Option<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let r = unsafe { libc::clock_gettime(id, &mut ts) };
    (r == 0).then_some(ts.tv_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_start_time_parses_odd_comm() {
        let s = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000 10";
        assert_eq!(parse_stat_start_time(s), Some(777));
        let z = "42 (x) Z 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000 10";
        assert_eq!(parse_stat_start_time(z), None);
    }

    #[test]
    fn read_text_reads_whole_files_of_any_size() {
        // Across the first buffer's end, empty, and a procfs file whose size reads as 0.
        let dir = std::env::temp_dir().join(format!("berth-read-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, 4096, 4097, 20000] {
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let f = dir.join(format!("f{len}"));
            std::fs::write(&f, &text).unwrap();
            assert_eq!(read_text(&f).unwrap(), text, "length {len}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let maps = read_text("/proc/self/mountinfo").unwrap();
        assert!(maps.ends_with('\n') && maps.contains(" - "), "{maps}");
        assert!(read_text("/proc/self/no-such-file").is_err());
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = process_start_time(me).unwrap();
        assert_eq!(process_start_time(me), Some(a));
    }
}
