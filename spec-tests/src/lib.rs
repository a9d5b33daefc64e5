//! Harness shared by the conformance tests.
//!
//! The tests drive a runc-compatible runtime binary (env `RUNTIME`, default
//! the workspace's `target/release/berth`) through its command line only, so
//! the same suite checks berth and runc. Everything a test creates lives in
//! temp dirs owned by guards: a [`Runtime`] force-deletes the containers it
//! created and removes its dirs when dropped, even when the test panicked.
//!
//! Command lines used (all with the global `--root <per-test dir>` first):
//! `create [--pid-file F] [--console-socket S] --bundle B ID`, `start ID`,
//! `state ID`, `kill ID [SIG]`, `delete [--force] ID`,
//! `run [--detach] [--no-pivot] [--preserve-fds N]
//! [--console-socket S] --bundle B ID`, `list -q`, `list --format json`,
//! `spec --bundle DIR`.

use serde_json::{json, Value};
use std::cell::RefCell;
use std::fs;
use std::os::fd::RawFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

pub mod caps;
pub mod cgroupv2;
pub mod console;
pub mod mountinfo;

pub use console::ConsoleSocket;
pub use mountinfo::MountEntry;

/// Limit for one runtime command; generous because a hung runtime is a
/// failure we want reported, not a suite that never ends.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// Limit for waiting on a state change or a marker file.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A number unique within this test process.
pub fn next_counter() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A container id unique on the host: prefix, our pid and a counter.
pub fn unique_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), next_counter())
}

/// The runtime under test: `$RUNTIME`, else the workspace's release berth.
/// A bare name (`RUNTIME=runc`) is looked up in PATH; a relative path is
/// taken from the workspace root (cargo runs tests in the package dir, so
/// the caller's cwd is lost), falling back to the test's cwd.
pub fn runtime_path() -> PathBuf {
    let workspace = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let Some(raw) = std::env::var_os("RUNTIME").filter(|p| !p.is_empty()) else {
        return workspace.join("target/release/berth");
    };
    let p = PathBuf::from(&raw);
    if p.is_absolute() {
        return p;
    }
    if p.components().count() == 1 {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(found) = std::env::split_paths(&path)
            .map(|d| d.join(&p))
            .find(|c| c.is_file())
        {
            return found;
        }
    }
    let from_workspace = workspace.join(&p);
    if from_workspace.exists() {
        from_workspace
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

fn runtime_file_name() -> String {
    runtime_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// True when the runtime under test is runc (used only for the documented
/// runc-only skips).
pub fn is_runc() -> bool {
    runtime_file_name().contains("runc")
}

/// True when the runtime under test is berth: optional-feature skips never
/// apply to it.
pub fn is_berth() -> bool {
    runtime_file_name().contains("berth")
}

/// Prints a skip notice (libtest has no runtime skip; the test returns early).
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIP {test} for {}: {why}", runtime_path().display());
}

// ---------------------------------------------------------------- temp dirs

/// A directory removed (after detaching anything mounted below it) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("spec-tests-{}", unique_id(tag)));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        // 0755 whatever the umask: unprivileged container users (uid 1000,
        // a user namespace's 100000) must be able to traverse bundle dirs.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_tree(&self.path);
    }
}

