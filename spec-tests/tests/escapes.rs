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
use std::os::unix::fs::symlink;
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
