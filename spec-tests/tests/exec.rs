//! `exec` (runc's verb; the OCI runtime-spec leaves it to runtimes): a new process joins the
//! namespaces, root, cgroup and security settings of a running container. Every check looks at
//! the process from the host or from inside, never at the runtime's word alone.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// A started container that idles; returns its init pid.
fn running(rt: &Runtime, b: &mut Bundle) -> i32 {
    b.args(&["sleep", "300"]);
    let pid = rt.create_and_start(b);
    rt.wait_status(b.id(), "running");
    pid
}

/// `exec -d --pid-file` of `sleep`, returning the process's host pid.
fn exec_sleeper(rt: &Runtime, id: &str, extra: &[&str]) -> i32 {
    let pf = rt.tmp().join(format!("exec-{}.pid", next_counter()));
    let pfs = pf.to_string_lossy().into_owned();
    let mut args = vec!["exec", "-d", "--pid-file", &pfs];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[id, "sleep", "300"]);
    rt.exec(&args).assert_ok();
    fs::read_to_string(&pf)
        .unwrap_or_else(|e| panic!("--pid-file {pfs} not written: {e}"))
        .trim()
        .parse()
        .expect("pid file holds a number")
}

fn ns_links(pid: i32) -> Vec<(String, String)> {
    ["mnt", "pid", "net", "ipc", "uts", "user", "cgroup"]
        .iter()
        .map(|n| {
            let l = fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{n}: {e}"));
            (n.to_string(), l.to_string_lossy().into_owned())
        })
        .collect()
}

fn status_field(pid: i32, field: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Seen from the host: the exec'd process is in every namespace and cgroup of the container's
/// init, and has the container's root.
#[test]
fn process_joins_namespaces_cgroups_and_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execns");
    b.set_namespace("cgroup", None);
    let init = running(&rt, &mut b);
    let p = exec_sleeper(&rt, b.id(), &[]);
    assert_ne!(p, init);
    // Control: the test itself is in none of the container's namespaces.
    let me = ns_links(std::process::id() as i32);
    let want = ns_links(init);
    let got = ns_links(p);
    assert_eq!(got, want, "exec'd process's namespaces differ from init's");
    for ((n, host), (_, c)) in me.iter().zip(&want) {
        if n != "user" {
            assert_ne!(host, c, "{n}: the container shares the host's namespace");
        }
    }
    let cg = |pid: i32| fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert_eq!(cg(p), cg(init), "cgroups differ");
    assert_eq!(
        fs::read_link(format!("/proc/{p}/root")).unwrap(),
        fs::read_link(format!("/proc/{init}/root")).unwrap()
    );
    // The process is in the container's pid namespace: not pid 1, and its parent from the
    // container's view is outside it (0).
    let ns_pid = status_field(p, "NSpid");
    let inner: Vec<&str> = ns_pid.split_whitespace().collect();
    assert_eq!(inner.len(), 2, "NSpid {ns_pid}");
    assert_ne!(inner[1], "1");
}

/// Output goes to exec's stdout/stderr; the exit code comes back.
#[test]
fn output_and_exit_code() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execcode");
    running(&rt, &mut b);
    let out = rt.exec(&[
        "exec",
        b.id(),
        "sh",
        "-c",
        "echo out-$(hostname); echo err >&2; exit 7",
    ]);
    assert_eq!(out.code(), Some(7), "{out}");
    assert_eq!(out.stdout.trim(), "out-runc", "{out}");
    assert_eq!(out.stderr.trim(), "err", "{out}");
    let out = rt.exec(&["exec", b.id(), "true"]).assert_ok();
    assert_eq!(out.stdout, "");
}

/// A process killed by a signal gives 128+N, as a shell would.
#[test]
fn exit_by_signal_is_128_plus_signal() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execsig");
    running(&rt, &mut b);
    let out = rt.exec(&["exec", b.id(), "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code(), Some(137), "{out}");
}

/// -u, -g, -e, --cwd change the container's process, as with runc.
#[test]
fn user_env_and_cwd_flags() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execflags");
    running(&rt, &mut b);
    let out = rt
        .exec(&[
            "exec",
            "-u",
            "1000:1001",
            "-g",
            "7",
            "-e",
            "FOO=bar",
            "-e",
            "TERM=dumb",
            "--cwd",
            "/tmp",
            b.id(),
            "sh",
            "-c",
            "id -u; id -g; id -G; echo $FOO $TERM; pwd",
        ])
        .assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    assert!(lines[2].split(' ').any(|g| g == "7"), "{out}");
    assert_eq!(lines[3], "bar dumb", "{out}");
    assert_eq!(lines[4], "/tmp", "{out}");
}

