//! Cgroup enforcement: containers that really hit their linux.resources
//! limits (memory, pids, devices), and the runc verbs built on the cgroup
//! (pause/resume, update, ps, kill --all, events). Each test runs on cgroup
//! v1 (legacy or hybrid) and pure v2 hosts, prints which one it ran on, and
//! checks that the container's cgroup dirs are gone afterwards (the Runtime
//! guard force-deletes what a failed test leaves).
//!
//! Runtime commands used besides the harness's: `events ID`,
//! `events --stats ID`, `pause ID`, `resume ID`, `update --memory 64m ID`,
//! `update --pids-limit 20 ID`, `ps ID`, `ps --format json ID`,
//! `kill --all ID KILL`.

use serde_json::{json, Value};
use spec_tests::cgroupv2::*;
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

const MIB: u64 = 1 << 20;
/// How long to wait for an OOM event or for a container to report back.
/// Generous because the cgroup v2 pass runs in an emulated VM.
const SLOW_TIMEOUT: Duration = Duration::from_secs(15);

/// A memory limit of `limit` bytes with memory+swap equal to it (no swap),
/// where the host can limit swap (v2, or v1 with swap accounting).
fn memory_without_swap(limit: u64) -> Value {
    let swap_accounting =
        cgroup2_only() || Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    if swap_accounting {
        json!({"limit": limit, "swap": limit})
    } else {
        json!({"limit": limit})
    }
}

/// Force-deletes the container and asserts nothing of it (state, cgroup dirs
/// of its id or of its test's prefix, init) is left.
#[track_caller]
fn delete_and_check(rt: &Runtime, b: &Bundle, pid: Option<i32>, prefix: &str) {
    rt.delete_force(b.id()).assert_ok();
    rt.assert_gone(b, pid);
    assert_no_cgroup_leftovers(prefix);
}

/// A memory hog for a 32 MiB limit: awk doubles a string up to 128 MiB
/// (about 256 MiB at the peak), prints its length and exits. Bounded, so a
/// runtime that fails to apply the limit fails the test without eating
/// the host's (or the VM's) memory, as `tail /dev/zero` would.
const HOG: &str = r#"awk 'BEGIN { s = "x"; while (length(s) < 134217728) s = s s; print "hog survived", length(s) }'"#;

/// The memory limit OOM-kills the init that exceeds it.
#[test]
fn memory_limit_oom_kills_init() {
    announce("memory_limit_oom_kills_init");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-oom");
    b.sh(&format!("exec {HOG}"));
    b.config_mut()["linux"]["resources"]["memory"] = memory_without_swap(32 * MIB);
    let out = rt.run(&b);
    assert_eq!(
        out.code(),
        Some(137),
        "init over a 32 MiB memory limit was not SIGKILLed (128+9):\n{out}"
    );
    rt.assert_gone(&b, None);
    assert_no_cgroup_leftovers("cgl-oom");
}

/// `events` reports an OOM kill inside a running container as
/// {"type":"oom","id":ID}, and the cgroup counts it (oom_kill in
/// memory.events on v2, memory.oom_control on v1). The hog is a child of
/// init, started again and again until the test has seen the event, so the
/// test doesn't depend on when `events` starts watching.
#[test]
fn oom_kill_is_reported_by_events() {
    announce("oom_kill_is_reported_by_events");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-oomev");
    let out = b.out_dir();
    b.sh(&format!(
        "while [ ! -e /out/stop ]; do {HOG} > /out/hog 2>&1; sleep 0.2; done; exec sleep 300"
    ));
    b.config_mut()["linux"]["resources"]["memory"] = memory_without_swap(32 * MIB);
    let pid = rt.create_and_start(&b);
    let mut events = Background::spawn(&rt, &["events", b.id()]);
    let id = b.id().to_string();
    let oom = events.wait_json_line(SLOW_TIMEOUT, |v| v["type"] == "oom");
    let Some(oom) = oom else {
        let hog = fs::read_to_string(out.join("hog")).unwrap_or_default();
        panic!(
            "no oom event within {SLOW_TIMEOUT:?} (the hog's last output: {:?}):\n{}",
            hog.trim(),
            events.describe()
        );
    };
    assert_eq!(oom["id"], json!(id), "oom event names another container");
    // The event may come as the OOM starts, before the kill is counted.
    // (oom_kill is in v1's memory.oom_control since Linux 4.13.)
    let oom_kills = || {
        let text = host_read(&b, "memory", "memory.oom_control", "memory.events");
        keyed_value(&text, "oom_kill")
    };
    let counted = poll(SLOW_TIMEOUT, || oom_kills().filter(|n| *n >= 1));
    fs::write(out.join("stop"), "").unwrap();
    assert!(
        counted.is_some(),
        "the cgroup counted no oom_kill: {:?}",
        oom_kills()
    );
    delete_and_check(&rt, &b, Some(pid), "cgl-oomev");
}

