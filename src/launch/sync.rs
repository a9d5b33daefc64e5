//! Messages between the runtime and the processes it forks, over SOCK_SEQPACKET socketpairs.
//!
//! A message arrives whole whatever its size (a state with megabytes of annotations, a long
//! error): it is sent as a frame, a first packet that starts with the message's length as a
//! 4-byte little-endian number, then as many further packets as the rest needs, each small
//! enough for any socket buffer. An fd goes with the first packet. Every send error is
//! returned; a frame cut short is an error, never a shorter message.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

/// The most bytes one packet carries: well below the smallest default socket buffer.
const PACKET: usize = 32 * 1024;
/// The largest message taken: beyond any config berth accepts, and a bound on what a
/// confused peer can make the runtime allocate.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| anyhow!("socketpair: {e}"))
}

fn send_packet(fd: BorrowedFd, data: &[u8]) -> nix::Result<()> {
    loop {
        match nix::sys::socket::send(fd.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL) {
            Err(Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// The first packet of a frame: the length, then as much of the message as fits.
fn first_packet(msg: &[u8]) -> (Vec<u8>, usize) {
    let take = msg.len().min(PACKET - 4);
    let mut p = Vec::with_capacity(4 + take);
    p.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    p.extend_from_slice(&msg[..take]);
    (p, take)
}

/// Sends what follows the first packet.
fn send_rest(fd: BorrowedFd, rest: &[u8]) -> nix::Result<()> {
    rest.chunks(PACKET).try_for_each(|c| send_packet(fd, c))
}

pub fn send(fd: BorrowedFd, msg: &str) -> Result<()> {
    let (first, took) = first_packet(msg.as_bytes());
    send_packet(fd, &first)
        .and_then(|()| send_rest(fd, &msg.as_bytes()[took..]))
        .map_err(|e| anyhow!("sync send: {e}"))
}

/// Sends `tag` with an fd attached (SCM_RIGHTS).
pub fn send_fd(sock: BorrowedFd, tag: &str, fd: BorrowedFd) -> Result<()> {
    let (first, took) = first_packet(tag.as_bytes());
    crate::sys::send_with_fd(sock, &first, fd)
        .and_then(|()| send_rest(sock, &tag.as_bytes()[took..]))
        .map_err(|e| anyhow!("sync send {tag}: {e}"))
}

/// Receives one frame: the message and the fd that came with it; None when the other side
/// closed before sending anything. `flags` apply to the first packet (MSG_DONTWAIT).
fn recv_frame(sock: BorrowedFd, dontwait: bool) -> Result<Option<(String, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; PACKET];
    let first = if dontwait {
        loop {
            match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EINTR) => continue,
                r => break r.map(|n| (n, Vec::new())),
            }
        }
    } else {
        crate::sys::recv_with_fds(sock, &mut buf).map(|m| (m.len, m.fds))
    };
    let first = match first {
        // A peer that exits with a message of ours unread leaves ECONNRESET pending on this
        // end, and the kernel reports it before the messages the peer sent first (its error,
        // say). The error is consumed by being reported: read on, and the peer's last words,
        // or its end of file, come next.
        Err(Errno::ECONNRESET) if !dontwait => {
            crate::sys::recv_with_fds(sock, &mut buf).map(|m| (m.len, m.fds))
        }
        r => r,
    };
    let (n, fds) = first.map_err(|e| anyhow!("sync recv: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if n < 4 {
        bail!("sync recv: a packet of {n} bytes is no frame");
    }
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_MESSAGE {
        bail!("sync recv: a message of {len} bytes is too large");
    }
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&buf[4..n]);
    while msg.len() < len {
        let n = loop {
            match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                r => break r.map_err(|e| anyhow!("sync recv: {e}"))?,
            }
        };
        if n == 0 {
            bail!(
                "sync recv: the message ended after {} of {len} bytes",
                msg.len()
            );
        }
        msg.extend_from_slice(&buf[..n]);
    }
    if msg.len() != len {
        bail!("sync recv: {} bytes where the frame said {len}", msg.len());
    }
    let text = String::from_utf8_lossy(&msg).into_owned();
    Ok(Some((text, fds.into_iter().next())))
}

/// The next message; None when the other side closed (exited).
pub fn recv(fd: BorrowedFd) -> Result<Option<String>> {
    Ok(recv_frame(fd, false)?.map(|(m, _)| m))
}

/// Receives the fd sent with `tag`; an "error:" message instead becomes the error.
pub fn recv_fd(sock: BorrowedFd, tag: &str) -> Result<OwnedFd> {
    let Some((text, fd)) = recv_frame(sock, false)? else {
        bail!("container init exited during setup");
    };
    if let Some(e) = text.strip_prefix("error:") {
        bail!("{e}");
    }
    if text != tag {
        bail!("unexpected message {text:?} (wanted {tag:?})");
    }
    fd.ok_or_else(|| anyhow!("sync recv {tag}: no fd attached"))
}

/// The next message and the fd that came with it, if any; None when the other side closed.
pub fn recv_with_fd(sock: BorrowedFd) -> Result<Option<(String, Option<OwnedFd>)>> {
    recv_frame(sock, false)
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

/// An error message the other side already sent, without waiting for one to start.
pub fn pending_error(fd: BorrowedFd) -> Option<String> {
    let (m, _) = recv_frame(fd, true).ok()??;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Messages of every size arrive whole, in order, and an fd arrives with its frame.
    #[test]
    fn large_messages_arrive_whole() {
        let (a, b) = pair().unwrap();
        let sizes = [
            0usize,
            1,
            PACKET - 5,
            PACKET - 4,
            PACKET,
            3 * PACKET + 7,
            10 << 20,
        ];
        let sender = std::thread::spawn(move || {
            for n in sizes {
                let msg: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
                send(a.as_fd(), &msg).unwrap();
            }
            let f = std::fs::File::open("/dev/null").unwrap();
            send_fd(a.as_fd(), "fd", f.as_fd()).unwrap();
            a
        });
        for n in sizes {
            let m = recv(b.as_fd()).unwrap().unwrap();
            assert_eq!(m.len(), n);
            assert!(m
                .bytes()
                .enumerate()
                .all(|(i, c)| c == b'a' + (i % 26) as u8));
        }
        recv_fd(b.as_fd(), "fd").unwrap();
        drop(sender.join().unwrap());
        assert!(recv(b.as_fd()).unwrap().is_none());
    }

    /// A peer that sent its last message and exited without reading ours: its message
    /// still arrives, not ECONNRESET.
    #[test]
    fn last_words_survive_an_unread_message() {
        let (a, b) = pair().unwrap();
        send(a.as_fd(), "error:it failed").unwrap();
        send(b.as_fd(), "placed").unwrap();
        drop(a);
        assert_eq!(recv(b.as_fd()).unwrap().as_deref(), Some("error:it failed"));
        assert!(recv(b.as_fd()).unwrap().is_none());
    }

    /// A frame cut short by the sender's exit is an error, not a shorter message.
    #[test]
    fn a_cut_frame_is_an_error() {
        let (a, b) = pair().unwrap();
        let mut first = 100u32.to_le_bytes().to_vec();
        first.extend_from_slice(b"only part");
        send_packet(a.as_fd(), &first).unwrap();
        drop(a);
        assert!(recv(b.as_fd()).is_err());
    }
}
