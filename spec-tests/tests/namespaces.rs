//! Namespaces (config-linux.md "Namespaces", "User namespace mappings",
//! "Offset for Time Namespace"), hostname and domainname (config.md).
//!
//! A namespace is identified by the link /proc/<pid>/ns/<kind> (e.g.
//! "net:[4026531840]"): the container prints its own, and the test compares
//! it with the test process's (the host's) or a helper process's.

use serde_json::json;
use spec_tests::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Runs `b` and returns "kind -> link" for the given namespace kinds as
/// seen from inside the container.
fn ns_links_inside(rt: &Runtime, b: &mut Bundle, kinds: &[&str]) -> BTreeMap<String, String> {
    let script: String = kinds
        .iter()
        .map(|k| format!("echo {k} $(readlink /proc/self/ns/{k});"))
        .collect();
    b.sh(&script);
    let out = rt.run(b).assert_ok();
    let map: BTreeMap<String, String> = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect();
    for k in kinds {
        assert!(
            map.get(*k)
                .is_some_and(|v| v.starts_with(&format!("{k}:["))),
            "no {k} link printed:\n{out}"
        );
    }
    map
}

/// A namespace listed without a path MUST be new: its link differs from
/// the runtime's (here: the test process's) one.
fn assert_new_namespace(kind: &str) {
    let rt = Runtime::new();
    let mut b = rt.bundle(&format!("ns{kind}"));
    let inside = ns_links_inside(&rt, &mut b, &[kind]);
    assert_ne!(inside[kind], own_ns(kind), "{kind} namespace is the host's");
}

#[test]
fn new_pid_namespace() {
    assert_new_namespace("pid");
}

#[test]
fn new_network_namespace() {
    assert_new_namespace("net");
}

#[test]
fn new_ipc_namespace() {
    assert_new_namespace("ipc");
}

#[test]
fn new_uts_namespace() {
    assert_new_namespace("uts");
}

#[test]
fn new_mount_namespace() {
    assert_new_namespace("mnt");
}

/// In a new pid namespace the container process is pid 1.
#[test]
fn container_process_is_pid_1() {
    let rt = Runtime::new();
    let mut b = rt.bundle("pid1");
    b.sh("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("1"), "{out}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("sh -c ")),
        "/proc/1 is not the container process: {out}"
    );
}

/// Without a network entry the container stays in the runtime's network
/// namespace (config-linux.md: no entry means the namespace is inherited).
#[test]
fn no_network_namespace_shares_host() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hostnet");
    b.remove_namespace("network");
    let inside = ns_links_inside(&rt, &mut b, &["net"]);
    assert_eq!(inside["net"], own_ns("net"));
}

/// Same for ipc and uts (hostname dropped: setting it needs a private uts).
#[test]
fn no_ipc_and_uts_namespace_shares_host() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hostipc");
    b.remove_namespace("ipc").remove_namespace("uts");
    b.config_mut().as_object_mut().unwrap().remove("hostname");
    let inside = ns_links_inside(&rt, &mut b, &["ipc", "uts"]);
    assert_eq!(inside["ipc"], own_ns("ipc"));
    assert_eq!(inside["uts"], own_ns("uts"));
}

/// A namespace with a path is joined (setns), not created.
#[test]
fn join_network_namespace_by_path() {
    let holder = NsHolder::new(libc::CLONE_NEWNET, None);
    let rt = Runtime::new();
    let mut b = rt.bundle("joinnet");
    b.set_namespace("network", Some(&holder.ns_path("net")));
    let inside = ns_links_inside(&rt, &mut b, &["net"]);
    assert_ne!(
        holder.ns_link("net"),
        own_ns("net"),
        "helper is not in its own netns"
    );
    assert_eq!(inside["net"], holder.ns_link("net"));
}

/// Joining a uts namespace by path: the hostname set there is seen inside.
/// The config has no hostname, which would otherwise overwrite it.
#[test]
fn join_uts_namespace_by_path() {
    let holder = NsHolder::new(libc::CLONE_NEWUTS, Some("joined-uts"));
    let rt = Runtime::new();
    let mut b = rt.bundle("joinuts");
    b.config_mut().as_object_mut().unwrap().remove("hostname");
    b.set_namespace("uts", Some(&holder.ns_path("uts")));
    b.sh("hostname; readlink /proc/self/ns/uts");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["joined-uts", holder.ns_link("uts").as_str()],
        "{out}"
    );
}

