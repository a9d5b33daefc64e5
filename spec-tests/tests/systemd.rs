//! The systemd cgroup driver (`--systemd-cgroup`, linux.cgroupsPath "SLICE:PREFIX:NAME"):
//! each container is a transient unit of systemd. Needs systemd as PID 1 on a pure cgroup
//! v2 host (scripts/test-systemd.sh boots such a VM: `vm-run --systemd`); elsewhere every
//! test says why it skips and passes.
//!
//! Checked from outside through `systemctl` and the cgroup files, so each check passes with
//! runc too (`RUNTIME=/usr/sbin/runc`); the few berth-only checks say so. Run with
//! --test-threads=1: the last test (`z_nothing_left_behind`) checks that no unit, cgroup
//! or state of the others is left.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Every unit and slice of this suite starts with this, so leftovers are easy to find.
const TAG: &str = "berthsdtest";
/// Every container id of this suite starts with this.
const IDS: &str = "bsdt";

fn under_systemd() -> bool {
    let comm = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    comm.trim() == "systemd" && Path::new("/run/systemd/system").is_dir() && cgroup2_only()
}

/// None (after printing why) when these tests cannot run here.
fn rt(test: &str) -> Option<Runtime> {
    if !under_systemd() {
        skip(
            test,
            "needs systemd as PID 1 on pure cgroup v2 (make test-systemd boots such a VM)",
        );
        return None;
    }
    Some(Runtime::with_flags(&["--systemd-cgroup"]))
}

fn systemctl(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .expect("run systemctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// `systemctl show -p NAME --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    systemctl(&["show", "-p", prop, "--value", unit]).1
}

fn active_state(unit: &str) -> String {
    show(unit, "ActiveState")
}

/// Polls until systemd has forgotten the unit (list-units, which loads nothing: `show`
/// would load a slice of any name).
#[track_caller]
fn assert_unit_gone(unit: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, listed) = systemctl(&["list-units", "--all", "--plain", "--no-legend", unit]);
        if listed.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "unit {unit} still there: {listed}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn cgdir(rel: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A sleeping container with cgroupsPath `path`.
fn sleeper(rt: &Runtime, prefix: &str, path: impl FnOnce(&str) -> String) -> Bundle {
    let mut b = rt.bundle(prefix);
    let cg = path(b.id());
    b.args(&["sleep", "300"]);
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(cg));
    b
}

/// Nothing of the container left: state, init, mounts, and the unit's cgroup `rel`.
#[track_caller]
fn assert_gone(rt: &Runtime, b: &mut Bundle, pid: i32, rel: &str) {
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(rel));
    rt.assert_gone(b, Some(pid));
}

#[track_caller]
fn assert_in(pid: i32, rel: &str) {
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert_eq!(own, format!("0::{rel}"), "pid {pid}");
    let procs = read(&cgdir(rel).join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "pid {pid} not in {rel}/cgroup.procs: {procs}"
    );
}