/// --process runs a process.json as given.
#[test]
fn process_json() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execjson");
    running(&rt, &mut b);
    let p = rt.tmp().join("process.json");
    fs::write(
        &p,
        json!({
            "terminal": false,
            "user": {"uid": 5, "gid": 6},
            "args": ["sh", "-c", "echo $GREETING; id -u; id -g; pwd"],
            "env": ["PATH=/bin:/usr/bin", "GREETING=hello-json"],
            "cwd": "/etc"
        })
        .to_string(),
    )
    .unwrap();
    let out = rt
        .exec(&["exec", "--process", &p.to_string_lossy(), b.id()])
        .assert_ok();
    assert_eq!(out.stdout, "hello-json\n5\n6\n/etc\n", "{out}");
}

/// Capabilities: the container's own, plus --cap in the bounding, effective and permitted
/// sets, never in the inheritable one (CVE-2022-29162).
#[test]
fn capabilities_and_cap_flag() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execcap");
    running(&rt, &mut b);
    let net_admin: u64 = 1 << 12;
    let base = exec_sleeper(&rt, b.id(), &[]);
    let added = exec_sleeper(&rt, b.id(), &["--cap", "CAP_NET_ADMIN"]);
    let caps = |pid: i32, f: &str| u64::from_str_radix(&status_field(pid, f), 16).unwrap();
    for f in ["CapBnd", "CapEff", "CapPrm"] {
        assert_eq!(caps(base, f) & net_admin, 0, "{f} without --cap");
        assert_ne!(caps(added, f) & net_admin, 0, "{f} with --cap");
    }
    assert_eq!(caps(added, "CapInh") & net_admin, 0, "CapInh with --cap");
    // The config's set: CAP_KILL (5) is in it, CAP_SYS_ADMIN (21) is not.
    assert_ne!(caps(base, "CapEff") & (1 << 5), 0);
    assert_eq!(caps(base, "CapEff") & (1 << 21), 0);
}

/// The process gets the config's rlimits and no_new_privs (and --no-new-privs sets it when
/// the config does not).
#[test]
fn rlimits_and_no_new_privs() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execnnp");
    b.config_mut()["process"]["noNewPrivileges"] = json!(false);
    b.config_mut()["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "hard": 777, "soft": 555}]);
    running(&rt, &mut b);
    let plain = exec_sleeper(&rt, b.id(), &[]);
    let nnp = exec_sleeper(&rt, b.id(), &["--no-new-privs"]);
    assert_eq!(status_field(plain, "NoNewPrivs"), "0");
    assert_eq!(status_field(nnp, "NoNewPrivs"), "1");
    let limits = fs::read_to_string(format!("/proc/{plain}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((f[3], f[4]), ("555", "777"), "{line}");
}

/// The container's seccomp filter applies to exec'd processes too; control: the same call
/// works in a container without the filter.
#[test]
fn seccomp_applies() {
    let rt = Runtime::new();
    let script = "mkdir /dev/shm/x && echo made";
    let mut plain = rt.bundle("execnosec");
    running(&rt, &mut plain);
    let out = rt
        .exec(&["exec", plain.id(), "sh", "-c", script])
        .assert_ok();
    assert_eq!(out.stdout.trim(), "made", "control: {out}");

    let mut b = rt.bundle("execsec");
    b.config_mut()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    running(&rt, &mut b);
    let out = rt.exec(&["exec", b.id(), "sh", "-c", script]).assert_fail();
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    assert_eq!(out.stdout, "", "{out}");
}

/// In a container with a user namespace the process is root of that namespace, with its maps.
#[test]
fn user_namespace() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execuserns");
    b.set_namespace("user", None);
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    let init = running(&rt, &mut b);
    let out = rt
        .exec(&["exec", b.id(), "sh", "-c", "id -u; cat /proc/self/uid_map"])
        .assert_ok();
    let lines: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0", "0 100000 65536"], "{out}");
    let p = exec_sleeper(&rt, b.id(), &[]);
    assert_eq!(ns_links(p), ns_links(init));
    // Host view: the process runs as the mapped uid.
    assert!(
        status_field(p, "Uid").starts_with("100000"),
        "{}",
        status_field(p, "Uid")
    );
}

/// With --no-pivot the container's root is a mount over the namespace's old root; the
/// process must still land in the container's root, not under it.
#[test]
fn no_pivot_container() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execnopivot");
    let root = b.private_rootfs();
    fs::write(root.join("marker"), "in-the-rootfs\n").unwrap();
    b.args(&["sleep", "300"]);
    rt.create_with(&b, &["--no-pivot"]).assert_ok();
    rt.start(b.id()).assert_ok();
    rt.wait_status(b.id(), "running");
    let out = rt.exec(&["exec", b.id(), "cat", "/marker"]).assert_ok();
    assert_eq!(out.stdout, "in-the-rootfs\n", "{out}");
}

