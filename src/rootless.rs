//! Rootless mode: what changes when berth runs without the host's root.
//!
//! As runc decides it: `--rootless auto` (the default) means rootless when the effective uid
//! is not 0, or when it is 0 inside a user namespace other than the initial one (rootless
//! Podman runs the runtime as root of its own user namespace); `--rootless true` forces it.
//! A rootless berth keeps its state under `$XDG_RUNTIME_DIR/berth`, writes one-range id
//! maps itself and hands several ranges to newuidmap/newgidmap, runs without a cgroup when
//! it cannot make one and none is needed, and mounts cgroups read-only.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The state root when `--root` is not given.
pub const ROOT_DEFAULT: &str = "/run/berth";

/// Whether this call runs rootless, from the `--rootless` value (None = auto).
pub fn detect(flag: Option<&str>) -> Result<bool> {
    match flag.unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(!nix::unistd::geteuid().is_root() || in_user_namespace()),
        other => bail!("--rootless: invalid value {other:?} (expected true, false or auto)"),
    }
}

/// Whether this process runs in a user namespace other than the initial one: there, the
/// whole 32-bit id range is not mapped one to one.
pub fn in_user_namespace() -> bool {
    match crate::sys::read_text("/proc/self/uid_map") {
        Ok(s) => !is_identity_map(&s),
        Err(_) => false,
    }
}

fn is_identity_map(uid_map: &str) -> bool {
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [f] if f.as_slice() == ["0", "0", "4294967295"])
}

/// The state root: `--root` when given; rootless, `$XDG_RUNTIME_DIR/berth` (runc's rule: an
/// unprivileged user cannot write /run/berth). Without the variable an unprivileged caller
/// gets an error naming it; root of a user namespace falls back to /run/berth, as runc.
pub fn state_root(given: Option<&Path>, rootless: bool) -> Result<PathBuf> {
    if let Some(r) = given {
        return Ok(r.to_path_buf());
    }
    if !rootless {
        return Ok(PathBuf::from(ROOT_DEFAULT));
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(x) => {
            let x = PathBuf::from(x);
            if !x.is_absolute() {
                bail!(
                    "XDG_RUNTIME_DIR {:?} is not an absolute path: set it to the user's \
                     runtime directory or give --root",
                    x.display()
                );
            }
            Ok(x.join("berth"))
        }
        None if !nix::unistd::geteuid().is_root() => bail!(
            "rootless: XDG_RUNTIME_DIR is not set and no --root was given: set \
             XDG_RUNTIME_DIR to a directory of the user's own (/run/user/{}) or pass --root",
            nix::unistd::geteuid()
        ),
        None => Ok(PathBuf::from(ROOT_DEFAULT)),
    }
}

/// Whether an error (anywhere in its chain) is the kernel refusing for lack of privilege:
/// what an unprivileged user gets when it tries to make a cgroup.
pub fn is_permission_error(e: &anyhow::Error) -> bool {
    use nix::errno::Errno;
    let refused = |n: i32| {
        [Errno::EACCES, Errno::EPERM, Errno::EROFS]
            .iter()
            .any(|x| *x as i32 == n)
    };
    e.chain().any(|c| {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return io.raw_os_error().is_some_and(refused);
        }
        if let Some(n) = c.downcast_ref::<Errno>() {
            return refused(*n as i32);
        }
        false
    })
}

/// The first resource field a config asks for that needs a cgroup, by its JSON path.
/// Device rules are left out: without a cgroup there is no device controller to write,
/// and the container's devices are then only what the rootfs binds from the host.
pub fn resource_asked(r: &oci_spec::runtime::LinuxResources) -> Option<&'static str> {
    let v = serde_json::to_value(r).ok()?;
    let obj = v.as_object()?;
    const FIELDS: &[(&str, &str)] = &[
        ("memory", "linux.resources.memory"),
        ("cpu", "linux.resources.cpu"),
        ("pids", "linux.resources.pids"),
        ("blockIO", "linux.resources.blockIO"),
        ("hugepageLimits", "linux.resources.hugepageLimits"),
        ("network", "linux.resources.network"),
        ("rdma", "linux.resources.rdma"),
        ("unified", "linux.resources.unified"),
    ];
    FIELDS.iter().find_map(|(k, path)| {
        let set = match obj.get(*k) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Object(o)) => o.values().any(|x| !x.is_null()),
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        set.then_some(*path)
    })
}

