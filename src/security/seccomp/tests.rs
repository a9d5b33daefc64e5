//! Tests of the seccomp module. The ones that load filters need root; they load in a child
//! of `std::process::Command` (the `pre_exec` hook runs in the forked child before exec), so
//! the test process itself is never filtered. The test harness has threads: the hooks only
//! make system calls on memory prepared before the fork (Filter::load does not allocate).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

pub fn prog_bytes(f: &Filter) -> Vec<u8> {
    f.prog
        .iter()
        .flat_map(|i| {
            let mut b = i.code.to_le_bytes().to_vec();
            b.extend([i.jt, i.jf]);
            b.extend(i.k.to_le_bytes());
            b
        })
        .collect()
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid linux.seccomp")
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "berth-seccomp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An error a hook reports: `tag` says which check, the rest the errno it saw (0: none).
fn hook_err(tag: i32) -> io::Error {
    io::Error::from_raw_os_error(tag * 1000 + nix::errno::Errno::last_raw())
}

/// Expects `r` to be a failure with `errno`.
fn want_errno(r: libc::c_long, errno: i32, tag: i32) -> io::Result<()> {
    if r == -1 && nix::errno::Errno::last_raw() == errno {
        Ok(())
    } else {
        if r >= 0 {
            nix::errno::Errno::set_raw(0);
        }
        Err(hook_err(tag))
    }
}

type Hook = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// `/bin/sh -c script` in a child that loads `f` first, then runs `after`.
fn sh(f: &Filter, script: &str, after: Hook) -> Output {
    let f = f.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    // SAFETY: runs in the forked child before exec. Filter::load is one seccomp(2) call on a
    // program built before the fork and does not allocate on success; the hooks only make
    // system calls on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            f.load().map_err(|_| hook_err(999))?;
            after()
        });
    }
    cmd.output().expect("run /bin/sh under the filter")
}

fn nothing() -> Hook {
    Box::new(|| Ok(()))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn mkdir_gets_eperm_and_the_rest_works() {
    if !is_root() {
        return;
    }
    let d = TempDir::new("errno");
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["symlink", "symlinkat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}
        ]
    })))
    .unwrap();
    assert!(!f.uses_notify());
    let out = sh(
        &f,
        &format!(
            "cd {}; mkdir a; echo mkdir=$?; ln -s x l; echo ln=$?; echo hi > f && cat f",
            d.path().display()
        ),
        nothing(),
    );
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{out:?}");
    assert!(
        o.contains("mkdir=1") && o.contains("ln=1") && o.contains("hi"),
        "{o}"
    );
    assert!(
        e.contains("Operation not permitted"),
        "default errno is EPERM: {e}"
    );
    assert!(
        e.contains("Read-only file system"),
        "errnoRet 30 is EROFS: {e}"
    );
    assert!(!d.path().join("a").exists());
    assert!(d.path().join("f").exists());
}

/// socket(domain, type) under `f`: whether the call failed with the marker errno 1234.
fn socket_blocked(domain: i32, ty: i32) -> bool {
    // SAFETY: plain system call with integer arguments; the fd, if any, is closed at once.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) };
    if fd >= 0 {
        // SAFETY: `fd` was just returned to us and is not used afterwards.
        unsafe { libc::close(fd) };
        return false;
    }
    nix::errno::Errno::last_raw() == 1234
}

/// (domain, type, whether the rule blocks it).
type Case = (i32, i32, bool);

/// Loads `args` as an ERRNO(1234) rule on socket and checks each (domain, type, blocked).
fn socket_rule(args: Value, cases: &'static [Case]) {
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1234,
                      "args": args}]
    })))
    .unwrap();
    let out = sh(
        &f,
        "exit 0",
        Box::new(move || {
            for (i, &(domain, ty, blocked)) in cases.iter().enumerate() {
                if socket_blocked(domain, ty) != blocked {
                    nix::errno::Errno::set_raw(0);
                    return Err(hook_err(i as i32 + 1));
                }
            }
            Ok(())
        }),
    )
    .status;
    assert!(out.success(), "{args}: {out:?}");
}

