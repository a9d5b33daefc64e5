//! Terminals: the console socket (pty master sent with SCM_RIGHTS, as runc does) and the
//! foreground proxy used by `berth run` when the container has a terminal.
//!
//! INTERFACE (keep these signatures):
//! - `connect_console_socket(path) -> Result<OwnedFd>`: in the runtime, before fork.
//! - `open_pty() -> Result<(OwnedFd, PathBuf)>`: in the container after pivot_root: opens
//!   /dev/ptmx, unlocks it, returns the master (O_CLOEXEC) and the slave's path.
//! - `send_pty_master(sock, master)` / `recv_pty_master(sock)`: SCM_RIGHTS.
//! - `setup_slave_stdio(slave_path)`: setsid, open the slave, TIOCSCTTY, dup2 onto 0,1,2.
//! - `foreground_wait(pid, master: Option<OwnedFd>) -> Result<i32>`: forward signals to pid,
//!   proxy the terminal when given one (raw mode, SIGWINCH), reap pid, return the exit
//!   code (128+N on signal N) and restore the terminal.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, sigprocmask, SaFlags, SigAction, SigHandler, SigSet};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2, getpid, isatty, setsid, Pid};

/// What runc puts in the message carrying the master: the name of the file it opened.
/// Receivers (containerd, podman) only use it as a label for the fd.
const PTY_MASTER_NAME: &[u8] = b"/dev/ptmx";

/// Where a process's pty master goes.
#[derive(Default)]
pub struct Console {
    /// Given to the process's side, which sends the master over it.
    pub theirs: Option<OwnedFd>,
    /// berth's own end, when it proxies the terminal itself.
    pub ours: Option<OwnedFd>,
}

/// The console of a process that has a `terminal`: the connected --console-socket or, in the
/// `foreground` without one, a socket pair whose other end berth reads the master from.
pub fn console_for(terminal: bool, socket: Option<&Path>, foreground: bool) -> Result<Console> {
    match (terminal, socket) {
        (true, Some(path)) => Ok(Console {
            theirs: Some(
                connect_console_socket(path)
                    .with_context(|| format!("--console-socket {}", path.display()))?,
            ),
            ours: None,
        }),
        (true, None) if !foreground => {
            bail!("process.terminal: a terminal needs --console-socket (berth proxies one only in the foreground)")
        }
        (true, None) => {
            let (ours, theirs) = nix::sys::socket::socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )
            .context("socketpair for the terminal")?;
            Ok(Console {
                theirs: Some(theirs),
                ours: Some(ours),
            })
        }
        // As runc: a console socket for a process without a terminal is a caller's mistake
        // (it would wait on that socket for a pty master that never comes).
        (false, Some(path)) => bail!(
            "--console-socket {}: cannot use a console socket for a process without a terminal (process.terminal is false)",
            path.display()
        ),
        (false, None) => Ok(Console::default()),
    }
}

pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let ctx = || format!("connect to console socket {}", path.display());
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(ctx)?;
    let addr = UnixAddr::new(path).with_context(ctx)?;
    connect(sock.as_raw_fd(), &addr).with_context(ctx)?;
    Ok(sock)
}

pub fn open_pty() -> Result<(OwnedFd, PathBuf)> {
    // posix_openpt(3) is open("/dev/ptmx"); calling open directly lets the fd be O_CLOEXEC
    // from the start, which posix_openpt does not promise to honour.
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open /dev/ptmx")?;
    let master = owned(master);
    // unlockpt(3) and ptsname_r(3) are these two ioctls; glibc's ptsname_r also stat()s
    // the result, which can fail for reasons that have nothing to do with the pty.
    set_pty_lock(master.as_fd(), false).context("unlock pty (TIOCSPTLCK)")?;
    let n = pty_number(master.as_fd()).context("get pty number (TIOCGPTN)")?;
    Ok((master, PathBuf::from(format!("/dev/pts/{n}"))))
}

