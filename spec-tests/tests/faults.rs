//! Fault injection: runtimes killed in the middle of `create`, and a forced delete racing a
//! create of the same id, as on a busy node where engines time calls out and retry. What
//! must hold: no command hangs, `state` never shows a create that nobody is finishing as
//! "creating", a forced delete always succeeds, and after it nothing is left (state dir,
//! cgroup dirs in every hierarchy, mounts, processes). Also a fork bomb without a pid
//! namespace, ended by `delete --force` and `kill --all`, and a memory limit below what
//! init uses.
//!
//! Every test names itself `faultinj_...` (`make test-faults` runs them apart from the other
//! spec-tests) and prints `fault runs NAME: P passed, F failed`, one count per injected
//! fault, which scripts/test-faults.sh adds up.

use spec_tests::*;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift): the delays differ from run to run of a
/// loop, and from one test run to the next they are the same, so a failure can be replayed.
struct Delays(u64);

impl Delays {
    fn next_micros(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % max
    }
}

/// Prints the count line scripts/test-faults.sh adds up.
fn count(test: &str, runs: usize, failed: usize) {
    eprintln!(
        "fault runs {test}: {} passed, {failed} failed",
        runs - failed
    );
}

/// Host mounts (mountinfo mount points) under `dir`: what a killed create could leave.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&dir))
        .map(str::to_string)
        .collect()
}

