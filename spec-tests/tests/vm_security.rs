//! Security settings that need kernel features a build host may lack: kernel module
//! loading (CAP_SYS_MODULE) and AppArmor profiles (`process.apparmorProfile`, `exec
//! --apparmor`). scripts/test-cgroupv2.sh runs this file in its VM boot (../shared/vm:
//! Debian's kernel, with module support and AppArmor); elsewhere each test checks what
//! the kernel offers and skips with the reason when no control could show its detector
//! working.
//!
//! As in escapes.rs, every test has a control: the same container with the defence lifted
//! (CAP_SYS_MODULE granted, no profile) gets a different answer, so no test passes
//! because its detector is blind.

use serde_json::json;
use spec_tests::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `spec_tests::skip`, whose eprintln! libtest captures (shown only with --nocapture or on
/// failure); the notice is also written to the process's stderr directly, so that a plain
/// `cargo test --test vm_security` shows why it skipped and test-cgroupv2.sh can count it.
fn skip_test(test: &str, why: &str) {
    skip(test, why);
    let nocapture = std::env::args().any(|a| a == "--nocapture" || a == "--no-capture")
        || std::env::var_os("RUST_TEST_NOCAPTURE").is_some_and(|v| v != "0");
    if !nocapture {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test} for {}: {why}",
            runtime_path().display()
        );
    }
}

// ------------------------------------------------------------- kernel modules

/// Whether module loading can be told apart by capability here: finit_module(-1) made by
/// this (root) test process gets past the kernel's permission check to the bad fd (EBADF).
/// A kernel without module support answers ENOSYS to everyone, and with
/// kernel.modules_disabled=1 or without CAP_SYS_MODULE the answer is EPERM for the
/// control too: either way the test can't show anything.
fn module_loading_testable() -> Result<(), String> {
    let empty = b"\0";
    let r = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            -1 as libc::c_int,
            empty.as_ptr(),
            0 as libc::c_int,
        )
    };
    let err = std::io::Error::last_os_error();
    match (r, err.raw_os_error()) {
        (-1, Some(libc::EBADF)) => Ok(()),
        (-1, Some(libc::ENOSYS)) => Err("the kernel has no module support (finit_module fails \
             with ENOSYS even for root), so a refusal by capability (EPERM) could not be \
             told from it"
            .into()),
        (-1, Some(libc::EPERM)) => Err("finit_module is refused (EPERM) to this test process \
             itself (not root with CAP_SYS_MODULE, or kernel.modules_disabled=1), so no \
             control could get past the permission check"
            .into()),
        _ => Err(format!(
            "finit_module(-1) returned {r} ({err}) instead of EBADF: can't judge"
        )),
    }
}

/// busybox insmod tries finit_module, then init_module, and names the errno of the last;
/// /etc/passwd is no module, so with the capability the kernel reads it and refuses it as
/// "invalid module format" (ENOEXEC) instead of "Operation not permitted" (EPERM).
const INSMOD: &str = "busybox insmod /etc/passwd 2>&1; echo \"insmod exit $?\"";
const EPERM_TEXT: &str = "Operation not permitted";

/// A container with the default capability set (no CAP_SYS_MODULE) can't load a module:
/// the kernel says EPERM. Control: with CAP_SYS_MODULE in its bounding, effective and
/// permitted sets the same attempt gets past that check and fails otherwise.
#[test]
fn module_loading_is_refused_without_cap_sys_module() {
    let name = "module_loading_is_refused_without_cap_sys_module";
    if let Err(why) = module_loading_testable() {
        return skip_test(name, &why);
    }
    let rt = Runtime::new();

    // Control: the capability granted.
    let mut b = rt.bundle("modcap");
    b.sh(INSMOD);
    for set in ["bounding", "effective", "permitted"] {
        b.config_mut()["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_MODULE"));
    }
    let out = rt.run(&b).assert_ok();
    assert!(
        out.stdout.contains("can't insert") && out.stdout.contains("insmod exit"),
        "control: insmod did not report its attempt:\n{out}"
    );
    assert!(
        !out.stdout.contains(EPERM_TEXT),
        "control: with CAP_SYS_MODULE the module syscall still got EPERM, so the test \
         can't tell a refusal by capability:\n{out}"
    );

    // The default capabilities.
    let mut b = rt.bundle("modload");
    b.sh(INSMOD);
    let out = rt.run(&b).assert_ok();
    assert!(
        out.stdout
            .contains(&format!("can't insert '/etc/passwd': {EPERM_TEXT}")),
        "without CAP_SYS_MODULE, loading a module was not refused with EPERM:\n{out}"
    );
}

// ------------------------------------------------------------------ AppArmor