/// The pids limit stops a fork loop: of 50 background sleeps, some fail and
/// no more start than the limit allows. busybox sh exits at its first failed
/// fork, so the loop is awk's: system() reports a failed fork as a non-zero
/// status and awk carries on.
#[test]
fn pids_limit_stops_fork_loop() {
    announce("pids_limit_stops_fork_loop");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-pids");
    b.config_mut()["linux"]["resources"]["pids"] = json!({"limit": 10});
    // sleep 300, not 10: in the emulated VM the loop is slow, and a sleeper
    // that ended would free its pid. They die with init (pid namespace).
    b.args(&[
        "awk",
        r#"BEGIN { ok = 0; failed = 0
                   for (i = 0; i < 50; i++) { if (system("sleep 300 &") == 0) ok++; else failed++ }
                   printf "forked=%d failed=%d\n", ok, failed }"#,
    ]);
    let out = rt.run(&b).assert_ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("forked="))
        .unwrap_or_else(|| panic!("no result line:\n{out}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let (forked, failed) = (nums[0], nums[1]);
    eprintln!("pids.max=10: {forked} forks succeeded, {failed} failed");
    assert_eq!(forked + failed, 50, "{out}");
    assert!(failed > 0, "no fork failed with pids.max=10:\n{out}");
    assert!(
        (1..=10).contains(&forked),
        "{forked} background processes started with pids.max=10:\n{out}"
    );
    rt.assert_gone(&b, None);
    assert_no_cgroup_leftovers("cgl-pids");
}

/// linux.resources.devices is enforced (the eBPF device filter on v2): with
/// "deny all, allow c 1:3 rwm, allow c 1:5 r", /dev/null works, /dev/zero
/// can be read but not written and /dev/full can't be opened at all, with
/// EPERM, although linux.devices creates their nodes. A device the config
/// lists in linux.devices gets the access linux.resources.devices gives it:
/// runc drops its built-in rule for a default device the config lists
/// (libcontainer/specconv createDevices), and doesn't allow linux.devices
/// entries by itself.
#[test]
fn device_rules_are_enforced() {
    announce("device_rules_are_enforced");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-dev");
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
    b.config_mut()["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
    ]);
    // One line per probe: "<name> ok" or "<name> failed: <error>".
    b.sh(r#"try() { if msg=$(eval "$2" 2>&1); then echo "$1 ok"; else echo "$1 failed: $msg"; fi; }
            for d in null zero full; do [ -c /dev/$d ] && echo "node-$d ok" || echo "node-$d failed: missing"; done
            try null-write 'echo x > /dev/null'
            try null-read 'cat /dev/null'
            try zero-read 'head -c 4 /dev/zero > /dev/null'
            try zero-write 'echo x > /dev/zero'
            try full-write 'echo x > /dev/full'
            try full-read 'head -c 1 /dev/full > /dev/null'"#);
    let out = rt.run(&b).assert_ok();
    let result = |name: &str| -> String {
        let prefix = format!("{name} ");
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} line:\n{out}"))
            .to_string()
    };
    for ok in [
        "node-null",
        "node-zero",
        "node-full",
        "null-write",
        "null-read",
        "zero-read",
    ] {
        assert_eq!(result(ok), "ok", "{ok} should work:\n{out}");
    }
    for denied in ["zero-write", "full-write", "full-read"] {
        let r = result(denied);
        assert!(
            r.starts_with("failed") && r.contains("Operation not permitted"),
            "{denied} should fail with EPERM, got {r:?}:\n{out}"
        );
    }
    rt.assert_gone(&b, None);
    assert_no_cgroup_leftovers("cgl-dev");
}

