//! Control groups (config-linux.md "Control groups", "cgroupsPath",
//! resources). Checked from the host through the cgroup filesystems, so
//! the same tests work on hybrid (v1 + unified) and pure v2 hosts.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::path::Path;

fn sleeping(rt: &Runtime, prefix: &str) -> Bundle {
    let mut b = rt.bundle(prefix);
    b.args(&["sleep", "300"]);
    b
}

/// Asserts `pid` is in cgroupsPath in every hierarchy: listed in each
/// hierarchy's cgroup.procs there, and every line of /proc/<pid>/cgroup
/// ends with that path.
#[track_caller]
fn assert_in_cgroup(b: &Bundle, pid: i32) {
    let path = b.cgroups_path();
    let dirs = cgroup_dirs(&path);
    assert!(
        !dirs.is_empty(),
        "no cgroup hierarchies mounted on this host"
    );
    for d in &dirs {
        let procs = fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        assert!(
            procs.lines().any(|l| l.trim() == pid.to_string()),
            "pid {pid} not in {}/cgroup.procs: {procs:?}",
            d.display()
        );
    }
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines() {
        assert!(
            line.ends_with(&format!(":{path}")),
            "pid {pid} outside {path}: {line:?}\n{own}"
        );
    }
}

/// The process is placed in cgroupsPath at create (before start), and
/// stays there once running.
#[test]
fn process_is_in_configured_cgroup() {
    let rt = Runtime::new();
    let b = sleeping(&rt, "cgpath");
    rt.create(&b).assert_ok();
    let pid = rt.pid(b.id());
    assert_in_cgroup(&b, pid);
    rt.start(b.id()).assert_ok();
    rt.wait_status(b.id(), "running");
    assert_in_cgroup(&b, pid);
}

/// delete removes the cgroup directory in every hierarchy.
#[test]
fn delete_removes_cgroup_dirs() {
    let rt = Runtime::new();
    let b = sleeping(&rt, "cgdel");
    let pid = rt.create_and_start(&b);
    let dirs = cgroup_dirs(&b.cgroups_path());
    for d in &dirs {
        assert!(d.is_dir(), "{} missing while running", d.display());
    }
    rt.delete_force(b.id()).assert_ok();
    rt.assert_gone(&b, Some(pid));
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// Reads a cgroup file of the container in the hierarchy that has it.
fn cgroup_value(b: &Bundle, v1_controller: &str, v1_file: &str, v2_file: &str) -> String {
    let rel = b.cgroups_path().trim_start_matches('/').to_string();
    let path = if cgroup2_only() {
        Path::new("/sys/fs/cgroup").join(&rel).join(v2_file)
    } else {
        Path::new("/sys/fs/cgroup")
            .join(v1_controller)
            .join(&rel)
            .join(v1_file)
    };
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// linux.resources are written to the container's cgroup, and a config
/// with resources still runs.
#[test]
fn resources_are_applied() {
    let rt = Runtime::new();
    let mut b = rt.bundle("cgres");
    let out = b.out_dir();
    b.sh("touch /out/started; exec sleep 300");
    b.config_mut()["linux"]["resources"] = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864},
        "pids": {"limit": 64},
        "cpu": {"shares": 512}
    });
    rt.create_and_start(&b);
    assert!(
        wait_for_file(&out.join("started"), WAIT_TIMEOUT),
        "container with resources did not run"
    );
    assert_eq!(
        cgroup_value(&b, "memory", "memory.limit_in_bytes", "memory.max"),
        "67108864"
    );
    assert_eq!(cgroup_value(&b, "pids", "pids.max", "pids.max"), "64");
    if !cgroup2_only() {
        // cgroup v2 has no shares; runtimes convert them to cpu.weight with
        // differing formulas, so only v1 is checked exactly.
        assert_eq!(cgroup_value(&b, "cpu", "cpu.shares", ""), "512");
    }
}

/// The pids limit is enforced: forks beyond it fail inside the container.
#[test]
fn pids_limit_is_enforced() {
    let rt = Runtime::new();
    let mut b = rt.bundle("cgpids");
    b.config_mut()["linux"]["resources"]["pids"] = json!({"limit": 5});
    // busybox sh gives up ("can't fork: Resource temporarily unavailable")
    // at the first failed fork; the sleepers die with pid 1 when it exits.
    b.sh("i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); done; echo all-forked");
    let out = rt.run(&b);
    assert!(
        !out.stdout.contains("all-forked"),
        "10 forks succeeded with pids.max=5:\n{out}"
    );
    assert!(
        out.stderr.contains("Resource temporarily unavailable"),
        "no fork failed with EAGAIN:\n{out}"
    );
}