/// create with limits: an active scope in the slice with Delegate=yes, the limits as unit
/// properties and in the cgroup files; then update, pause/resume, exec, kill --all and
/// delete, after which neither unit nor cgroup is left.
#[test]
fn lifecycle_with_limits() {
    let Some(rt) = rt("lifecycle_with_limits") else {
        return;
    };
    let mut b = sleeper(&rt, "bsdtlife", |id| format!("system.slice:{TAG}:{id}"));
    b.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 67108864});
        c["linux"]["resources"]["pids"] = json!({"limit": 64});
        c["linux"]["resources"]["cpu"] = json!({"shares": 1024, "quota": 20000, "period": 100000});
    });
    let unit = format!("{TAG}-{}.scope", b.id());
    let rel = format!("/system.slice/{unit}");
    rt.create(&b).assert_ok();
    let pid = rt.pid(b.id());
    assert_eq!(active_state(&unit), "active", "unit {unit} after create");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(show(&unit, "Slice"), "system.slice");
    assert_eq!(show(&unit, "MemoryMax"), "67108864");
    assert_eq!(show(&unit, "TasksMax"), "64");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "200ms");
    assert_eq!(show(&unit, "CPUWeight"), "39");
    // The config denies all devices; the standard nodes are allowed again.
    assert_eq!(show(&unit, "DevicePolicy"), "strict");
    let allow = show(&unit, "DeviceAllow");
    assert!(allow.contains("/dev/char/1:3 rwm"), "DeviceAllow: {allow}");
    assert_in(pid, &rel);
    let d = cgdir(&rel);
    assert_eq!(read(&d.join("memory.max")), "67108864");
    assert_eq!(read(&d.join("pids.max")), "64");
    assert_eq!(read(&d.join("cpu.max")), "20000 100000");
    assert_eq!(read(&d.join("cpu.weight")), "39");

    rt.start(b.id()).assert_ok();
    rt.wait_status(b.id(), "running");
    assert_in(pid, &rel);

    rt.exec(&[
        "update",
        "--memory",
        "134217728",
        "--pids-limit",
        "99",
        b.id(),
    ])
    .assert_ok();
    assert_eq!(show(&unit, "MemoryMax"), "134217728");
    assert_eq!(show(&unit, "TasksMax"), "99");
    assert_eq!(read(&d.join("memory.max")), "134217728");
    assert_eq!(read(&d.join("pids.max")), "99");

    rt.exec(&["pause", b.id()]).assert_ok();
    rt.wait_status(b.id(), "paused");
    assert_eq!(read(&d.join("cgroup.freeze")), "1");
    rt.exec(&["resume", b.id()]).assert_ok();
    rt.wait_status(b.id(), "running");
    assert_eq!(read(&d.join("cgroup.freeze")), "0");

    // exec joins the unit's cgroup.
    let out = rt
        .exec(&["exec", b.id(), "cat", "/proc/self/cgroup"])
        .assert_ok();
    assert_eq!(out.stdout.trim(), format!("0::{rel}"), "{out}");
    // systemd's device filter and the runtime's both let the standard nodes through.
    let out = rt
        .exec(&[
            "exec",
            b.id(),
            "sh",
            "-c",
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c",
        ])
        .assert_ok();
    assert_eq!(out.stdout.trim(), "3", "{out}");
    // A second process for kill --all.
    rt.exec(&["exec", "-d", b.id(), "sleep", "300"]).assert_ok();
    let procs = read(&d.join("cgroup.procs"));
    assert_eq!(procs.lines().count(), 2, "{procs}");
    let ps = rt.exec(&["ps", "--format", "json", b.id()]).assert_ok();
    let pids: Vec<i64> = serde_json::from_str(ps.stdout.trim()).unwrap_or_default();
    assert_eq!(pids.len(), 2, "{ps}");

    // events --stats reads the unit's cgroup.
    let ev = rt.exec(&["events", "--stats", b.id()]).assert_ok();
    let ev: serde_json::Value = serde_json::from_str(ev.stdout.trim()).unwrap_or_default();
    assert_eq!(ev["type"], "stats", "{ev}");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "no memory usage in {ev}"
    );
    assert_eq!(ev["data"]["pids"]["current"].as_u64(), Some(2), "{ev}");
    rt.exec(&["kill", "--all", b.id(), "KILL"]).assert_ok();
    rt.wait_status(b.id(), "stopped");
    rt.delete(b.id()).assert_ok();
    assert_gone(&rt, &mut b, pid, &rel);
    assert_unit_gone(&unit);
    assert!(!d.exists(), "{} left behind", d.display());
}

