//! `berth features`: the runtime-spec features document (features.md), telling callers
//! what this build of berth understands.
//!
//! Everything berth does not implement yet is reported as disabled, or left out where
//! features.md gives absence the meaning "unknown" would be wrong: `hooks` is an empty list
//! (no hook kinds run yet), not a missing field.

use serde_json::{json, Value};

/// Mount options berth's mount code understands: mount flags, propagation, and their
/// recursive `r*` forms. Filesystem data options such as `mode=755` go to the filesystem
/// unchanged and, as features.md says, are not listed.
const MOUNT_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "bind",
    "rbind",
    "tmpcopyup",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "rro",
    "rrw",
    "rnosuid",
    "rsuid",
    "rnodev",
    "rdev",
    "rnoexec",
    "rexec",
    "rnoatime",
    "ratime",
    "rnodiratime",
    "rdiratime",
    "rrelatime",
    "rnorelatime",
    "rstrictatime",
    "rnostrictatime",
    "nosymfollow",
    "rnosymfollow",
];

const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

pub fn features() -> Value {
    let mut caps: Vec<caps::Capability> = caps::all().into_iter().collect();
    // A set has no order; callers diffing two outputs want a stable one: kernel numbering.
    caps.sort_by_key(|c| c.index());
    let caps: Vec<String> = caps.iter().map(|c| c.to_string()).collect();

    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": [],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": true,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": crate::security::seccomp::features(),
            // Applied and tested (spec-tests vm_security, in the VM, where AppArmor runs).
            "apparmor": { "enabled": true },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": true },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
            // Rootless mode (rootless.rs), tested by integration/rootless.
            "io.github.berth.rootless": "true"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_keys_features_md_requires() {
        let f = features();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["annotations"]["io.github.berth.rootless"], "true");
        assert_eq!(f["ociVersionMax"], "1.3.0");
        assert!(f["hooks"].as_array().unwrap().is_empty());
        let opts = f["mountOptions"].as_array().unwrap();
        for o in ["ro", "rbind", "rslave", "nosymfollow", "rnosymfollow"] {
            assert!(opts.iter().any(|v| v == o), "{o}");
        }
        let linux = &f["linux"];
        assert_eq!(linux["namespaces"].as_array().unwrap().len(), 8);
        let caps = linux["capabilities"].as_array().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(caps.iter().all(|c| c.as_str().unwrap().starts_with("CAP_")));
        for k in ["v1", "v2", "systemd", "systemdUser", "rdma"] {
            assert!(linux["cgroup"][k].is_boolean(), "cgroup.{k}");
        }
        assert_eq!(linux["seccomp"]["enabled"], true);
        assert_eq!(linux["apparmor"]["enabled"], true);
        assert_eq!(linux["intelRdt"]["enabled"], true);
        // Written through procfs, but no test machine runs SELinux to show it works.
        assert_eq!(linux["selinux"]["enabled"], false);
        assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
        assert_eq!(
            f["annotations"]["io.github.berth.version"],
            env!("CARGO_PKG_VERSION")
        );
        // The model the rest of the ecosystem uses accepts it.
        let typed: oci_spec::runtime::Features = serde_json::from_value(f).unwrap();
        assert_eq!(typed.oci_version_max(), "1.3.0");
    }
}