#[test]
fn args_masked_eq_and_operators() {
    if !is_root() {
        return;
    }
    use libc::{AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM};
    // MASKED_EQ: type & 0xf == SOCK_DGRAM, whatever the flag bits.
    socket_rule(
        json!([{"index": 1, "value": 15, "valueTwo": SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ"}]),
        &[
            (AF_UNIX, SOCK_DGRAM, true),
            (AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, true),
            (AF_UNIX, SOCK_STREAM, false),
        ],
    );
    // Conditions on different arguments: all must hold.
    socket_rule(
        json!([{"index": 0, "value": AF_UNIX, "op": "SCMP_CMP_EQ"},
               {"index": 1, "value": 15, "valueTwo": SOCK_DGRAM, "op": "SCMP_CMP_MASKED_EQ"}]),
        &[
            (AF_UNIX, SOCK_DGRAM, true),
            (AF_UNIX, SOCK_STREAM, false),
            (AF_INET, SOCK_DGRAM, false),
        ],
    );
    // Several conditions on one argument: any may hold (runc's reading).
    socket_rule(
        json!([{"index": 0, "value": AF_INET, "op": "SCMP_CMP_EQ"},
               {"index": 0, "value": AF_INET6, "op": "SCMP_CMP_EQ"}]),
        &[
            (AF_INET, SOCK_DGRAM, true),
            (AF_INET6, SOCK_DGRAM, true),
            (AF_UNIX, SOCK_DGRAM, false),
        ],
    );
    // The ordering operators against 10 (AF_INET6), with domains 1, 10 and 16.
    let table: [(&str, &'static [Case]); 6] = [
        (
            "SCMP_CMP_NE",
            &[
                (AF_UNIX, SOCK_DGRAM, true),
                (AF_INET6, SOCK_DGRAM, false),
                (AF_NETLINK, SOCK_DGRAM, true),
            ],
        ),
        (
            "SCMP_CMP_LT",
            &[
                (AF_UNIX, SOCK_DGRAM, true),
                (AF_INET6, SOCK_DGRAM, false),
                (AF_NETLINK, SOCK_DGRAM, false),
            ],
        ),
        (
            "SCMP_CMP_LE",
            &[
                (AF_UNIX, SOCK_DGRAM, true),
                (AF_INET6, SOCK_DGRAM, true),
                (AF_NETLINK, SOCK_DGRAM, false),
            ],
        ),
        (
            "SCMP_CMP_EQ",
            &[
                (AF_UNIX, SOCK_DGRAM, false),
                (AF_INET6, SOCK_DGRAM, true),
                (AF_NETLINK, SOCK_DGRAM, false),
            ],
        ),
        (
            "SCMP_CMP_GE",
            &[
                (AF_UNIX, SOCK_DGRAM, false),
                (AF_INET6, SOCK_DGRAM, true),
                (AF_NETLINK, SOCK_DGRAM, true),
            ],
        ),
        (
            "SCMP_CMP_GT",
            &[
                (AF_UNIX, SOCK_DGRAM, false),
                (AF_INET6, SOCK_DGRAM, false),
                (AF_NETLINK, SOCK_DGRAM, true),
            ],
        ),
    ];
    for (op, cases) in table {
        socket_rule(json!([{"index": 0, "value": AF_INET6, "op": op}]), cases);
    }
}

#[test]
fn actions_kill_trap_trace_log() {
    if !is_root() {
        return;
    }
    let d = TempDir::new("actions");
    let run = |action: &str| {
        let f = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]
        })))
        .unwrap();
        let target = d.path().join(action);
        sh(&f, &format!("exec mkdir {}", target.display()), nothing())
    };
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL",
        "SCMP_ACT_TRAP",
    ] {
        let out = run(action);
        assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{action}: {out:?}");
        assert!(!d.path().join(action).exists(), "{action}");
    }
    // No tracer: the kernel fails the call with ENOSYS.
    let out = run("SCMP_ACT_TRACE");
    assert!(
        text(&out.stderr).contains("Function not implemented"),
        "{out:?}"
    );
    let out = run("SCMP_ACT_LOG");
    assert!(out.status.success(), "{out:?}");
    assert!(d.path().join("SCMP_ACT_LOG").is_dir());
}

#[test]
fn flags_are_applied_or_skipped() {
    let mut w = Vec::new();
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                  "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    }));
    let flags = kernel_flags(&s, false, &mut w);
    // Linux 6.x knows all three; WAIT_KILLABLE_RECV means nothing without a listener.
    assert_eq!(
        flags,
        kernel::FLAG_TSYNC | kernel::FLAG_LOG | kernel::FLAG_SPEC_ALLOW
    );
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("linux.seccomp.flags[3]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"));
    assert_eq!(
        kernel_flags(&s, true, &mut Vec::new()),
        flags | kernel::FLAG_WAIT_KILLABLE_RECV
    );
    if !is_root() {
        return;
    }
    let f = compile(&s).unwrap();
    let d = TempDir::new("flags");
    let out = sh(&f, &format!("mkdir {}/x", d.path().display()), nothing());
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
}