/// delete --force of a running container stops the unit.
#[test]
fn delete_force_running() {
    let Some(rt) = rt("delete_force_running") else {
        return;
    };
    let mut b = sleeper(&rt, "bsdtforce", |id| format!("system.slice:{TAG}:{id}"));
    let unit = format!("{TAG}-{}.scope", b.id());
    let pid = rt.create_and_start(&b);
    assert_eq!(active_state(&unit), "active");
    rt.delete_force(b.id()).assert_ok();
    assert_gone(&rt, &mut b, pid, &format!("/system.slice/{unit}"));
    assert_unit_gone(&unit);
}

/// A create that fails after the unit was started (a failing createRuntime hook) leaves
/// no unit, cgroup or state behind.
#[test]
fn failed_create_leaves_no_unit() {
    let Some(rt) = rt("failed_create_leaves_no_unit") else {
        return;
    };
    let mut b = sleeper(&rt, "bsdtfail", |id| format!("system.slice:{TAG}:{id}"));
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    });
    let unit = format!("{TAG}-{}.scope", b.id());
    rt.create(&b).assert_fail();
    assert!(!rt.root().join(b.id()).exists(), "state dir left");
    assert_unit_gone(&unit);
    assert!(!cgdir(&format!("/system.slice/{unit}")).exists());
}

/// Slices named systemd's way nest: a-b-c.slice is under a.slice/a-b.slice, as kubelet's
/// pod slices are.
#[test]
fn nested_slices() {
    let Some(rt) = rt("nested_slices") else {
        return;
    };
    let pod = format!("{TAG}-burstable-pod{}", std::process::id());
    let mut b = sleeper(&rt, "bsdtnest", |id| {
        format!("{pod}.slice:cri-containerd:{id}")
    });
    let unit = format!("cri-containerd-{}.scope", b.id());
    let rel = format!("/{TAG}.slice/{TAG}-burstable.slice/{pod}.slice/{unit}");
    let pid = rt.create_and_start(&b);
    assert_in(pid, &rel);
    assert_eq!(active_state(&unit), "active");
    assert_eq!(show(&unit, "Slice"), format!("{pod}.slice"));
    rt.delete_force(b.id()).assert_ok();
    assert_gone(&rt, &mut b, pid, &rel);
    assert_unit_gone(&unit);
    // The slices are systemd's to keep; the suite removes its own.
    systemctl(&["stop", &format!("{TAG}.slice")]);
}

/// The default cgroupsPath (empty) is a scope in system.slice.
#[test]
fn empty_path_default_scope() {
    let Some(rt) = rt("empty_path_default_scope") else {
        return;
    };
    let mut b = sleeper(&rt, "bsdtdef", |_| String::new());
    let pid = rt.create_and_start(&b);
    let own = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(
        own.starts_with("0::/system.slice/") && own.ends_with(&format!("-{}.scope", b.id())),
        "{own}"
    );
    let unit = own.rsplit('/').next().unwrap().to_string();
    assert_eq!(active_state(&unit), "active");
    if is_berth() {
        // runc names it runc-ID.scope.
        assert_eq!(unit, format!("berth-{}.scope", b.id()));
    }
    rt.delete_force(b.id()).assert_ok();
    let rel = own.trim_start_matches("0::").to_string();
    assert_gone(&rt, &mut b, pid, &rel);
    assert_unit_gone(&unit);
}

/// A cgroupsPath that is not SLICE:PREFIX:NAME is refused, nothing left.
#[test]
fn bad_path_refused() {
    let Some(rt) = rt("bad_path_refused") else {
        return;
    };
    for bad in ["/not/systemd/form", "nope.scope:x:y"] {
        let b = sleeper(&rt, "bsdtbad", |_| bad.to_string());
        let out = rt.create(&b).assert_fail();
        if is_berth() {
            // runc says "expected cgroupsPath to be of format ...".
            assert!(out.stderr.contains("linux.cgroupsPath"), "{out}");
            assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
        }
        assert!(!rt.root().join(b.id()).exists(), "state dir left for {bad}");
    }
}