/// Removes `path` recursively. Mounts found below it (leaked by a faulty
/// runtime, or made by a test) are detached first, because remove_dir_all
/// would otherwise descend into them and delete whatever they show, which
/// could be a host directory. If a mount can't be detached, nothing is
/// removed.
pub fn remove_tree(path: &Path) {
    if !path.exists() {
        return;
    }
    for mp in mountinfo::host_mounts_under(path).iter().rev() {
        if let Ok(c) = std::ffi::CString::new(mp.as_str()) {
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    if !mountinfo::host_mounts_under(path).is_empty() {
        eprintln!(
            "spec-tests: not removing {}: mounts remain below it",
            path.display()
        );
        return;
    }
    let _ = fs::remove_dir_all(path);
}

// ------------------------------------------------------------------ rootfs

static ROOTFS: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_shared_rootfs() {
    if let Some(p) = ROOTFS.get() {
        remove_tree(p);
    }
}

/// True if `path` is an ELF executable without a PT_INTERP program header,
/// i.e. statically linked and usable in a rootfs that has no libc.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = fs::read(path) else { return false };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false; // only 64-bit ELF is expected on the hosts we run on
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}

/// A C program of spec-tests (`rel` below the crate, e.g. "attack/grab_exe.c") built static
/// into `out_dir` as `name`: test rootfses have no libc. Panics if cc fails (make deps
/// installs gcc and libc6-dev).
pub fn build_static_c(rel: &str, out_dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let out = out_dir.join(name);
    let st = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run cc (make deps installs gcc and libc6-dev)");
    assert!(st.success(), "cc -static {} failed", src.display());
    out
}

/// A statically linked busybox: `$BUSYBOX`, else the usual locations
/// (Debian's busybox-static installs /bin/busybox).
pub fn busybox() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("BUSYBOX") {
        candidates.push(p.into());
    }
    candidates.extend(
        [
            "/bin/busybox",
            "/usr/bin/busybox",
            "/sbin/busybox",
            "/usr/sbin/busybox",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|p| is_static_elf(p))
        .expect("no statically linked busybox found (install busybox-static or set BUSYBOX)")
}

/// Files every rootfs gets besides busybox. `nobody` has a home that
/// doesn't exist, as on Debian, so HOME tests can tell sources apart.
const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\ntty:x:5:\nnobody:x:65534:\n";

/// Directories pre-created in the rootfs so that common mount destinations
/// exist even under a read-only root (tests don't depend on the runtime
/// creating them in the shared rootfs concurrently).
const ROOTFS_DIRS: [&str; 11] = [
    "bin", "proc", "sys", "dev", "tmp", "etc", "root", "out", "mnt", "data", "scratch",
];

fn build_rootfs(dir: &Path) {
    fs::create_dir_all(dir).expect("mkdir rootfs");
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    for d in ROOTFS_DIRS {
        fs::create_dir_all(dir.join(d)).unwrap();
        fs::set_permissions(dir.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let bb = dir.join("bin/busybox");
    fs::copy(busybox(), &bb).expect("copy busybox");
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755)).unwrap();
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    assert!(list.status.success(), "busybox --list failed");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        // `busybox --list` may name busybox itself: a self-link would loop.
        if applet != "busybox" && !applet.contains('/') {
            let _ = symlink("busybox", dir.join("bin").join(applet));
        }
    }
    fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    fs::write(dir.join("etc/group"), GROUP).unwrap();
}

/// The busybox rootfs shared by every bundle of this test process. Bundles
/// point at it with an absolute root.path and a read-only root, so
/// containers can't change it. It is removed when the process exits.
pub fn shared_rootfs() -> &'static Path {
    ROOTFS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("spec-tests-rootfs-{}", std::process::id()));
        remove_tree(&dir); // a stale one from an earlier process with our pid
        build_rootfs(&dir);
        // Statics are never dropped; atexit runs when libtest's main exits.
        unsafe { libc::atexit(remove_shared_rootfs) };
        dir
    })
}

/// Copies a tree (dirs, regular files with their modes, symlinks as links).
pub fn copy_tree(from: &Path, to: &Path) {
    let meta =
        fs::symlink_metadata(from).unwrap_or_else(|e| panic!("stat {}: {e}", from.display()));
    let ft = meta.file_type();
    if ft.is_symlink() {
        symlink(fs::read_link(from).unwrap(), to).unwrap();
    } else if ft.is_dir() {
        fs::create_dir_all(to).unwrap();
        fs::set_permissions(to, meta.permissions()).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        fs::copy(from, to).unwrap();
    }
}

// ------------------------------------------------------------------ config

/// The config `runc spec` writes, except: no terminal, an absolute root.path
/// and a unique absolute cgroupsPath (so leftover checks know where to look).
pub fn base_config(rootfs: &Path, cgroups_path: &str) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
                "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs.to_string_lossy(), "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory with its config, for one container id.
