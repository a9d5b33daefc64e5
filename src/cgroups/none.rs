//! No cgroup: a rootless container whose user cannot make one and that asks for no
//! resource (runc does the same). Its processes stay in the runtime's own cgroup; what
//! needs a cgroup (pause, stats, a limit) says so.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::{Cgroup, Host, Mode};

pub struct NoCgroup;

const NONE: &str = "the container has no cgroup (rootless, and its user may not make one)";

impl Cgroup for NoCgroup {
    fn create(&self) -> Result<()> {
        Ok(())
    }
    fn add_task(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    /// Unknown without a cgroup: callers signal init, which takes its pid namespace along.
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    /// The runtime's own cgroups, which the container's processes share (the cgroup mount
    /// of a rootless container is read-only: see rootfs::mount).
    fn mount_sources(&self) -> Result<Vec<(String, PathBuf)>> {
        let host = Host::read()?;
        let mut out = Vec::new();
        for h in &host.hierarchies {
            let Some(own) = &h.own else { continue };
            let dir = h.mountpoint.join(own.trim_start_matches('/'));
            let name = if host.mode == Mode::Unified {
                String::new()
            } else if h.v2 {
                "unified".to_string()
            } else {
                match h.mountpoint.file_name() {
                    Some(n) => n.to_string_lossy().into_owned(),
                    None => continue,
                }
            };
            out.push((name, dir));
        }
        Ok(out)
    }
    /// Device rules are ignored (see rootless::resource_asked); any limit is refused, so
    /// that an `update` cannot succeed without effect.
    fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        match crate::rootless::resource_asked(r) {
            Some(field) => bail!("{field}: {NONE}: no limit can be set"),
            None => Ok(()),
        }
    }
    fn freeze(&self) -> Result<()> {
        bail!("{NONE}: it cannot be paused")
    }
    fn thaw(&self) -> Result<()> {
        bail!("{NONE}: it cannot be resumed")
    }
    fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    fn frozen_effective(&self) -> Result<bool> {
        Ok(false)
    }
    fn stats(&self) -> Result<serde_json::Value> {
        bail!("{NONE}: no statistics")
    }
    fn oom_kills(&self) -> Result<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_refused_and_device_rules_ignored() {
        let r = |s: &str| -> oci_spec::runtime::LinuxResources { serde_json::from_str(s).unwrap() };
        assert!(NoCgroup
            .apply(&r(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#))
            .is_ok());
        let e = NoCgroup
            .apply(&r(r#"{"memory":{"limit":104857600}}"#))
            .unwrap_err();
        assert!(e.to_string().starts_with("linux.resources.memory: "), "{e}");
        assert!(NoCgroup.freeze().is_err());
        assert_eq!(NoCgroup.pids().unwrap(), Vec::<i32>::new());
    }
}