#[test]
fn load_needs_no_new_privs_or_cap_sys_admin() {
    if !is_root() {
        return;
    }
    let f = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    })))
    .unwrap();
    let d = TempDir::new("nnp");
    let g = f.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("mkdir {}/x", d.path().display()))
        .env("LC_ALL", "C");
    // SAFETY: runs in the forked child before exec and only makes system calls (capset,
    // seccomp, prctl) on data prepared before the fork; the error paths allocate, which
    // glibc supports after fork.
    unsafe {
        cmd.pre_exec(move || {
            crate::sys::capset(0, 0, 0).map_err(|_| hook_err(1))?;
            // No capabilities and no no_new_privs: the kernel must refuse.
            if g.load().is_ok() {
                return Err(hook_err(2));
            }
            nix::sys::prctl::set_no_new_privs().map_err(|_| hook_err(3))?;
            g.load().map_err(|_| hook_err(4))?;
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        text(&out.stderr).contains("Operation not permitted"),
        "{out:?}"
    );
    assert!(!d.path().join("x").exists());
}

#[test]
fn unknown_syscalls_are_skipped() {
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["berth_no_such_call", "mkdir", "mkdirat", "berth_no_such_call"],
             "action": "SCMP_ACT_ERRNO"},
            {"names": ["another_unknown"], "action": "SCMP_ACT_KILL"}
        ]
    }));
    let c = build(&s).unwrap();
    assert_eq!(c.unknown, ["berth_no_such_call", "another_unknown"]);
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("berth_no_such_call, another_unknown"),
        "{:?}",
        c.warnings
    );
    if !is_root() {
        return;
    }
    let d = TempDir::new("unknown");
    let out = sh(
        &c.filter,
        &format!("mkdir {}/x; echo rc=$?", d.path().display()),
        nothing(),
    );
    assert!(text(&out.stdout).contains("rc=1"), "{out:?}");
}

#[test]
fn rules_repeating_the_default_are_skipped() {
    // libseccomp refuses these (EACCES); berth drops them. ERRNO with another errno stays.
    let c = build(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2},
            {"names": ["getuid"], "action": "SCMP_ACT_ALLOW"}
        ]
    })))
    .unwrap();
    assert!(c.warnings.is_empty());
}

#[test]
fn features_lists_what_check_accepts() {
    let f = features();
    assert_eq!(f["enabled"], true);
    let strs = |k: &str| -> Vec<String> {
        f[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(strs("actions").len(), 9);
    assert!(strs("actions").contains(&"SCMP_ACT_KILL_PROCESS".to_string()));
    assert_eq!(strs("operators").len(), 7);
    assert!(strs("operators").contains(&"SCMP_CMP_MASKED_EQ".to_string()));
    let archs = strs("archs");
    assert!(archs.contains(&"SCMP_ARCH_X86_64".to_string()), "{archs:?}");
    // Every listed arch passes check, in one profile.
    check(&profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs}),
    ))
    .unwrap();
    assert_eq!(strs("knownFlags").len(), 4);
    if kernel_version() >= (5, 19) {
        assert_eq!(strs("supportedFlags"), strs("knownFlags"));
    }
    eprintln!("features: {f}");
}

fn check_err(v: Value) -> String {
    let e = check(&profile(v)).expect_err("must be refused");
    format!("{e:#}")
}

