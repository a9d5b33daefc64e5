//! Round trips of `Cgroup::apply` through the real cgroup filesystems of whatever host runs
//! them (hybrid or legacy v1 here, pure v2 in the test VM): apply, read the files back,
//! destroy, check nothing is left. They need root and skip without it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::*;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Serialises these tests and, on a hybrid host, puts the cgroup2 root's subtree_control
/// back as it was: apply enables controllers there (hugetlb here) that the host did not
/// have enabled, and a test should leave the host as it found it.
struct HostGuard {
    _lock: std::sync::MutexGuard<'static, ()>,
    restore: Option<(PathBuf, Vec<String>)>,
}

fn host_guard() -> HostGuard {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let host = Host::read().unwrap();
    let restore = (host.mode != Mode::Unified)
        .then(|| host.hierarchies.iter().find(|h| h.v2))
        .flatten()
        .map(|h| {
            let on = fs::read_to_string(h.mountpoint.join("cgroup.subtree_control")).unwrap();
            let on = on.split_whitespace().map(str::to_string).collect();
            (h.mountpoint.clone(), on)
        });
    HostGuard {
        _lock: lock,
        restore,
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let Some((root, before)) = &self.restore else {
            return;
        };
        let file = root.join("cgroup.subtree_control");
        let now = fs::read_to_string(&file).unwrap_or_default();
        for c in now
            .split_whitespace()
            .filter(|c| !before.iter().any(|b| b == c))
        {
            let _ = write_file(&file, &format!("-{c}"));
        }
    }
}

/// A cgroup for one test, destroyed (and checked gone) when dropped, even on panic.
struct TestCg {
    path: String,
    cg: Box<dyn Cgroup>,
    dirs: Vec<Dir>,
    mode: Mode,
}

impl TestCg {
    fn new(tag: &str) -> TestCg {
        let path = format!("/berth-res-test-{}-{tag}", std::process::id());
        let host = Host::read().unwrap();
        let (mode, dirs) = placement_dirs(&host, &path).unwrap();
        let cg = open(&path).unwrap();
        // A leftover of a crashed run with the same pid would skew the checks.
        let _ = cg.destroy();
        cg.create().unwrap();
        TestCg {
            path,
            cg,
            dirs,
            mode,
        }
    }

    /// The container's directory holding `controller` (v1 name) or, on v2, the only one.
    fn dir(&self, controller: &str) -> PathBuf {
        if self.mode == Mode::Unified {
            return self.dirs[0].path();
        }
        self.dirs
            .iter()
            .find(|d| d.has_v1_controller(controller))
            .unwrap_or_else(|| panic!("no {controller} hierarchy"))
            .path()
    }

    fn unified(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.v2)
    }

    fn read(&self, controller: &str, file: &str) -> String {
        let p = self.dir(controller).join(file);
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        let _ = signal_all(self.cg.as_ref(), Signal::SIGKILL);
        let destroyed = self.cg.destroy();
        let clean = ensure_clean(&self.path);
        if !std::thread::panicking() {
            destroyed.unwrap();
            clean.unwrap();
        }
    }
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

/// The first whole disk of the host as "MAJ:MIN", for throttle rules that need a device
/// the kernel knows.
fn a_disk() -> Option<String> {
    let text = fs::read_to_string("/proc/partitions").ok()?;
    text.lines().skip(2).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (name, dev) = (f.get(3)?, format!("{}:{}", f.first()?, f.get(1)?));
        // Whole disks have a queue; partitions do not.
        Path::new("/sys/block")
            .join(name)
            .join("queue")
            .exists()
            .then_some(dev)
    })
}

fn has_2mb_hugepages() -> bool {
    Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
}