/// pause freezes every process (state "paused", a counter written by the
/// container stops for 500 ms, the freezer says frozen); resume thaws them.
#[test]
fn pause_freezes_and_resume_thaws() {
    announce("pause_freezes_and_resume_thaws");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-pause");
    let out = b.out_dir();
    b.sh("i=0; while :; do i=$((i+1)); echo $i > /out/counter; sleep 0.05; done");
    let pid = rt.create_and_start(&b);
    let counter = out.join("counter");
    let read = || fs::read_to_string(&counter).unwrap_or_default();
    let changes = |from: String| poll(SLOW_TIMEOUT, || (read() != from).then_some(()));
    assert!(
        wait_for_file(&counter, SLOW_TIMEOUT) && changes(read()).is_some(),
        "counter never ran: {:?}",
        read()
    );

    rt.exec(&["pause", b.id()]).assert_ok();
    assert_eq!(rt.status(b.id()), "paused");
    let frozen = if cgroup2_only() {
        keyed_value(&host_read(&b, "", "", "cgroup.events"), "frozen") == Some(1)
    } else {
        host_read(&b, "freezer", "freezer.state", "") == "FROZEN"
    };
    assert!(frozen, "the container's cgroup is not frozen while paused");
    let before = read();
    thread::sleep(Duration::from_millis(500));
    assert_eq!(read(), before, "the counter moved while paused");

    rt.exec(&["resume", b.id()]).assert_ok();
    assert_eq!(rt.status(b.id()), "running");
    assert!(
        changes(before.clone()).is_some(),
        "the counter stayed at {before:?} after resume"
    );
    delete_and_check(&rt, &b, Some(pid), "cgl-pause");
}

/// Finds the container's own memory and pids limit files inside it and
/// writes "<memory> <pids>" to /out/limits every 0.1 s. The cgroup mount
/// (ro) shows the container's own cgroup at its root with runc; a runtime
/// that mounts the whole hierarchy shows it at the path in /proc/self/cgroup,
/// which is tried first.
const REPORT_LIMITS: &str = r#"
pick() { if [ -e "$1$2/$3" ]; then echo "$1$2/$3"; else echo "$1/$3"; fi; }
own() { sed -n "s/^[0-9]*:$1:\(.*\)$/\1/p" /proc/self/cgroup | head -n 1; }
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  p=$(sed -n 's/^0:://p' /proc/self/cgroup)
  M=$(pick /sys/fs/cgroup "$p" memory.max); P=$(pick /sys/fs/cgroup "$p" pids.max)
else
  M=$(pick /sys/fs/cgroup/memory "$(own '[^:]*memory[^:]*')" memory.limit_in_bytes)
  P=$(pick /sys/fs/cgroup/pids "$(own '[^:]*pids[^:]*')" pids.max)
fi
echo "$M $P" > /out/files
while :; do read m < "$M"; read p < "$P"; echo "$m $p" > /out/limits; sleep 0.1; done
"#;

/// update changes the memory and pids limits of a running container, as seen
/// from the host and from inside.
#[test]
fn update_changes_limits() {
    announce("update_changes_limits");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-upd");
    let out = b.out_dir();
    b.sh(REPORT_LIMITS);
    // No swap limit: `runc update --memory` alone leaves a v1 memsw limit as
    // it is, and v1 refuses a memory limit above memsw.
    b.config_mut()["linux"]["resources"]["memory"] = json!({"limit": 32 * MIB});
    b.config_mut()["linux"]["resources"]["pids"] = json!({"limit": 10});
    let pid = rt.create_and_start(&b);
    let inside = |want: &str| {
        let got = poll(SLOW_TIMEOUT, || {
            let l = fs::read_to_string(out.join("limits")).unwrap_or_default();
            (l.trim() == want).then_some(())
        });
        let files = fs::read_to_string(out.join("files")).unwrap_or_default();
        let last = fs::read_to_string(out.join("limits")).unwrap_or_default();
        assert!(
            got.is_some(),
            "inside, {} read {:?}, want {want:?}",
            files.trim(),
            last.trim()
        );
    };
    let host_memory = || host_read(&b, "memory", "memory.limit_in_bytes", "memory.max");
    let host_pids = || host_read(&b, "pids", "pids.max", "pids.max");

    inside(&format!("{} 10", 32 * MIB));
    assert_eq!(host_memory(), (32 * MIB).to_string());

    rt.exec(&["update", "--memory", "64m", b.id()]).assert_ok();
    assert_eq!(host_memory(), (64 * MIB).to_string());
    assert_eq!(host_pids(), "10", "update --memory changed pids.max");
    inside(&format!("{} 10", 64 * MIB));

    rt.exec(&["update", "--pids-limit", "20", b.id()])
        .assert_ok();
    assert_eq!(host_pids(), "20");
    assert_eq!(
        host_memory(),
        (64 * MIB).to_string(),
        "update --pids-limit changed the memory limit"
    );
    inside(&format!("{} 20", 64 * MIB));
    delete_and_check(&rt, &b, Some(pid), "cgl-upd");
}