#[test]
fn check_names_the_field() {
    let e = check_err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
    assert!(
        e.starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}));
    assert!(
        e.starts_with("linux.seccomp.defaultErrnoRet: SCMP_ACT_ALLOW takes no errno"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert!(
        e.starts_with("linux.seccomp.defaultErrnoRet: 70000 is out of range"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[1].errnoRet: SCMP_ACT_KILL takes no errno"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].names: needs at least one"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].names[1]: empty"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(e.starts_with("linux.seccomp.listenerPath: needed by SCMP_ACT_NOTIFY (linux.seccomp.syscalls[3].action)"), "{e}");
    let e = check_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for write"),
        "{e}"
    );
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}));
    assert!(
        e.starts_with("linux.seccomp.listenerMetadata: set without listenerPath"),
        "{e}"
    );
    let long = format!("/{}", "x".repeat(107));
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": long}));
    assert!(e.starts_with("linux.seccomp.listenerPath: /xxx"), "{e}");
    let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(
        e.starts_with("linux.seccomp.syscalls[0].args[1].index: 6 is out of range"),
        "{e}"
    );
    // Architectures libseccomp 2.5 does not know (2.6 added these).
    let v = ScmpVersion::current().unwrap();
    if (v.major, v.minor) < (2, 6) {
        let e = check_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_LOONGARCH64"]}));
        assert!(
            e.starts_with(
                "linux.seccomp.architectures[1]: unknown architecture SCMP_ARCH_LOONGARCH64"
            ),
            "{e}"
        );
    }
    // What passes.
    check(&profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                     {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]})))
    .unwrap();
}

/// Receives a message and the fds it carries, then the rest of the stream up to EOF.
fn recv_all_with_fd(sock: BorrowedFd) -> (Vec<u8>, Vec<OwnedFd>) {
    let mut data = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        let msg = crate::sys::recv_with_fds(sock, &mut buf).unwrap();
        fds.extend(msg.fds);
        if msg.len == 0 {
            return (data, fds);
        }
        data.extend_from_slice(&buf[..msg.len]);
    }
}

