//! The container process (config.md "Process", "User"; config-linux.md
//! "Sysctl"): args, env, cwd, ids, umask, capabilities, noNewPrivileges,
//! rlimits, oomScoreAdj, sysctls, and exec failures.
//!
//! Where the property belongs to the container process itself, it is run
//! directly (no `sh -c` in between) so nothing else's exec changes it.

use serde_json::json;
use spec_tests::*;
use std::collections::BTreeSet;
use std::fs;

/// Args reach the program verbatim: no shell splitting or expansion.
#[test]
fn args_are_passed_verbatim() {
    let rt = Runtime::new();
    let mut b = rt.bundle("args");
    b.args(&["printf", "%s|", "a b", "tab\there", "$HOME", "*", ""]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout, "a b|tab\there|$HOME|*||", "{out}");
}

/// process.env is the environment; a runtime may only add HOME (runc
/// derives it from /etc/passwd when missing).
#[test]
fn env_is_set_exactly() {
    let rt = Runtime::new();
    let mut b = rt.bundle("env");
    let env = [
        "PATH=/bin",
        "FOO=bar baz",
        "EMPTY=",
        "EQUALS=a=b",
        "HOME=/home/spec",
    ];
    b.config_mut()["process"]["env"] = json!(env);
    b.args(&["env"]);
    let out = rt.run(&b).assert_ok();
    let got: BTreeSet<&str> = out.stdout.lines().collect();
    let want: BTreeSet<&str> = env.into_iter().collect();
    assert_eq!(got, want, "{out}");
}

