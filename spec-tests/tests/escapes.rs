//! Attempts at known container escapes. Every attack test comes with a
//! control: the same steps done by hand, without the runtime's defence,
//! show that the test's detector does fire when the escape succeeds, so no
//! test passes just because its detector is blind.
//!
//! Not covered here: module loading (init_module/delete_module), because on a
//! kernel built without module support both fail with ENOSYS whatever the
//! capabilities, so no control could show the detector working. It is in
//! vm_security.rs, which scripts/test-cgroupv2.sh runs in a VM whose kernel
//! has modules (and which skips elsewhere).

use serde_json::json;
use spec_tests::*;
use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `busybox sh -c script` on the host after `setup` ran in the child
/// (between fork and exec: raw syscalls only).
fn host_sh(
    script: &str,
    cwd: Option<&Path>,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Output {
    host_sh_with(Command::new(busybox()), script, cwd, setup)
}

fn host_sh_with(
    mut cmd: Command,
    script: &str,
    cwd: Option<&Path>,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Output {
    cmd.args(["sh", "-c", script]).stdin(Stdio::null());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    unsafe { cmd.pre_exec(setup) };
    cmd.output().expect("spawn host helper")
}

fn text(o: &Output) -> String {
    format!(
        "[{}]\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ------------------------------------------------- CVE-2024-21626: fd leak

/// Prints `FD <n> <target>` for every open fd from 3 to 64 of the process
/// running the script (each readlink inherits exactly the shell's fds).
const FD_DETECTOR: &str = "for n in $(seq 3 64); do \
    if l=$(readlink /proc/self/fd/$n 2>/dev/null); then echo \"FD $n $l\"; fi; done; echo DONE";

/// The `(fd, target)` pairs the detector printed.
fn leaked_fds(stdout: &str) -> Vec<(u32, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("FD ")?;
            let (n, target) = rest.split_once(' ')?;
            Some((n.parse().ok()?, target.to_string()))
        })
        .collect()
}

/// A host directory fd given to the runtime (non-close-on-exec, without
/// --preserve-fds) and whatever fds the runtime holds itself (state dir,
/// bundle, cgroup dirs: the CVE-2024-21626 leak was runc's fd to
/// /sys/fs/cgroup) must not reach the container: it sees no fd above 2.
#[test]
fn no_host_fd_reaches_the_container() {
    let rt = Runtime::new();
    let host_dir = TempDir::new("fd-target");
    let dir = fs::File::open(host_dir.path()).unwrap();
    let host_path = host_dir.path().to_string_lossy().into_owned();

    // Control: a helper that inherits a host dir fd (FD_CLOEXEC cleared by
    // dup2) is seen leaking it.
    let raw = dir.as_raw_fd();
    let ctl = host_sh(FD_DETECTOR, None, move || {
        if unsafe { libc::dup2(raw, 7) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    let ctl_out = String::from_utf8_lossy(&ctl.stdout).into_owned();
    assert!(ctl_out.contains("DONE"), "control: {}", text(&ctl));
    assert!(
        leaked_fds(&ctl_out).contains(&(7, host_path.clone())),
        "control: the detector missed the leaked host dir fd 7 -> {host_path}:\n{}",
        text(&ctl)
    );

    // The attack: the same fd handed to the runtime, the container lists
    // its fds.
    let mut b = rt.bundle("fdleak");
    b.sh(FD_DETECTOR);
    let out = rt.spawn_run(&b, &[], &[raw]).wait(CMD_TIMEOUT);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("DONE"), "{out}");
    let leaked = leaked_fds(&out.stdout);
    let hostish: Vec<&(u32, String)> = leaked
        .iter()
        .filter(|(_, t)| {
            t.starts_with(&host_path)
                || t.starts_with(&rt.root().to_string_lossy().into_owned())
                || t.starts_with(&b.dir().to_string_lossy().into_owned())
                || t.starts_with("/sys/fs/cgroup")
        })
        .collect();
    assert!(
        hostish.is_empty(),
        "host paths leaked into the container: {hostish:?}\n{out}"
    );
    assert!(
        leaked.is_empty(),
        "fds above 2 reached the container: {leaked:?}\n{out}"
    );
}

// --------------------------------------------- CVE-2024-21626: cwd escape

/// Climbs `..` physically 64 times from the cwd and compares where it ends
/// with `/`: a cwd outside the process's root climbs to a different root.
const CWD_DETECTOR: &str = "i=0; while [ $i -lt 64 ]; do cd -P .. 2>/dev/null; i=$((i+1)); done; \
    if [ \"$(stat -c %d:%i .)\" = \"$(stat -c %d:%i /)\" ]; then echo CWD-INSIDE; \
    else echo CWD-OUTSIDE; fi";

/// process.cwd = /proc/self/fd/N (N = 3..10): if the runtime held a host
/// directory at fd N when it changed directory, the container process
/// would start with a cwd outside its rootfs. The run must fail, or the
/// process's cwd must be inside its root.
#[test]
fn cwd_through_proc_self_fd_does_not_escape() {
    let rt = Runtime::new();

    // Control: a process chrooted into the rootfs whose cwd stayed on a host
    // dir (as after the CVE) is flagged.
    let host_dir = TempDir::new("cwd-target");
    let root = CString::new(shared_rootfs().as_os_str().to_string_lossy().as_bytes()).unwrap();
    let ctl = host_sh_with(
        Command::new("/bin/busybox"),
        CWD_DETECTOR,
        Some(host_dir.path()),
        move || {
            if unsafe { libc::chroot(root.as_ptr()) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        },
    );
    assert_eq!(
        String::from_utf8_lossy(&ctl.stdout).trim(),
        "CWD-OUTSIDE",
        "control: the detector missed a cwd outside the root:\n{}",
        text(&ctl)
    );

    // Sanity: a plain container is judged inside.
    let mut b = rt.bundle("cwd-ok");
    b.sh(CWD_DETECTOR);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "CWD-INSIDE", "{out}");

    // The runtime is also handed a host dir at fd 3 (not close-on-exec, as a
    // careless caller might leak it): it must not become the cwd either.
    let dir = fs::File::open(host_dir.path()).unwrap();
    for n in 3..=10 {
        let mut b = rt.bundle("cwd-fd");
        b.sh(CWD_DETECTOR);
        b.config_mut()["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        let out = rt.spawn_run(&b, &[], &[dir.as_raw_fd()]).wait(CMD_TIMEOUT);
        if out.success() {
            assert_eq!(
                out.stdout.trim(),
                "CWD-INSIDE",
                "cwd /proc/self/fd/{n} put the process outside its root:\n{out}"
            );
        } else {
            out.assert_fail();
        }
    }
}

// ------------------------------- CVE-2021-30465 / symlink mount redirect

/// Mount points in `entries` at or below `dir`.
fn mounts_under(entries: &[MountEntry], dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    entries
        .iter()
        .map(|e| e.mount_point.clone())
        .filter(|mp| *mp == dir || mp.starts_with(&prefix))
        .collect()
}

fn mount_set(entries: &[MountEntry]) -> BTreeSet<(u64, String, String)> {
    entries
        .iter()
        .map(|e| (e.mount_id, e.mount_point.clone(), e.fstype.clone()))
        .collect()
}

/// The rootfs has `evil -> <host dir>` (absolute) and a tmpfs is mounted at
/// /evil/x: the mount must land inside the rootfs, never on the host dir.
#[test]
fn symlinked_mount_destination_stays_in_rootfs() {
    let target = TempDir::new("mnt-target");
    fs::write(target.path().join("canary"), "host").unwrap();
    let rt = Runtime::new();
    let mut b = rt.bundle("mntlink");
    let rootfs = b.private_rootfs();
    symlink(target.path(), rootfs.join("evil")).unwrap();

    // Control: the mount done by hand on the path the link resolves to on
    // the host, in a private mount namespace of a helper, is detected.
    let resolved = fs::canonicalize(rootfs.join("evil")).unwrap().join("x");
    let script = format!(
        "mkdir -p {r} && mount -t tmpfs none {r} && cat /proc/self/mountinfo",
        r = resolved.display()
    );
    let ctl = host_sh(&script, None, || unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let slash = c"/";
        if libc::mount(
            std::ptr::null(),
            slash.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    let ctl_mounts = mountinfo::parse(&String::from_utf8_lossy(&ctl.stdout));
    assert!(
        !mounts_under(&ctl_mounts, target.path()).is_empty(),
        "control: the detector missed a mount on the host dir:\n{}",
        text(&ctl)
    );
    fs::remove_dir(target.path().join("x")).unwrap();
    assert!(
        mounts_under(&mountinfo::host(), target.path()).is_empty(),
        "control leaked its mount"
    );

    // The attack.
    let before = mount_set(&mountinfo::host());
    b.add_mount(json!({"destination": "/evil/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.sh("touch /evil/x/pwned; cat /proc/self/mountinfo");
    let out = rt.run(&b);
    let after = mount_set(&mountinfo::host());
    let leaked = mounts_under(&mountinfo::host(), target.path());
    assert!(
        leaked.is_empty(),
        "the runtime mounted on the host dir: {leaked:?}\n{out}"
    );
    let new: Vec<_> = after.difference(&before).collect();
    assert!(
        new.iter().all(|(_, mp, _)| !mp.ends_with("/x")),
        "new host mounts: {new:?}\n{out}"
    );
    let names: Vec<String> = fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["canary"], "host dir changed:\n{out}");
    if out.success() {
        // Inside, the tmpfs is where the link leads within the rootfs.
        let inside = mountinfo::parse(&out.stdout);
        let t = target.path().join("x").to_string_lossy().into_owned();
        assert!(
            inside
                .iter()
                .any(|e| e.fstype == "tmpfs" && (e.mount_point == t || e.mount_point == "/evil/x")),
            "the tmpfs is not visible inside at {t}:\n{out}"
        );
        assert!(rootfs
            .join(target.path().strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
    } else {
        out.assert_fail();
    }
}

// ----------------------------------------------------- host pids invisible

fn pid_detector(host_pid: u32) -> String {
    format!(
        "for p in /proc/[0-9]*; do echo PID ${{p#/proc/}}; done; \
         if kill -0 {host_pid} 2>/dev/null; then echo KILL-OK; else echo KILL-FAIL; fi"
    )
}

fn pids_seen(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PID ")?.parse().ok())
        .collect()
}

/// With a pid namespace the container sees only its own processes and
/// can't signal a host process.
#[test]
fn host_processes_are_invisible_in_a_pid_namespace() {
    let rt = Runtime::new();
    let me = std::process::id();

    // Control: without a pid namespace the same detector sees and reaches us.
    let mut c = rt.bundle("pid-ctl");
    c.remove_namespace("pid");
    c.sh(&pid_detector(me));
    let ctl = rt.run(&c).assert_ok();
    assert!(
        pids_seen(&ctl.stdout).contains(&me),
        "control: host pid {me} not seen:\n{ctl}"
    );
    assert!(ctl.stdout.contains("KILL-OK"), "control:\n{ctl}");

    let mut b = rt.bundle("pid");
    b.sh(&pid_detector(me));
    let out = rt.run(&b).assert_ok();
    let pids = pids_seen(&out.stdout);
    assert!(pids.contains(&1), "no pid 1 inside:\n{out}");
    assert!(
        pids.len() <= 2 && pids.iter().all(|p| *p <= 2),
        "pids other than the container's own: {pids:?}\n{out}"
    );
    assert!(
        out.stdout.contains("KILL-FAIL"),
        "host pid {me} reachable:\n{out}"
    );
}

// ------------------------------------------------ mount needs CAP_SYS_ADMIN

const MOUNT_ATTEMPT: &str = "mount -t tmpfs none /mnt 2>&1; echo RC=$?; \
    if grep -q ' /mnt ' /proc/self/mountinfo; then echo MOUNTED; else echo NOT-MOUNTED; fi";

/// With the default capabilities a container can't mount; the control adds
/// CAP_SYS_ADMIN and the same mount succeeds.
#[test]
fn mount_fails_without_cap_sys_admin() {
    let rt = Runtime::new();

    let mut c = rt.bundle("mount-ctl");
    c.sh(MOUNT_ATTEMPT);
    for set in ["bounding", "effective", "permitted"] {
        c.config_mut()["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    let ctl = rt.run(&c).assert_ok();
    assert!(
        ctl.stdout.contains("RC=0") && ctl.stdout.contains("MOUNTED\n"),
        "control: mount with CAP_SYS_ADMIN failed:\n{ctl}"
    );
    assert!(!ctl.stdout.contains("NOT-MOUNTED"), "control:\n{ctl}");

    let mut b = rt.bundle("mount");
    b.sh(MOUNT_ATTEMPT);
    let out = rt.run(&b).assert_ok();
    assert!(
        !out.stdout.contains("RC=0") && out.stdout.contains("NOT-MOUNTED"),
        "mount succeeded without CAP_SYS_ADMIN:\n{out}"
    );
    let msg = out.stdout.to_lowercase();
    assert!(
        msg.contains("permission denied") || msg.contains("not permitted"),
        "mount failed for another reason than EPERM:\n{out}"
    );
}

// ------------------------------------------------------- /proc redirection

const PLANTED: &str = "planted\n";

/// The rootfs's /proc is a symlink to a host dir holding planted files
/// where sysctls and masked paths would be: the runtime must not write the
/// sysctl or bind its masks into them (nor into the same path inside the
/// rootfs), and the host's value must not change.
#[test]
fn proc_symlink_does_not_redirect_sysctl_or_masks() {
    let target = TempDir::new("proc-target");
    let plant = |base: &Path| {
        let sys = base.join("sys/net/ipv4");
        fs::create_dir_all(&sys).unwrap();
        fs::write(sys.join("ip_forward"), PLANTED).unwrap();
        fs::write(base.join("kcore"), PLANTED).unwrap();
    };
    plant(target.path());
    let rt = Runtime::new();
    let mut b = rt.bundle("procsym");
    let rootfs = b.private_rootfs();
    fs::remove_dir(rootfs.join("proc")).unwrap();
    symlink(target.path(), rootfs.join("proc")).unwrap();
    let in_root = rootfs.join(target.path().strip_prefix("/").unwrap());
    plant(&in_root);
    let host_fwd = "/proc/sys/net/ipv4/ip_forward";
    let host_before = fs::read_to_string(host_fwd).unwrap();
    let fwd = target.path().join("sys/net/ipv4/ip_forward");

    // Control: writing the sysctl by hand through the rootfs's /proc lands
    // in the planted host file.
    fs::write(rootfs.join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
    assert_ne!(
        fs::read_to_string(&fwd).unwrap(),
        PLANTED,
        "control: the planted file did not change"
    );
    fs::write(&fwd, PLANTED).unwrap();

    b.config_mut()["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    b.sh("cat /proc/sys/net/ipv4/ip_forward");
    let out = rt.run(&b);
    let leaked = mountinfo::host_mounts_under(target.path());
    assert!(
        leaked.is_empty(),
        "the runtime mounted on the host dir: {leaked:?}\n{out}"
    );
    for base in [target.path(), in_root.as_path()] {
        for f in ["sys/net/ipv4/ip_forward", "kcore"] {
            let p = base.join(f);
            assert_eq!(
                fs::read_to_string(&p).unwrap(),
                PLANTED,
                "the runtime wrote into the planted {}:\n{out}",
                p.display()
            );
        }
    }
    let mut names: Vec<String> = fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["kcore", "sys"], "host dir changed:\n{out}");
    assert_eq!(
        fs::read_to_string(host_fwd).unwrap(),
        host_before,
        "the host's ip_forward changed:\n{out}"
    );
    if !out.success() {
        out.assert_fail();
    }
}

// ---------------------------------------------- CVE-2019-5736: the runtime's binary

/// The attacker of the CVE-2019-5736 tests (spec-tests/attack/grab_exe.c), built once,
/// static: the test rootfs has no libc. It only ever keeps and writes files whose
/// device:inode the test names, all in the test's scratch dir.
fn grab_exe() -> &'static Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        build_static_c(
            "attack/grab_exe.c",
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            "grab_exe",
        )
    })
}

/// The ELF interpreter and shared libraries `ldd` lists for a binary (none for a static one).
fn shared_libraries(bin: &Path) -> Vec<std::path::PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next()?,
                None => l.split(' ').next()?,
            };
            path.starts_with('/')
                .then(|| std::path::PathBuf::from(path))
        })
        .collect()
}

/// `device:inode` of a file, as the attacker names its targets.
fn file_id(p: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

/// A runtime that runs from a throw-away copy of the one under test, so that an attack that
/// works overwrites the copy, never the real binary. The copy's bytes are kept to compare.
struct ExeScratch {
    rt: Runtime,
    copy: std::path::PathBuf,
    original: Vec<u8>,
    // Dropped after `rt`, whose drop still runs the copy to delete containers.
    _dir: TempDir,
}

impl ExeScratch {
    fn new() -> ExeScratch {
        let dir = TempDir::new("exe-copy");
        let name = runtime_path().file_name().unwrap().to_owned();
        let copy = dir.path().join(name);
        fs::copy(runtime_path(), &copy).unwrap();
        let original = fs::read(&copy).unwrap();
        ExeScratch {
            rt: Runtime::with_binary(copy.clone()),
            copy,
            original,
            _dir: dir,
        }
    }

    /// A bundle whose private rootfs holds the attacker at /grab and, at /evil, a script
    /// whose `#!` line leads to /proc/self/exe with a NUL byte after it (the kernel stops
    /// at the NUL; a check that reads past it sees no such file).
    fn bundle(&self, prefix: &str) -> (Bundle, std::path::PathBuf) {
        let mut b = self.rt.bundle(prefix);
        let rootfs = b.private_rootfs();
        fs::copy(grab_exe(), rootfs.join("grab")).unwrap();
        // The runtime's loader and libraries, as an image with a libc has them: so that its
        // binary, once a container gets it to run, does run there (briefly: it finds no
        // command it knows), as it did in the 2019 exploit.
        for lib in shared_libraries(&self.copy) {
            let to = rootfs.join(lib.strip_prefix("/").unwrap());
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(&lib, &to).unwrap();
        }
        fs::write(rootfs.join("evil"), b"#!/proc/self/exe\0\n").unwrap();
        fs::set_permissions(rootfs.join("evil"), fs::Permissions::from_mode(0o755)).unwrap();
        let out = b.out_dir();
        (b, out)
    }

    /// The attacker's command line inside the container: it keeps handles on `targets`.
    fn grabber(targets: &[String]) -> String {
        format!(
            "/grab /out/stop 20000 {} > /out/grab.log 2>&1",
            targets.join(" ")
        )
    }

    /// Starts the attacker in container `id` with `exec -d`, aimed at `targets`, and waits
    /// for its first pass.
    fn exec_attacker(&self, id: &str, out: &Path, targets: &[String]) {
        let grab = ExeScratch::grabber(targets);
        self.rt
            .exec(&["exec", "-d", id, "sh", "-c", &grab])
            .assert_ok();
        wait_attacker(out);
    }

    /// Asserts the copy of the runtime is byte for byte what it was.
    fn assert_unchanged(&self, what: &str, log: &str) {
        let now = fs::read(&self.copy).unwrap();
        assert!(
            now == self.original,
            "{what}: the container overwrote the runtime's binary ({} bytes, was {}):\n{log}",
            now.len(),
            self.original.len()
        );
        assert!(!log.contains("WROTE"), "{what}: the attacker wrote:\n{log}");
    }
}

/// Waits until the attacker's log holds `word`; returns the log. Generous: the race tests
/// that run beside it keep both cores busy.
fn wait_log(out: &Path, word: &str) -> String {
    let deadline = std::time::Instant::now() + 6 * WAIT_TIMEOUT;
    loop {
        let log = fs::read_to_string(out.join("grab.log")).unwrap_or_default();
        if log.contains(word) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Waits until the attacker has made its first pass over /proc.
fn wait_attacker(out: &Path) {
    let log = wait_log(out, "SCANNED");
    assert!(
        log.contains("SCANNED"),
        "the attacker did not start:\n{log}"
    );
}

/// Tells the attacker to stop scanning and try its writes; returns its whole log.
fn finish_grab(out: &Path) -> String {
    fs::write(out.join("stop"), b"").unwrap();
    let log = wait_log(out, "DONE");
    assert!(log.contains("DONE"), "the attacker did not finish:\n{log}");
    log
}

/// Control for the CVE-2019-5736 tests: in a container of the runtime under test, the
/// attacker, `exec`'d in while init waits for `start`, grabs the exe of a process that runs a
/// writable host binary (a busybox copy bound in from the scratch dir) and, once that binary
/// is no longer running, overwrites it. So the attacker and the byte comparison do detect a
/// writable handle when there is one.
#[test]
fn exe_attack_control_overwrites_a_writable_binary() {
    let s = ExeScratch::new();
    let (mut b, out) = s.bundle("exe-ctl");
    let hostbin = b.bind_dir("hostbin", "/hostbin", false);
    fs::copy(busybox(), hostbin.join("sh")).unwrap();
    let before = fs::read(hostbin.join("sh")).unwrap();
    // init: the writable copy, for a second, then the image's busybox.
    b.args(&["/hostbin/sh", "-c", "sleep 1; exec /bin/sleep 10"]);
    s.rt.create(&b).assert_ok();
    let id = b.id().to_string();
    s.exec_attacker(&id, &out, &[file_id(&hostbin.join("sh"))]);
    s.rt.start(&id).assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let log = finish_grab(&out);
    assert!(
        log.contains("WROTE") && fs::read(hostbin.join("sh")).unwrap() != before,
        "control: the attacker failed to overwrite a writable binary it could see:\n{log}"
    );
}

/// CVE-2019-5736 through a created container: a process `exec -d`'d into it while its init
/// waits for `start` opens /proc/1/exe (the runtime's binary until init's execve), then
/// writes the file through that handle once init runs the container's program. berth's init
/// is not dumpable and runs from a read-only view of the binary: neither step works.
#[test]
fn exe_of_waiting_init_via_exec_is_not_writable() {
    let s = ExeScratch::new();
    let (mut b, out) = s.bundle("exe-exec");
    b.args(&["sleep", "10"]);
    s.rt.create(&b).assert_ok();
    let id = b.id().to_string();
    s.exec_attacker(&id, &out, &[file_id(&s.copy)]);
    s.rt.start(&id).assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = finish_grab(&out);
    s.assert_unchanged("exec into a created container", &log);
}

/// CVE-2019-5736 from a second container that joins the first's pid namespace while the
/// first's init waits for `start`.
#[test]
fn exe_of_waiting_init_via_second_container_is_not_writable() {
    let s = ExeScratch::new();
    let (mut a, _) = s.bundle("exe-a");
    a.args(&["sleep", "10"]);
    s.rt.create(&a).assert_ok();
    let pid = s.rt.pid(a.id());
    let (mut b, out) = s.bundle("exe-b");
    b.set_namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    b.sh(&ExeScratch::grabber(&[file_id(&s.copy)]));
    s.rt.run_with(&b, &["--detach"]).assert_ok();
    wait_attacker(&out);
    s.rt.start(a.id()).assert_ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = finish_grab(&out);
    s.assert_unchanged("a second container in the pid namespace", &log);
}

/// CVE-2019-5736 through `exec` of a `#!/proc/self/exe\0` script, twenty times, with the
/// attacker scanning for the runtime's binary running in the container meanwhile.
#[test]
fn nul_shebang_exec_does_not_expose_the_runtime() {
    let s = ExeScratch::new();
    let (mut b, out) = s.bundle("exe-nul");
    b.args(&["sleep", "10"]);
    s.rt.run_with(&b, &["--detach"]).assert_ok();
    let id = b.id().to_string();
    s.exec_attacker(&id, &out, &[file_id(&s.copy)]);
    for _ in 0..20 {
        // berth refuses the program; whatever a runtime does, its binary must stay whole.
        let _ = s.rt.exec(&["exec", &id, "/evil"]);
    }
    let log = finish_grab(&out);
    s.assert_unchanged("exec of a NUL #! script", &log);
}

/// CVE-2019-5736 with the same script as the container's entrypoint (create, then start),
/// the attacker `exec`'d in before the start.
#[test]
fn nul_shebang_entrypoint_does_not_expose_the_runtime() {
    let s = ExeScratch::new();
    let (mut b, out) = s.bundle("exe-entry");
    b.args(&["/evil"]);
    // In the host's pid namespace, so that the attacker outlives the container's init (which
    // is what runs the script) and is not killed with it mid-write; it only ever touches
    // the runtime's copy.
    b.remove_namespace("pid");
    let created = s.rt.create(&b);
    if is_berth() {
        // berth refuses a program that leads to its own binary, NUL or not.
        assert!(
            !created.success() && created.stderr.contains("CVE-2019-5736"),
            "berth ran a #!/proc/self/exe\\0 entrypoint:\n{created}"
        );
    }
    if created.success() {
        let id = b.id().to_string();
        s.exec_attacker(&id, &out, &[file_id(&s.copy)]);
        let _ = s.rt.start(&id);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let log = finish_grab(&out);
        s.assert_unchanged("a NUL #! entrypoint", &log);
    } else {
        s.assert_unchanged("a NUL #! entrypoint (refused)", "");
    }
}

/// CVE-2019-5736 by a race: the container swaps /x between a real program and the NUL `#!`
/// script while `exec /x` runs three hundred times, so that the runtime's check sees the
/// program and execve runs the script (and with it the runtime's binary, in the container).
/// Whatever wins, the binary the attacker can reach is read-only.
#[test]
fn exec_swap_race_does_not_expose_the_runtime() {
    let s = ExeScratch::new();
    let (mut b, out) = s.bundle("exe-race");
    b.config_mut()["root"]["readonly"] = json!(false);
    b.sh("i=0; while [ $i -lt 200000 ] && [ ! -e /out/swapped-enough ]; do ln -sfn /evil /x; ln -sfn /bin/true /x; i=$((i+1)); done; sleep 30");
    s.rt.run_with(&b, &["--detach"]).assert_ok();
    let id = b.id().to_string();
    s.exec_attacker(&id, &out, &[file_id(&s.copy)]);
    let mut ran_runtime = 0;
    for _ in 0..300 {
        let o = s.rt.exec(&["exec", &id, "/x"]);
        if o.stderr.contains("Usage") || o.stderr.contains("usage") {
            ran_runtime += 1;
        }
    }
    // The swapper stops, but the container stays up until the attacker is done: its init
    // ending would kill the attacker mid-write.
    fs::write(out.join("swapped-enough"), b"").unwrap();
    let log = finish_grab(&out);
    eprintln!("swap race: the runtime's binary ran in the container {ran_runtime} times of 300");
    s.assert_unchanged("exec swap race", &log);
}

// ------------------------------------------ mount flags on the mount, not on a path

/// A read-only bind whose destination sits in a shared volume, while a writer swaps that
/// destination between a directory and a symlink to the volume (`.`), two hundred creates:
/// the bind must never come up writable. A runtime that binds first and then remounts
/// read-only by path can have the remount land on the volume while the bind stays writable
/// at the renamed directory, and the container then writes into the read-only source.
#[test]
fn read_only_bind_stays_read_only_under_a_swap_race() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let scratch = TempDir::new("ro-race");
    let vol = scratch.path().join("vol");
    let src = scratch.path().join("src");
    fs::create_dir_all(&vol).unwrap();
    fs::create_dir_all(&src).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o777)).unwrap();
    let pwned = src.join("pwned");

    // Control: the two steps done by hand (bind, then a read-only remount by path) in a
    // private mount namespace, with the swap made between them from the host's (where the
    // directory is no mount point, as for a container's volume): the write lands in the
    // source.
    // A thread of its own unshares the mount namespace (the test's other threads keep
    // theirs) and ends with it.
    let (to_swap, swap_rx) = std::sync::mpsc::channel::<()>();
    let (swapped_tx, swapped) = std::sync::mpsc::channel::<()>();
    let ctl = {
        let (vol, src) = (vol.clone(), src.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            let mount = |src: Option<&Path>, dst: &Path, flags: libc::c_ulong| {
                let s = src.map(c);
                let r = unsafe {
                    libc::mount(
                        s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                        c(dst).as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    )
                };
                if r == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "mount {}: {}",
                        dst.display(),
                        std::io::Error::last_os_error()
                    ))
                }
            };
            if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
                return Err(format!("unshare: {}", std::io::Error::last_os_error()));
            }
            mount(None, Path::new("/"), libc::MS_REC | libc::MS_PRIVATE)?;
            mount(Some(&vol), &vol, libc::MS_BIND)?;
            fs::create_dir(vol.join("d")).map_err(|e| e.to_string())?;
            mount(Some(&src), &vol.join("d"), libc::MS_BIND)?;
            to_swap.send(()).unwrap();
            swapped.recv().unwrap();
            mount(
                None,
                &vol.join("d"),
                libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
            )?;
            fs::write(vol.join("d.x/pwned"), "x").map_err(|e| format!("write: {e}"))
        })
    };
    swap_rx.recv().unwrap();
    fs::rename(vol.join("d"), vol.join("d.x")).unwrap();
    symlink(".", vol.join("d")).unwrap();
    swapped_tx.send(()).unwrap();
    let ctl = ctl.join().unwrap();
    assert!(
        pwned.exists(),
        "control: a remount that landed elsewhere left no writable bind: {ctl:?}"
    );
    fs::remove_file(&pwned).unwrap();
    let _ = fs::remove_file(vol.join("d"));
    let _ = fs::remove_dir(vol.join("d.x"));
    fs::create_dir(vol.join("d")).unwrap();
    symlink(".", vol.join("s")).unwrap();

    let rt = Runtime::new();
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (stop, vol) = (stop.clone(), vol.clone());
        std::thread::spawn(move || {
            // /vol/d and /vol/s swapped atomically, over and over: d is a directory one
            // moment and a symlink to the volume the next.
            let c = |p: std::path::PathBuf| CString::new(p.into_os_string().into_vec()).unwrap();
            let (d, sl) = (c(vol.join("d")), c(vol.join("s")));
            // A flip every ~4 µs (spun, not slept): a lookup of the runtime's completes
            // between two flips (openat2 RESOLVE_IN_ROOT retries while renames run), and a
            // flip often falls between two lookups of the same path (12-14 writable binds in
            // 200 with the old bind-then-remount code).
            unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 10_000_000 {
                let t = std::time::Instant::now();
                while t.elapsed() < std::time::Duration::from_micros(4) {
                    std::hint::spin_loop();
                }
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        d.as_ptr(),
                        libc::AT_FDCWD,
                        sl.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                n += 1;
            }
        })
    };
    let mut escaped = Vec::new();
    let mut failed = 0;
    for i in 0..200 {
        let mut b = rt.bundle("ro-race");
        b.add_mount(json!({"destination": "/vol", "type": "bind",
            "source": vol.to_string_lossy(), "options": ["rbind"]}));
        b.add_mount(json!({"destination": "/vol/d", "type": "bind",
            "source": src.to_string_lossy(), "options": ["bind", "ro"]}));
        b.sh("for p in /vol/d /vol/s /vol/d/s; do echo x > $p/pwned; done 2>/dev/null; true");
        let out = rt.run(&b);
        if !out.success() {
            failed += 1;
        }
        let _ = rt.delete_force(b.id());
        if pwned.exists() {
            escaped.push(format!("run {i}: {out}"));
            let _ = fs::remove_file(&pwned);
        }
    }
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    eprintln!("ro bind race: {failed} of 200 creates refused the swapped destination");
    assert!(
        escaped.is_empty(),
        "a read-only bind came up writable {} times in 200:\n{}",
        escaped.len(),
        escaped.join("\n")
    );
}

