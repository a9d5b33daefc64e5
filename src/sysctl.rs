//! linux.sysctl: only sysctls that belong to a namespace the container has its own copy of
//! may be set (as runc allows), and they are written through the real procfs.

use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use nix::fcntl::{OFlag, ResolveFlag};

const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Refuses a sysctl the container would share with the host.
pub fn check(key: &str, new_net: bool, new_ipc: bool, new_uts: bool) -> Result<()> {
    if key.is_empty()
        || key.split(['.', '/']).any(|c| c.is_empty() || c == "..")
        || key.contains('\0')
    {
        bail!("invalid sysctl name");
    }
    let (ns, ok) = if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        ("ipc", new_ipc)
    } else if key.starts_with("net.") {
        ("network", new_net)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        ("uts", new_uts)
    } else {
        bail!("not a namespaced sysctl: setting it would change the host");
    };
    if !ok {
        bail!("needs a new {ns} namespace, or it would change the host");
    }
    Ok(())
}

/// Writes each sysctl under /proc/sys of the host's procfs, which shows the writer's own
/// net and ipc namespaces. The file is opened beneath /proc/sys without following symlinks and
/// checked to be on procfs, so a planted file cannot take the write.
pub fn apply(sysctls: &std::collections::HashMap<String, String>) -> Result<()> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let dir = crate::sys::open(
        "/proc/sys",
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .context("open /proc/sys")?;
    crate::rootfs::ensure_procfs(dir.as_fd()).context("/proc/sys")?;
    for (k, v) in sysctls {
        let rel = k.replace('.', "/");
        let fd = crate::sys::openat2(
            dir.as_fd(),
            rel.as_str(),
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
        )
        .with_context(|| format!("sysctl {k}: open /proc/sys/{rel}"))?;
        crate::rootfs::ensure_procfs(fd.as_fd()).with_context(|| format!("sysctl {k}"))?;
        std::fs::File::from(fd)
            .write_all(v.as_bytes())
            .with_context(|| format!("sysctl {k}: write {v:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_sysctls() {
        assert!(check("net.ipv4.ip_forward", true, false, false).is_ok());
        assert!(check("net.ipv4.ip_forward", false, true, true).is_err());
        assert!(check("kernel.shmmax", false, true, false).is_ok());
        assert!(check("fs.mqueue.msg_max", false, true, false).is_ok());
        assert!(check("kernel.panic", true, true, true).is_err());
        assert!(check("net/../kernel/panic", true, true, true).is_err());
        assert!(check("kernel.hostname", false, false, true).is_ok());
    }
}