/// No fd of the runtime reaches the process (CVE-2016-9962, CVE-2024-21626); --preserve-fds
/// passes exactly the ones asked for.
#[test]
fn fds_closed_and_preserved() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execfds");
    running(&rt, &mut b);
    let out = rt
        .exec(&["exec", b.id(), "ls", "/proc/self/fd"])
        .assert_ok();
    let mut fds: Vec<&str> = out.stdout.split_whitespace().collect();
    fds.sort();
    // 0-2, and the directory ls is reading.
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");

    let file = rt.tmp().join("passed");
    fs::write(&file, "passed-through\n").unwrap();
    let f = fs::File::open(&file).unwrap();
    use std::os::fd::AsRawFd;
    let out = rt
        .spawn(
            &[
                "exec",
                "--preserve-fds",
                "1",
                b.id(),
                "cat",
                "/proc/self/fd/3",
            ],
            &[f.as_raw_fd()],
        )
        .wait(CMD_TIMEOUT)
        .assert_ok();
    assert_eq!(out.stdout, "passed-through\n", "{out}");
}

/// With -t and --console-socket the pty master goes to the socket; the process's terminal is
/// a pty of the container's devpts.
#[test]
fn tty_through_console_socket() {
    let rt = Runtime::new();
    let mut b = rt.bundle("exectty");
    running(&rt, &mut b);
    let console = ConsoleSocket::new(rt.tmp());
    let sock = console.path().to_string_lossy().into_owned();
    rt.exec(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        &sock,
        b.id(),
        "sh",
        "-c",
        "echo tty=$(tty) end",
    ])
    .assert_ok();
    let out = console.wait_for(" end", Duration::from_secs(15));
    assert!(out.contains("tty=/dev/pts/"), "{out:?}");
}