/// apparmor_parser, if installed (Debian package `apparmor`).
fn apparmor_parser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("apparmor_parser"))
        .find(|p| p.is_file())
}

/// The parser, where AppArmor enforces and its policy interface is mounted.
fn apparmor_testable() -> Result<PathBuf, String> {
    let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    if !enabled {
        return Err("AppArmor is not enabled in this kernel \
                    (/sys/module/apparmor/parameters/enabled is not Y)"
            .into());
    }
    if !Path::new("/sys/kernel/security/apparmor/profiles").exists() {
        return Err("securityfs is not mounted at /sys/kernel/security: \
                    no AppArmor profile can be loaded"
            .into());
    }
    apparmor_parser().ok_or_else(|| {
        "apparmor_parser not found (Debian package apparmor; scripts/deps.sh installs it)".into()
    })
}

/// Files every AppArmor test bundle gets in /out: one the profile lets the process read,
/// one it denies.
const ALLOWED: &str = "aa-allowed";
const DENIED: &str = "aa-denied";

/// A test profile loaded into the kernel, removed on drop: everything allowed (what busybox,
/// the runtime's signals and /proc reads need) but reading /out/aa-denied.
struct Profile {
    name: String,
    file: PathBuf,
    parser: PathBuf,
    loaded: bool,
    _dir: TempDir,
}

impl Profile {
    fn load(parser: PathBuf) -> Profile {
        let dir = TempDir::new("apparmor");
        let name = unique_id("spec-tests-aa");
        let file = dir.path().join(&name);
        fs::write(
            &file,
            format!(
                "profile {name} flags=(attach_disconnected,mediate_deleted) {{\n  \
                 file,\n  capability,\n  network,\n  signal,\n  ptrace,\n  unix,\n  \
                 mount,\n  umount,\n  pivot_root,\n  deny /out/{DENIED} r,\n}}\n"
            ),
        )
        .unwrap();
        let mut p = Profile {
            name,
            file,
            parser,
            loaded: false,
            _dir: dir,
        };
        p.parse("-r");
        p.loaded = true;
        assert_eq!(
            p.kernel_mode().as_deref(),
            Some("enforce"),
            "profile {} not listed in enforce mode after loading",
            p.name
        );
        p
    }

    /// `apparmor_parser OP --skip-cache FILE`, asserting success.
    fn parse(&self, op: &str) {
        let out = Command::new(&self.parser)
            .args([op, "--skip-cache"])
            .arg(&self.file)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.parser.display()));
        assert!(
            out.status.success(),
            "apparmor_parser {op} {}: {}\n{}",
            self.file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The profile's mode as the kernel lists it ("enforce"), None if not loaded.
    fn kernel_mode(&self) -> Option<String> {
        let list = fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap();
        let prefix = format!("{} (", self.name);
        list.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix(')'))
            .map(str::to_string)
    }

    /// What /proc/PID/attr/current says of a process confined by this profile.
    fn label(&self) -> String {
        format!("{} (enforce)", self.name)
    }

    /// Unloads the profile, asserting it is gone.
    fn remove(mut self) {
        self.parse("-R");
        self.loaded = false;
        assert_eq!(
            self.kernel_mode(),
            None,
            "profile {} still loaded",
            self.name
        );
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        if self.loaded {
            let _ = Command::new(&self.parser)
                .args(["-R", "--skip-cache"])
                .arg(&self.file)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Prints the process's AppArmor label, then whether it could read each /out file.
const AA_DETECTOR: &str = "echo \"LABEL $(cat /proc/self/attr/current)\"; \
    for f in aa-allowed aa-denied; do \
    if v=$(cat /out/$f 2>&1); then echo \"READ $f: $v\"; else echo \"REFUSED $f: $v\"; fi; \
    done";

/// Gives `b` its /out with the two files.
fn aa_out(b: &mut Bundle) {
    let out = b.out_dir();
    fs::write(out.join(ALLOWED), "allowed-content").unwrap();
    fs::write(out.join(DENIED), "denied-content").unwrap();
}

/// Asserts what AA_DETECTOR printed: confined by `profile` (the allowed file read, the
/// denied one refused by permission) or, with None, unconfined (both read).
#[track_caller]
fn assert_seen(what: &str, stdout: &str, profile: Option<&Profile>, full: &dyn std::fmt::Display) {
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix));
    let want_label = profile.map_or("unconfined".to_string(), Profile::label);
    assert_eq!(
        line("LABEL ").map(|l| &l["LABEL ".len()..]),
        Some(want_label.as_str()),
        "{what}: not labelled {want_label:?}:\n{full}"
    );
    assert_eq!(
        line(&format!("READ {ALLOWED}: ")),
        Some(format!("READ {ALLOWED}: allowed-content").as_str()),
        "{what}: could not read /out/{ALLOWED}:\n{full}"
    );
    if profile.is_some() {
        let refused = line(&format!("REFUSED {DENIED}: "));
        assert!(
            refused.is_some_and(|l| l.contains("Permission denied")),
            "{what}: reading /out/{DENIED} was not denied by the profile:\n{full}"
        );
    } else {
        assert_eq!(
            line(&format!("READ {DENIED}: ")),
            Some(format!("READ {DENIED}: denied-content").as_str()),
            "{what}: could not read /out/{DENIED} without the profile:\n{full}"
        );
    }
}