/// berth starts a unit with the fewest D-Bus round trips: Hello and StartTransientUnit
/// (the JobRemoved match goes out without waiting). berth-only: it counts in its log.
#[test]
fn dbus_round_trips() {
    let Some(rt) = rt("dbus_round_trips") else {
        return;
    };
    if !is_berth() {
        skip("dbus_round_trips", "counts berth's own debug log");
        return;
    }
    let log = rt.tmp().join("debug.log");
    let l = log.to_string_lossy().into_owned();
    let b = sleeper(&rt, "bsdtrt", |id| format!("system.slice:{TAG}:{id}"));
    b.write();
    rt.track(b.id());
    let dir = b.dir().to_string_lossy().into_owned();
    rt.exec(&["--debug", "--log", &l, "create", "--bundle", &dir, b.id()])
        .assert_ok();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("started (2 D-Bus round trips)"),
        "expected 2 round trips for a create:\n{text}"
    );
    rt.delete_force(b.id()).assert_ok();
}

/// A unit of the same name already running: create fails naming it, leaves no state, and
/// the other unit is left alone. berth-only: runc 1.1.5's create succeeds there, putting
/// the container into the other unit's cgroup.
#[test]
fn name_clash_leaves_other_unit() {
    let Some(rt) = rt("name_clash_leaves_other_unit") else {
        return;
    };
    if !is_berth() {
        skip(
            "name_clash_leaves_other_unit",
            "runc 1.1.5 joins the existing unit's cgroup instead of failing",
        );
        return;
    }
    let b = sleeper(&rt, "bsdtclash", |id| format!("system.slice:{TAG}:{id}"));
    let unit = format!("{TAG}-{}.scope", b.id());
    let _guard = UnitGuard(unit.clone());
    let _other = ChildGuard(
        Command::new("systemd-run")
            .args(["--scope", &format!("--unit={unit}"), "--", "sleep", "300"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("systemd-run --scope"),
    );
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while active_state(&unit) != "active" {
        assert!(Instant::now() < deadline, "{unit} did not start");
        thread::sleep(Duration::from_millis(50));
    }
    let out = rt.create(&b).assert_fail();
    assert!(!rt.root().join(b.id()).exists(), "state dir left: {out}");
    if is_berth() {
        assert!(out.stderr.contains(&unit), "{out}");
        assert_eq!(
            active_state(&unit),
            "active",
            "the other {unit} was stopped"
        );
    }
    systemctl(&["stop", &unit]);
    assert_unit_gone(&unit);
}

/// Kills and reaps a child when a test ends, even by a panic.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// IO bandwidth limits: unit properties (IOReadBandwidthMax, IOWriteIOPSMax) and io.max.
/// Needs a block device: test-systemd.sh gives the VM a scratch disk (/dev/vda).
#[test]
fn io_limits() {
    let Some(rt) = rt("io_limits") else {
        return;
    };
    let Ok(dev) = fs::read_to_string("/sys/block/vda/dev") else {
        skip("io_limits", "no /dev/vda (vm-run --disk) to limit");
        return;
    };
    let dev = dev.trim().to_string();
    let (major, minor) = dev.split_once(':').unwrap();
    let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
    let mut b = sleeper(&rt, "bsdtio", |id| format!("system.slice:{TAG}:{id}"));
    b.edit(|c| {
        c["linux"]["resources"]["blockIO"] = json!({
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]
        });
    });
    let unit = format!("{TAG}-{}.scope", b.id());
    let rel = format!("/system.slice/{unit}");
    let pid = rt.create_and_start(&b);
    let io = read(&cgdir(&rel).join("io.max"));
    let line = io
        .lines()
        .find(|l| l.starts_with(&format!("{dev} ")))
        .unwrap_or("");
    assert!(
        line.contains("rbps=1048576") && line.contains("wiops=100"),
        "io.max: {io}"
    );
    if is_berth() {
        // runc 1.1.5 writes io.max only.
        let r = show(&unit, "IOReadBandwidthMax");
        assert!(
            r.contains("1048576") || r.contains("1M"),
            "IOReadBandwidthMax: {r}"
        );
        let w = show(&unit, "IOWriteIOPSMax");
        assert!(w.contains("100"), "IOWriteIOPSMax: {w}");
    }
    rt.delete_force(b.id()).assert_ok();
    assert_gone(&rt, &mut b, pid, &rel);
    assert_unit_gone(&unit);
}

/// A NAME ending in ".slice" makes a slice unit, placed by its own name as systemd places
/// slices; delete stops it. berth-only: runc 1.1.5 computes the slice's cgroup under
/// SLICE instead, where systemd does not put it.
#[test]
fn slice_unit() {
    let Some(rt) = rt("slice_unit") else {
        return;
    };
    if !is_berth() {
        skip(
            "slice_unit",
            "runc 1.1.5 looks for the slice's cgroup under SLICE",
        );
        return;
    }
    let slice = format!("{TAG}-slc{}.slice", std::process::id());
    let _guard = UnitGuard(format!("{TAG}.slice"));
    let mut b = sleeper(&rt, "bsdtslice", |_| format!("system.slice:x:{slice}"));
    let rel = format!("/{TAG}.slice/{slice}");
    let pid = rt.create_and_start(&b);
    assert_in(pid, &rel);
    assert_eq!(active_state(&slice), "active");
    rt.delete_force(b.id()).assert_ok();
    assert_gone(&rt, &mut b, pid, &rel);
    assert_unit_gone(&slice);
}

/// Stops and forgets a unit when a test ends, even by a panic.
struct UnitGuard(String);

impl Drop for UnitGuard {
    fn drop(&mut self) {
        systemctl(&["stop", &self.0]);
        systemctl(&["reset-failed", &self.0]);
    }
}

/// A Type=notify service whose main process is the runtime's foreground `run`: the
/// container's READY=1 (sent with the host's systemd-notify to the NOTIFY_SOCKET it was
/// given) reaches systemd through the runtime, and only then is the service active.
#[test]
fn sd_notify_ready() {
    let Some(rt) = rt("sd_notify_ready") else {
        return;
    };
    let mut b = rt.bundle("bsdtnotify");
    b.private_rootfs();
    let ctl = b.bind_dir("ctl", "/ctl", false);
    // The host's systemd-notify, with the libraries it needs.
    for (src, dst) in [
        ("/usr/lib", "/usr/lib"),
        ("/usr/lib", "/lib"),
        ("/usr/lib64", "/lib64"),
    ] {
        b.add_mount(
            json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro"]}),
        );
    }
    b.add_mount(json!({"destination": "/sdnotify", "type": "bind", "source": "/usr/bin/systemd-notify", "options": ["bind", "ro"]}));
    b.sh(
        // Renamed into place: the test reads the file as soon as it exists.
        "echo \"$NOTIFY_SOCKET\" > /ctl/env.new; mv /ctl/env.new /ctl/env; \
          while [ ! -e /ctl/go ]; do sleep 0.1; done; \
          /sdnotify --ready --no-block 2>/ctl/err && echo sent > /ctl/sent; sleep 300",
    );
    let id = b.id().to_string();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:{TAG}:{id}")));
    b.write();
    rt.track(&id);
    let unit = format!("{TAG}-notify-{}.service", std::process::id());
    let _guard = UnitGuard(unit.clone());
    let root = rt.root().to_string_lossy().into_owned();
    let bin = runtime_path().to_string_lossy().into_owned();
    let dir = b.dir().to_string_lossy().into_owned();
    let out = Command::new("systemd-run")
        .args([
            &format!("--unit={unit}"),
            "--service-type=notify",
            "--no-block",
            "-p",
            "TimeoutStartSec=120",
            "-p",
            "TimeoutStopSec=10",
            "--",
            &bin,
            "--root",
            &root,
            "--systemd-cgroup",
            "run",
            "--bundle",
            &dir,
            &id,
        ])
        .output()
        .expect("systemd-run");
    assert!(out.status.success(), "systemd-run: {out:?}");
    rt.wait_status(&id, "running");
    assert!(wait_for_file(&ctl.join("env"), WAIT_TIMEOUT));
    assert_eq!(read(&ctl.join("env")), "/run/notify/notify.sock");
    // Not ready yet: the service waits.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(active_state(&unit), "activating", "before READY=1");
    fs::write(ctl.join("go"), "").unwrap();
    assert!(
        wait_for_file(&ctl.join("sent"), WAIT_TIMEOUT),
        "systemd-notify failed: {:?}",
        fs::read_to_string(ctl.join("err"))
    );
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while active_state(&unit) != "active" {
        assert!(
            Instant::now() < deadline,
            "service {unit} not active after READY=1: {}",
            active_state(&unit)
        );
        thread::sleep(Duration::from_millis(50));
    }
    let pid = rt.pid(&id);
    rt.delete_force(&id).assert_ok();
    // The foreground run ends with its container; the failed service is reset.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(active_state(&unit).as_str(), "inactive" | "failed") {
        assert!(Instant::now() < deadline, "service {unit} did not end");
        thread::sleep(Duration::from_millis(50));
    }
    systemctl(&["reset-failed", &unit]);
    assert_unit_gone(&unit);
    assert_gone(&rt, &mut b, pid, &format!("/system.slice/{TAG}-{id}.scope"));
}