/// Sets the terminal's size (`process.consoleSize`) before the process or the engine sees it.
pub fn set_size(master: BorrowedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    set_winsize(master, &ws).context("set terminal size (TIOCSWINSZ)")
}

pub fn send_pty_master(sock: BorrowedFd, master: BorrowedFd) -> Result<()> {
    crate::sys::send_with_fd(sock, PTY_MASTER_NAME, master)
        .context("send pty master over console socket")
}

pub fn recv_pty_master(sock: BorrowedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    // Extra fds a sender passes are closed with `msg`.
    let mut msg = crate::sys::recv_with_fds(sock, &mut buf)
        .context("receive pty master from console socket")?;
    if msg.truncated {
        bail!("receive pty master from console socket: control message truncated");
    }
    let fds = &mut msg.fds;
    if fds.is_empty() {
        if msg.len == 0 {
            bail!("console socket closed before a pty master arrived");
        }
        bail!("console socket message carried no file descriptor");
    }
    Ok(fds.swap_remove(0))
}

pub fn setup_slave_stdio(slave: &Path) -> Result<()> {
    setsid().context("setsid")?;
    let fd = open(slave, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("open pty slave {}", slave.display()))?;
    let fd = owned(fd);
    set_controlling_tty(fd.as_fd())
        .with_context(|| format!("make {} the controlling terminal", slave.display()))?;
    for target in 0..=2 {
        if fd.as_raw_fd() == target {
            // dup2 onto itself leaves O_CLOEXEC set, so clear it by hand.
            fcntl(target, FcntlArg::F_SETFD(FdFlag::empty()))
                .with_context(|| format!("clear FD_CLOEXEC on fd {target}"))?;
        } else {
            dup2(fd.as_raw_fd(), target)
                .with_context(|| format!("dup2 pty slave onto fd {target}"))?;
        }
    }
    if fd.as_raw_fd() <= 2 {
        // It is one of the stdio fds now; dropping it would close that.
        let _ = fd.into_raw_fd();
    }
    Ok(())
}

/// Gives the terminal on stdin to the process's user, as runc does (its uid only: the group
/// stays devpts's `gid=` one, tty), so the process can reopen /dev/pts/N or /proc/self/fd/0
/// and `mesg`/`script` work after it changes user. Called while still privileged.
pub fn chown_terminal(uid: u32) -> Result<()> {
    nix::unistd::fchown(0, Some(nix::unistd::Uid::from_raw(uid)), None)
        .map_err(|e| anyhow::anyhow!("process.user.uid: chown the terminal to {uid}: {e}"))
}

/// Waits for `pid` (a child of this process) in the foreground, forwarding signals and,
/// with `master`, proxying stdin/stdout to the container's terminal.
///
/// Writes to fd 1 directly, bypassing std's stdout buffer: flush it before calling.
/// Reaps every child that exits meanwhile (berth is a subreaper, so orphans of the
/// container land here), and resets SIGCHLD to SIG_DFL: an inherited SIG_IGN would make
/// the kernel discard the container's exit status.
pub fn foreground_wait(pid: Pid, master: Option<OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    wait_loop(pid, master, stdin.as_fd(), stdout.as_fd())
}

/// How often the loop reaps without being told to. A SIGCHLD can go to another thread with
/// it unblocked (test harnesses) and be lost to the signalfd; berth itself has one thread,
/// so for it this is only a cheap safety net.
const REAP_TICK_MS: u16 = 250;
/// How long the terminal may stay quiet after the container exits before output that
/// is still buffered is considered drained (a process outside a pid namespace can keep
/// the slave open forever).
const DRAIN_QUIET_MS: u16 = 100;

