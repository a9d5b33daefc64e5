//! The receiving end of `--console-socket`.
//!
//! With `process.terminal: true` a runc-compatible runtime allocates a pty
//! inside the container and sends the master side to the unix socket named by
//! `--console-socket`, as an `SCM_RIGHTS` control message. This helper listens
//! on such a socket, receives the fd and keeps reading the container's output
//! from it on a background thread.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the background thread waits for the runtime and the container.
const SERVE_LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Shared {
    output: Mutex<Vec<u8>>,
    error: Mutex<Option<String>>,
    received: AtomicBool,
    done: AtomicBool,
}

pub struct ConsoleSocket {
    path: PathBuf,
    shared: Arc<Shared>,
}

impl ConsoleSocket {
    /// Listens on a new socket inside `dir` (which the caller cleans up).
    pub fn new(dir: &Path) -> ConsoleSocket {
        let path = dir.join(format!("console-{}.sock", crate::next_counter()));
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        thread::spawn(move || {
            if let Err(e) = serve(&listener, &s) {
                *s.error.lock().unwrap() = Some(e);
            }
            s.done.store(true, Ordering::SeqCst);
        });
        ConsoleSocket { path, shared }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once a pty master fd has arrived over the socket. The runtime sends it before
    /// `create` returns, but the thread that accepts it may not have run yet: give it a
    /// moment rather than report a fast runtime as broken.
    pub fn received(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.shared.received.load(Ordering::SeqCst) {
            if Instant::now() > deadline || self.shared.done.load(Ordering::SeqCst) {
                return self.shared.received.load(Ordering::SeqCst);
            }
            thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Everything read from the master so far, with the terminal's "\r\n"
    /// turned back into "\n".
    pub fn output(&self) -> String {
        let raw = self.shared.output.lock().unwrap().clone();
        String::from_utf8_lossy(&raw).replace("\r\n", "\n")
    }

    /// Waits until the output contains `marker`; panics with what was read
    /// (and any error of the reader) if it doesn't within `timeout`.
    pub fn wait_for(&self, marker: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.output();
            if out.contains(marker) {
                return out;
            }
            if Instant::now() > deadline
                || (self.shared.done.load(Ordering::SeqCst) && !self.output().contains(marker))
            {
                panic!(
                    "console output never contained {marker:?}; master received: {}; output: {out:?}; reader error: {:?}",
                    self.received(),
                    self.shared.error.lock().unwrap()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Accepts one connection, receives the fd and reads it until the pty is
/// closed by the container (EIO/EOF on the master) or the time limit.
fn serve(listener: &UnixListener, shared: &Shared) -> Result<(), String> {
    let deadline = Instant::now() + SERVE_LIMIT;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err("no connection on the console socket".into());
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(SERVE_LIMIT))
        .map_err(|e| e.to_string())?;
    let master = recv_fd(stream.as_raw_fd())?;
    shared.received.store(true, Ordering::SeqCst);
    read_master(&master, shared, deadline)
}

/// Receives one fd sent with SCM_RIGHTS (the message payload, which runc
/// uses for the pty's name, is ignored).
fn recv_fd(sock: RawFd) -> Result<OwnedFd, String> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a few fds; only the first is used, any others are closed.
    let space =
        unsafe { libc::CMSG_SPACE((std::mem::size_of::<libc::c_int>() * 4) as u32) } as usize;
    // u64 storage keeps the control buffer aligned for cmsghdr.
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(format!("recvmsg: {}", io::Error::last_os_error()));
    }
    let mut fds = Vec::new();
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            let payload = hdr.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            let count = payload / std::mem::size_of::<libc::c_int>();
            let ptr = unsafe { libc::CMSG_DATA(cmsg) } as *const libc::c_int;
            for i in 0..count {
                let fd = unsafe { std::ptr::read_unaligned(ptr.add(i)) };
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    if fds.is_empty() {
        return Err(format!(
            "message of {n} bytes on the console socket carried no fd"
        ));
    }
    Ok(fds.swap_remove(0))
}

fn read_master(master: &OwnedFd, shared: &Shared, deadline: Instant) -> Result<(), String> {
    let fd = master.as_raw_fd();
    let mut buf = [0u8; 4096];
    loop {
        if Instant::now() > deadline {
            return Err("console still open at the time limit".into());
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let r = unsafe { libc::poll(&mut pfd, 1, 100) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        if r == 0 {
            continue;
        }
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            shared
                .output
                .lock()
                .unwrap()
                .extend_from_slice(&buf[..n as usize]);
            continue;
        }
        let err = io::Error::last_os_error();
        if n < 0 && err.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // EIO (or EOF) means no slave is open. A runtime may hand the master
        // over before the container opened its side, so a hang-up before any
        // output is not taken as the end: wait for the container to open it.
        if shared.output.lock().unwrap().is_empty() {
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        return Ok(());
    }
}