/// Starts `sh -c script` and waits until the container's cgroup holds `n`
/// processes; returns the init pid and those pids.
fn start_with_procs(rt: &Runtime, b: &Bundle, n: usize) -> (i32, Vec<i32>) {
    let pid = rt.create_and_start(b);
    let procs = poll(SLOW_TIMEOUT, || {
        let p = host_procs(b);
        (p.len() == n).then_some(p)
    })
    .unwrap_or_else(|| panic!("the cgroup never held {n} processes: {:?}", host_procs(b)));
    assert!(
        procs.contains(&pid),
        "init {pid} not in its cgroup {procs:?}"
    );
    (pid, procs)
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// ps --format json lists the container's pids (init and its child sleep);
/// ps prints a table with a PID column holding the same pids.
#[test]
fn ps_lists_container_processes() {
    announce("ps_lists_container_processes");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-ps");
    b.sh("sleep 300 & wait");
    let (pid, procs) = start_with_procs(&rt, &b, 2);
    let child = *procs.iter().find(|p| **p != pid).unwrap();
    // The child is in the cgroup from its fork, but only named sleep once it has exec'd.
    let named = poll(SLOW_TIMEOUT, || (comm(child) == "sleep").then_some(()));
    assert!(
        named.is_some(),
        "child {child} is {:?}, not sleep",
        comm(child)
    );
    let want: BTreeSet<i32> = procs.iter().copied().collect();

    let out = rt.exec(&["ps", "--format", "json", b.id()]).assert_ok();
    let listed: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("ps --format json is not JSON ({e}):\n{out}"));
    let listed: BTreeSet<i32> = listed
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON array:\n{out}"))
        .iter()
        .map(|v| v.as_i64().unwrap_or_else(|| panic!("not a pid: {v}")) as i32)
        .collect();
    assert_eq!(listed, want, "ps --format json:\n{out}");

    let out = rt.exec(&["ps", b.id()]).assert_ok();
    let mut lines = out.stdout.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let col = header
        .iter()
        .position(|h| *h == "PID")
        .unwrap_or_else(|| panic!("no PID column:\n{out}"));
    let rows: BTreeSet<i32> = lines
        .map(|l| {
            l.split_whitespace()
                .nth(col)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("row without a pid: {l:?}\n{out}"))
        })
        .collect();
    assert_eq!(rows, want, "ps table:\n{out}");
    delete_and_check(&rt, &b, Some(pid), "cgl-ps");
}

/// kill --all signals every process of the container. The container shares
/// the host's pid namespace, so killing init alone would leave its children
/// running: only --all kills them.
#[test]
fn kill_all_kills_every_process() {
    announce("kill_all_kills_every_process");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-killall");
    b.remove_namespace("pid");
    b.sh("sleep 300 & sleep 301 & wait");
    let (pid, procs) = start_with_procs(&rt, &b, 3);
    rt.exec(&["kill", "--all", b.id(), "KILL"]).assert_ok();
    let alive = || -> Vec<i32> { procs.iter().copied().filter(|p| pid_alive(*p)).collect() };
    assert!(
        poll(SLOW_TIMEOUT, || alive().is_empty().then_some(())).is_some(),
        "still alive after kill --all KILL: {:?} of {procs:?}",
        alive()
    );
    rt.wait_status(b.id(), "stopped");
    assert!(
        host_procs(&b).is_empty(),
        "the cgroup still has processes: {:?}",
        host_procs(&b)
    );
    delete_and_check(&rt, &b, Some(pid), "cgl-killall");
}