fn wait_loop(
    pid: Pid,
    master: Option<OwnedFd>,
    input: BorrowedFd,
    output: BorrowedFd,
) -> Result<i32> {
    reset_sigchld().context("reset SIGCHLD to SIG_DFL")?;
    let signals = SignalBlock::new()?;
    let mut status = reap(pid)?;

    let mut term = None;
    if let Some(m) = &master {
        let flags = fcntl(m.as_raw_fd(), FcntlArg::F_GETFL).context("get pty master flags")?;
        // A full pty input buffer must not block the loop that forwards signals.
        fcntl(
            m.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .context("make pty master non-blocking")?;
        // A runtime started in the background (`berth run ... &`) leaves the terminal to
        // the foreground job: with SIGTTOU blocked the kernel would let it change the mode
        // under the shell, and restore it later under whatever then runs.
        if isatty(input.as_raw_fd()).unwrap_or(false) && in_foreground(input) {
            term = Some(RawMode::enter(input)?);
        }
        copy_winsize(input, m.as_fd());
    }

    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut out = Output {
        fd: output,
        ok: true,
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];

    while status.is_none() {
        let mut fds = vec![PollFd::new(signals.fd.as_fd(), PollFlags::POLLIN)];
        let in_idx = (stdin_open && pending.is_empty()).then(|| {
            fds.push(PollFd::new(input, PollFlags::POLLIN));
            fds.len() - 1
        });
        let m_idx = match (&master, master_open) {
            (Some(m), true) => {
                let mut ev = PollFlags::POLLIN;
                if !pending.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(m.as_fd(), ev));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        match poll(&mut fds, REAP_TICK_MS) {
            Ok(0) => {
                status = reap(pid)?;
                continue;
            }
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        let sig_ready = !ready(0).is_empty();
        let in_ready = in_idx.map(ready).unwrap_or(PollFlags::empty());
        let m_ready = m_idx.map(ready).unwrap_or(PollFlags::empty());
        drop(fds);

        if sig_ready {
            while let Some(si) = signals.fd.read_signal().context("read signalfd")? {
                let signo = si.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    if status.is_none() {
                        status = reap(pid)?;
                    }
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(input, m.as_fd());
                    }
                } else if signo == libc::SIGPIPE && si.ssi_pid == getpid().as_raw() as u32 {
                    // Our own write to a closed pipe; it says nothing to the container.
                } else {
                    match send_signal(pid, signo) {
                        // Already dead, status on its way.
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => return Err(e).with_context(|| format!("forward signal {signo}")),
                    }
                }
            }
        }

        if let (Some(m), true) = (&master, master_open) {
            if m_ready.contains(PollFlags::POLLOUT) && !pending.is_empty() {
                match nix::unistd::write(m.as_fd(), &pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    // EIO: every slave fd is closed, nobody will read this.
                    Err(_) => {
                        pending.clear();
                        master_open = false;
                    }
                }
            }
            if m_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => out.write_all(&buf[..n]),
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e).context("read pty master"),
                }
            }
        }
        if !in_ready.is_empty() {
            match nix::unistd::read(input.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 && master_open => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EOF (or a hung-up terminal): stop reading, but leave the master open so
                // the container keeps its terminal.
                _ => stdin_open = false,
            }
        }
        if !master_open {
            stdin_open = false;
        }
    }

    if let (Some(m), true) = (&master, master_open) {
        drain(m.as_fd(), &mut out, &mut buf)?;
    }
    drop(term);
    drop(signals);
    Ok(status.expect("loop ends with a status"))
}

/// Copies what the container wrote before it exited; the master reports EIO once the
/// buffer is empty and every slave fd is closed.
fn drain(master: BorrowedFd, out: &mut Output, buf: &mut [u8]) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        match poll(&mut fds, DRAIN_QUIET_MS) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll pty master"),
        }
        match nix::unistd::read(master.as_raw_fd(), buf) {
            Ok(0) | Err(Errno::EIO) => return Ok(()),
            Ok(n) => out.write_all(&buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("read pty master"),
        }
    }
}