/// `root.readonly` with no /proc mounted in the container, and an image that plants
/// `/proc/self/fd/N -> /dev` symlinks: a runtime that remounts the root through a
/// `/proc/self/fd/N` path after pivot_root makes /dev read-only instead, and the root stays
/// writable. berth sets the flag on the root mount's fd.
#[test]
fn root_readonly_holds_without_a_proc_mount() {
    let rt = Runtime::new();
    let detector = "touch /probe 2>/dev/null && echo WRITABLE || echo READONLY";
    let bundle = |readonly: bool| {
        let mut b = rt.bundle("ro-noproc");
        let rootfs = b.private_rootfs();
        let fds = rootfs.join("proc/self/fd");
        fs::create_dir_all(&fds).unwrap();
        for n in 0..64 {
            symlink("/dev", fds.join(n.to_string())).unwrap();
        }
        b.edit(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/proc");
            c["root"]["readonly"] = json!(readonly);
        });
        b.sh(detector);
        b
    };
    // Control: a writable root is seen as writable.
    let out = rt.run(&bundle(false));
    if is_runc() && out.stderr.contains("not on procfs") {
        // runc 1.1.5 fails closed: it needs /proc in the container to close its fds.
        skip(
            "root_readonly_holds_without_a_proc_mount",
            "runc 1.1.5 runs no container without /proc mounted",
        );
        return;
    }
    let out = out.assert_ok();
    assert_eq!(out.stdout.trim(), "WRITABLE", "control: {out}");

    let out = rt.run(&bundle(true));
    if out.success() {
        assert_eq!(
            out.stdout.trim(),
            "READONLY",
            "root.readonly did not apply:\n{out}"
        );
    } else {
        out.assert_fail();
    }
}