/// Joining the pid namespace of another container: that container's
/// process is pid 1 in the second one's view.
#[test]
fn join_pid_namespace_of_other_container() {
    let rt = Runtime::new();
    let mut a = rt.bundle("pidowner");
    a.args(&["sleep", "300"]);
    let pid_a = rt.create_and_start(&a);
    rt.wait_status(a.id(), "running");
    let ns_a = fs::read_link(format!("/proc/{pid_a}/ns/pid"))
        .unwrap()
        .to_string_lossy()
        .into_owned();

    let mut b = rt.bundle("pidjoiner");
    b.set_namespace("pid", Some(&format!("/proc/{pid_a}/ns/pid")));
    b.sh("readlink /proc/self/ns/pid; tr '\\0' ' ' < /proc/1/cmdline; echo");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some(ns_a.as_str()), "{out}");
    assert_eq!(lines.get(1).map(|l| l.trim()), Some("sleep 300"), "{out}");
}

fn userns_bundle(rt: &Runtime, prefix: &str) -> Bundle {
    let mut b = rt.bundle(prefix);
    b.set_namespace("user", None);
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    b
}

/// uidMappings/gidMappings are written to the new user namespace: root in
/// the container is host uid/gid 100000.
#[test]
fn user_namespace_maps_ids() {
    let rt = Runtime::new();
    let mut b = userns_bundle(&rt, "userns");
    b.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; readlink /proc/self/ns/user");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "0 100000 65536", "uid_map: {out}");
    assert_eq!(lines[1], "0 100000 65536", "gid_map: {out}");
    assert_eq!(lines[2], "0");
    assert_eq!(lines[3], "0");
    assert_ne!(lines[4], own_ns("user"), "user namespace is the host's");
}

/// Seen from the host, the container's root is uid/gid 100000.
#[test]
fn user_namespace_host_ids() {
    let rt = Runtime::new();
    let mut b = userns_bundle(&rt, "usernshost");
    b.args(&["sleep", "300"]);
    let pid = rt.create_and_start(&b);
    rt.wait_status(b.id(), "running");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid").as_deref(),
        Some("100000 100000 100000 100000"),
        "{status}"
    );
    assert_eq!(
        status_field(&status, "Gid").as_deref(),
        Some("100000 100000 100000 100000"),
        "{status}"
    );
}

/// config.md hostname is set in the new uts namespace.
#[test]
fn hostname_is_set() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hostname");
    b.config_mut()["hostname"] = json!("spec-host");
    b.sh("hostname; cat /proc/sys/kernel/hostname");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["spec-host", "spec-host"],
        "{out}"
    );
}