#[test]
fn apply_round_trip() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = host_guard();
    let t = TestCg::new("rt");
    let v2 = t.mode == Mode::Unified;
    let mib = 1i64 << 20;
    let disk = a_disk();
    let mut spec = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}
        ],
        "memory": {"limit": 64 * mib, "reservation": 32 * mib, "swap": 128 * mib},
        "pids": {"limit": 64},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
    });
    if !v2 {
        spec["memory"]["swappiness"] = json!(10);
        spec["memory"]["disableOOMKiller"] = json!(true);
    } else {
        spec["unified"] = json!({"memory.high": (100 * mib).to_string()});
    }
    if let Some(d) = &disk {
        let (major, minor) = d.split_once(':').unwrap();
        let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
        spec["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
        });
    }
    let huge = has_2mb_hugepages();
    if huge {
        spec["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4 * mib}]);
    }
    let r = resources(spec);
    t.cg.apply(&r).unwrap();
    // Applying the same resources again (as an update would) changes nothing.
    t.cg.apply(&r).unwrap();

    assert_eq!(t.read("pids", "pids.max"), "64");
    assert_eq!(t.read("cpuset", "cpuset.cpus"), "0");
    assert_eq!(t.read("cpuset", "cpuset.mems"), "0");
    if v2 {
        assert_eq!(t.read("memory", "memory.max"), (64 * mib).to_string());
        assert_eq!(t.read("memory", "memory.low"), (32 * mib).to_string());
        assert_eq!(t.read("memory", "memory.high"), (100 * mib).to_string());
        if t.dir("memory").join("memory.swap.max").exists() {
            assert_eq!(t.read("memory", "memory.swap.max"), (64 * mib).to_string());
        }
        assert_eq!(t.read("cpu", "cpu.weight"), "20");
        assert_eq!(t.read("cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(
            t.read("memory", "memory.limit_in_bytes"),
            (64 * mib).to_string()
        );
        assert_eq!(
            t.read("memory", "memory.soft_limit_in_bytes"),
            (32 * mib).to_string()
        );
        assert_eq!(
            t.read("memory", "memory.memsw.limit_in_bytes"),
            (128 * mib).to_string()
        );
        assert_eq!(t.read("memory", "memory.swappiness"), "10");
        assert!(t
            .read("memory", "memory.oom_control")
            .contains("oom_kill_disable 1"));
        assert_eq!(t.read("cpu", "cpu.shares"), "512");
        assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu", "cpu.cfs_period_us"), "100000");
        let list = t.read("devices", "devices.list");
        let mut lines: Vec<&str> = list.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["b 7:0 r", "c 1:3 rw"]);
    }
    if let Some(d) = &disk {
        if v2 {
            assert_eq!(
                t.read("io", "io.max"),
                format!("{d} rbps=1048576 wbps=max riops=max wiops=100")
            );
        } else {
            assert_eq!(
                t.read("blkio", "blkio.throttle.read_bps_device"),
                format!("{d} 1048576")
            );
            assert_eq!(
                t.read("blkio", "blkio.throttle.write_iops_device"),
                format!("{d} 100")
            );
        }
    }
    let weight_files = if v2 {
        ["io.bfq.weight", "io.weight"]
    } else {
        ["blkio.weight", "blkio.bfq.weight"]
    };
    let bdir = t.dir("blkio");
    if let Some(f) = weight_files.iter().find(|f| bdir.join(f).exists()) {
        t.cg.apply(&resources(json!({"blockIO": {"weight": 500}})))
            .unwrap();
        let want = match *f {
            "io.weight" => "default 4950",
            "io.bfq.weight" => "default 500",
            _ => "500",
        };
        assert_eq!(t.read("blkio", f).lines().next(), Some(want), "{f}");
    } else {
        eprintln!("no I/O weight file on this host: weight not checked");
    }
    if huge {
        let on_v1 = t.dirs.iter().any(|d| d.has_v1_controller("hugetlb"));
        let (dir, file) = if on_v1 {
            (t.dir("hugetlb"), "hugetlb.2MB.limit_in_bytes")
        } else {
            (
                t.unified().expect("hugetlb somewhere").path(),
                "hugetlb.2MB.max",
            )
        };
        let got = fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(got.trim(), (4 * mib).to_string());
    }
}

#[test]
fn apply_errors_name_the_field() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = host_guard();
    let t = TestCg::new("err");
    let v2 = t.mode == Mode::Unified;
    let err = |v: serde_json::Value| -> String {
        format!("{:#}", t.cg.apply(&resources(v)).unwrap_err())
    };

    let e = err(json!({"memory": {"limit": 64 << 20, "swap": 32 << 20}}));
    assert!(e.starts_with("linux.resources.memory.swap: "), "{e}");

    // A value the kernel refuses: the file, the value and the errno are all in the error.
    let e = err(json!({"cpu": {"cpus": "9999"}}));
    assert!(
        e.starts_with("linux.resources.cpu.cpus: write 9999 to /sys/fs/cgroup/"),
        "{e}"
    );
    assert!(e.contains("cpuset.cpus: E"), "{e}");

    let e = err(json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}));
    assert!(
        e.starts_with("linux.resources.hugepageLimits[0].pageSize: "),
        "{e}"
    );
    let e = err(json!({"pids": {"limit": -5}}));
    assert!(e.starts_with("linux.resources.pids.limit: "), "{e}");

    if v2 {
        let e = err(json!({"memory": {"swappiness": 10}}));
        assert!(e.starts_with("linux.resources.memory.swappiness: "), "{e}");
        let e = err(json!({"cpu": {"realtimeRuntime": 1000}}));
        assert!(
            e.starts_with("linux.resources.cpu.realtimeRuntime: "),
            "{e}"
        );
        let e = err(json!({"network": {"classID": 7}}));
        assert!(e.starts_with("linux.resources.network.classID: "), "{e}");
        let e = err(json!({"unified": {"../x": "1"}}));
        assert!(e.starts_with("linux.resources.unified.../x: "), "{e}");
        let e = err(json!({"unified": {"memory.nonexistent": "1"}}));
        assert!(
            e.starts_with("linux.resources.unified.memory.nonexistent: ")
                && e.contains("does not exist"),
            "{e}"
        );
    } else {
        // Unknown access letters are ignored (runc's tolerant form); a FIFO rule is not.
        let e = err(json!({"devices": [{"allow": true, "type": "p", "access": "rw"}]}));
        assert!(e.starts_with("linux.resources.devices[0]: "), "{e}");
        let e = err(json!({"unified": {"memory.high": "1000"}}));
        assert!(e.starts_with("linux.resources.unified: "), "{e}");
        if !t.dirs.iter().any(|d| d.has_v1_controller("net_cls")) {
            let e = err(json!({"network": {"classID": 7}}));
            assert_eq!(
                e,
                "linux.resources.network.classID: the net_cls controller is not mounted on \
                 this host"
            );
        }
        // Kernels from 6.x refuse kernel memory limits; older ones take them.
        if let Err(e) =
            t.cg.apply(&resources(json!({"memory": {"kernel": 1 << 30}})))
        {
            let e = format!("{e:#}");
            assert!(e.starts_with("linux.resources.memory.kernel: "), "{e}");
        }
    }
}