/// An image symlink `/etc -> /proc/sys/kernel` and a bind at /etc/hostname: the destination
/// resolves to /proc/sys/kernel/hostname, which a bind must not cover. The check is on where
/// the destination landed, not on the configured string.
#[test]
fn bind_through_a_symlink_into_procfs_is_refused() {
    let rt = Runtime::new();
    let planted = rt.tmp().join("planted");
    fs::write(&planted, "PLANTED-HOSTNAME\n").unwrap();

    // Control: a bind over a procfs file at an allowed path shows the file: the detector
    // sees a covered procfs file.
    let mut b = rt.bundle("procbind-ctl");
    b.add_mount(json!({"destination": "/proc/uptime", "type": "bind",
        "source": planted.to_string_lossy(), "options": ["bind", "ro"]}));
    b.sh("cat /proc/uptime");
    let out = rt.run(&b).assert_ok();
    assert!(out.stdout.contains("PLANTED"), "control: {out}");

    let mut b = rt.bundle("procbind");
    let rootfs = b.private_rootfs();
    let _ = fs::remove_dir_all(rootfs.join("etc"));
    let _ = fs::remove_file(rootfs.join("etc"));
    symlink("/proc/sys/kernel", rootfs.join("etc")).unwrap();
    b.add_mount(json!({"destination": "/etc/hostname", "type": "bind",
        "source": planted.to_string_lossy(), "options": ["bind", "ro"]}));
    b.sh("cat /proc/sys/kernel/hostname");
    let out = rt.run(&b);
    assert!(
        !out.stdout.contains("PLANTED"),
        "a bind landed on /proc/sys/kernel/hostname:\n{out}"
    );
    if is_berth() {
        assert!(out.stderr.contains("procfs"), "{out}");
    }
    out.assert_fail();
}