/// config.md domainname (runtime-spec 1.1, PR opencontainers/runtime-spec
/// #1156) is set with setdomainname in the new uts namespace.
/// Skipped for runc: runc 1.1.5 implements runtime-spec 1.0.2-dev, which has
/// no domainname; it silently ignores the field and the container shows
/// "(none)". runc supports it from 1.2.
#[test]
fn domainname_is_set() {
    if is_runc() {
        skip(
            "domainname_is_set",
            "runc 1.1 predates runtime-spec 1.1's domainname field",
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("domainname");
    b.edit(|c| {
        c["hostname"] = json!("spec-host");
        c["domainname"] = json!("spec.domain");
    });
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["spec-host", "spec.domain"],
        "{out}"
    );
}

/// In a new cgroup namespace the container's own cgroups are the roots, so
/// every line of /proc/self/cgroup ends in ":/".
#[test]
fn cgroup_namespace_hides_host_paths() {
    let rt = Runtime::new();
    let mut b = rt.bundle("cgroupns");
    b.set_namespace("cgroup", None);
    b.sh("readlink /proc/self/ns/cgroup; cat /proc/self/cgroup");
    let out = rt.run(&b).assert_ok();
    let mut lines = out.stdout.lines();
    assert_ne!(
        lines.next().unwrap_or_default(),
        own_ns("cgroup"),
        "cgroup namespace is the host's"
    );
    let cg: Vec<&str> = lines.collect();
    assert!(!cg.is_empty(), "{out}");
    for l in cg {
        assert!(
            l.ends_with(":/"),
            "cgroup path not virtualised: {l:?}\n{out}"
        );
    }
}

/// The container's mounts stay in its mount namespace: while it runs, the
/// host mount table shows nothing under its (private) rootfs.
#[test]
fn container_mounts_invisible_on_host() {
    let rt = Runtime::new();
    let mut b = rt.bundle("mntns");
    let rootfs = b.private_rootfs();
    // Read-only root needs a remount of the rootfs bind: keep it so the
    // check covers that mount too.
    b.sh("touch /out/started; exec sleep 300");
    let out = b.out_dir();
    rt.create_and_start(&b);
    assert!(wait_for_file(&out.join("started"), WAIT_TIMEOUT));
    let lines = mountinfo::host_lines_mentioning(&rootfs.to_string_lossy());
    assert!(
        lines.is_empty(),
        "container mounts visible on the host:\n{}",
        lines.join("\n")
    );
}

fn uptime_secs(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad uptime {text:?}"))
}

/// config-linux.md timeOffsets: a new time namespace with a boottime
/// offset shifts /proc/uptime by it. Time namespaces are recent (Linux 5.6,
/// runtime-spec 1.1); runc 1.1 rejects them ("namespace {"time" ""} does
/// not exist"), so a runtime other than berth that fails mentioning "time"
/// is skipped with a notice. berth must pass.
#[test]
fn time_namespace_offsets() {
    if !Path::new("/proc/self/ns/time").exists() {
        skip("time_namespace_offsets", "kernel has no time namespaces");
        return;
    }
    const OFFSET: f64 = 1_000_000.0;
    let rt = Runtime::new();
    let mut b = rt.bundle("timens");
    b.set_namespace("time", None);
    b.edit(|c| {
        c["linux"]["timeOffsets"] = json!({
            "boottime": {"secs": OFFSET as i64, "nanosecs": 0},
            "monotonic": {"secs": OFFSET as i64, "nanosecs": 0}
        });
    });
    b.sh("cat /proc/uptime; readlink /proc/self/ns/time");
    let before = uptime_secs(&fs::read_to_string("/proc/uptime").unwrap());
    let out = rt.run(&b);
    let after = uptime_secs(&fs::read_to_string("/proc/uptime").unwrap());
    if !out.success() && !is_berth() && out.stderr.contains("time") {
        skip(
            "time_namespace_offsets",
            &format!("runtime rejects time namespaces: {}", out.stderr.trim()),
        );
        return;
    }
    let out = out.assert_ok();
    let mut lines = out.stdout.lines();
    let inside = uptime_secs(lines.next().unwrap_or_default());
    assert!(
        inside >= before + OFFSET - 1.0 && inside <= after + OFFSET + 1.0,
        "uptime inside {inside} not host uptime ({before}..{after}) + {OFFSET}\n{out}"
    );
    assert_ne!(
        lines.next().unwrap_or_default(),
        own_ns("time"),
        "time namespace is the host's"
    );
}

/// A hostname with a uts namespace joined by path is allowed (config.md asks only for a
/// uts namespace; runc 1.1.5 sets it there): the joined namespace gets the name.
#[test]
fn hostname_in_a_joined_uts_namespace() {
    let holder = NsHolder::new(libc::CLONE_NEWUTS, Some("before"));
    let rt = Runtime::new();
    let mut b = rt.bundle("joinutsname");
    b.config_mut()["hostname"] = json!("set-by-config");
    b.set_namespace("uts", Some(&holder.ns_path("uts")));
    b.sh("hostname; readlink /proc/self/ns/uts");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        vec!["set-by-config", holder.ns_link("uts").as_str()],
        "{out}"
    );
}

