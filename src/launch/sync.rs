//! Messages between the runtime and the processes it forks, over SOCK_SEQPACKET socketpairs
//! (one message per send, no framing needed).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Result};
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| anyhow!("socketpair: {e}"))
}

pub fn send(fd: BorrowedFd, msg: &str) -> Result<()> {
    loop {
        match nix::sys::socket::send(fd.as_raw_fd(), msg.as_bytes(), MsgFlags::MSG_NOSIGNAL) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(drop).map_err(|e| anyhow!("sync send: {e}")),
        }
    }
}

/// The next message; None when the other side closed (exited).
pub fn recv(fd: BorrowedFd) -> Result<Option<String>> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("sync recv: {e}"),
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        }
    }
}

/// Sends `tag` with an fd attached (SCM_RIGHTS).
pub fn send_fd(sock: BorrowedFd, tag: &str, fd: BorrowedFd) -> Result<()> {
    crate::sys::send_with_fd(sock, tag.as_bytes(), fd).map_err(|e| anyhow!("sync send {tag}: {e}"))
}

/// Receives the fd sent with `tag`; an "error:" message instead becomes the error.
pub fn recv_fd(sock: BorrowedFd, tag: &str) -> Result<OwnedFd> {
    let mut buf = vec![0u8; 64 * 1024];
    let msg =
        crate::sys::recv_with_fds(sock, &mut buf).map_err(|e| anyhow!("sync recv {tag}: {e}"))?;
    let n = msg.len;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    if let Some(e) = text.strip_prefix("error:") {
        bail!("{e}");
    }
    if n == 0 {
        bail!("container init exited during setup");
    }
    if text != tag {
        bail!("unexpected message {text:?} (wanted {tag:?})");
    }
    msg.fds
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("sync recv {tag}: no fd attached"))
}

/// The next message and the fd that came with it, if any; None when the other side closed.
pub fn recv_with_fd(sock: BorrowedFd) -> Result<Option<(String, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; 64 * 1024];
    let msg = crate::sys::recv_with_fds(sock, &mut buf).map_err(|e| anyhow!("sync recv: {e}"))?;
    if msg.len == 0 {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&buf[..msg.len]).into_owned();
    Ok(Some((text, msg.fds.into_iter().next())))
}

/// Parses "pid:N" sent with `send_pid`: the pid, and the pidfd its parent opened while the
/// process could not yet have been reaped by anyone else. The runtime kills through the
/// pidfd, never by a number that may name another process by then (pids wrap quickly on a
/// busy host).
pub fn parse_pid(text: &str, fd: Option<OwnedFd>) -> Option<(i32, OwnedFd)> {
    Some((text.strip_prefix("pid:")?.parse().ok()?, fd?))
}

/// Sends "pid:N" with a pidfd of the child `pid` (opened here, by its parent).
pub fn send_pid(sock: BorrowedFd, pid: i32) -> Result<()> {
    let fd = crate::sys::pidfd_open(pid).map_err(|e| anyhow!("pidfd_open {pid}: {e}"))?;
    send_fd(sock, &format!("pid:{pid}"), std::os::fd::AsFd::as_fd(&fd))
}

/// An error message the other side already sent, without waiting for one.
pub fn pending_error(fd: BorrowedFd) -> Option<String> {
    let mut buf = vec![0u8; 64 * 1024];
    let n = nix::sys::socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).ok()?;
    let m = String::from_utf8_lossy(&buf[..n]).into_owned();
    m.strip_prefix("error:").map(str::to_string)
}

/// Waits for `want`; an "error:" message or EOF becomes the error.
pub fn expect(fd: BorrowedFd, want: &str, who: &str) -> Result<()> {
    match recv(fd)? {
        Some(m) if m == want => Ok(()),
        Some(m) => match m.strip_prefix("error:") {
            Some(e) => bail!("{e}"),
            None => bail!("{who}: unexpected message {m:?} (wanted {want:?})"),
        },
        None => bail!("{who} exited during setup"),
    }
}
