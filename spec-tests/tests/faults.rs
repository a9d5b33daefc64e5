//! Fault injection: runtimes killed in the middle of `create`, and a forced delete racing a
//! create of the same id, as on a busy node where engines time calls out and retry. What
//! must hold: no command hangs, `state` never shows a create that nobody is finishing as
//! "creating", a forced delete always succeeds, and after it nothing is left (state dir,
//! cgroup dirs in every hierarchy, processes).

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

/// Processes still in the container's cgroup dirs.
fn cgroup_procs(cgroups_path: &str) -> Vec<String> {
    cgroup_dirs(cgroups_path)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `create` SIGKILLed at 200 points spread over the whole create (0 to 12 ms in): `state`
/// then reports the container as created (the runtime had finished), stopped (it had not:
/// init does not outlive an unfinished create) or absent; never "creating" with nobody
/// creating it. `delete --force` then succeeds and leaves nothing.
#[test]
fn killed_create_is_stopped_and_delete_force_leaves_nothing() {
    let rt = Runtime::new();
    let mut delays = Delays(0x9e37_79b9_7f4a_7c15);
    let mut creating = Vec::new();
    let mut leftovers = Vec::new();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..200 {
        let mut b = rt.bundle("killed");
        b.args(&["sleep", "10"]);
        b.write();
        rt.track(b.id());
        let dir = b.dir().to_string_lossy().into_owned();
        let mut create = rt.spawn(&["create", "--bundle", &dir, b.id()], &[]);
        std::thread::sleep(Duration::from_micros(delays.next_micros(12_000)));
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
        rt.delete_force(b.id()).assert_ok();
        let state_dir = rt.root().join(b.id());
        let cgroups: Vec<_> = cgroup_dirs(&b.cgroups_path())
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        if state_dir.exists() || !cgroups.is_empty() {
            leftovers.push(format!(
                "run {i}: state dir {}, cgroups {cgroups:?}, procs {:?}",
                state_dir.exists(),
                cgroup_procs(&b.cgroups_path())
            ));
        }
    }
    eprintln!("killed create: state afterwards {outcomes:?}");
    if is_runc() && (!leftovers.is_empty() || !creating.is_empty()) {
        // runc 1.1.5 leaves cgroups behind when killed mid-create (78 of 200 measured).
        skip(
            "killed_create_is_stopped_and_delete_force_leaves_nothing",
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
fn forced_delete_racing_create_leaves_nothing() {
    let rt = Runtime::new();
    let mut delays = Delays(0x2545_f491_4f6c_dd1d);
    let mut failures = Vec::new();
    for i in 0..40 {
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
        if rt.root().join(b.id()).exists() || !cgroups.is_empty() {
            failures.push(format!("run {i}: leftovers: cgroups {cgroups:?}"));
        }
    }
    if is_runc() && !failures.is_empty() {
        skip(
            "forced_delete_racing_create_leaves_nothing",
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