/// Wrong state or input: a clear error, a non-zero exit, nothing started.
#[test]
fn refusals() {
    let rt = Runtime::new();
    let out = rt
        .exec(&["exec", "no-such-container", "true"])
        .assert_fail();
    // runc 1.1 says only "container does not exist", without naming it.
    if is_berth() {
        assert!(out.stderr.contains("no-such-container"), "{out}");
    }

    let mut b = rt.bundle("execstate");
    running(&rt, &mut b);
    rt.exec(&["pause", b.id()]).assert_ok();
    let out = rt.exec(&["exec", b.id(), "true"]).assert_fail();
    assert!(out.stderr.contains("paused"), "{out}");
    rt.exec(&["resume", b.id()]).assert_ok();

    let out = rt.exec(&["exec", b.id(), "/no/such/program"]).assert_fail();
    assert!(out.stderr.contains("/no/such/program"), "{out}");

    let bad = rt.tmp().join("bad-process.json");
    fs::write(&bad, r#"{"cwd": "/", "user": {"uid": "x"}}"#).unwrap();
    let out = rt
        .exec(&["exec", "--process", &bad.to_string_lossy(), b.id()])
        .assert_fail();
    if is_berth() {
        assert!(out.stderr.contains("user.uid"), "{out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    }

    rt.kill(b.id(), Some("KILL")).assert_ok();
    rt.wait_status(b.id(), "stopped");
    let out = rt.exec(&["exec", b.id(), "true"]).assert_fail();
    assert!(out.stderr.contains("stopped"), "{out}");
    // Nothing was left running in the container's cgroup by the refused calls.
    let procs = Path::new("/sys/fs/cgroup/pids/spec-tests")
        .join(b.id())
        .join("cgroup.procs");
    if let Ok(p) = fs::read_to_string(procs) {
        assert_eq!(p.trim(), "", "processes left in the cgroup");
    }
}

/// A foreground `run` and `exec` pass the signals they get on to the container's process
/// (a shell that traps SIGTERM and exits 9); the runtime then exits with its code.
#[test]
fn foreground_run_and_exec_forward_signals() {
    let rt = Runtime::new();
    let mut b = rt.bundle("fwd");
    let out = b.out_dir();
    let trap = |mark: &str| {
        format!(
            "trap 'echo got-term; exit 9' TERM; touch /out/{mark}; while true; do sleep 0.05; done"
        )
    };
    b.sh(&trap("run-ready"));
    let run = rt.spawn_run(&b, &[], &[]);
    assert!(
        wait_for_file(&out.join("run-ready"), WAIT_TIMEOUT),
        "container never started"
    );

    let exec = rt.spawn(&["exec", b.id(), "sh", "-c", &trap("exec-ready")], &[]);
    assert!(
        wait_for_file(&out.join("exec-ready"), WAIT_TIMEOUT),
        "exec never started"
    );
    let term = |pid: u32| {
        // SAFETY: kill(2) on the pid of a child of this test, still unreaped.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    };
    term(exec.pid());
    let e = exec.wait(CMD_TIMEOUT);
    assert_eq!(e.code(), Some(9), "exec: {e}");
    assert_eq!(e.stdout.trim(), "got-term", "exec: {e}");

    term(run.pid());
    let r = run.wait(CMD_TIMEOUT);
    assert_eq!(r.code(), Some(9), "run: {r}");
    assert_eq!(r.stdout.trim(), "got-term", "run: {r}");
}

/// `exec -t` gives the pty to the process's user, as `create -t` does (runc: uid only).
#[test]
fn tty_belongs_to_the_process_user() {
    let rt = Runtime::new();
    let mut b = rt.bundle("exectty");
    running(&rt, &mut b);
    let console = ConsoleSocket::new(rt.tmp());
    let sock = console.path().to_string_lossy().into_owned();
    rt.exec(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        &sock,
        "--user",
        "1000:1000",
        b.id(),
        "sh",
        "-c",
        "echo owner=$(stat -L -c %u:%g /proc/self/fd/0) end",
    ])
    .assert_ok();
    let out = console.wait_for(" end", Duration::from_secs(15));
    assert!(out.contains("owner=1000:5 end"), "{out:?}");
}

/// A process.json without `user` runs as uid 0, gid 0 (runc: Go's zero value), not
/// "missing field `user`".
#[test]
fn process_json_without_user_runs_as_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execnouser");
    running(&rt, &mut b);
    let p = rt.tmp().join("process.json");
    fs::write(
        &p,
        json!({
            "args": ["sh", "-c", "id -u; id -g"],
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/"
        })
        .to_string(),
    )
    .unwrap();
    let out = rt
        .exec(&["exec", "--process", &p.to_string_lossy(), b.id()])
        .assert_ok();
    assert_eq!(out.stdout, "0\n0\n", "{out}");
}

/// When `exec` itself fails (no such container, no such program), runc exits 255, which
/// scripts tell from the process's own exit codes.
#[test]
fn runtime_errors_of_exec_exit_255() {
    let rt = Runtime::new();
    let out = rt.exec(&["exec", "no-such-container", "true"]);
    assert_eq!(out.code(), Some(255), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out}");
    let mut b = rt.bundle("exec255");
    running(&rt, &mut b);
    let out = rt.exec(&["exec", b.id(), "/no/such/program"]);
    assert_eq!(out.code(), Some(255), "{out}");
    // The process's own code is still its own.
    let out = rt.exec(&["exec", b.id(), "sh", "-c", "exit 3"]);
    assert_eq!(out.code(), Some(3), "{out}");
}

/// `exec --cgroup SUB` runs the process in an existing sub-cgroup of the container's, in
/// every hierarchy; `--cgroup CONTROLLER:SUB` only in that controller's (v1); a sub-cgroup
/// that does not exist is refused in one line. berth refused --cgroup altogether.
#[test]
fn exec_into_a_sub_cgroup() {
    let rt = Runtime::new();
    let mut b = rt.bundle("execsub");
    running(&rt, &mut b);
    let path = b.cgroups_path();
    for d in cgroup_dirs(&path) {
        fs::create_dir(d.join("sub")).unwrap();
        // A new v1 cpuset cgroup starts without cpus and mems and takes no task until given
        // some: as a user making the sub-cgroup would, give it its parent's.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = fs::read_to_string(d.join(f)) {
                fs::write(d.join("sub").join(f), v.trim()).unwrap();
            }
        }
    }
    let all = rt
        .exec(&[
            "exec",
            "--cgroup",
            "sub",
            b.id(),
            "cat",
            "/proc/self/cgroup",
        ])
        .assert_ok();
    // The container has no cgroup namespace here: the host's paths show.
    for line in all.stdout.lines() {
        assert!(line.ends_with(&format!("{path}/sub")), "{line}:\n{all}");
    }
    if !cgroup2_only() {
        let cpu = rt
            .exec(&[
                "exec",
                "--cgroup",
                "memory:sub",
                b.id(),
                "cat",
                "/proc/self/cgroup",
            ])
            .assert_ok();
        for line in cpu.stdout.lines() {
            let want = if line
                .split(':')
                .nth(1)
                .unwrap_or("")
                .split(',')
                .any(|c| c == "memory")
            {
                format!("{path}/sub")
            } else {
                path.clone()
            };
            assert!(line.ends_with(&format!(":{want}")), "{line}:\n{cpu}");
        }
    }
    let missing = rt
        .exec(&["exec", "--cgroup", "nosuch", b.id(), "true"])
        .assert_fail();
    assert_eq!(missing.stderr.trim().lines().count(), 1, "{missing}");
    rt.delete_force(b.id()).assert_ok();
    assert!(
        cgroup_dirs(&path).iter().all(|d| !d.exists()),
        "delete left the container's cgroup (with its sub-cgroup)"
    );
}