pub struct Bundle {
    id: String,
    dir: PathBuf,
    config: Value,
}

impl Bundle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The bundle directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config to change freely before create/run (which write it).
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// Changes the config with a closure; chains.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self
    }

    /// The `linux.cgroupsPath` of this bundle (`/spec-tests/<id>`).
    pub fn cgroups_path(&self) -> String {
        self.config["linux"]["cgroupsPath"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The rootfs the config points at, made absolute.
    pub fn rootfs(&self) -> PathBuf {
        let p = PathBuf::from(self.config["root"]["path"].as_str().expect("root.path"));
        if p.is_absolute() {
            p
        } else {
            self.dir.join(p)
        }
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Runs `sh -c script` as the container process.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.config["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(mount);
        self
    }

    /// Removes the namespace of type `kind` from linux.namespaces.
    pub fn remove_namespace(&mut self, kind: &str) -> &mut Self {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != kind);
        self
    }

    /// Adds (or replaces) a namespace entry, with a path to join if given.
    pub fn set_namespace(&mut self, kind: &str, path: Option<&str>) -> &mut Self {
        self.remove_namespace(kind);
        let mut ns = json!({"type": kind});
        if let Some(p) = path {
            ns["path"] = json!(p);
        }
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(ns);
        self
    }

    /// Creates the host dir `<bundle>/<name>` (mode 0777 so any container
    /// user can write) and bind-mounts it at `dest`, read-only if `ro`.
    pub fn bind_dir(&mut self, name: &str, dest: &str, ro: bool) -> PathBuf {
        let host = self.dir.join(name);
        fs::create_dir_all(&host).unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o777)).unwrap();
        let mut opts = vec!["rbind"];
        if ro {
            opts.push("ro");
        }
        self.add_mount(json!({"destination": dest, "type": "bind", "source": host.to_string_lossy(), "options": opts}));
        host
    }

    /// The usual way for a container to report back: a writable host dir
    /// bind-mounted at /out (which exists in the rootfs).
    pub fn out_dir(&mut self) -> PathBuf {
        self.bind_dir("out", "/out", false)
    }

    /// Gives this bundle its own copy of the rootfs (at `<bundle>/rootfs`,
    /// referenced by the relative path "rootfs") for tests that change it.
    pub fn private_rootfs(&mut self) -> PathBuf {
        let dst = self.dir.join("rootfs");
        if !dst.exists() {
            copy_tree(shared_rootfs(), &dst);
        }
        self.config["root"]["path"] = json!("rootfs");
        dst
    }

    /// Writes config.json (create/run call this).
    pub fn write(&self) {
        let text = serde_json::to_string_pretty(&self.config).unwrap();
        fs::write(self.dir.join("config.json"), text).expect("write config.json");
    }
}

// ----------------------------------------------------------------- outputs