/// The terminal output side; once writing fails (reader gone) output is discarded so the
/// container's terminal keeps being emptied and it never blocks on a full pty.
struct Output<'a> {
    fd: BorrowedFd<'a>,
    ok: bool,
}

impl Output<'_> {
    fn write_all(&mut self, mut data: &[u8]) {
        while self.ok && !data.is_empty() {
            match nix::unistd::write(self.fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    // Inherited O_NONBLOCK stdout: wait until it takes more.
                    let mut fds = [PollFd::new(self.fd, PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
                Err(_) => self.ok = false,
            }
        }
    }
}

/// Reaps every exited child; returns `pid`'s exit code if it was among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    let code = |st: WaitStatus| match st {
        WaitStatus::Exited(p, code) if p == pid => Some(code),
        WaitStatus::Signaled(p, sig, _) if p == pid => Some(128 + sig as i32),
        _ => None,
    };
    // Asking for `pid` by name first turns "not our child" into ECHILD instead of an
    // endless wait while other children are around.
    let mut found = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(st) => break code(st),
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                bail!("wait for pid {pid}: ECHILD: not a child of berth, or reaped elsewhere")
            }
            Err(e) => return Err(e).with_context(|| format!("wait for pid {pid}")),
        }
    };
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(found),
            Ok(st) => found = found.or(code(st)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("reap children"),
        }
    }
}

/// Blocks the signals the loop handles and reads them from a signalfd; dropping it
/// restores the previous mask.
struct SignalBlock {
    fd: SignalFd,
    old: SigSet,
}

impl SignalBlock {
    fn new() -> Result<SignalBlock> {
        // Everything catchable is forwarded, as runc does, except faults raised by our own
        // code: blocking those would only hide a crash.
        let mut mask = SigSet::all();
        for s in [
            Signal::SIGKILL,
            Signal::SIGSTOP,
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGFPE,
            Signal::SIGILL,
            Signal::SIGTRAP,
            Signal::SIGSYS,
        ] {
            mask.remove(s);
        }
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old)).context("block signals")?;
        match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => Ok(SignalBlock { fd, old }),
            Err(e) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(e).context("create signalfd")
            }
        }
    }
}

impl Drop for SignalBlock {
    fn drop(&mut self) {
        // Signals still pending would hit their default action (often: kill berth, losing
        // the exit code) the moment the mask is restored; the child is gone, so drop them.
        while let Ok(Some(_)) = self.fd.read_signal() {}
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// Raw mode on the user's terminal, undone on drop so every exit path (errors included)
/// gives the shell back a sane terminal.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>) -> Result<RawMode<'a>> {
        let saved = tcgetattr(fd).context("get terminal attributes of stdin")?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).context("set stdin terminal raw")?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

fn in_foreground(fd: BorrowedFd) -> bool {
    nix::unistd::tcgetpgrp(fd).is_ok_and(|pg| pg == nix::unistd::getpgrp())
}

/// The caller's terminal size (rows, columns), if stdin is a terminal that has one.
pub fn stdin_size() -> Option<(u16, u16)> {
    let stdin = std::io::stdin();
    get_winsize(stdin.as_fd())
        .ok()
        .filter(|ws| ws.ws_row > 0 && ws.ws_col > 0)
        .map(|ws| (ws.ws_row, ws.ws_col))
}

/// Best effort: a stdin that is not a terminal has no size to copy.
fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    if let Ok(ws) = get_winsize(from) {
        let _ = set_winsize(to, &ws);
    }
}

