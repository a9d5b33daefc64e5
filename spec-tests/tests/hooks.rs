//! OCI hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): each kind runs once,
//! at its moment, in order, with the container's state on stdin.

use serde_json::{json, Value};
use spec_tests::*;

/// A hook that appends "KIND <state json>" to `log`.
fn hook(kind: &str, log: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("s=$(cat); echo \"{kind} $s\" >> {log}")],
        "env": ["PATH=/bin:/usr/bin"],
    })
}

fn read_log(path: &std::path::Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (kind, state) = l.split_once(' ').expect("KIND STATE");
            (
                kind.to_string(),
                serde_json::from_str(state).expect("state JSON"),
            )
        })
        .collect()
}

#[test]
fn every_hook_kind_fires_once_in_order_with_state() {
    if is_runc() {
        // Seen here with runc 1.1.5: its poststart hooks run during `create` (right after
        // createContainer), before startContainer and before the user's program starts;
        // runtime.md puts poststart after the user-specified process is started.
        skip(
            "every_hook_kind_fires_once_in_order_with_state",
            "runc 1.1 runs poststart hooks at create, not at start",
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("hooks");
    // The same absolute path outside and inside the container, so hooks that run in the
    // container's mount namespace (before and after pivot_root) reach the same file.
    let dir = b.dir().join("hooklog");
    let dir_s = dir.to_string_lossy().into_owned();
    b.bind_dir("hooklog", &dir_s, false);
    let log = format!("{dir_s}/log");
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let mut hooks = json!({});
    for k in kinds {
        hooks[k] = json!([hook(k, &log)]);
    }
    b.config_mut()["hooks"] = hooks;
    b.config_mut()["annotations"] = json!({"org.example.hooks": "yes"});
    b.sh("true");
    let logp = dir.join("log");

    rt.create(&b).assert_ok();
    let pid = rt.pid(b.id());
    let after_create: Vec<String> = read_log(&logp).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        after_create,
        ["prestart", "createRuntime", "createContainer"]
    );
    rt.start(b.id()).assert_ok();
    rt.wait_status(b.id(), "stopped");
    rt.delete(b.id()).assert_ok();

    let entries = read_log(&logp);
    let got: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got, kinds, "each hook once, in lifecycle order");
    let bundle = std::fs::canonicalize(b.dir()).unwrap();
    for (kind, st) in &entries {
        assert_eq!(st["id"], b.id(), "{kind}: id");
        assert_eq!(
            st["bundle"],
            bundle.to_string_lossy().as_ref(),
            "{kind}: bundle"
        );
        assert!(st["ociVersion"].is_string(), "{kind}: ociVersion");
        assert_eq!(
            st["annotations"]["org.example.hooks"], "yes",
            "{kind}: annotations"
        );
        if kind != "poststop" {
            assert_eq!(st["pid"], pid, "{kind}: pid");
        }
    }
    let status = |k: &str| entries.iter().find(|(x, _)| x == k).unwrap().1["status"].clone();
    assert_eq!(status("createRuntime"), "creating");
    assert_eq!(status("createContainer"), "creating");
    assert_eq!(status("poststart"), "running");
    assert_eq!(status("poststop"), "stopped");
    rt.assert_gone(&b, Some(pid));
}

#[test]
fn failing_create_runtime_hook_fails_create_and_undoes_it() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hookfail");
    b.config_mut()["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.sh("true");
    rt.create(&b).assert_fail();
    rt.assert_gone(&b, None);
}

#[test]
fn hook_timeout_fails_create() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hooktimeout");
    b.config_mut()["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    b.sh("true");
    let t = std::time::Instant::now();
    rt.create(&b).assert_fail();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "timeout not honoured"
    );
    rt.assert_gone(&b, None);
}