/// events --stats prints one stats event with the cgroup's memory usage and
/// pid count.
#[test]
fn events_stats_reports_usage() {
    announce("events_stats_reports_usage");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-stats");
    b.args(&["sleep", "300"]);
    let pid = rt.create_and_start(&b);
    rt.wait_status(b.id(), "running");
    let out = rt.exec(&["events", "--stats", b.id()]).assert_ok();
    let events = json_lines(&out.stdout);
    assert_eq!(events.len(), 1, "want one JSON line:\n{out}");
    let ev = &events[0];
    assert_eq!(ev["type"], "stats", "{out}");
    assert_eq!(ev["id"], json!(b.id()), "{out}");
    let usage = ev["data"]["memory"]["usage"]["usage"].as_u64();
    assert!(
        usage.is_some_and(|u| u > 0),
        "data.memory.usage.usage: {usage:?}\n{out}"
    );
    let pids = ev["data"]["pids"]["current"].as_u64();
    assert!(
        pids.is_some_and(|p| p >= 1),
        "data.pids.current: {pids:?}\n{out}"
    );
    delete_and_check(&rt, &b, Some(pid), "cgl-stats");
}

/// A default device listed in linux.devices (Docker and Podman list /dev/ptmx-like nodes
/// for `--device`) keeps the access every container has when runc lists no Path for its
/// built-in rule: /dev/ptmx (5:2) and /dev/net/tun (10:200) open under a deny-all config.
/// berth used to drop the default rule of any listed default node: open got EPERM.
#[test]
fn listed_default_devices_keep_their_rules() {
    announce("listed_default_devices_keep_their_rules");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-ptmx");
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 438, "uid": 0, "gid": 0},
        {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438, "uid": 0, "gid": 0}
    ]);
    b.config_mut()["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
    b.sh(r#"for d in /dev/ptmx /dev/net/tun; do
              if msg=$( (exec 3<>$d) 2>&1); then echo "$d ok"; else echo "$d failed: $msg"; fi
            done"#);
    let out = rt.run(&b).assert_ok();
    for d in ["/dev/ptmx", "/dev/net/tun"] {
        assert!(
            out.stdout.lines().any(|l| l == format!("{d} ok")),
            "{d} should open:\n{out}"
        );
    }
    rt.assert_gone(&b, None);
    assert_no_cgroup_leftovers("cgl-ptmx");
}

/// Device access in runc's tolerant form: "rwa" is read and write (the unknown "a" is
/// ignored with a warning, as runc ignores it), not a refused config. berth refused it.
#[test]
fn device_access_ignores_unknown_letters() {
    announce("device_access_ignores_unknown_letters");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-rwa");
    b.config_mut()["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwa"}
    ]);
    b.sh(r#"head -c 1 /dev/zero >/dev/null && echo zero-read ok
            (echo x > /dev/zero) && echo zero-write ok"#);
    let out = rt.run(&b).assert_ok();
    for l in ["zero-read ok", "zero-write ok"] {
        assert!(out.stdout.lines().any(|x| x == l), "{l} expected:\n{out}");
    }
    if is_berth() {
        assert!(
            out.stderr.contains("linux.resources.devices[1].access"),
            "a warning naming the field expected:\n{out}"
        );
    }
    rt.assert_gone(&b, None);
    assert_no_cgroup_leftovers("cgl-rwa");
}

/// runc's other update flags: `--cpu-rt-period` and `--cpu-rt-runtime` reach cpu.rt_*_us
/// on v1 (v2 has no realtime group scheduling: refused naming the field), and
/// `--l3-cache-schema` of a container without an Intel RDT group is refused in one line.
/// berth had no such flags (a usage error).
#[test]
fn update_takes_realtime_and_rdt_flags() {
    let mode = announce("update_takes_realtime_and_rdt_flags");
    let rt = Runtime::new();
    let mut b = rt.bundle("cgl-updrt");
    b.args(&["sleep", "300"]);
    let pid = rt.create_and_start(&b);
    let out = rt.exec(&[
        "update",
        "--cpu-rt-period",
        "500000",
        "--cpu-rt-runtime",
        "0",
        b.id(),
    ]);
    if mode.is_v2() {
        let out = out.assert_fail();
        assert!(out.stderr.contains("realtime"), "{out}");
    } else {
        out.assert_ok();
        assert_eq!(host_read(&b, "cpu", "cpu.rt_period_us", "-"), "500000");
        assert_eq!(host_read(&b, "cpu", "cpu.rt_runtime_us", "-"), "0");
    }
    let out = rt
        .exec(&["update", "--l3-cache-schema", "L3:0=f", b.id()])
        .assert_fail();
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    delete_and_check(&rt, &b, Some(pid), "cgl-updrt");
}
