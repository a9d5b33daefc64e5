//! Which fds the caller passed: only those may reach a container through `--preserve-fds`
//! (and systemd's LISTEN_FDS). Checked before berth opens any fd of its own, so that an fd
//! number the caller left free can never be one of berth's (a namespace fd in `exec`, the
//! console socketpair in `run -t`) handed to the container. (runc 1.1.5 fails only past the
//! fds it holds itself: with fewer from the caller it hands over its own.)

use std::os::fd::RawFd;

use anyhow::{bail, Result};

use super::{Cli, Command};

/// Refuses a `--preserve-fds N` (plus the LISTEN_FDS of socket activation for create and
/// run) that reaches beyond the fds 3, 4, ... the caller holds open. Call it first in main.
pub fn check_passed(cli: &Cli) -> Result<()> {
    let (n, listen) = match &cli.command {
        Command::Create(a) => (a.preserve_fds, crate::container::listen_fds()),
        Command::Run(a) => (a.create.preserve_fds, crate::container::listen_fds()),
        Command::Exec(a) => (a.preserve_fds, 0),
        _ => return Ok(()),
    };
    let Some(fd) = first_closed(3, u64::from(listen) + u64::from(n)) else {
        return Ok(());
    };
    if i64::from(fd) < 3 + i64::from(listen) {
        bail!("LISTEN_FDS={listen}: fd {fd} is not open: systemd passed fewer fds");
    }
    bail!("--preserve-fds {n}: fd {fd} is not open in the caller: only fds passed to berth can be preserved")
}

/// The first of the `n` fds from `first` up that is not open in this process.
fn first_closed(first: RawFd, n: u64) -> Option<RawFd> {
    // The search stops at the first closed fd: at most RLIMIT_NOFILE calls whatever `n`.
    (0..n)
        .map(|i| RawFd::try_from(i64::from(first) + i as i64).unwrap_or(RawFd::MAX))
        .find(|&fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn first_closed_finds_the_gap() {
        // High numbers: the test harness's own fds sit low.
        let f = std::fs::File::open("/dev/null").unwrap();
        for fd in 700..703 {
            assert!(nix::unistd::dup2(f.as_raw_fd(), fd).is_ok());
        }
        assert_eq!(first_closed(700, 3), None);
        assert_eq!(first_closed(700, 0), None);
        assert_eq!(first_closed(700, 4), Some(703));
        assert_eq!(first_closed(700, u64::from(u32::MAX)), Some(703));
        for fd in 700..703 {
            let _ = nix::unistd::close(fd);
        }
        assert_eq!(first_closed(700, 1), Some(700));
    }
}