/// Processes still in the container's cgroup dirs.
fn cgroup_procs(cgroups_path: &str) -> Vec<String> {
    cgroup_dirs(cgroups_path)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `create` SIGKILLed at 300 points spread over the whole create (0 to 40 ms in; a create
/// takes 10 to 40 ms here, depending on the load): `state`
/// then reports the container as created (the runtime had finished), stopped (it had not:
/// init does not outlive an unfinished create) or absent; never "creating" with nobody
/// creating it. `delete --force` then succeeds and leaves nothing: no state dir, no cgroup
/// dir in any hierarchy, no process in the container's cgroup, no mount under the bundle
/// or the state dir.
#[test]
fn faultinj_killed_create_is_stopped_and_delete_force_leaves_nothing() {
    let rt = Runtime::new();
    let mut delays = Delays(0x9e37_79b9_7f4a_7c15);
    let mut creating = Vec::new();
    let mut leftovers = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    let mut failed_runs = 0;
    const RUNS: usize = 300;
    for i in 0..RUNS {
        let left_before = leftovers.len();
        let mut b = rt.bundle("killed");
        b.args(&["sleep", "10"]);
        b.write();
        rt.track(b.id());
        let dir = b.dir().to_string_lossy().into_owned();
        let mut create = rt.spawn(&["create", "--bundle", &dir, b.id()], &[]);
        std::thread::sleep(Duration::from_micros(delays.next_micros(40_000)));
        unsafe { libc::kill(create.pid() as i32, libc::SIGKILL) };
        let _ = create.try_wait_for(CMD_TIMEOUT);
        // The killed runtime's processes may need a moment to notice (init sees the end
        // of its socket and exits).
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            let st = rt.state_out(b.id());
            let status = if st.success() {
                serde_json::from_str::<serde_json::Value>(&st.stdout).unwrap()["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            } else {
                "absent".to_string()
            };
            if status != "creating" || Instant::now() > deadline {
                break status;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        *outcomes.entry(status.clone()).or_default() += 1;
        if status == "creating" {
            creating.push(i);
        }
        let del = rt.delete_force(b.id());
        let state_dir = rt.root().join(b.id());
        let cgroups: Vec<_> = cgroup_dirs(&b.cgroups_path())
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        let procs = procs_in_cgroup(&b.cgroups_path());
        let mounts = [b.dir(), state_dir.as_path()]
            .iter()
            .flat_map(|d| mounts_under(d))
            .collect::<Vec<_>>();
        if !del.success()
            || state_dir.exists()
            || !cgroups.is_empty()
            || !procs.is_empty()
            || !mounts.is_empty()
        {
            leftovers.push(format!(
                "run {i}: delete --force ok {}, state dir {}, cgroups {cgroups:?}, cgroup procs \
                 {:?}, processes {procs:?}, mounts {mounts:?}",
                del.success(),
                state_dir.exists(),
                cgroup_procs(&b.cgroups_path())
            ));
            for pid in procs {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if status == "creating" || leftovers.len() > left_before {
            failed_runs += 1;
        }
    }
    eprintln!("killed create: state afterwards {outcomes:?}");
    count("killed_create", RUNS, failed_runs);
    if is_runc() && (!leftovers.is_empty() || !creating.is_empty()) {
        // runc 1.1.5 leaves cgroups behind when killed mid-create (78 of 200 measured).
        skip(
            "faultinj_killed_create_is_stopped_and_delete_force_leaves_nothing",
            &format!(
                "runc 1.1.5 left {} containers behind and {} \"creating\"",
                leftovers.len(),
                creating.len()
            ),
        );
        return;
    }
    assert!(
        creating.is_empty(),
        "state said \"creating\" after the runtime was killed, runs {creating:?}"
    );
    assert!(leftovers.is_empty(), "leftovers:\n{}", leftovers.join("\n"));
}

/// `delete --force` of an id while its `create` is in flight, 40 times at delays over the
/// whole create: the delete always succeeds, and afterwards the container is either fully
/// there (the delete came first) or gone; never a half-made one, and a last forced delete
/// leaves nothing.
#[test]
fn faultinj_forced_delete_racing_create_leaves_nothing() {
    let rt = Runtime::new();
    let mut delays = Delays(0x2545_f491_4f6c_dd1d);
    let mut failures = Vec::new();
    let mut failed_runs = 0;
    for i in 0..40 {
        let before = failures.len();
        let mut b = rt.bundle("race");
        b.args(&["sleep", "10"]);
        b.write();
        rt.track(b.id());
        let dir = b.dir().to_string_lossy().into_owned();
        let create = rt.spawn(&["create", "--bundle", &dir, b.id()], &[]);
        std::thread::sleep(Duration::from_micros(delays.next_micros(8_000)));
        let del = rt.delete_force(b.id());
        let created = create.wait(CMD_TIMEOUT);
        if !del.success() {
            failures.push(format!("run {i}: delete --force failed:\n{del}"));
        }
        let st = rt.state_out(b.id());
        if st.success() && !st.stdout.contains("\"created\"") {
            failures.push(format!("run {i}: a half-made container is left:\n{st}"));
        }
        if !created.success() && st.success() {
            failures.push(format!(
                "run {i}: create failed but left a container:\n{created}"
            ));
        }
        let last = rt.delete_force(b.id());
        if !last.success() {
            failures.push(format!("run {i}: the last delete --force failed:\n{last}"));
        }
        let cgroups: Vec<_> = cgroup_dirs(&b.cgroups_path())
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        let procs = procs_in_cgroup(&b.cgroups_path());
        if rt.root().join(b.id()).exists() || !cgroups.is_empty() || !procs.is_empty() {
            failures.push(format!(
                "run {i}: leftovers: cgroups {cgroups:?}, processes {procs:?}"
            ));
        }
        if failures.len() > before {
            failed_runs += 1;
        }
    }
    count("forced_delete_racing_create", 40, failed_runs);
    if is_runc() && !failures.is_empty() {
        skip(
            "faultinj_forced_delete_racing_create_leaves_nothing",
            &format!(
                "runc 1.1.5 failed {} of 40:\n{}",
                failures.len(),
                failures[0]
            ),
        );
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Host pids of processes whose cgroup (in any hierarchy) is `cgroups_path` or below it:
/// found through /proc, so a process that left the container's cgroup dir listing (or a
/// dir already removed) is still seen.
fn procs_in_cgroup(cgroups_path: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let inside = |p: &str| p == cgroups_path || p.starts_with(&format!("{cgroups_path}/"));
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|t| {
                t.lines()
                    .filter_map(|l| l.splitn(3, ':').nth(2))
                    .any(inside)
            }) && pid_alive(pid)
        })
        .collect()
}

/// The fork bomb (spec-tests/attack/forkbomb.c), built once, static.
fn forkbomb() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        build_static_c(
            "attack/forkbomb.c",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
            "forkbomb",
        )
    })
}

/// How many tasks the container's pids controller counts (v1 pids hierarchy or cgroup2).
fn pids_current(cgroups_path: &str) -> u64 {
    cgroup_dirs(cgroups_path)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("pids.current")).ok())
        .filter_map(|s| s.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// A container without a pid namespace that forks without end under pids.max=512 (every
/// process forks in a loop and retries a failed fork, so a slot freed by a kill is taken
/// again at once), its init a `sleep` beside the bomb. Pid-by-pid killing loses that race
/// (issue 14: 11 of 12 forced deletes failed with EBUSY, about 400 processes left). Six
/// rounds, alternating: `delete --force` straight away, and `kill --all KILL` (then every
/// process must be gone within 10 s, before any delete). Afterwards no process of the container is left anywhere and no cgroup dir.
#[test]
fn faultinj_fork_bomb_without_pid_namespace_is_ended() {
    let rt = Runtime::new();
    let mut failures = Vec::new();
    let mut failed_runs = 0;
    for round in 0..6 {
        let before = failures.len();
        let mut b = rt.bundle("bomb");
        b.remove_namespace("pid");
        b.edit(|c| c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 512}));
        std::fs::copy(forkbomb(), b.private_rootfs().join("forkbomb")).unwrap();
        // Init stays (a sleep, forking nothing) while the bomb runs beside it.
        b.sh("/forkbomb 60 & exec sleep 1000");
        rt.create_and_start(&b);
        let cg = b.cgroups_path();
        let deadline = Instant::now() + Duration::from_secs(20);
        while pids_current(&cg) < 400 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let tasks = pids_current(&cg);
        let how = if round % 2 == 0 {
            "delete --force"
        } else {
            "kill --all KILL"
        };
        if how == "kill --all KILL" {
            let k = rt.exec(&["kill", "--all", b.id(), "KILL"]);
            if !k.success() {
                failures.push(format!("round {round}: kill --all failed:\n{k}"));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while !procs_in_cgroup(&cg).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let left = procs_in_cgroup(&cg);
            if !left.is_empty() {
                failures.push(format!(
                    "round {round}: {} processes still running 10 s after kill --all KILL",
                    left.len()
                ));
            }
        }
        let del = rt.delete_force(b.id());
        if !del.success() {
            failures.push(format!(
                "round {round} ({how}): delete --force failed:\n{del}"
            ));
        }
        let left = procs_in_cgroup(&cg);
        let dirs: Vec<_> = cgroup_dirs(&cg)
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        if !left.is_empty() || !dirs.is_empty() || rt.root().join(b.id()).exists() {
            failures.push(format!(
                "round {round} ({how}, {tasks} tasks): {} processes left, cgroup dirs {dirs:?}",
                left.len()
            ));
        }
        // Whatever went wrong, end the round's processes so the next round (and the host)
        // start clean.
        for pid in left {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        eprintln!("fork bomb round {round}: {tasks} tasks, ended by {how}");
        if failures.len() > before {
            failed_runs += 1;
        }
    }
    count("fork_bomb", 6, failed_runs);
    if is_runc() && !failures.is_empty() {
        skip(
            "faultinj_fork_bomb_without_pid_namespace_is_ended",
            &format!(
                "runc 1.1.5 failed {} of 6:\n{}",
                failures.len(),
                failures[0]
            ),
        );
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A memory limit below what the container's init already uses: 8192 bytes with the OOM
/// killer disabled (init used to stall in the kernel's OOM wait for ever, and `create` with
/// it; cgroup v2 refuses disableOOMKiller itself) and 1 byte (init OOM-killed midway:
/// `sync recv: ECONNRESET`). `create` must fail
/// within 20 s, for berth in one line naming the field, and leave nothing: no state, no
/// cgroup, no process.
#[test]
fn faultinj_memory_limit_below_usage_fails_cleanly() {
    let rt = Runtime::new();
    let mut failures = Vec::new();
    let mut failed_runs = 0;
    for (limit, no_oom_killer) in [(8192, true), (1, false)] {
        let before = failures.len();
        let mut b = rt.bundle("memlow");
        b.edit(|c| {
            c["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": limit, "disableOOMKiller": no_oom_killer})
        });
        b.write();
        rt.track(b.id());
        let dir = b.dir().to_string_lossy().into_owned();
        let mut create = rt.spawn(&["create", "--bundle", &dir, b.id()], &[]);
        match create.try_wait_for(Duration::from_secs(20)) {
            None => failures.push(format!("limit {limit}: create hung for 20 s")),
            Some(out) if out.success() => {
                failures.push(format!("limit {limit}: create succeeded:\n{out}"))
            }
            Some(out) => {
                let want = format!(
                    "linux.resources.memory.limit: {limit} is below the container's current \
                     usage of"
                );
                // cgroup v2 has no switch for the OOM killer: that field is refused first.
                let v2_refusal = no_oom_killer
                    && cgroup2_only()
                    && out
                        .stderr
                        .contains("linux.resources.memory.disableOOMKiller: ");
                let named = out.stderr.contains(&want) || v2_refusal;
                if is_berth() && (out.stderr.lines().count() != 1 || !named) {
                    failures.push(format!("limit {limit}: not one line with {want:?}:\n{out}"));
                }
            }
        }
        // A hung create is killed here (drop), and its container cleaned up by delete.
        drop(create);
        let cg = b.cgroups_path();
        if !is_berth() {
            let _ = rt.delete_force(b.id());
        }
        let left = procs_in_cgroup(&cg);
        let dirs: Vec<_> = cgroup_dirs(&cg)
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        if rt.root().join(b.id()).exists() || !dirs.is_empty() || !left.is_empty() {
            failures.push(format!(
                "limit {limit}: left behind: state dir {}, cgroups {dirs:?}, processes {left:?}",
                rt.root().join(b.id()).exists()
            ));
            let _ = rt.delete_force(b.id());
            for pid in left {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if failures.len() > before {
            failed_runs += 1;
        }
    }
    count("memory_limit_below_usage", 2, failed_runs);
    if is_runc() && !failures.is_empty() {
        skip(
            "faultinj_memory_limit_below_usage_fails_cleanly",
            &format!("runc 1.1.5: {}", failures.join("\n")),
        );
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