/// No mount namespace (allowed by config-linux.md): the container shares the host's mount
/// table and is only chroot'ed into its rootfs. berth mounts nothing then and refuses what
/// would need a mount (`mounts`, masked and read-only paths, `root.readonly`, ...).
#[test]
fn no_mount_namespace_shares_the_host_mount_table() {
    if is_runc() {
        // Not run: runc 1.1.5 without a mount namespace remounts the host's / as rslave and
        // mounts the config's mounts (and a bind of the rootfs) into the host's table.
        skip(
            "no_mount_namespace_shares_the_host_mount_table",
            "runc 1.1.5 would change the host's mounts",
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("nomntns");
    b.remove_namespace("mount");
    // A mount is refused, naming the field.
    let out = rt.create(&b).assert_fail();
    assert!(
        out.stderr.contains("mounts: needs a mount namespace"),
        "{out}"
    );
    rt.assert_gone(&b, None);

    let cfg = b.config_mut();
    cfg["mounts"] = json!([]);
    cfg["root"]["readonly"] = json!(false);
    let linux = cfg["linux"].as_object_mut().unwrap();
    linux.remove("maskedPaths");
    linux.remove("readonlyPaths");
    b.sh("ls /; echo done");
    rt.create(&b).assert_ok();
    let pid = rt.pid(b.id());
    let link = |p: &str| fs::read_link(p).unwrap().to_string_lossy().into_owned();
    assert_eq!(
        link(&format!("/proc/{pid}/ns/mnt")),
        link("/proc/self/ns/mnt"),
        "the host's mount namespace"
    );
    assert_eq!(
        mountinfo::host_mounts_under(&b.rootfs()),
        Vec::<String>::new(),
        "nothing mounted on the host"
    );
    rt.delete(b.id()).assert_ok();
    // The process sees the rootfs as its root: its entries, not the host's.
    let out = rt.run(&b).assert_ok();
    let names: Vec<&str> = out.stdout.lines().collect();
    assert!(names.contains(&"bin") && names.contains(&"done"), "{out}");
    assert!(!names.contains(&"work"), "the host's root: {out}");
    rt.assert_gone(&b, None);
}

/// A bind source under a directory only the host's root may search (0700), in a container
/// whose root is an unprivileged host uid (a user namespace mapped to 100000): the source is
/// opened before the user namespace, as runc opens it, and the container sees the files.
/// berth failed with EACCES.
#[test]
fn bind_source_the_container_user_cannot_reach() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let mut b = userns_bundle(&rt, "usernsbind");
    let private = rt.tmp().join("root-only");
    let data = private.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host\n").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("hello"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"]}),
    );
    b.sh("cat /data/hello");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "from the host", "{out}");
}

/// Id-mapped mounts (runtime-spec 1.1 `uidMappings`/`gidMappings` on a mount, and the
/// `idmap` option): a host directory owned by the host's root, in a container whose root is
/// host uid 100000. Without a mapping its files show the overflow id inside; with `idmap`
/// (the container's mapping) they belong to the container's root, and a file the container
/// creates there belongs to the host's root; with a mount mapping of its own (0 -> 101000),
/// the owner inside is 1000. runc 1.1.5 has no id-mapped mounts (labelled, not run).
#[test]
fn id_mapped_mounts() {
    if is_runc() {
        skip("id_mapped_mounts", "runc 1.1.5 has no id-mapped mounts");
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let rt = Runtime::new();
    let mut b = userns_bundle(&rt, "idmap");
    let rootfs = b.private_rootfs();
    for d in ["plain", "idmap", "own"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let data = rt.tmp().join("idmap-data");
    fs::create_dir_all(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(data.join("file"), "x").unwrap();
    let m = |dest: &str, opts: &[&str]| json!({"destination": dest, "type": "bind", "source": data, "options": opts});
    b.add_mount(m("/plain", &["rbind"]));
    b.add_mount(m("/idmap", &["rbind", "idmap"]));
    let mut own = m("/own", &["rbind"]);
    own["uidMappings"] = json!([{"containerID": 0, "hostID": 101000, "size": 1}]);
    own["gidMappings"] = json!([{"containerID": 0, "hostID": 101000, "size": 1}]);
    b.add_mount(own);
    b.sh(
        "stat -c 'plain %u %g' /plain/file; stat -c 'idmap %u %g' /idmap/file; \
          stat -c 'own %u %g' /own/file; touch /idmap/made-inside && echo made",
    );
    let out = rt.run(&b).assert_ok();
    for want in ["plain 65534 65534", "idmap 0 0", "own 1000 1000", "made"] {
        assert!(out.stdout.lines().any(|l| l == want), "{want}:\n{out}");
    }
    let made = fs::metadata(data.join("made-inside")).unwrap();
    assert_eq!(
        (made.uid(), made.gid()),
        (0, 0),
        "host owner of a file made inside"
    );
    let f = rt.exec(&["features"]).assert_ok();
    let v: serde_json::Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(v["linux"]["mountExtensions"]["idmap"]["enabled"], true);
}