/// v1 device rules apply to a process already in the cgroup, and can be rewritten while it
/// is there (the cgroup has no children, so "deny all" is accepted).
#[test]
fn v1_devices_with_a_process_inside() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = host_guard();
    let t = TestCg::new("dev");
    if t.mode == Mode::Unified {
        eprintln!("skipped: v1 only");
        return;
    }
    // The child waits for its cgroup and rules to be set before it opens anything; only
    // opening is checked by the devices cgroup, so each device is opened and closed.
    let script = r#"read go
for t in '</dev/zero' '>/dev/zero' '</dev/urandom' '>/dev/full'; do
  if eval "(exec 3$t)"; then echo "$t ok"; else echo "$t denied"; fi
done"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    t.cg.add_task(child.id() as i32).unwrap();
    let r = resources(json!({"devices": [
        {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rw"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}
    ]}));
    t.cg.apply(&r).unwrap();
    // Again, with the process inside: still accepted.
    t.cg.apply(&r).unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "</dev/zero ok",
            ">/dev/zero denied",
            "</dev/urandom denied",
            ">/dev/full ok"
        ]
    );
    let list = t.read("devices", "devices.list");
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["c 1:5 r", "c 1:7 rw"]);

    // A privileged container's "allow all", followed by the default rules as
    // effective_resources appends them: everything stays allowed.
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_resources(Some(resources(
        json!({"devices": [{"allow": true, "access": "rwm"}]}),
    )));
    t.cg.apply(&effective_resources(&linux)).unwrap();
    assert_eq!(t.read("devices", "devices.list"), "a *:* rwm");
}

/// A nested path: on v2 the controllers get enabled in every ancestor, the new ones
/// included, so the limits land in the deepest directory.
#[test]
fn nested_path_enables_controllers_down_the_tree() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _host = host_guard();
    let top = format!("/berth-res-test-{}-n", std::process::id());
    let path = format!("{top}/a/b");
    let cg = open(&path).unwrap();
    cg.create().unwrap();
    let r = resources(json!({"memory": {"limit": 32 << 20}, "pids": {"limit": 10}}));
    let applied = cg.apply(&r);
    let host = Host::read().unwrap();
    let (mode, dirs) = placement_dirs(&host, &path).unwrap();
    let check = || -> std::result::Result<(), String> {
        applied.as_ref().map_err(|e| format!("{e:#}"))?;
        if mode == Mode::Unified {
            let d = &dirs[0];
            for level in [top.as_str(), &format!("{top}/a")] {
                let sc = d
                    .mountpoint
                    .join(&level[1..])
                    .join("cgroup.subtree_control");
                let on = fs::read_to_string(&sc).map_err(|e| e.to_string())?;
                if !(on.contains("memory") && on.contains("pids")) {
                    return Err(format!("{}: {on:?}", sc.display()));
                }
            }
            let max = fs::read_to_string(d.path().join("memory.max")).unwrap();
            assert_eq!(max.trim(), (32 << 20).to_string());
        } else {
            let d = dirs.iter().find(|d| d.has_v1_controller("pids")).unwrap();
            let max = fs::read_to_string(d.path().join("pids.max")).unwrap();
            assert_eq!(max.trim(), "10");
        }
        Ok(())
    };
    let result = check();
    cg.destroy().unwrap();
    open(&format!("{top}/a")).unwrap().destroy().unwrap();
    open(&top).unwrap().destroy().unwrap();
    ensure_clean(&top).unwrap();
    result.unwrap();
}