/// What a rootless create needs of the config before anything is made: an unprivileged
/// user can do nothing a container needs without a user namespace of its own.
pub fn check_config(spec: &oci_spec::runtime::Spec) -> Result<()> {
    // Root of a user namespace (rootless Podman) is privileged there: it needs no user
    // namespace of the container's own. Neither may raise what only the host's
    // CAP_SYS_RESOURCE raises.
    if !nix::unistd::geteuid().is_root() {
        check_user_namespace(spec)?;
    }
    check_process_limits(spec)
}

fn check_user_namespace(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let has_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    if !has_userns {
        bail!(
            "linux.namespaces: a rootless container needs a user namespace (berth runs as \
             uid {}, not root); `berth spec --rootless` writes a config with one",
            nix::unistd::geteuid()
        );
    }
    let joins_userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_some()
            })
        });
    if !joins_userns {
        for (field, m) in [
            (
                "linux.uidMappings",
                linux.and_then(|l| l.uid_mappings().as_ref()),
            ),
            (
                "linux.gidMappings",
                linux.and_then(|l| l.gid_mappings().as_ref()),
            ),
        ] {
            if m.is_none_or(|m| m.is_empty()) {
                bail!("{field}: a rootless container needs at least one mapping");
            }
        }
    }
    Ok(())
}

fn check_process_limits(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(p) = spec.process() {
        if let Some(adj) = p.oom_score_adj() {
            check_oom_score_adj(adj)?;
        }
        for (i, r) in p.rlimits().as_deref().unwrap_or(&[]).iter().enumerate() {
            let (_, hard) = nix::sys::resource::getrlimit(crate::process::resource(r.typ()))
                .with_context(|| format!("process.rlimits[{i}]: getrlimit"))?;
            if r.hard() > hard {
                bail!(
                    "process.rlimits[{i}]: {:?} hard {} is above the runtime's own hard limit \
                     {hard}: a rootless container cannot raise it",
                    r.typ(),
                    r.hard()
                );
            }
        }
    }
    Ok(())
}

/// The oom_score_adj a process may set: an unprivileged one can raise it but never lower
/// it below its current value. Fails naming the field when the config asks for lower.
pub fn check_oom_score_adj(adj: i32) -> Result<()> {
    let cur: i32 = crate::sys::read_text("/proc/self/oom_score_adj")
        .context("read /proc/self/oom_score_adj")?
        .trim()
        .parse()
        .context("parse /proc/self/oom_score_adj")?;
    if adj < cur {
        bail!(
            "process.oomScoreAdj: {adj} is below the runtime's own {cur}: a rootless \
             container may only raise it"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_is_the_initial_namespace() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
        assert!(!is_identity_map(""));
    }

    #[test]
    fn resources_that_need_a_cgroup() {
        let r = |s: &str| -> oci_spec::runtime::LinuxResources { serde_json::from_str(s).unwrap() };
        assert_eq!(resource_asked(&r("{}")), None);
        assert_eq!(
            resource_asked(&r(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#)),
            None
        );
        assert_eq!(resource_asked(&r(r#"{"memory":{}}"#)), None);
        assert_eq!(
            resource_asked(&r(r#"{"memory":{"limit":1048576}}"#)),
            Some("linux.resources.memory")
        );
        assert_eq!(
            resource_asked(&r(r#"{"pids":{"limit":10}}"#)),
            Some("linux.resources.pids")
        );
        assert_eq!(
            resource_asked(&r(r#"{"unified":{"memory.max":"1M"}}"#)),
            Some("linux.resources.unified")
        );
    }

    #[test]
    fn permission_errors_are_found_in_the_chain() {
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::EACCES))
            .context("create cgroup");
        assert!(is_permission_error(&e));
        let e = anyhow::Error::from(nix::errno::Errno::EROFS).context("mkdir");
        assert!(is_permission_error(&e));
        let e = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOENT));
        assert!(!is_permission_error(&e));
    }

    #[test]
    fn explicit_root_wins() {
        assert_eq!(
            state_root(Some(Path::new("/x")), true).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(
            state_root(None, false).unwrap(),
            PathBuf::from(ROOT_DEFAULT)
        );
    }
}
