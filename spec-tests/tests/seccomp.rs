//! linux.seccomp (config-linux.md "Seccomp"): the filter applies to the container process,
//! with and without noNewPrivileges.

use serde_json::json;
use spec_tests::*;

fn errno_filter(nnp: bool) {
    let rt = Runtime::new();
    let mut b = rt.bundle("seccomp");
    b.config_mut()["process"]["noNewPrivileges"] = json!(nnp);
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            // Calls the runtime's own init does not make: without noNewPrivileges the filter
            // is loaded before the capabilities are dropped, so it applies to init too.
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}
        ]
    });
    b.sh("mkdir /dev/shm/x; echo mkdir=$?; chmod 700 /dev/shm; echo chmod=$?; echo alive");
    let out = rt.run(&b).assert_ok();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert!(out.stdout.contains("mkdir=1"), "{out}");
    // errnoRet 30 is EROFS.
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(out.stdout.contains("alive"), "{out}");
}

#[test]
fn errno_rules_with_no_new_privileges() {
    errno_filter(true);
}

#[test]
fn errno_rules_without_no_new_privileges() {
    errno_filter(false);
}

#[test]
fn kill_process_action_kills_with_sigsys() {
    let rt = Runtime::new();
    let mut b = rt.bundle("seccompkill");
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]
    });
    b.args(&["/bin/uname"]);
    let out = rt.run(&b);
    assert_eq!(out.code(), Some(128 + 31), "SIGSYS expected: {out}");
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let rt = Runtime::new();
    let mut b = rt.bundle("seccompunk");
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO"}]
    });
    b.sh("mkdir /dev/shm/y 2>/dev/null; echo mkdir=$?");
    let out = rt.run(&b).assert_ok();
    assert!(out.stdout.contains("mkdir=1"), "{out}");
}