nix::ioctl_read_bad!(ioctl_tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(ioctl_tiocswinsz, libc::TIOCSWINSZ, libc::winsize);
nix::ioctl_write_int_bad!(ioctl_tiocsctty, libc::TIOCSCTTY);
nix::ioctl_write_ptr_bad!(ioctl_tiocsptlck, libc::TIOCSPTLCK, libc::c_int);
nix::ioctl_read_bad!(ioctl_tiocgptn, libc::TIOCGPTN, libc::c_uint);

fn get_winsize(fd: BorrowedFd) -> nix::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at a live,
    // correctly typed local; the fd is borrowed so it stays open for the call.
    unsafe { ioctl_tiocgwinsz(fd.as_raw_fd(), &mut ws) }?;
    Ok(ws)
}

fn set_winsize(fd: BorrowedFd, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ only reads one `winsize` from the pointer, which is a valid
    // reference for the duration of the call.
    unsafe { ioctl_tiocswinsz(fd.as_raw_fd(), ws) }?;
    Ok(())
}

fn set_controlling_tty(fd: BorrowedFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal from another session)
    // and touches no memory of ours.
    unsafe { ioctl_tiocsctty(fd.as_raw_fd(), 0) }?;
    Ok(())
}

fn set_pty_lock(fd: BorrowedFd, locked: bool) -> nix::Result<()> {
    let v: libc::c_int = locked.into();
    // SAFETY: TIOCSPTLCK reads one c_int through the pointer, which points at a live local.
    unsafe { ioctl_tiocsptlck(fd.as_raw_fd(), &v) }?;
    Ok(())
}

fn pty_number(fd: BorrowedFd) -> nix::Result<libc::c_uint> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint through the pointer, which points at a live local.
    unsafe { ioctl_tiocgptn(fd.as_raw_fd(), &mut n) }?;
    Ok(n)
}

/// Any signal number, real-time ones included (nix's `kill` only takes the named ones).
fn send_signal(pid: Pid, signo: i32) -> nix::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; it only takes two integers.
    Errno::result(unsafe { libc::kill(pid.as_raw(), signo) }).map(drop)
}