// ---- state dir, pid file and preserve-fds (issue 10 items 2, 3, 7)

/// Runs `runtime --root <root> args...` to completion (killed past
/// CMD_TIMEOUT), with `setup` run in the child first (e.g. a umask), its
/// output in files under `scratch` (a container inherits them).
fn runtime_in(
    root: &Path,
    args: &[&str],
    scratch: &Path,
    setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Output {
    let n = next_counter();
    let (out, err) = (
        scratch.join(format!("rt-{n}.out")),
        scratch.join(format!("rt-{n}.err")),
    );
    let mut cmd = Command::new(runtime_path());
    cmd.arg("--root").arg(root).args(args).stdin(Stdio::null());
    cmd.stdout(fs::File::create(&out).unwrap());
    cmd.stderr(fs::File::create(&err).unwrap());
    unsafe { cmd.pre_exec(setup) };
    let mut child = cmd.spawn().expect("spawn runtime");
    let deadline = std::time::Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!("runtime {args:?} hung, killed ({s})");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    Output {
        status,
        stdout: fs::read(&out).unwrap_or_default(),
        stderr: fs::read(&err).unwrap_or_default(),
    }
}

/// Force-deletes a container of a `--root` of the test's own on drop (a
/// panicking test included), and its cgroup dirs.
struct DeleteIn<'a> {
    root: &'a Path,
    id: String,
    scratch: &'a Path,
}

