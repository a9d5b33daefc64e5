//! The last steps of every container process, init's and exec's alike: from the process's
//! own attributes (rlimits, scheduling) through the user, capabilities and seccomp, to execve.
//! Run inside the container, after its root is in place.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Linux, Process};

use super::sync;
use crate::security::seccomp::Filter;
use crate::{process, sched, sys};

/// A process that only has its execve left.
pub struct Prepared {
    exe: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Load seccomp right before execve (no_new_privs set, no listener to pass on).
    late_seccomp: bool,
}

/// Applies the process's attributes and becomes its user. A seccomp filter with a notify
/// listener hands the listener to the runtime over `sync`. `runtime_exe` is the runtime's
/// binary (device, inode), refused as the program (CVE-2019-5736).
pub fn prepare(
    proc_: &Process,
    linux: Option<&Linux>,
    seccomp: Option<&Filter>,
    sync: BorrowedFd,
    runtime_exe: (u64, u64),
) -> Result<Prepared> {
    process::apply_rlimits(proc_.rlimits().as_deref().unwrap_or(&[]))?;
    // While the process still holds its capabilities (a real-time policy needs CAP_SYS_NICE).
    if let Some(p) = linux.and_then(|x| x.personality().as_ref()) {
        sched::set_personality(p)?;
    }
    if let Some(s) = proc_.scheduler() {
        sched::set_scheduler(s)?;
    }
    if let Some(io) = proc_.io_priority() {
        sched::set_io_priority(io)?;
    }
    if let Some(m) = linux.and_then(|x| x.memory_policy().as_ref()) {
        sched::set_memory_policy(m)?;
    }
    if let Some(a) = proc_.exec_cpu_affinity() {
        sched::set_cpu_affinity(a)?;
    }
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    // The kernel takes a filter from a process with no_new_privs or with CAP_SYS_ADMIN.
    // Without no_new_privs that means now, before the capabilities go (as runc); with it,
    // as late as possible: right before execve, or before the runtime is told "ready" when
    // it must pass a notify listener on.
    let notify = seccomp.is_some_and(|f| f.uses_notify());
    let load_seccomp = || -> Result<()> {
        if let Some(f) = seccomp {
            if let Some(fd) = f.load().context("linux.seccomp: load the filter")? {
                sync::send_fd(sync, "seccomp", fd.as_fd())?;
            }
        }
        Ok(())
    };
    if !nnp {
        load_seccomp()?;
    }
    let caps = proc_.capabilities().as_ref();
    process::drop_bounding(caps)?;
    // As runc: chdir while still privileged, so a cwd the user may not search (a 0700
    // directory of root's) still works; where root is refused and the user is not (a
    // root-squashed network filesystem), again as the user.
    let cwd = proc_.cwd();
    let chdir_err = |e| anyhow!("process.cwd: chdir {}: {e}", cwd.display());
    let chdir_as_user = match nix::unistd::chdir(cwd) {
        Ok(()) => false,
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => true,
        Err(e) => return Err(chdir_err(e)),
    };
    let setgroups_allowed = true;
    process::set_user(proc_, setgroups_allowed)?;
    if chdir_as_user {
        nix::unistd::chdir(cwd).map_err(chdir_err)?;
    }
    // CVE-2024-21626: a cwd reached through an fd the runtime still holds would lie outside
    // the container's root; the kernel then reports it as unreachable.
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => {}
        _ => bail!(
            "process.cwd: {} resolves outside the container's root",
            cwd.display()
        ),
    }
    process::set_capabilities(caps)?;
    let umask = proc_.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask & 0o777));
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("process.noNewPrivileges")?;
    }
    let env = process::environment(proc_);
    let args = proc_.args().as_deref().expect("checked at load");
    let exe = process::find_executable(&args[0], &env)?;
    process::refuse_runtime_exe(&exe, runtime_exe)?;
    let exe = CString::new(exe.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("process.args[0] contains a NUL byte"))?;
    let argv = process::cstrings(args)?;
    let envp = process::cstrings(&env)?;
    sys::reset_signals();
    if nnp && notify {
        load_seccomp()?;
    }
    Ok(Prepared {
        exe,
        argv,
        envp,
        late_seccomp: nnp && !notify,
    })
}

/// Passes on the preserved fds (3 .. 3+n, but never one of the runtime's own `internal`
/// ones), closes every other fd at exec, loads a late seccomp filter and execs. Returns only
/// on failure.
pub fn exec(
    p: &Prepared,
    seccomp: Option<&Filter>,
    preserve_fds: u32,
    internal: &[RawFd],
) -> anyhow::Error {
    for fd in 3..3 + preserve_fds as RawFd {
        if !internal.contains(&fd) {
            let _ = sys::clear_cloexec(fd);
        }
    }
    if let Err(e) = cloexec_from(3 + preserve_fds) {
        return e;
    }
    if p.late_seccomp {
        if let Some(f) = seccomp {
            // Nothing may run between this and execve: the filter may forbid it.
            if let Err(e) = f.load() {
                return e.context("linux.seccomp: load the filter");
            }
        }
    }
    let e = nix::unistd::execve(&p.exe, &p.argv, &p.envp).unwrap_err();
    anyhow!("exec {:?}: {e}", p.argv[0])
}

/// Every fd from `first` up closes at execve. close_range first (one syscall); a seccomp
/// profile written before Linux 5.9 denies it (EPERM) and an old kernel lacks it (ENOSYS):
/// then, as runc, F_SETFD on each fd /proc/self/fd lists (checked to be procfs, so an image
/// cannot hide an fd behind a planted directory), or on every number below the hard
/// RLIMIT_NOFILE when no procfs is there.
fn cloexec_from(first: u32) -> Result<()> {
    use nix::errno::Errno;
    match sys::cloexec_from(first) {
        Ok(()) => return Ok(()),
        Err(Errno::EPERM | Errno::ENOSYS) => {}
        Err(e) => bail!("mark fds close-on-exec: close_range: {e}"),
    }
    let first = first as RawFd;
    if let Ok(fd) = sys::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    ) {
        if crate::rootfs::is_procfs(fd.as_fd()) {
            let own = fd.as_raw_fd();
            // The Dir owns the fd from here and closes it.
            let fds: Vec<RawFd> = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
                .map_err(|e| anyhow!("mark fds close-on-exec: read /proc/self/fd: {e}"))?
                .iter()
                .filter_map(|e| e.ok()?.file_name().to_str().ok()?.parse().ok())
                .filter(|&fd| fd >= first && fd != own)
                .collect();
            for fd in fds {
                sys::set_cloexec(fd)
                    .map_err(|e| anyhow!("mark fds close-on-exec: fd {fd}: {e}"))?;
            }
            return Ok(());
        }
    }
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .context("mark fds close-on-exec: getrlimit(RLIMIT_NOFILE)")?;
    let last = hard.min(i32::MAX as u64) as RawFd;
    for fd in first..last {
        match sys::set_cloexec(fd) {
            Ok(()) | Err(Errno::EBADF) => {}
            Err(e) => bail!("mark fds close-on-exec: fd {fd}: {e}"),
        }
    }
    Ok(())
}
