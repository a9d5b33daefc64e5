//! Helpers for the cgroup enforcement tests (`tests/cgroup_limits.rs`): the
//! host's cgroup mode, a container's cgroup files seen from the host, runtime
//! commands left running in the background whose output can be read while
//! they run (`events`), polling, and the check that no cgroup directory of a
//! test is left under `/spec-tests`.
//!
//! Everything works the same on a hybrid (v1 controllers plus a `unified`
//! cgroup2 mount), a legacy v1 and a pure cgroup v2 host; tests ask [`mode`]
//! which one they run on.

use crate::{cgroup2_only, cgroup_mounts, runtime_path, Bundle, Runtime};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The cgroup setup of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// v1 controllers, plus a cgroup2 hierarchy (usually `/sys/fs/cgroup/unified`).
    Hybrid,
    /// One cgroup2 hierarchy at /sys/fs/cgroup.
    Unified,
}

impl CgroupMode {
    /// True for pure cgroup v2.
    pub fn is_v2(self) -> bool {
        self == CgroupMode::Unified
    }
}

impl std::fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupMode::Legacy => "cgroup v1 (legacy)",
            CgroupMode::Hybrid => "cgroup v1 (hybrid)",
            CgroupMode::Unified => "cgroup v2 (unified)",
        })
    }
}

/// The host's cgroup mode, read from its mounts.
pub fn mode() -> CgroupMode {
    if cgroup2_only() {
        CgroupMode::Unified
    } else if cgroup_mounts().iter().any(|m| m.fstype == "cgroup2") {
        CgroupMode::Hybrid
    } else {
        CgroupMode::Legacy
    }
}

/// Prints (to the test's stderr) which cgroup mode `test` runs in; returns it.
pub fn announce(test: &str) -> CgroupMode {
    let m = mode();
    eprintln!("{test}: {m}, runtime {}", runtime_path().to_string_lossy());
    m
}

/// The container's directory for a controller: `/sys/fs/cgroup/<cgroupsPath>`
/// on v2, `/sys/fs/cgroup/<v1_controller>/<cgroupsPath>` on v1.
pub fn host_dir(b: &Bundle, v1_controller: &str) -> PathBuf {
    let rel = b.cgroups_path().trim_start_matches('/').to_string();
    if cgroup2_only() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(v1_controller).join(rel)
    }
}

/// Reads one of the container's cgroup files from the host, trimmed: `v1_file`
/// of controller `v1_controller` on v1, `v2_file` on v2. Panics if unreadable.
#[track_caller]
pub fn host_read(b: &Bundle, v1_controller: &str, v1_file: &str, v2_file: &str) -> String {
    let file = if cgroup2_only() { v2_file } else { v1_file };
    let path = host_dir(b, v1_controller).join(file);
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// The value of `key` in a flat-keyed cgroup file (`oom_kill 3` lines, as in
/// memory.events, memory.oom_control, pids.events, cgroup.events).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key))
            .then(|| it.next()?.parse().ok())
            .flatten()
    })
}

/// The pids in the container's cgroup (the v1 pids hierarchy, or v2), as the
/// host sees them; empty if the cgroup is gone.
pub fn host_procs(b: &Bundle) -> Vec<i32> {
    let path = host_dir(b, "pids").join("cgroup.procs");
    let mut pids: Vec<i32> = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// Calls `probe` every 20 ms until it returns Some or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The JSON objects among `text`'s lines (lines that aren't JSON are skipped:
/// a runtime may log to stdout).
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
        .collect()
}

/// A runtime command (`runtime --root <test root> args...`) running in the
/// background with stdout and stderr in files that can be read while it runs.
/// Killed and reaped on drop.
pub struct Background {
    child: Child,
    cmd: String,
    out: PathBuf,
    err: PathBuf,
}

impl Background {
    pub fn spawn(rt: &Runtime, args: &[&str]) -> Background {
        let n = crate::next_counter();
        let out = rt.tmp().join(format!("bg-{n}.out"));
        let err = rt.tmp().join(format!("bg-{n}.err"));
        let bin = runtime_path();
        let cmd = format!(
            "{} --root {} {}",
            bin.display(),
            rt.root().display(),
            args.join(" ")
        );
        let child = Command::new(&bin)
            .arg("--root")
            .arg(rt.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd}: {e}"));
        Background {
            child,
            cmd,
            out,
            err,
        }
    }

    /// What it printed so far.
    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The command line and its output so far, for failure messages.
    pub fn describe(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(None) => "still running".to_string(),
            Ok(Some(s)) => s.to_string(),
            Err(e) => e.to_string(),
        };
        format!(
            "$ {} [{status}]\n--- stdout\n{}--- stderr\n{}",
            self.cmd,
            self.stdout(),
            self.stderr()
        )
    }

    /// Waits until a JSON line of its stdout satisfies `want`; returns it.
    pub fn wait_json_line(
        &mut self,
        timeout: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        poll(timeout, || {
            json_lines(&self.stdout()).into_iter().find(|v| want(v))
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that no hierarchy has a directory of this test process's
/// containers with id prefix `prefix` under `/spec-tests` (ids are
/// `<prefix>-<pid>-<n>`, see [`crate::unique_id`]), waiting up to 5 s for
/// the runtime to remove them. Other tests' dirs (running in parallel, or
/// from other processes) are not looked at.
#[track_caller]
pub fn assert_no_cgroup_leftovers(prefix: &str) {
    let ours = format!("{prefix}-{}-", std::process::id());
    let find = || -> Vec<PathBuf> {
        cgroup_mounts()
            .iter()
            .filter_map(|m| fs::read_dir(Path::new(&m.mount_point).join("spec-tests")).ok())
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&ours))
            .map(|e| e.path())
            .collect()
    };
    let left = poll(Duration::from_secs(5), || {
        let l = find();
        l.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "cgroup dirs of {ours}* left under /spec-tests: {:?}",
        find()
    );
}