impl Drop for DeleteIn<'_> {
    fn drop(&mut self) {
        let _ = runtime_in(
            self.root,
            &["delete", "--force", &self.id],
            self.scratch,
            || Ok(()),
        );
        for d in cgroup_dirs(&format!("/spec-tests/{}", self.id)) {
            let _ = fs::remove_dir(d);
        }
    }
}

/// In a host helper's pre_exec: become nobody (uid and gid 65534, no groups).
fn become_nobody() -> std::io::Result<()> {
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(65534, 65534, 65534) != 0
            || libc::setresuid(65534, 65534, 65534) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What an unprivileged user tries on a container's state dir `dir` in
/// `root`: open state.json and exec.fifo for writing (writing nothing: the
/// open is the permission check; a byte in the fifo would start the
/// container), read config.json, create a file in the root.
fn state_attack(root: &Path, dir: &Path) -> String {
    format!(
        "cd /; if (: >> {d}/state.json); then echo STATE-WRITABLE; else echo STATE-DENIED; fi; \
         if timeout 5 sh -c ': > {d}/exec.fifo'; then echo FIFO-WRITABLE; else echo FIFO-DENIED; fi; \
         if (cat {d}/config.json >/dev/null); then echo CONFIG-READABLE; else echo CONFIG-DENIED; fi; \
         if (touch {r}/planted); then echo ROOT-WRITABLE; else echo ROOT-DENIED; fi",
        d = dir.display(),
        r = root.display()
    )
}

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// Issue 10 item 2: a runtime run under `umask 000` with a fresh --root
/// leaves nothing another user can write or read: not state.json (a
/// poststop hook added there runs as root at delete), not exec.fifo (it
/// starts the container), not the kept config.json (env secrets), not the
/// root (a planted container). Control: the same attempts by the same
/// unprivileged helper on files of the same names, made 0666/0644 in a 0777
/// dir, succeed.
#[test]
fn state_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let scratch = rt.tmp();

    // Control.
    let ctl = scratch.join("ctl-root");
    let ctl_dir = ctl.join("c");
    fs::create_dir_all(&ctl_dir).unwrap();
    let perm = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    perm(&ctl, 0o777);
    perm(&ctl_dir, 0o777);
    fs::write(ctl_dir.join("state.json"), "{}").unwrap();
    perm(&ctl_dir.join("state.json"), 0o666);
    fs::write(ctl_dir.join("config.json"), "{}").unwrap();
    perm(&ctl_dir.join("config.json"), 0o644);
    let fifo = CString::new(ctl_dir.join("exec.fifo").to_string_lossy().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o666) }, 0);
    perm(&ctl_dir.join("exec.fifo"), 0o666);
    // A reader, as the container's init holds one: opening for writing won't block.
    let _reader = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ctl_dir.join("exec.fifo"))
        .unwrap();
    let c = host_sh(&state_attack(&ctl, &ctl_dir), None, become_nobody);
    let c_out = String::from_utf8_lossy(&c.stdout);
    for w in [
        "STATE-WRITABLE",
        "FIFO-WRITABLE",
        "CONFIG-READABLE",
        "ROOT-WRITABLE",
    ] {
        assert!(
            c_out.contains(w),
            "control: the unprivileged helper failed {w}:\n{}",
            text(&c)
        );
    }

    // The runtime under umask 000, with a --root it creates itself.
    let root = scratch.join("fresh-root");
    let mut b = rt.bundle("umask");
    b.args(&["sleep", "30"]);
    b.write();
    let _guard = DeleteIn {
        root: &root,
        id: b.id().to_string(),
        scratch,
    };
    let bundle = b.dir().to_string_lossy().into_owned();
    let out = runtime_in(
        &root,
        &["create", "--bundle", &bundle, b.id()],
        scratch,
        || {
            unsafe { libc::umask(0) };
            Ok(())
        },
    );
    assert!(out.status.success(), "create: {}", text(&out));
    let dir = root.join(b.id());
    let a = host_sh(&state_attack(&root, &dir), None, become_nobody);
    let a_out = String::from_utf8_lossy(&a.stdout);
    for w in [
        "STATE-DENIED",
        "FIFO-DENIED",
        "CONFIG-DENIED",
        "ROOT-DENIED",
    ] {
        assert!(
            a_out.contains(w),
            "another user got past {w} (umask 000):\n{}",
            text(&a)
        );
    }
    assert!(!root.join("planted").exists());
    // Its cgroup dirs too: one another user could write would take child
    // cgroups that keep delete from removing it (runc: 0755 less the umask).
    for d in cgroup_dirs(&b.cgroups_path()).iter().filter(|d| d.is_dir()) {
        let m = mode_of(d);
        assert_eq!(m & 0o022, 0, "cgroup dir {} has mode {m:o}", d.display());
    }
    let st = runtime_in(&root, &["state", b.id()], scratch, || Ok(()));
    assert!(
        String::from_utf8_lossy(&st.stdout).contains("\"created\""),
        "the container is no longer created: {}",
        text(&st)
    );
    let modes: Vec<(String, u32)> = [&root, &dir]
        .into_iter()
        .cloned()
        .chain(
            ["state.json", "config.json", "exec.fifo"]
                .iter()
                .map(|f| dir.join(f))
                .filter(|p| p.exists()),
        )
        .map(|p| (p.to_string_lossy().into_owned(), mode_of(&p)))
        .collect();
    let shown: Vec<String> = modes.iter().map(|(p, m)| format!("{p} {m:o}")).collect();
    if is_runc() {
        // runc 1.1.5: root 0700 (what keeps others out), container dir 0711,
        // state.json 0600, exec.fifo 0622, no config.json kept.
        eprintln!("runc's state modes under umask 000: {shown:?}");
    } else {
        for (p, m) in &modes {
            let want = if p.ends_with(b.id()) || *p == root.to_string_lossy() {
                0o700
            } else {
                0o600
            };
            assert_eq!(*m, want, "{p} has mode {m:o}, not {want:o}: {shown:?}");
        }
        assert_eq!(modes.len(), 5, "{shown:?}");
    }
}