/// process.cwd is the working directory.
#[test]
fn cwd_is_set() {
    let rt = Runtime::new();
    let mut b = rt.bundle("cwd");
    b.config_mut()["process"]["cwd"] = json!("/etc");
    b.args(&["pwd"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "/etc", "{out}");
}

/// user.uid, user.gid and additionalGids are the process's credentials
/// (real, effective, saved and fs ids alike).
#[test]
fn uid_gid_and_additional_gids() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ids");
    b.config_mut()["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 2000]});
    b.args(&["cat", "/proc/self/status"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        status_field(&out.stdout, "Uid").as_deref(),
        Some("1000 1000 1000 1000"),
        "{out}"
    );
    assert_eq!(
        status_field(&out.stdout, "Gid").as_deref(),
        Some("1001 1001 1001 1001"),
        "{out}"
    );
    assert_eq!(
        status_field(&out.stdout, "Groups").as_deref(),
        Some("10 2000"),
        "{out}"
    );
}

/// `id` agrees, and without additionalGids the supplementary groups are
/// cleared (not inherited from the runtime).
#[test]
fn id_output_and_no_inherited_groups() {
    let rt = Runtime::new();
    let mut b = rt.bundle("id");
    b.config_mut()["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    b.sh("id -u; id -g; id -G");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["65534", "65534", "65534"],
        "{out}"
    );
}

/// user.umask is applied (runtime-spec 1.0.2: "umask (int, OPTIONAL)").
#[test]
fn umask_is_applied() {
    let rt = Runtime::new();
    let mut b = rt.bundle("umask");
    b.config_mut()["process"]["user"]["umask"] = json!(0o027);
    b.sh("umask; touch /dev/shm/f; stat -c %a /dev/shm/f");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["0027", "640"],
        "{out}"
    );
}

/// Runs `cat /proc/self/status` with the given user and capability sets,
/// and checks every Cap* mask against what is expected.
fn check_caps(user: serde_json::Value, sets: [(&str, &[&str]); 5]) {
    let rt = Runtime::new();
    let mut b = rt.bundle("caps");
    b.config_mut()["process"]["user"] = user;
    let mut caps = json!({});
    for (set, names) in sets {
        caps[set] = json!(names);
    }
    b.config_mut()["process"]["capabilities"] = caps;
    b.args(&["cat", "/proc/self/status"]);
    let out = rt.run(&b).assert_ok();
    let got = caps::parse_status(&out.stdout);
    for (set, names) in sets {
        let line = match set {
            "bounding" => "CapBnd",
            "effective" => "CapEff",
            "permitted" => "CapPrm",
            "inheritable" => "CapInh",
            _ => "CapAmb",
        };
        assert_eq!(
            got.get(line).copied(),
            Some(caps::mask(names)),
            "{line} (want {names:?}):\n{out}"
        );
    }
}

/// Capability sets for root. The kernel recomputes permitted/effective on
/// exec as bounding|inheritable for uid 0, so the config is chosen to be a
/// fixed point (effective = permitted = bounding, inheritable inside it,
/// ambient inside permitted and inheritable) and each set must then read
/// back exactly as configured.
#[test]
fn capabilities_root_exact() {
    let bnd: &[&str] = &[
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_NET_RAW",
    ];
    check_caps(
        json!({"uid": 0, "gid": 0}),
        [
            ("bounding", bnd),
            ("effective", bnd),
            ("permitted", bnd),
            ("inheritable", &["CAP_KILL", "CAP_NET_RAW"]),
            ("ambient", &["CAP_KILL"]),
        ],
    );
}

/// Capability sets for a non-root user: after exec only ambient
/// capabilities survive into permitted/effective, so those are configured
/// equal to ambient; bounding and inheritable must match exactly too.
#[test]
fn capabilities_non_root_with_ambient() {
    let amb: &[&str] = &["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    check_caps(
        json!({"uid": 1000, "gid": 1000}),
        [
            (
                "bounding",
                &[
                    "CAP_CHOWN",
                    "CAP_KILL",
                    "CAP_NET_BIND_SERVICE",
                    "CAP_NET_RAW",
                    "CAP_SETGID",
                ],
            ),
            ("effective", amb),
            ("permitted", amb),
            ("inheritable", amb),
            ("ambient", amb),
        ],
    );
}

/// Empty sets drop every capability, even for root.
#[test]
fn capabilities_all_empty() {
    check_caps(
        json!({"uid": 0, "gid": 0}),
        [
            ("bounding", &[]),
            ("effective", &[]),
            ("permitted", &[]),
            ("inheritable", &[]),
            ("ambient", &[]),
        ],
    );
}

fn no_new_privs(value: bool) -> String {
    let rt = Runtime::new();
    let mut b = rt.bundle("nnp");
    b.config_mut()["process"]["noNewPrivileges"] = json!(value);
    b.args(&["cat", "/proc/self/status"]);
    let out = rt.run(&b).assert_ok();
    status_field(&out.stdout, "NoNewPrivs").unwrap_or_else(|| panic!("no NoNewPrivs line:\n{out}"))
}

/// noNewPrivileges true sets PR_SET_NO_NEW_PRIVS.
#[test]
fn no_new_privileges_true() {
    assert_eq!(no_new_privs(true), "1");
}

/// noNewPrivileges false leaves it unset (the test process doesn't have it).
#[test]
fn no_new_privileges_false() {
    let host = fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(
        status_field(&host, "NoNewPrivs").as_deref(),
        Some("0"),
        "test process already has no_new_privs"
    );
    assert_eq!(no_new_privs(false), "0");
}

/// rlimits are set (soft and hard). Values stay below the host's hard
/// limits: the runtime may lack CAP_SYS_RESOURCE to raise them.
#[test]
fn rlimits_are_applied() {
    let rt = Runtime::new();
    let mut b = rt.bundle("rlimits");
    b.config_mut()["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 900},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}
    ]);
    b.args(&["cat", "/proc/self/limits"]);
    let out = rt.run(&b).assert_ok();
    let row = |name: &str| -> Vec<String> {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}:\n{out}"));
        line[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files")[..2], ["512", "900"], "{out}");
    assert_eq!(row("Max core file size")[..2], ["4096", "8192"], "{out}");
}

/// `ulimit -n` in a shell agrees with RLIMIT_NOFILE.
#[test]
fn ulimit_reports_nofile() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ulimit");
    b.config_mut()["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 700}]);
    b.sh("ulimit -n; ulimit -Hn");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["256", "700"],
        "{out}"
    );
}