#[test]
fn notify_listener_reaches_the_agent() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    if !is_root() {
        return;
    }
    let d = TempDir::new("notify");
    let agent_path = d.path().join("agent.sock");
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "listenerPath": agent_path,
        "listenerMetadata": "MKDIR=fake",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    check(&s).unwrap();
    let f = compile(&s).unwrap();
    assert!(f.uses_notify());

    // The agent: takes the listener, answers one mkdir with a fake success.
    let listener = std::os::unix::net::UnixListener::bind(&agent_path).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (payload, fds) = recv_all_with_fd(conn.as_fd());
        assert_eq!(fds.len(), 1, "one fd in SCM_RIGHTS");
        let msg: Value = serde_json::from_slice(&payload).unwrap();
        let fd = fds[0].as_raw_fd();
        let req = ScmpNotifReq::receive(fd).unwrap();
        let name = req.data.syscall.get_name_by_arch(req.data.arch).unwrap();
        ScmpNotifResp::new_val(req.id, 0, ScmpNotifRespFlags::empty())
            .respond(fd)
            .unwrap();
        (msg, name, req.pid)
    });

    // Init's side: load, hand the listener to the runtime over a socket, exec.
    let (runtime_end, init_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    let init_raw = init_end.as_raw_fd();
    let g = f.clone();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!(
            "mkdir {0}/n && echo made; test -e {0}/n || echo absent",
            d.path().display()
        ))
        .env("LC_ALL", "C")
        .stdout(Stdio::piped());
    // SAFETY: runs in the forked child before exec: seccomp(2) and one sendmsg on fds and
    // data prepared before the fork (nix's sendmsg allocates its control buffer, which glibc
    // supports after fork).
    unsafe {
        cmd.pre_exec(move || {
            let fd = g
                .load()
                .map_err(|_| hook_err(1))?
                .ok_or_else(|| hook_err(2))?;
            // SAFETY: `init_raw` is the child's copy of the socketpair end, open until exec.
            let sock = BorrowedFd::borrow_raw(init_raw);
            crate::sys::send_with_fd(sock, b"seccomp", fd.as_fd()).map_err(|_| hook_err(3))?;
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(init_end);
    // The runtime's side: receive the listener, pass it on with the container's state.
    let mut buf = [0u8; 64];
    let msg = crate::sys::recv_with_fds(runtime_end.as_fd(), &mut buf).unwrap();
    let (m, mut fds) = (msg.len, msg.fds);
    assert_eq!((m, fds.len()), (7, 1));
    let pid = child.id() as i32;
    let state = crate::hooks::state_json(
        "1.3.0",
        "ctr1",
        "creating",
        pid,
        d.path(),
        &[("k".to_string(), "v".to_string())].into_iter().collect(),
    );
    send_listener(&agent_path, "MKDIR=fake", &state, fds[0].as_fd()).unwrap();
    drop(fds.pop());
    let out = child.wait_with_output().unwrap();
    let (msg, name, req_pid) = agent.join().unwrap();
    assert_eq!(text(&out.stdout), "made\nabsent\n", "{out:?}");
    assert!(name == "mkdir" || name == "mkdirat", "{name}");
    assert!(req_pid > 0);
    assert_eq!(msg["ociVersion"], crate::default_spec::OCI_VERSION);
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["pid"], pid);
    assert_eq!(msg["metadata"], "MKDIR=fake");
    assert_eq!(msg["state"]["id"], "ctr1");
    assert_eq!(msg["state"]["status"], "creating");
    assert_eq!(msg["state"]["pid"], pid);
    assert_eq!(msg["state"]["annotations"]["k"], "v");
}

#[test]
fn send_listener_errors_name_the_path() {
    let d = TempDir::new("nolistener");
    let p = d.path().join("none.sock");
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let e = send_listener(&p, "", &json!({"pid": 1}), devnull.as_fd()).unwrap_err();
    let e = format!("{e:#}");
    assert!(e.starts_with("linux.seccomp.listenerPath: /"), "{e}");
    assert!(e.contains("connect"), "{e}");
}

// --- The Podman default profile -------------------------------------------------------

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
/// Podman's default capabilities (containers.conf default_capabilities).
const PODMAN_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

fn kernel_version() -> (u32, u32) {
    let uts = nix::sys::utsname::uname().unwrap();
    parse_kernel(&uts.release().to_string_lossy())
}

fn parse_kernel(s: &str) -> (u32, u32) {
    let mut it = s
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// What Podman (containers/common) does with its profile before it writes config.json: keep
/// the architectures of the host's family and the rules whose includes/excludes (arches,
/// capabilities, minimum kernel) fit this container, in the OCI shape.
fn podman_to_oci(raw: &Value, caps: &[&str]) -> Value {
    let (native, goarch) = match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        "s390x" => ("SCMP_ARCH_S390X", "s390x"),
        "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
        "powerpc64" => ("SCMP_ARCH_PPC64LE", "ppc64le"),
        a => panic!("no Podman arch mapping for {a}"),
    };
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let kernel = kernel_version();
    let mut arches = Vec::new();
    for m in raw["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == native {
            arches.push(native.to_string());
            arches.extend(list(&m["subArchitectures"]));
        }
    }
    let mut syscalls = Vec::new();
    for sc in raw["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&sc["includes"], &sc["excludes"]);
        let inc_arches = list(&inc["arches"]);
        if !inc_arches.is_empty() && !inc_arches.iter().any(|a| a == goarch) {
            continue;
        }
        if list(&exc["arches"]).iter().any(|a| a == goarch) {
            continue;
        }
        if !list(&inc["caps"])
            .iter()
            .all(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if list(&exc["caps"])
            .iter()
            .any(|c| caps.contains(&c.as_str()))
        {
            continue;
        }
        if let Some(k) = inc["minKernel"].as_str() {
            if kernel < parse_kernel(k) {
                continue;
            }
        }
        if let Some(k) = exc["minKernel"].as_str() {
            if kernel >= parse_kernel(k) {
                continue;
            }
        }
        let mut names = list(&sc["names"]);
        if names.is_empty() {
            names = list(&json!([sc["name"]]));
        }
        let mut o = json!({"names": names, "action": sc["action"]});
        if sc["errnoRet"].is_u64() {
            o["errnoRet"] = sc["errnoRet"].clone();
        }
        if let Some(args) = sc["args"].as_array().filter(|a| !a.is_empty()) {
            o["args"] = Value::Array(args.clone());
        }
        syscalls.push(o);
    }
    let mut out = json!({
        "defaultAction": raw["defaultAction"],
        "architectures": arches,
        "syscalls": syscalls,
    });
    if raw["defaultErrnoRet"].is_u64() {
        out["defaultErrnoRet"] = raw["defaultErrnoRet"].clone();
    }
    if raw["flags"].is_array() {
        out["flags"] = raw["flags"].clone();
    }
    out
}

fn podman_raw() -> Option<Value> {
    match std::fs::read(PODMAN_PROFILE) {
        Ok(b) => Some(serde_json::from_slice(&b).unwrap()),
        Err(e) => {
            eprintln!(
                "skipped: {PODMAN_PROFILE}: {e} (apt-get install golang-github-containers-common)"
            );
            None
        }
    }
}

fn podman_profile() -> Option<LinuxSeccomp> {
    Some(profile(podman_to_oci(&podman_raw()?, PODMAN_CAPS)))
}

#[test]
fn podman_profile_deserializes_directly_but_needs_podmans_filtering() {
    let Some(raw) = podman_raw() else { return };
    // serde ignores archMap, includes/excludes, comment, errno: it parses as is...
    let direct: LinuxSeccomp = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(direct.architectures(), &None);
    let n = direct.syscalls().as_ref().unwrap().len();
    // ...but then holds both sides of every capability-dependent pair (ALLOW if the container
    // has CAP_X, ERRNO if not) and only the native architecture, which is not what Podman
    // gives a runtime.
    let converted = podman_profile().unwrap();
    let m = converted.syscalls().as_ref().unwrap().len();
    assert!(m < n, "{m} < {n}");
    assert_eq!(
        converted.architectures().as_ref().map(Vec::len),
        if cfg!(target_arch = "x86_64") {
            Some(3)
        } else {
            converted.architectures().as_ref().map(Vec::len)
        }
    );
    match compile(&direct) {
        Ok(f) => eprintln!("podman profile taken as is compiles too: {f:?}"),
        Err(e) => eprintln!("podman profile taken as is does not compile: {e:#}"),
    }
    let f = compile(&converted).unwrap();
    eprintln!("podman profile for {PODMAN_CAPS:?}: {f:?}");
}

fn cap_mask(caps: &[&str]) -> u64 {
    caps.iter()
        .map(|c| c.parse::<caps::Capability>().unwrap().bitmask())
        .fold(0, |a, b| a | b)
}

/// The checks of the Podman test, run in the child after loading the filter.
fn podman_checks(dir: &std::ffi::CStr, keep_caps: u64) -> io::Result<()> {
    // SAFETY (all calls below): raw system calls with integer arguments or pointers to
    // C strings made before the fork; none has side effects when it fails, and each is
    // built to fail (bad fd, bad magic, remount of a non-mount-point).
    unsafe {
        // Denied by the profile itself, with every capability still held: without the
        // filter these give EBADF, EINVAL, EFAULT, EFAULT.
        want_errno(
            libc::syscall(libc::SYS_vmsplice, -1, 0, 0, 0),
            libc::EPERM,
            1,
        )?;
        want_errno(libc::syscall(libc::SYS_bpf, -1, 0, 0), libc::EPERM, 2)?;
        want_errno(libc::syscall(libc::SYS_swapoff, 0), libc::EPERM, 8)?;
        // Not in the profile: its defaultAction, ERRNO(ENOSYS).
        want_errno(
            libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0),
            libc::ENOSYS,
            3,
        )?;
    }
    // Podman also drops the capabilities the profile's allowed calls rely on.
    crate::sys::capset(keep_caps, keep_caps, 0).map_err(|_| hook_err(4))?;
    // SAFETY: as above.
    unsafe {
        want_errno(
            libc::unshare(libc::CLONE_NEWNS) as libc::c_long,
            libc::EPERM,
            5,
        )?;
        let r = libc::mount(
            std::ptr::null(),
            dir.as_ptr(),
            std::ptr::null(),
            libc::MS_REMOUNT,
            std::ptr::null(),
        );
        want_errno(r as libc::c_long, libc::EPERM, 6)?;
        want_errno(libc::syscall(libc::SYS_reboot, 0, 0, 0, 0), libc::EPERM, 7)?;
    }
    Ok(())
}