/// Issue 10 item 2: a --root another user can write (0777, or owned by
/// another uid) is refused with one line naming it; a root-owned 0755 or
/// 0711 root is the normal case and is used. runc 1.1.5 uses any root.
#[test]
fn state_root_writable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let scratch = rt.tmp();
    let root_owned = |name: &str, mode: u32| {
        let d = scratch.join(name);
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
        d
    };
    for (name, mode) in [("r755", 0o755), ("r711", 0o711)] {
        let d = root_owned(name, mode);
        let out = runtime_in(&d, &["list"], scratch, || Ok(()));
        assert!(
            out.status.success(),
            "list in a {mode:o} root: {}",
            text(&out)
        );
    }
    let ww = root_owned("ww", 0o777);
    let theirs = root_owned("theirs", 0o755);
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    for d in [&ww, &theirs] {
        let mut b = rt.bundle("badroot");
        b.args(&["true"]);
        b.write();
        let _guard = DeleteIn {
            root: d,
            id: b.id().to_string(),
            scratch,
        };
        let bundle = b.dir().to_string_lossy().into_owned();
        let create = runtime_in(d, &["create", "--bundle", &bundle, b.id()], scratch, || {
            Ok(())
        });
        let list = runtime_in(d, &["list"], scratch, || Ok(()));
        if is_runc() {
            eprintln!(
                "runc 1.1.5 uses the root {} (mode {:o}): create {}, list {}",
                d.display(),
                mode_of(d),
                create.status,
                list.status
            );
            continue;
        }
        for (verb, out) in [("create", &create), ("list", &list)] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code().is_some_and(|c| c != 0),
                "{verb} used the root {}: {}",
                d.display(),
                text(out)
            );
            assert!(
                err.contains(&*d.to_string_lossy()) && err.trim().lines().count() == 1,
                "{verb}: not one line naming {}: {}",
                d.display(),
                text(out)
            );
        }
        assert!(!d.join(b.id()).exists(), "state made in {}", d.display());
    }
}

