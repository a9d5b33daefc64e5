//! `berth spec`: the starting config.json, the same as `runc spec` writes (runc 1.1.5,
//! field for field) except for `ociVersion`, which names the newest runtime-spec release
//! berth's model (oci-spec 0.10) covers.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Newest runtime-spec version oci-spec 0.10 models (its `VERSION` constant still says
/// 1.1.0, but it has the 1.3.0 fields: netDevices, memoryPolicy, intelRdt.enableMonitoring).
pub const OCI_VERSION: &str = "1.3.0";

pub fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut devpts_opts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    // An unprivileged user cannot give pty slaves the host's tty group.
    if !rootless {
        devpts_opts.push("gid=5");
    }
    // Without a network namespace of its own (rootless has none) sysfs cannot be mounted
    // fresh, so the host's is bind-mounted read-only instead.
    let sys = if rootless {
        json!({
            "destination": "/sys",
            "type": "none",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
        })
    } else {
        json!({
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"]
        })
    };

    let mut linux = json!({
        "maskedPaths": [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ],
        "readonlyPaths": [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    });
    if rootless {
        // Map the invoking user to root inside; the device cgroup rule is dropped because
        // an unprivileged user cannot set it.
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        linux["uidMappings"] = json!([{ "containerID": 0, "hostID": uid, "size": 1 }]);
        linux["gidMappings"] = json!([{ "containerID": 0, "hostID": gid, "size": 1 }]);
        linux["namespaces"] = json!([
            { "type": "pid" },
            { "type": "ipc" },
            { "type": "uts" },
            { "type": "mount" },
            // As runc's: the cgroup mount then shows the container's own cgroup (which
            // it may write on a delegated cgroup v2 subtree).
            { "type": "cgroup" },
            { "type": "user" }
        ]);
    } else {
        linux["resources"] = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
        linux["namespaces"] = json!([
            { "type": "pid" },
            { "type": "network" },
            { "type": "ipc" },
            { "type": "uts" },
            { "type": "mount" }
        ]);
    }

    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": devpts_opts
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"]
            },
            sys,
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
            }
        ],
        "linux": linux
    })
}

pub fn write_default_spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    let mut text =
        serde_json::to_string_pretty(&default_spec(rootless)).context("serialize default spec")?;
    text.push('\n');
    // create_new: the existence check and the creation are one step, so a config.json
    // appearing meanwhile is never overwritten.
    let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        // runc's words exactly (it runs in the bundle dir), for scripts that match them.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            bail!("File config.json exists. Remove it first")
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    #[test]
    fn deserializes_into_spec() {
        for rootless in [false, true] {
            let v = default_spec(rootless);
            let spec: Spec = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(spec.version(), OCI_VERSION);
            let linux = spec.linux().as_ref().unwrap();
            let ns: Vec<_> = linux
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .map(|n| n.typ())
                .collect();
            assert_eq!(ns.contains(&LinuxNamespaceType::User), rootless);
            assert_eq!(ns.contains(&LinuxNamespaceType::Network), !rootless);
            assert_eq!(linux.uid_mappings().is_some(), rootless);
            assert_eq!(linux.resources().is_some(), !rootless);
            // Nothing is lost in the typed model (a renamed or misspelt key would be). It keeps
            // capabilities in hash sets, so their order is not compared.
            let sorted_caps = |mut v: Value| {
                for set in v["process"]["capabilities"]
                    .as_object_mut()
                    .unwrap()
                    .values_mut()
                {
                    set.as_array_mut()
                        .unwrap()
                        .sort_by_key(|c| c.as_str().unwrap().to_string());
                }
                v
            };
            let back = serde_json::to_value(&spec).unwrap();
            assert_eq!(sorted_caps(back), sorted_caps(v), "rootless={rootless}");
        }
    }

    #[test]
    fn writes_once() {
        let dir = std::env::temp_dir().join(format!("berth-spec-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_default_spec(&dir, false).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, default_spec(false));
        let e = write_default_spec(&dir, true).unwrap_err();
        assert!(
            e.to_string()
                .contains("config.json exists. Remove it first"),
            "{e}"
        );
        let e = write_default_spec(&dir.join("missing"), false).unwrap_err();
        assert!(format!("{e:#}").contains("missing"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
