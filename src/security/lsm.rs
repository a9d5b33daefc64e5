//! AppArmor profiles and SELinux labels (config.md process.apparmorProfile,
//! process.selinuxLabel, config-linux.md linux.mountLabel). A label asked for on a host whose
//! kernel does not run that LSM is an error, never silently dropped: the container would run
//! unconfined while its owner believes otherwise.
//!
//! The label for the next execve is written through the host's procfs before pivot_root (a
//! container's /proc could be planted), to the process's own attr file, checked to be procfs.

use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::Mode;

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// At config load.
pub fn check(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        check_process(p, "process.")?;
    }
    let mount_label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    if mount_label.is_some_and(|s| !s.is_empty()) && !selinux_enabled() {
        bail!("linux.mountLabel: SELinux is not enabled on this host");
    }
    Ok(())
}

/// The labels of one process (config.json's or an exec's); `at` is its JSON path.
pub fn check_process(p: &oci_spec::runtime::Process, at: &str) -> Result<()> {
    if p.apparmor_profile()
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        && !apparmor_enabled()
    {
        bail!("{at}apparmorProfile: AppArmor is not enabled on this host");
    }
    if p.selinux_label().as_deref().is_some_and(|s| !s.is_empty()) && !selinux_enabled() {
        bail!("{at}selinuxLabel: SELinux is not enabled on this host");
    }
    Ok(())
}

/// Writes `value` to /proc/self/attr/<rel> of the host's procfs.
fn write_attr(rel: &str, value: &str, field: &str) -> Result<()> {
    let dir = crate::sys::open(
        "/proc/self/attr",
        OFlag::O_PATH | OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .map_err(|e| anyhow!("{field}: open /proc/self/attr: {e}"))?;
    crate::rootfs::ensure_procfs(dir.as_fd()).with_context(|| field.to_string())?;
    let fd = crate::sys::openat2(
        dir.as_fd(),
        rel,
        OFlag::O_WRONLY,
        ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| anyhow!("{field}: open /proc/self/attr/{rel}: {e}"))?;
    crate::rootfs::ensure_procfs(fd.as_fd()).with_context(|| field.to_string())?;
    std::fs::File::from(fd)
        .write_all(value.as_bytes())
        .map_err(|e| anyhow!("{field}: write /proc/self/attr/{rel}: {e}"))
}

/// Sets the labels the container process gets at its execve.
pub fn set_exec_labels(p: &oci_spec::runtime::Process) -> Result<()> {
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        // Kernels since 5.1 have a per-LSM directory; older ones only the shared file.
        let rel = if std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
            "apparmor/exec"
        } else {
            "exec"
        };
        write_attr(rel, &format!("exec {profile}"), "process.apparmorProfile")?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        write_attr("exec", label, "process.selinuxLabel")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_labels_the_host_cannot_apply() {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0},"cwd":"/","apparmorProfile":"p","selinuxLabel":"l"}}"#,
        )
        .unwrap();
        let r = check(&spec);
        if !apparmor_enabled() {
            assert!(format!("{:#}", r.unwrap_err()).starts_with("process.apparmorProfile"));
        } else if !selinux_enabled() {
            assert!(format!("{:#}", r.unwrap_err()).starts_with("process.selinuxLabel"));
        }
    }
}