/// `process.apparmorProfile`: the container process runs confined by the profile (its
/// label says so, the denied read fails, the rest works). Control: the same container
/// without the profile is unconfined and reads both files. A profile that isn't loaded
/// fails the run.
#[test]
fn apparmor_profile_confines_the_container_process() {
    let name = "apparmor_profile_confines_the_container_process";
    let parser = match apparmor_testable() {
        Ok(p) => p,
        Err(why) => return skip_test(name, &why),
    };
    let profile = Profile::load(parser);
    let rt = Runtime::new();

    // Control: no profile.
    let mut b = rt.bundle("aa-none");
    aa_out(&mut b);
    b.sh(AA_DETECTOR);
    let out = rt.run(&b).assert_ok();
    assert_seen("control (no profile)", &out.stdout, None, &out);

    let mut b = rt.bundle("aa-run");
    aa_out(&mut b);
    b.sh(AA_DETECTOR);
    b.config_mut()["process"]["apparmorProfile"] = json!(profile.name);
    let out = rt.run(&b).assert_ok();
    assert_seen("process.apparmorProfile", &out.stdout, Some(&profile), &out);

    // A profile the kernel doesn't have: the runtime fails, the process never runs (it must
    // not run unconfined instead).
    let mut b = rt.bundle("aa-missing");
    aa_out(&mut b);
    b.sh(AA_DETECTOR);
    let missing = format!("{}-not-loaded", profile.name);
    b.config_mut()["process"]["apparmorProfile"] = json!(missing);
    let out = rt.run(&b);
    assert!(
        !out.success() && !out.stdout.contains("LABEL"),
        "process.apparmorProfile {missing:?} (not loaded): the process ran anyway:\n{out}"
    );

    drop(rt);
    profile.remove();
}

/// A started container that idles, with /out; returns its init pid.
fn idle(rt: &Runtime, b: &mut Bundle) -> i32 {
    aa_out(b);
    b.args(&["sleep", "300"]);
    let pid = rt.create_and_start(b);
    rt.wait_status(b.id(), "running");
    pid
}

fn exec_detector(rt: &Runtime, id: &str, extra: &[&str]) -> Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[id, "sh", "-c", AA_DETECTOR]);
    rt.exec(&args).assert_ok()
}

/// `exec`: into an unconfined container, `exec --apparmor PROFILE` runs confined while a
/// plain exec (the control) does not; into a container whose process.apparmorProfile is
/// set, a plain exec is confined like its init (as runc does: exec takes the container's
/// process settings).
#[test]
fn exec_runs_under_the_apparmor_profile() {
    let name = "exec_runs_under_the_apparmor_profile";
    let parser = match apparmor_testable() {
        Ok(p) => p,
        Err(why) => return skip_test(name, &why),
    };
    let profile = Profile::load(parser);
    let rt = Runtime::new();
    let label_of = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/attr/current"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/attr/current: {e}"))
            .trim()
            .to_string()
    };

    let mut b = rt.bundle("aa-exec-none");
    let init = idle(&rt, &mut b);
    assert_eq!(
        label_of(init),
        "unconfined",
        "init of a container without a profile"
    );
    // Control: a plain exec is unconfined.
    let out = exec_detector(&rt, b.id(), &[]);
    assert_seen("control (exec without --apparmor)", &out.stdout, None, &out);
    let out = exec_detector(&rt, b.id(), &["--apparmor", &profile.name]);
    assert_seen("exec --apparmor", &out.stdout, Some(&profile), &out);
    assert_eq!(
        label_of(init),
        "unconfined",
        "the exec changed init's label"
    );

    let mut b = rt.bundle("aa-exec-conf");
    b.config_mut()["process"]["apparmorProfile"] = json!(profile.name);
    let init = idle(&rt, &mut b);
    assert_eq!(
        label_of(init),
        profile.label(),
        "init of a container with process.apparmorProfile, seen from the host"
    );
    let out = exec_detector(&rt, b.id(), &[]);
    assert_seen(
        "exec into a container with process.apparmorProfile",
        &out.stdout,
        Some(&profile),
        &out,
    );

    drop(rt);
    profile.remove();
}