/// Issue 10 item 3: `--pid-file P` is written through a temp file next to
/// it; a symlink planted at P.tmp (the old temp name) must not make the
/// runtime write through it. Control: a plain create-and-truncate write of
/// P.tmp (what the old code did) changes the scratch file.
#[test]
fn pid_file_temp_symlink_is_not_followed() {
    const PRECIOUS: &str = "precious\n";
    let rt = Runtime::new();
    let victim = rt.tmp().join("victim");
    let pid_dir = rt.tmp().join("pids");
    fs::create_dir(&pid_dir).unwrap();
    let plant = |name: &str| {
        fs::write(&victim, PRECIOUS).unwrap();
        let p = pid_dir.join(name);
        let tmp = pid_dir.join(format!("{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        symlink(&victim, &tmp).unwrap();
        (p, tmp)
    };

    // Control.
    let (_, tmp) = plant("ctl");
    fs::write(&tmp, "12345").unwrap();
    assert_ne!(
        fs::read_to_string(&victim).unwrap(),
        PRECIOUS,
        "control: writing through the planted link did not reach the scratch file"
    );

    // create --pid-file.
    let (p, _) = plant("init");
    let mut b = rt.bundle("pidfile");
    b.args(&["sleep", "30"]);
    let ps = p.to_string_lossy().into_owned();
    let out = rt.create_with(&b, &["--pid-file", &ps]);
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        PRECIOUS,
        "create --pid-file wrote through the symlink at {ps}.tmp:\n{out}"
    );
    let out = out.assert_ok();
    let pid = rt.pid(b.id());
    assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(&p).unwrap().trim(),
        pid.to_string(),
        "{out}"
    );

    // exec --pid-file.
    rt.start(b.id()).assert_ok();
    let (p, _) = plant("exec");
    let ps = p.to_string_lossy().into_owned();
    let out = rt.exec(&["exec", "-d", "--pid-file", &ps, b.id(), "sleep", "30"]);
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        PRECIOUS,
        "exec --pid-file wrote through the symlink at {ps}.tmp:\n{out}"
    );
    out.assert_ok();
    let epid: i32 = fs::read_to_string(&p).unwrap().trim().parse().unwrap();
    assert!(epid > 0 && epid != pid && pid_alive(epid));
}