/// oomScoreAdj is written to the process's oom_score_adj. A positive value
/// is used: lowering it would need CAP_SYS_RESOURCE.
#[test]
fn oom_score_adj_is_applied() {
    let rt = Runtime::new();
    let mut b = rt.bundle("oom");
    b.config_mut()["process"]["oomScoreAdj"] = json!(500);
    b.args(&["cat", "/proc/self/oom_score_adj"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "500", "{out}");
}

fn host_sysctl(path: &str) -> String {
    fs::read_to_string(path).unwrap().trim().to_string()
}

/// linux.sysctl with network sysctls applies them in the container's new
/// network namespace only.
#[test]
fn sysctl_in_network_namespace() {
    let fwd = "/proc/sys/net/ipv4/ip_forward";
    let ttl = "/proc/sys/net/ipv4/ip_default_ttl";
    let (host_fwd, host_ttl) = (host_sysctl(fwd), host_sysctl(ttl));
    let rt = Runtime::new();
    let mut b = rt.bundle("sysctlnet");
    b.config_mut()["linux"]["sysctl"] =
        json!({"net.ipv4.ip_forward": "1", "net.ipv4.ip_default_ttl": "77"});
    b.args(&["cat", fwd, ttl]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["1", "77"],
        "{out}"
    );
    assert_eq!(
        (host_sysctl(fwd), host_sysctl(ttl)),
        (host_fwd, host_ttl),
        "host sysctls changed"
    );
}

/// linux.sysctl with an ipc sysctl applies it in the new ipc namespace.
#[test]
fn sysctl_in_ipc_namespace() {
    let shmmax = "/proc/sys/kernel/shmmax";
    let host = host_sysctl(shmmax);
    let rt = Runtime::new();
    let mut b = rt.bundle("sysctlipc");
    b.config_mut()["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
    b.args(&["cat", shmmax]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "123456789", "{out}");
    assert_eq!(host_sysctl(shmmax), host, "host shmmax changed");
}

/// Without HOME in process.env, HOME comes from the user's /etc/passwd
/// entry in the rootfs (runc behaviour that images rely on).
#[test]
fn home_from_passwd_when_unset() {
    let rt = Runtime::new();
    let mut b = rt.bundle("home");
    b.sh("echo $HOME");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "/root", "{out}");

    let mut b = rt.bundle("homenobody");
    b.config_mut()["process"]["user"] = json!({"uid": 65534, "gid": 65534});
    b.sh("echo $HOME");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "/nonexistent", "{out}");
}

/// An explicit HOME in process.env wins over /etc/passwd.
#[test]
fn home_from_env_is_kept() {
    let rt = Runtime::new();
    let mut b = rt.bundle("homeenv");
    b.config_mut()["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("HOME=/custom/home"));
    b.sh("echo $HOME");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "/custom/home", "{out}");
}

/// A program that doesn't exist makes `create` fail (runtime.md: errors in
/// create must be reported, and the container must not be left behind).
#[test]
fn missing_binary_fails_create_without_leftovers() {
    let rt = Runtime::new();
    let mut b = rt.bundle("nobin");
    b.args(&["/no/such/binary"]);
    rt.create(&b).assert_fail();
    // A failed create must clean up after itself: no state, no cgroup.
    rt.assert_gone(&b, None);
}

/// `run` of a missing program exits non-zero and leaves nothing.
#[test]
fn missing_binary_fails_run_without_leftovers() {
    let rt = Runtime::new();
    let mut b = rt.bundle("nobinrun");
    b.args(&["no-such-program-in-path"]);
    rt.run(&b).assert_fail();
    rt.assert_gone(&b, None);
}

/// A cwd the process's user may not search (0700, root's) still works: the runtime changes
/// into it while privileged, as runc does, then becomes the user.
#[test]
fn cwd_not_searchable_by_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Runtime::new();
    let mut b = rt.bundle("cwdpriv");
    let root = b.private_rootfs();
    let secret = root.join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    b.config_mut()["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
    b.config_mut()["process"]["cwd"] = serde_json::json!("/secret");
    b.sh("pwd; id -u; ls . >/dev/null 2>&1 || echo denied");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout, "/secret\n1000\ndenied\n", "{out}");
}