/// A startContainer hook runs in init after `start` wrote the exec fifo; its failure is
/// `start`'s error (runtime.md: a startContainer failure is an error of start), not a silent
/// exit 0 with the reason only on the container's stderr.
#[test]
fn failing_start_container_hook_fails_start() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hookstart");
    b.config_mut()["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    b.sh("echo should-not-run");
    rt.create(&b).assert_ok();
    let out = rt.start(b.id());
    if is_runc() && out.success() {
        // Seen with runc 1.1.5: start exits 0, the container stops without running its
        // program, and the hook's failure is on init's stderr only.
        skip(
            "failing_start_container_hook_fails_start",
            "runc 1.1.5 does not report a failing startContainer hook from start",
        );
        return;
    }
    let out = out.assert_fail();
    assert!(out.stderr.contains("startContainer"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out}");
    assert!(!out.stdout.contains("should-not-run"), "{out}");
}

/// runtime.md: when a poststart or poststop hook fails, the runtime logs a warning "but the
/// remaining hooks and lifecycle continue".
#[test]
fn hooks_after_a_failing_poststart_or_poststop_hook_still_run() {
    if is_runc() {
        // Seen with runc 1.1.5: a failing poststart hook fails `run` (the container is
        // destroyed), so the remaining poststart and poststop hooks are never reached.
        skip(
            "hooks_after_a_failing_poststart_or_poststop_hook_still_run",
            "runc 1.1.5 treats a failing poststart hook as an error of create",
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("hookwarn");
    let log = b.dir().join("log");
    let log_s = log.to_string_lossy().into_owned();
    b.config_mut()["hooks"] = json!({
        "poststart": [{"path": "/bin/false"}, hook("poststart", &log_s)],
        "poststop": [{"path": "/bin/false"}, hook("poststop", &log_s), {"path": "/bin/false"},
                     hook("poststop2", &log_s)],
    });
    b.sh("true");
    let out = rt.run(&b).assert_ok();
    let got: Vec<String> = read_log(&log).into_iter().map(|(k, _)| k).collect();
    assert_eq!(got, ["poststart", "poststop", "poststop2"], "{out}");
    assert!(
        out.stderr.contains("hooks.poststart[0]"),
        "a warning: {out}"
    );
    assert!(out.stderr.contains("hooks.poststop[2]"), "a warning: {out}");
}

/// A hook gets the state on stdin, stdout and stderr, and no other fd: none of the runtime's
/// own, none its caller passed (here fd 3, not preserved).
#[test]
fn hooks_get_only_stdin_stdout_and_stderr() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hookfds");
    // The same absolute path outside and inside the container (see the first test).
    let dir = b.dir().join("hooklog");
    let dir_s = dir.to_string_lossy().into_owned();
    b.bind_dir("hooklog", &dir_s, false);
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let mut hooks = json!({});
    for k in kinds {
        // ls lists its own fds: the hook's (the shell keeps its own close-on-exec) plus
        // the directory it reads, 3 when nothing else is open.
        hooks[k] = json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >/dev/null; ls /proc/self/fd > {dir_s}/{k}")],
            "env": ["PATH=/bin:/usr/bin"],
        }]);
    }
    b.config_mut()["hooks"] = hooks;
    b.sh("true");
    let extra = std::fs::File::open("/dev/null").unwrap();
    let out = rt
        .spawn_run(&b, &[], &[std::os::fd::AsRawFd::as_raw_fd(&extra)])
        .wait(std::time::Duration::from_secs(60));
    for k in kinds {
        let fds = std::fs::read_to_string(dir.join(k))
            .unwrap_or_else(|e| panic!("{k} hook did not run ({e}): {out}"));
        let fds: Vec<&str> = fds.lines().collect();
        if is_runc() && fds != ["0", "1", "2", "3"] && k == "createContainer" {
            // Seen with runc 1.1.5: `runc init` hands its own fds (3..6) to the hooks it
            // runs; the others are clean.
            skip(
                "hooks_get_only_stdin_stdout_and_stderr",
                &format!("runc 1.1.5 leaks fds {fds:?} into {k} hooks"),
            );
            continue;
        }
        assert_eq!(fds, ["0", "1", "2", "3"], "{k} hook's fds: {out}");
    }
}

/// config.md: a createContainer hook runs with the container's root as its working
/// directory (before pivot_root: the rootfs as the container's mount namespace sees it).
#[test]
fn create_container_hook_runs_in_the_container_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("hookcwd");
    let dir = b.dir().join("hooklog");
    let dir_s = dir.to_string_lossy().into_owned();
    b.bind_dir("hooklog", &dir_s, false);
    b.config_mut()["hooks"] = json!({"createContainer": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("pwd -P > {dir_s}/cwd; ls > {dir_s}/ls")],
        "env": ["PATH=/bin:/usr/bin"],
    }]});
    b.sh("true");
    rt.create(&b).assert_ok();
    let cwd = std::fs::read_to_string(dir.join("cwd")).expect("the hook ran");
    let want = std::fs::canonicalize(b.rootfs()).unwrap();
    assert_eq!(cwd.trim(), want.to_string_lossy(), "hook's cwd");
    let ls = std::fs::read_to_string(dir.join("ls")).unwrap();
    assert!(ls.lines().any(|l| l == "bin"), "the rootfs's entries: {ls}");
    rt.delete(b.id()).assert_ok();
}