/// What one runtime command did.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or None if the command was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the command, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    #[track_caller]
    pub fn assert_ok(self) -> Self {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Asserts the command failed with a non-zero exit code (a crash by
    /// signal is not a proper failure report).
    #[track_caller]
    pub fn assert_fail(self) -> Self {
        assert!(
            matches!(self.code(), Some(c) if c != 0),
            "expected a non-zero exit:\n{self}"
        );
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout\n{}--- stderr\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
}

/// A runtime command running in the background (e.g. a foreground `run`
/// that a test kills from outside). Killed and reaped on drop.
pub struct Running {
    child: Option<Child>,
    cmd: String,
    out_path: PathBuf,
    err_path: PathBuf,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn collect(&self, status: ExitStatus) -> Out {
        Out {
            cmd: self.cmd.clone(),
            status,
            stdout: fs::read_to_string(&self.out_path).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err_path).unwrap_or_default(),
        }
    }

    /// Waits for the command; None if it is still running at the limit.
    pub fn try_wait_for(&mut self, timeout: Duration) -> Option<Out> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let child = self.child.as_mut().expect("already waited");
            if let Some(status) = child.try_wait().expect("wait for runtime") {
                self.child = None;
                return Some(self.collect(status));
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits for the command; panics (after killing it) past `timeout`.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Out {
        match self.try_wait_for(timeout) {
            Some(out) => out,
            None => {
                let child = self.child.as_mut().unwrap();
                let _ = child.kill();
                let status = child.wait().unwrap();
                self.child = None;
                panic!(
                    "runtime command hung for {timeout:?}, killed:\n{}",
                    self.collect(status)
                );
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ----------------------------------------------------------------- runtime

/// One test's view of the runtime: its own `--root` state dir and temp area,
/// the containers it created (force-deleted on drop) and its bundles.
pub struct Runtime {
    bin: PathBuf,
    tmp: TempDir,
    root: PathBuf,
    ids: RefCell<Vec<String>>,
    /// Global flags given to every call after `--root` (e.g. `--systemd-cgroup`).
    flags: Vec<String>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime::with_binary(runtime_path())
    }

    /// A runtime run from another binary: a throw-away copy of the one under test, for the
    /// attacks that try to overwrite it.
    pub fn with_binary(bin: PathBuf) -> Runtime {
        assert!(
            bin.is_file(),
            "runtime binary {} not found: build it (cargo build --release) or set RUNTIME=/path/to/runtime",
            bin.display()
        );
        let tmp = TempDir::new("t");
        let root = tmp.path().join("state");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        Runtime {
            bin,
            tmp,
            root,
            ids: RefCell::new(Vec::new()),
            flags: Vec::new(),
        }
    }

    /// A runtime given these global flags on every call (`--systemd-cgroup`).
    pub fn with_flags(flags: &[&str]) -> Runtime {
        let mut rt = Runtime::new();
        rt.flags = flags.iter().map(|f| f.to_string()).collect();
        rt
    }

    /// The runtime's `--root` dir for this test.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This test's temp area (bundles, sockets, files given to containers).
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// A new bundle (in this test's temp area) with a fresh id, the shared
    /// rootfs and cgroupsPath `/spec-tests/<id>`.
    pub fn bundle(&self, prefix: &str) -> Bundle {
        self.bundle_with_id(&unique_id(prefix))
    }

    /// A new bundle for a given id (e.g. to try reusing an id).
    pub fn bundle_with_id(&self, id: &str) -> Bundle {
        let id = id.to_string();
        let dir = self.tmp.path().join(format!("bundle-{}", next_counter()));
        fs::create_dir(&dir).unwrap();
        let config = base_config(shared_rootfs(), &format!("/spec-tests/{id}"));
        Bundle { id, dir, config }
    }

    /// Remembers an id so the drop guard force-deletes it.
    pub fn track(&self, id: &str) {
        let mut ids = self.ids.borrow_mut();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Starts `runtime --root <root> args...` with stdin from /dev/null and
    /// stdout/stderr to files (not pipes: after `create` the container
    /// inherits them, and a pipe would never reach EOF). `fds` are given to
    /// the runtime as fds 3, 4, ... (for --preserve-fds).
    pub fn spawn(&self, args: &[&str], fds: &[RawFd]) -> Running {
        let n = next_counter();
        let out_path = self.tmp.path().join(format!("cmd-{n}.out"));
        let err_path = self.tmp.path().join(format!("cmd-{n}.err"));
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(&self.root)
            .args(&self.flags)
            .args(args);
        cmd.stdin(Stdio::null());
        cmd.stdout(fs::File::create(&out_path).unwrap());
        cmd.stderr(fs::File::create(&err_path).unwrap());
        if !fds.is_empty() {
            let fds = fds.to_vec();
            // dup2 onto 3.. clears FD_CLOEXEC, so the fds survive exec.
            // Only async-signal-safe calls happen between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    for (i, fd) in fds.iter().enumerate() {
                        let target = 3 + i as i32;
                        // dup2 onto itself is a no-op that keeps CLOEXEC,
                        // so that case clears the flag explicitly.
                        let r = if *fd == target {
                            libc::fcntl(target, libc::F_SETFD, 0)
                        } else {
                            libc::dup2(*fd, target)
                        };
                        if r < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        let line = format!(
            "{} --root {} {}{}",
            self.bin.display(),
            self.root.display(),
            self.flags
                .iter()
                .map(|f| format!("{f} "))
                .collect::<String>(),
            args.join(" ")
        );
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {line}: {e}"));
        Running {
            child: Some(child),
            cmd: line,
            out_path,
            err_path,
        }
    }

    /// Runs a runtime command to completion (panics if it hangs).
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Out {
        self.spawn(args, &[]).wait(CMD_TIMEOUT)
    }

    /// `create [extra...] --bundle <dir> <id>`.
    pub fn create_with(&self, b: &Bundle, extra: &[&str]) -> Out {
        b.write();
        self.track(b.id());
        let dir = b.dir().to_string_lossy().into_owned();
        let mut args = vec!["create"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--bundle", &dir, b.id()]);
        self.exec(&args)
    }

    pub fn create(&self, b: &Bundle) -> Out {
        self.create_with(b, &[])
    }

    /// Builds the argument list of `run [extra...] --bundle <dir> <id>`.
    fn run_args(&self, b: &Bundle, extra: &[&str]) -> Vec<String> {
        b.write();
        self.track(b.id());
        let mut args = vec!["run".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([
            "--bundle".to_string(),
            b.dir().to_string_lossy().into_owned(),
            b.id().to_string(),
        ]);
        args
    }

    /// Foreground `run`: returns when the container process exits.
    pub fn run_with(&self, b: &Bundle, extra: &[&str]) -> Out {
        let args = self.run_args(b, extra);
        self.exec(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    pub fn run(&self, b: &Bundle) -> Out {
        self.run_with(b, &[])
    }

    /// Foreground `run` left in the background, with extra fds (3, 4, ...).
    pub fn spawn_run(&self, b: &Bundle, extra: &[&str], fds: &[RawFd]) -> Running {
        let args = self.run_args(b, extra);
        self.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), fds)
    }

    pub fn start(&self, id: &str) -> Out {
        self.exec(&["start", id])
    }

    pub fn state_out(&self, id: &str) -> Out {
        self.exec(&["state", id])
    }

    /// `state <id>` parsed; panics if the command fails or prints no JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.state_out(id).assert_ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{out}"))
    }

    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The container process's host pid from `state`.
    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let st = self.state(id);
        let pid = st["pid"].as_i64().unwrap_or(0) as i32;
        assert!(pid > 0, "state has no pid: {st}");
        pid
    }

    /// `kill <id> [signal]` (no signal: the runtime's default, SIGTERM).
    pub fn kill(&self, id: &str, signal: Option<&str>) -> Out {
        match signal {
            Some(s) => self.exec(&["kill", id, s]),
            None => self.exec(&["kill", id]),
        }
    }

    pub fn delete(&self, id: &str) -> Out {
        self.exec(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Out {
        self.exec(&["delete", "--force", id])
    }

    /// Polls `state` until status is `want`; returns that state.
    #[track_caller]
    pub fn wait_status(&self, id: &str, want: &str) -> Value {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            // `state` may fail at first when a backgrounded `run` hasn't
            // registered the container yet; keep polling until the limit.
            let out = self.state_out(id);
            let st: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
            if out.success() && st["status"] == want {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} never reached {want:?}; last state:\n{out}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Creates and starts a container, asserting both succeed; returns the
    /// container pid.
    #[track_caller]
    pub fn create_and_start(&self, b: &Bundle) -> i32 {
        self.create(b).assert_ok();
        let pid = self.pid(b.id());
        self.start(b.id()).assert_ok();
        pid
    }

    /// Asserts that nothing of container `b` is left: no state under
    /// --root, no cgroup dir in any hierarchy, no live init process (`pid`,
    /// if known), no host mount mentioning the bundle, its rootfs or the
    /// state dir, and `state` fails.
    #[track_caller]
    pub fn assert_gone(&self, b: &Bundle, pid: Option<i32>) {
        let id = b.id();
        let st = self.state_out(id);
        assert!(!st.success(), "state still succeeds after delete:\n{st}");
        let state_dir = self.root.join(id);
        assert!(
            !state_dir.exists(),
            "state dir {} left behind",
            state_dir.display()
        );
        // Cgroup removal and process teardown are given a moment, as a
        // runtime may legitimately wait for the kernel to finish them.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let cgroups: Vec<PathBuf> = cgroup_dirs(&b.cgroups_path())
                .into_iter()
                .filter(|d| d.exists())
                .collect();
            let alive = pid.is_some_and(pid_alive);
            if cgroups.is_empty() && !alive {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "leftovers of {id}: cgroup dirs {cgroups:?}, init pid {pid:?} alive: {alive}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        let mut needles = vec![
            b.dir().to_string_lossy().into_owned(),
            self.root.to_string_lossy().into_owned(),
        ];
        if b.rootfs() != shared_rootfs() {
            needles.push(b.rootfs().to_string_lossy().into_owned());
        }
        for n in needles {
            let lines = mountinfo::host_lines_mentioning(&n);
            assert!(
                lines.is_empty(),
                "host mounts mentioning {n} left behind:\n{}",
                lines.join("\n")
            );
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Force-delete whatever the test left (it may have panicked). No
        // panics here: a panic while unwinding would abort the process.
        for id in self.ids.borrow().iter() {
            let mut r = self.spawn(&["delete", "--force", id], &[]);
            if r.try_wait_for(Duration::from_secs(15)).is_none() {
                eprintln!("spec-tests: delete --force {id} hung");
            }
            // Keep the host clean even when a runtime was interrupted
            // mid-create: empty cgroup dirs of our ids are removed (rmdir
            // fails harmlessly on a dir that still has processes).
            for dir in cgroup_dirs(&format!("/spec-tests/{id}")) {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

// ------------------------------------------------------------ host probes

/// True if `pid` exists and is not a zombie. A zombie counts as gone: the
/// container's init is reparented to the host's init, which may reap late.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state letter follows the parenthesised comm (which may itself
        // contain parentheses, hence the last ')').
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
    }
}

/// Host cgroup mount points (v1 hierarchies and cgroup2), whose root is the
/// hierarchy root.
pub fn cgroup_mounts() -> Vec<MountEntry> {
    mountinfo::host()
        .into_iter()
        .filter(|e| (e.fstype == "cgroup" || e.fstype == "cgroup2") && e.root == "/")
        .collect()
}

/// The directories a container with `cgroups_path` has in every mounted
/// hierarchy (v1 controllers, the hybrid `unified` one, or pure v2).
pub fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    cgroup_mounts()
        .into_iter()
        .map(|m| Path::new(&m.mount_point).join(rel))
        .collect()
}

/// True on a pure cgroup v2 host.
pub fn cgroup2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The test process's own namespace link (e.g. "net:[4026531840]").
pub fn own_ns(kind: &str) -> String {
    fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A host process (busybox sleep) in new namespaces made with unshare(2)
/// before exec, so tests can have a container join them by path without
/// relying on the runtime under test or on util-linux. Killed on drop.
pub struct NsHolder {
    child: Child,
}

impl NsHolder {
    /// `flags` are CLONE_NEW* flags; with CLONE_NEWUTS a `hostname` is set
    /// in the new namespace.
    pub fn new(flags: libc::c_int, hostname: Option<&str>) -> NsHolder {
        let name = hostname.map(|h| h.as_bytes().to_vec());
        let mut cmd = Command::new(busybox());
        cmd.args(["sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // Only raw syscalls between fork and exec (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(flags) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(n) = &name {
                    if libc::sethostname(n.as_ptr().cast(), n.len()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        // spawn returns after the exec succeeded, so the namespaces exist.
        let child = cmd.spawn().expect("spawn namespace holder");
        NsHolder { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The /proc path of one of its namespaces, e.g. "/proc/123/ns/net".
    pub fn ns_path(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.child.id())
    }

    /// Its namespace link, comparable with what a container prints.
    pub fn ns_link(&self, kind: &str) -> String {
        fs::read_link(self.ns_path(kind))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the value after `key` in a `Key:\tvalue` file such as
/// /proc/<pid>/status, whitespace-normalised.
pub fn status_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}
