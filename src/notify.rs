//! sd_notify through the runtime, as runc does: when berth runs with NOTIFY_SOCKET set (a
//! systemd unit of Type=notify, Podman's --sdnotify=container), the container gets a
//! socket of berth's at /run/notify/notify.sock (its directory, in the state dir, is
//! bind-mounted read-only there, and NOTIFY_SOCKET points at it), and `start` relays what
//! the container sends until its READY=1 to the host's socket, adding MAINPID=.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// Where the socket's directory is mounted in the container, and the socket there.
pub const CONTAINER_DIR: &str = "/run/notify";
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

/// The host's notify socket (NOTIFY_SOCKET), if berth was given one.
pub fn host_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// The directory in the container's state dir that holds berth's socket.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

fn addr(path: &str) -> Result<UnixAddr> {
    match path.strip_prefix('@') {
        Some(name) => UnixAddr::new_abstract(name.as_bytes()),
        None => UnixAddr::new(path),
    }
    .map_err(|e| anyhow!("NOTIFY_SOCKET {path:?}: {e}"))
}

/// Binds berth's socket in `dir` (made at create), world-writable as the container's
/// user may be anyone.
pub fn bind_socket(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("notify socket")?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new(&path).map_err(|e| anyhow!("notify socket {}: {e}", path.display()))?,
    )
    .with_context(|| format!("bind notify socket {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(fd)
}

/// Relays the container's notifications to `host` until one carries READY=, then sends
/// MAINPID=`pid` with it. Returns when that is done or when `alive` says init is gone.
pub fn relay(sock: &OwnedFd, host: &str, pid: i32, alive: impl Fn() -> bool) -> Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let to = addr(host)?;
    let out = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("socket to NOTIFY_SOCKET")?;
    let tick = PollTimeout::try_from(Duration::from_millis(100)).expect("fits");
    let mut buf = vec![0u8; 4096];
    loop {
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, tick) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                if !alive() {
                    return Ok(());
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => return Err(anyhow!("poll the notify socket: {e}")),
        }
        let n = match recv(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            &mut buf,
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow!("read the notify socket: {e}")),
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let ready = text.lines().any(|l| l.starts_with("READY="));
        let mut msg = text.trim_end_matches('\n').to_string();
        if ready {
            msg.push_str(&format!("\nMAINPID={pid}"));
        }
        msg.push('\n');
        sendto(
            std::os::fd::AsRawFd::as_raw_fd(&out),
            msg.as_bytes(),
            &to,
            MsgFlags::empty(),
        )
        .map_err(|e| anyhow!("send to NOTIFY_SOCKET {host}: {e}"))?;
        if ready {
            return Ok(());
        }
    }
}