/// Issue 10 item 7: `--preserve-fds 5` from a caller holding no fd at 3..7
/// must be refused (one error naming --preserve-fds, nothing created):
/// otherwise the runtime's own fds at those numbers (namespace fds in exec,
/// the console socketpair in `run -t`) reach the container. Control: with
/// the caller passing five files at 3..7 the container's detector lists
/// exactly them.
#[test]
fn preserve_fds_beyond_the_callers_fds_is_refused() {
    let rt = Runtime::new();
    let files: Vec<fs::File> = (0..5)
        .map(|i| fs::File::create(rt.tmp().join(format!("passed-{i}"))).unwrap())
        .collect();
    let raw: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    let passed = |out: &str| -> Vec<u32> {
        leaked_fds(out)
            .into_iter()
            .filter(|(_, t)| t.contains("/passed-"))
            .map(|(n, _)| n)
            .collect()
    };

    // Control: run.
    let mut c = rt.bundle("pfd-ctl");
    c.sh(FD_DETECTOR);
    let ctl = rt
        .spawn_run(&c, &["--preserve-fds", "5"], &raw)
        .wait(CMD_TIMEOUT)
        .assert_ok();
    assert_eq!(passed(&ctl.stdout), [3, 4, 5, 6, 7], "control:\n{ctl}");

    // run without the fds: 1 (runc 1.1.5 then hands over an fd of its own,
    // /sys/fs/cgroup, and runs) and 5 (beyond runc's own fds: it fails too).
    let refused = |out: &Out, what: &str| {
        if is_runc() && out.success() {
            eprintln!(
                "runc 1.1.5 accepts {what} without the fds; the process got {:?}",
                leaked_fds(&out.stdout)
            );
            return;
        }
        let out = out.clone().assert_fail();
        if is_runc() {
            eprintln!("runc 1.1.5 refuses {what}: {}", out.stderr.trim());
        }
        assert!(
            !out.stdout.contains("DONE"),
            "{what}: the process ran:\n{out}"
        );
        if is_berth() {
            assert!(
                out.stderr.contains("--preserve-fds") && out.stderr.trim().lines().count() == 1,
                "{what}: not one line naming --preserve-fds:\n{out}"
            );
        }
    };
    for n in ["1", "5"] {
        let mut b = rt.bundle("pfd-run");
        b.sh(FD_DETECTOR);
        let out = rt
            .spawn_run(&b, &["--preserve-fds", n], &[])
            .wait(CMD_TIMEOUT);
        refused(&out, &format!("run --preserve-fds {n}"));
        if !out.success() {
            assert!(!rt.root().join(b.id()).exists(), "state left:\n{out}");
        }
    }

    // exec, into a running container.
    let mut e = rt.bundle("pfd-exec");
    e.args(&["sleep", "30"]);
    rt.create_and_start(&e);
    let ctl = rt
        .spawn(
            &[
                "exec",
                "--preserve-fds",
                "5",
                e.id(),
                "sh",
                "-c",
                FD_DETECTOR,
            ],
            &raw,
        )
        .wait(CMD_TIMEOUT)
        .assert_ok();
    assert_eq!(
        passed(&ctl.stdout),
        [3, 4, 5, 6, 7],
        "control (exec):\n{ctl}"
    );
    for n in ["1", "5"] {
        let out = rt
            .spawn(
                &["exec", "--preserve-fds", n, e.id(), "sh", "-c", FD_DETECTOR],
                &[],
            )
            .wait(CMD_TIMEOUT);
        refused(&out, &format!("exec --preserve-fds {n}"));
    }
}

// ------------------------------------------------------- --no-pivot and a bare /proc

/// What a process does to get an unmasked /proc: a user namespace of its own (`unshare -r`:
/// the mounts copied into its new mount namespace are then locked), a pid namespace, and a
/// fresh procfs on /proc. The kernel allows that mount only while a fully visible procfs is
/// in the mount namespace (mount_too_revealing): with pivot_root there is none, the
/// container's /proc being masked; with `--no-pivot` (MS_MOVE + chroot) the host's old
/// root, its /proc included, stays in the namespace below the chroot unless the runtime
/// detaches it.
/// A masked path shows as /dev/null; in the fresh procfs it is the kernel's file again.
const BARE_PROC_ATTEMPT: &str = "unshare -mrpf sh -c 'mount -t proc none /proc 2>&1 && \
    { echo BARE-PROC-MOUNTED; test -c /proc/timer_list || echo TIMER-LIST-UNMASKED; }'; \
    echo RC=$?";

fn bare_proc_bundle(rt: &Runtime, name: &str) -> Bundle {
    let mut b = rt.bundle(name);
    b.sh(BARE_PROC_ATTEMPT);
    // Mapping root in a user namespace needs CAP_SETFCAP (Linux 5.12), as runc's test adds.
    for set in ["bounding", "effective", "permitted"] {
        b.config_mut()["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SETFCAP"));
    }
    b
}

/// The attack of runc's no_pivot.bats, run with `--no-pivot`: the fresh procfs must be
/// refused (EPERM). Control: the same attack in a `--no-pivot` container that also has an
/// unmasked procfs of its own at /mnt (a fully visible one in its mount namespace) mounts
/// it, so the detector fires when a bare procfs is reachable.
#[test]
fn no_pivot_does_not_expose_a_bare_proc() {
    let rt = Runtime::new();

    let mut c = bare_proc_bundle(&rt, "bare-proc-ctl");
    c.add_mount(json!({"destination": "/mnt", "type": "proc", "source": "proc"}));
    let ctl = rt.run_with(&c, &["--no-pivot"]).assert_ok();
    assert!(
        ctl.stdout.contains("BARE-PROC-MOUNTED") && ctl.stdout.contains("TIMER-LIST-UNMASKED"),
        "control: the fresh procfs was not mounted beside a fully visible one:\n{ctl}"
    );

    let b = bare_proc_bundle(&rt, "bare-proc");
    let out = rt.run_with(&b, &["--no-pivot"]).assert_ok();
    assert!(
        !out.stdout.contains("BARE-PROC-MOUNTED"),
        "--no-pivot: a process mounted an unmasked /proc:\n{out}"
    );
    let msg = out.stdout.to_lowercase();
    assert!(
        msg.contains("permission denied") || msg.contains("not permitted"),
        "the mount failed for another reason than EPERM:\n{out}"
    );
}