/// On a host that is not pure cgroup v2, berth refuses --systemd-cgroup with one line and
/// leaves nothing (berth-only: runc 1.1 drives systemd's v1 controllers there). Runs on the
/// build host, not in the VM.
#[test]
fn refused_off_pure_v2() {
    if cgroup2_only() {
        skip(
            "refused_off_pure_v2",
            "this host is pure cgroup v2: the driver works here",
        );
        return;
    }
    if !is_berth() {
        skip(
            "refused_off_pure_v2",
            "runc uses its v1 systemd manager here",
        );
        return;
    }
    let rt = Runtime::with_flags(&["--systemd-cgroup"]);
    let b = sleeper(&rt, "bsdthybrid", |id| format!("system.slice:{TAG}:{id}"));
    let out = rt.create(&b).assert_fail();
    assert!(out.stderr.contains("--systemd-cgroup"), "{out}");
    assert!(out.stderr.contains("cgroup v2"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(!rt.root().join(b.id()).exists(), "state dir left");
}

/// After the suite: no unit, cgroup or state dir of it is left (runs last).
#[test]
fn z_nothing_left_behind() {
    if !under_systemd() {
        skip("z_nothing_left_behind", "needs systemd as PID 1");
        return;
    }
    let (_, units) = systemctl(&["list-units", "--all", "--plain", "--no-legend"]);
    let units: Vec<&str> = units
        .lines()
        .filter(|l| l.contains(TAG) || l.contains(IDS))
        .collect();
    assert!(units.is_empty(), "units left: {units:?}");
    let mut left = Vec::new();
    fn walk(d: &Path, left: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let s = p.to_string_lossy();
                if s.contains(TAG) || s.contains(IDS) {
                    left.push(p.clone());
                }
                walk(&p, left);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), &mut left);
    assert!(left.is_empty(), "cgroups left: {left:?}");
    // No process of the suite's containers: none in a cgroup of theirs, none running
    // the containers' sleep 300.
    let mut procs = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let cg = fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        let cmd = fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
        if cg.contains(TAG) || cg.contains(IDS) || cmd == "sleep\x00300\x00" {
            procs.push(format!("{name}: {} {}", cg.trim(), cmd.replace('\0', " ")));
        }
    }
    assert!(procs.is_empty(), "processes left: {procs:?}");
}