fn run_podman_checks(f: &Filter, d: &TempDir) -> Output {
    let dir = std::ffi::CString::new(d.path().as_os_str().as_encoded_bytes()).unwrap();
    let keep = cap_mask(PODMAN_CAPS);
    let g = f.clone();
    let mut cmd = Command::new("/bin/ls");
    cmd.arg("/").env("LC_ALL", "C");
    // SAFETY: runs in the forked child before exec; see podman_checks and Filter::load.
    unsafe {
        cmd.pre_exec(move || {
            g.load().map_err(|_| hook_err(999))?;
            podman_checks(&dir, keep)
        });
    }
    cmd.output().expect("ls under the Podman profile")
}

#[test]
fn podman_profile_blocks_and_ls_works() {
    if !is_root() {
        return;
    }
    let Some(s) = podman_profile() else { return };
    let f = compile(&s).unwrap();
    let d = TempDir::new("podman");
    let out = run_podman_checks(&f, &d);
    assert!(out.status.success(), "{out:?}");
    let o = text(&out.stdout);
    assert!(
        o.lines().any(|l| l == "proc") && o.lines().any(|l| l == "usr"),
        "{o}"
    );
}

// --- The cache ----------------------------------------------------------------------------

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

fn same(a: &Filter, b: &Filter) -> bool {
    prog_bytes(a) == prog_bytes(b) && a.flags == b.flags && a.notify == b.notify
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn cache_hit_is_identical_and_faster() {
    let Some(s) = podman_profile() else { return };
    let d = TempDir::new("cache");
    let cache = d.path().join("seccomp");

    let t = Instant::now();
    let miss = compile_cached(&s, &cache).unwrap();
    let t_miss = t.elapsed();
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "one file, no temporary left: {files:?}");
    let file = &files[0];
    assert_eq!(std::fs::metadata(file).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    let inode = ino(file);

    let mut compiles = Vec::new();
    let mut plain = None;
    for _ in 0..20 {
        let t = Instant::now();
        plain = Some(compile(&s).unwrap());
        compiles.push(t.elapsed());
    }
    let plain = plain.unwrap();
    let mut hits = Vec::new();
    let mut hit = None;
    for _ in 0..20 {
        let t = Instant::now();
        hit = Some(compile_cached(&s, &cache).unwrap());
        hits.push(t.elapsed());
    }
    let hit = hit.unwrap();
    assert_eq!(ino(file), inode, "hits do not rewrite the file");
    assert!(same(&plain, &miss) && same(&plain, &hit));
    eprintln!(
        "seccomp timing, Podman profile ({} BPF instructions): compile median {:?} (min {:?}), \
         cache miss {:?}, cache hit median {:?} (min {:?})",
        plain.instructions(),
        median(compiles.clone()),
        compiles.iter().min().unwrap(),
        t_miss,
        median(hits.clone()),
        hits.iter().min().unwrap(),
    );

    // Damaged files are recompiled and replaced.
    let len = std::fs::metadata(file).unwrap().len();
    let damage: [&dyn Fn(&Path); 3] = [
        &|p| std::fs::write(p, b"garbage").unwrap(),
        &|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(len / 2)
                .unwrap()
        },
        &|p| {
            let mut b = std::fs::read(p).unwrap();
            let i = b.len() - 100;
            b[i] ^= 1;
            std::fs::write(p, b).unwrap();
        },
    ];
    for (i, hurt) in damage.iter().enumerate() {
        hurt(file);
        let before = ino(file);
        let again = compile_cached(&s, &cache).unwrap();
        assert!(same(&plain, &again), "damage {i}");
        assert_ne!(ino(file), before, "damage {i}: rewritten");
        assert_eq!(std::fs::metadata(file).unwrap().len(), len, "damage {i}");
    }

    // Another profile, another file.
    let other = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
    compile_cached(&other, &cache).unwrap();
    assert_eq!(cache_files(&cache).len(), 2);

    if !is_root() {
        return;
    }
    // The filter from the cache behaves as the compiled one.
    let out = run_podman_checks(&hit, &d);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn cache_hit_behaves_like_compile() {
    if !is_root() {
        return;
    }
    let d = TempDir::new("cachebehaves");
    let s = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat", "berth_unknown"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13}]
    }));
    let _miss = compile_cached(&s, d.path()).unwrap();
    let hit = compile_cached(&s, d.path()).unwrap();
    let out = sh(&hit, &format!("mkdir {}/x", d.path().display()), nothing());
    assert!(text(&out.stderr).contains("Permission denied"), "{out:?}");
    // The file kept the warning, so a hit repeats it.
    let key = super::cache::tests_key(&s);
    let text_key = String::from_utf8_lossy(&key);
    // The library's identity: its file when shared, the executable's own when static.
    let lib = if super::cache::libseccomp_static() {
        " static\n"
    } else {
        "libseccomp.so"
    };
    assert!(
        text_key.contains("libseccomp 2.") && text_key.contains(lib),
        "{text_key}"
    );
    let (_, warnings) = super::cache::tests_read(d.path(), &key);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("berth_unknown"));
}

#[test]
fn unsafe_cache_dir_is_not_used() {
    let d = TempDir::new("unsafe");
    let dir = d.path().join("c");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let s = profile(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}));
    let f = compile_cached(&s, &dir).unwrap();
    assert!(same(&f, &compile(&s).unwrap()));
    assert!(
        cache_files(&dir).is_empty(),
        "nothing written to a world-writable dir"
    );
}
