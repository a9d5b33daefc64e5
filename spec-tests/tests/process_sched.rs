//! Scheduling attributes of the process: linux.personality, process.scheduler,
//! process.ioPriority, process.execCPUAffinity (runtime-spec 1.1-1.3 fields).

use serde_json::json;
use spec_tests::*;

/// runc 1.1.5 predates these fields (runtime-spec 1.1/1.2): it ignores them.
fn runc_lacks(test: &str) -> bool {
    if is_runc() {
        skip(
            test,
            "runc 1.1 does not implement this runtime-spec 1.2 field",
        );
        return true;
    }
    false
}

#[test]
fn personality_linux32() {
    // Seen here: runc 1.1.5 ignores linux.personality (added in runc 1.2).
    if runc_lacks("personality_linux32") {
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("pers");
    b.config_mut()["linux"]["personality"] = json!({"domain": "LINUX32"});
    b.sh("uname -m");
    let out = rt.run(&b).assert_ok();
    let m = out.stdout.trim();
    assert!(m == "i686" || m == "i386", "uname -m under LINUX32: {out}");
}

#[test]
fn scheduler_batch_with_nice() {
    if runc_lacks("scheduler_batch_with_nice") {
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("sched");
    b.config_mut()["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    // /proc/self/stat: field 19 is nice, field 41 the policy (3 = SCHED_BATCH).
    b.sh("cut -d' ' -f19,41 /proc/self/stat");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "7 3", "{out}");
}

#[test]
fn io_priority_idle() {
    if runc_lacks("io_priority_idle") {
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("ioprio");
    b.config_mut()["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    b.sh("ionice -p $$");
    let out = rt.run(&b).assert_ok();
    assert!(
        out.stdout.contains("best-effort") && out.stdout.contains('6'),
        "{out}"
    );
}

#[test]
fn exec_cpu_affinity() {
    if runc_lacks("exec_cpu_affinity") {
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("affinity");
    b.config_mut()["process"]["execCPUAffinity"] = json!({"initial": "0"});
    b.sh("grep Cpus_allowed_list /proc/self/status");
    let out = rt.run(&b).assert_ok();
    assert!(out.stdout.trim().ends_with("\t0"), "{out}");
}