fn reset_sigchld() -> nix::Result<()> {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no handler code, so none of the async-signal-safety
    // obligations of `sigaction` apply; berth has no SIGCHLD handler to replace.
    unsafe { sigaction(Signal::SIGCHLD, &dfl) }?;
    Ok(())
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with an fd just returned by the kernel (open, recvmsg) that
    // nothing else owns, so it is closed exactly once, by the OwnedFd.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::socketpair;
    use std::fs::File;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    fn cloexec(fd: BorrowedFd) -> bool {
        let f = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).unwrap();
        FdFlag::from_bits_truncate(f).contains(FdFlag::FD_CLOEXEC)
    }

    #[test]
    fn open_pty_gives_unlocked_master() {
        let (master, slave) = open_pty().unwrap();
        assert!(cloexec(master.as_fd()));
        assert!(slave.starts_with("/dev/pts/"), "{}", slave.display());
        // Unlocked: the slave opens, and bytes written there come out of the master.
        let mut s = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&slave)
            .unwrap();
        s.write_all(b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(master.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hi\r\n");
    }

    #[test]
    fn pty_master_over_socketpair() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (master, slave) = open_pty().unwrap();
        send_pty_master(a.as_fd(), master.as_fd()).unwrap();
        let got = recv_pty_master(b.as_fd()).unwrap();
        assert!(cloexec(got.as_fd()));
        assert_ne!(got.as_raw_fd(), master.as_raw_fd());
        // Same pty: the received fd reports the same slave number.
        let n = pty_number(got.as_fd()).unwrap();
        assert_eq!(slave, PathBuf::from(format!("/dev/pts/{n}")));

        drop(a);
        let e = recv_pty_master(b.as_fd()).unwrap_err();
        assert!(format!("{e:#}").contains("closed"), "{e:#}");
    }

    #[test]
    fn console_socket_connects() {
        let dir = std::env::temp_dir().join(format!("berth-tty-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("console.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let sock = connect_console_socket(&path).unwrap();
        assert!(cloexec(sock.as_fd()));
        let (conn, _) = listener.accept().unwrap();
        let (master, _) = open_pty().unwrap();
        send_pty_master(sock.as_fd(), master.as_fd()).unwrap();
        recv_pty_master(conn.as_fd()).unwrap();
        let e = connect_console_socket(&dir.join("missing")).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // All foreground_wait cases share one test: it reaps any child and plays with the
    // signal mask, which is per-thread, so they are kept off parallel test threads.
    #[test]
    // foreground_wait is what reaps these children; clippy cannot see that.
    #[allow(clippy::zombie_processes)]
    fn foreground_wait_exit_codes_signals_and_terminal() {
        let pid = |c: &std::process::Child| Pid::from_raw(c.id() as i32);

        let c = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        assert_eq!(foreground_wait(pid(&c), None).unwrap(), 3);

        let c = Command::new("sleep").arg("100").spawn().unwrap();
        nix::sys::signal::kill(pid(&c), Signal::SIGKILL).unwrap();
        assert_eq!(foreground_wait(pid(&c), None).unwrap(), 128 + 9);

        // Forwarding: a SIGUSR1 queued for this thread reaches the child.
        let mut c = Command::new("sh")
            .args([
                "-c",
                "trap 'exit 7' USR1; echo ready; while :; do sleep 0.05; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(c.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        let mut usr1 = SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), Some(&mut old)).unwrap();
        // raise(3) targets the calling thread, where SIGUSR1 is now blocked: it stays pending.
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        assert_eq!(foreground_wait(pid(&c), None).unwrap(), 7);
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();

        // Terminal proxy: input goes to the container's terminal, its output comes back,
        // and EOF on input does not end the wait.
        let (master, slave) = open_pty().unwrap();
        let s = File::options().read(true).write(true).open(&slave).unwrap();
        let c = Command::new("sh")
            .args(["-c", "read x; echo got:$x; exit 5"])
            .stdin(s.try_clone().unwrap())
            .stdout(s.try_clone().unwrap())
            .stderr(s)
            .spawn()
            .unwrap();
        // The Command's copies of the slave are gone, so the child holds the last ones.
        let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        nix::unistd::write(&in_w, b"abc\n").unwrap();
        drop(in_w);
        let code = wait_loop(pid(&c), Some(master), in_r.as_fd(), out_w.as_fd()).unwrap();
        assert_eq!(code, 5);
        drop(out_w);
        let mut text = String::new();
        File::from(out_r).read_to_string(&mut text).unwrap();
        assert!(text.contains("got:abc"), "{text:?}");

        // Not our child: an error, not a hang.
        let e = foreground_wait(Pid::from_raw(1), None).unwrap_err();
        assert!(format!("{e:#}").contains("ECHILD"), "{e:#}");
    }

    #[test]
    fn slave_stdio_in_a_child() {
        let (master, slave) = open_pty().unwrap();
        // setsid and dup2 over stdio must not happen in the test process: do it in a
        // forked child that only calls async-signal-safe-enough code and _exits.
        // SAFETY: the child only runs setup_slave_stdio and write/_exit before exiting.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let msg: &[u8] = match setup_slave_stdio(&slave) {
                    Ok(())
                        if nix::sys::termios::tcgetsid(std::io::stdin()).ok() == Some(getpid()) =>
                    {
                        b"ctty-ok\n"
                    }
                    Ok(()) => b"no-ctty\n",
                    Err(_) => b"failed\n",
                };
                let _ = nix::unistd::write(std::io::stdout(), msg);
                // SAFETY: _exit skips atexit handlers and the test harness's state.
                unsafe { libc::_exit(0) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                // foreground_wait in a parallel test may reap it first; the output is the
                // verdict anyway.
                let _ = waitpid(child, None);
                let mut buf = [0u8; 64];
                let n = nix::unistd::read(master.as_raw_fd(), &mut buf).unwrap();
                assert_eq!(&buf[..n], b"ctty-ok\r\n");
            }
        }
    }
}
