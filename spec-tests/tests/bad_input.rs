//! Bad-input corpus runner: every case under `spec-tests/bad-input/` is one mistake that a
//! runtime must refuse without leaving anything behind (state, cgroups, mounts,
//! processes). The format of a case is described in `spec-tests/bad-input/README.md`.
//!
//! `RUNTIME` names the runtime (default `<workspace>/target/release/berth`). For berth every
//! case must fail with exactly one stderr line containing the case's `expect`; for other
//! runtimes only the runtime-agnostic checks apply and a case they accept is reported, not
//! failed. Needs root; skipped (with a message) otherwise.
//!
//! Self-contained on purpose: it does not use the spec-tests library.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

const STEP_TIMEOUT: Duration = Duration::from_secs(20);
const MIN_CASES: usize = 22;

#[test]
fn bad_input_corpus() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bad_input: SKIPPED, needs root (run as root: the runtime creates namespaces and cgroups)");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = match std::env::var_os("RUNTIME") {
        Some(r) if !r.is_empty() => PathBuf::from(r),
        _ => manifest.join("../target/release/berth"),
    };
    assert!(
        runtime.is_file(),
        "runtime {} not found (build it, or set RUNTIME=/path/to/runtime)",
        runtime.display()
    );
    let runtime = fs::canonicalize(&runtime).expect("canonicalize RUNTIME");
    let rt_name = runtime
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let strict = rt_name == "berth";

    let cases = load_cases(&manifest.join("bad-input"));
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases in the corpus (want at least {MIN_CASES})",
        cases.len()
    );

    let work = Work::new();
    let template = work.path.join("rootfs-template");
    make_template_rootfs(&template);

    println!(
        "bad-input: {} cases against {} ({})",
        cases.len(),
        runtime.display(),
        if strict {
            "berth: strict checks"
        } else {
            "runtime-agnostic checks"
        }
    );
    let mut failed = Vec::new();
    let mut accepted = 0;
    for case in &cases {
        let ctx = Ctx {
            runtime: &runtime,
            rt_name: &rt_name,
            strict,
            work: &work.path,
            template: &template,
        };
        match run_case(&ctx, case) {
            Ok(None) => println!("ok {}", case.name),
            Ok(Some(note)) => {
                accepted += 1;
                println!("ok {} ({note})", case.name);
            }
            Err(why) => {
                println!("FAIL {}: {why}", case.name);
                failed.push(case.name.clone());
            }
        }
    }
    remove_cgroup_parents();
    println!(
        "bad-input: {} cases, {} ok ({} accepted by {}), {} failed",
        cases.len(),
        cases.len() - failed.len(),
        accepted,
        rt_name,
        failed.len()
    );
    assert!(failed.is_empty(), "bad-input cases failed: {failed:?}");
}

// ------------------------------------------------------------------ corpus

struct Case {
    name: String,
    about: String,
    expect: String,
    config: Option<Vec<u8>>,
    steps: Vec<Step>,
    symlinks: Vec<(String, String)>,
    host_absent: Vec<PathBuf>,
    may_succeed: Option<String>,
}

#[derive(Clone, Debug)]
enum Step {
    Ok(Vec<String>),
    Fail(Vec<String>),
    Status(String, String),
}

fn read_opt(path: &Path) -> Option<String> {
    match fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// Non-empty lines without `#` comments.
fn lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("read_dir entry"))
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| load_case(&dir.join(&name), name))
        .collect()
}

fn load_case(d: &Path, name: String) -> Case {
    let need = |f: &str| {
        let s = read_opt(&d.join(f))
            .unwrap_or_else(|| panic!("corpus: {name}/{f} is missing"))
            .trim()
            .to_string();
        assert!(!s.is_empty(), "corpus: {name}/{f} is empty");
        s
    };
    let about = need("about");
    let expect = need("expect");
    let config = fs::read(d.join("config.json")).ok();
    let steps = match read_opt(&d.join("cli")) {
        None => vec![Step::Fail(words("create --bundle {bundle} {id}"))],
        Some(s) => lines(&s)
            .map(|l| {
                let (kind, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
                match kind {
                    "ok" => Step::Ok(words(rest)),
                    "fail" => Step::Fail(words(rest)),
                    "status" => {
                        let w = words(rest);
                        assert!(w.len() == 2, "corpus: {name}/cli: `status ID STATUS`");
                        Step::Status(w[0].clone(), w[1].clone())
                    }
                    _ => panic!("corpus: {name}/cli: unknown step {l:?}"),
                }
            })
            .collect(),
    };
    assert!(
        steps.iter().any(|s| matches!(s, Step::Fail(_))),
        "corpus: {name} has no failing step"
    );
    let symlinks = read_opt(&d.join("rootfs-symlinks"))
        .map(|s| {
            lines(&s)
                .map(|l| {
                    let w = words(l);
                    assert!(
                        w.len() == 2,
                        "corpus: {name}/rootfs-symlinks: `PATH TARGET`"
                    );
                    (w[0].clone(), w[1].clone())
                })
                .collect()
        })
        .unwrap_or_default();
    let host_absent = read_opt(&d.join("host-absent"))
        .map(|s| lines(&s).map(PathBuf::from).collect())
        .unwrap_or_default();
    let may_succeed = read_opt(&d.join("may-succeed")).map(|s| s.trim().to_string());
    Case {
        name,
        about,
        expect,
        config,
        steps,
        symlinks,
        host_absent,
        may_succeed,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

// ------------------------------------------------------------------ one case

struct Ctx<'a> {
    runtime: &'a Path,
    rt_name: &'a str,
    strict: bool,
    work: &'a Path,
    template: &'a Path,
}

struct Paths {
    dir: PathBuf,
    bundle: PathBuf,
    root: PathBuf,
}

fn run_case(ctx: &Ctx, case: &Case) -> Result<Option<String>, String> {
    let id = format!("bi-{}", case.name);
    let dir = ctx.work.join(&case.name);
    let p = Paths {
        bundle: dir.join("bundle"),
        root: dir.join("state"),
        dir,
    };
    let cg = format!("/bad-input/{}", case.name);

    // --- set up the bundle
    fs::create_dir_all(&p.bundle).map_err(|e| format!("setup: {e}"))?;
    fs::create_dir(&p.root).map_err(|e| format!("setup: {e}"))?;
    fs::set_permissions(&p.root, fs::Permissions::from_mode(0o700)).ok();
    copy_tree(ctx.template, &p.bundle.join("rootfs")).map_err(|e| format!("setup rootfs: {e}"))?;
    for (at, target) in &case.symlinks {
        let link = p.bundle.join("rootfs").join(at.trim_start_matches('/'));
        std::os::unix::fs::symlink(target, &link).map_err(|e| format!("setup symlink: {e}"))?;
    }
    let mut sysctls = Vec::new();
    if let Some(cfg) = &case.config {
        fs::write(p.bundle.join("config.json"), cfg).map_err(|e| format!("setup: {e}"))?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(cfg) {
            if let Some(linux) = v.get("linux").and_then(|l| l.as_object()) {
                let got = linux.get("cgroupsPath").and_then(|c| c.as_str());
                if got != Some(cg.as_str()) {
                    return Err(format!(
                        "corpus error: linux.cgroupsPath is {got:?}, must be {cg:?}"
                    ));
                }
                if let Some(m) = linux.get("sysctl").and_then(|s| s.as_object()) {
                    sysctls = m.keys().cloned().collect();
                }
            }
        }
    }
    remove_case_cgroups(&cg);
    if let Some(c) = case_cgroups(&cg).first() {
        return Err(format!(
            "cgroup {} exists before the case and cannot be removed",
            c.display()
        ));
    }
    for h in &case.host_absent {
        if h.symlink_metadata().is_ok() {
            return Err(format!("host path {} exists before the case", h.display()));
        }
    }
    let sysctl_before: BTreeMap<String, Option<String>> = sysctls
        .iter()
        .map(|k| (k.clone(), read_sysctl(k)))
        .collect();
    let mounts_before = mountinfo();

    // --- run the steps
    let mut created = false;
    let mut notes: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let subst = |w: &str| {
        w.replace("{bundle}", &p.bundle.to_string_lossy())
            .replace("{id}", &id)
    };
    let expect = subst(&case.expect);
    for step in &case.steps {
        match step {
            Step::Ok(args) => {
                let args: Vec<String> = args.iter().map(|a| subst(a)).collect();
                let out = invoke(ctx.runtime, &p.root, &args, ctx.work);
                if out.success() {
                    if args[0] == "create" {
                        created = true;
                    }
                } else {
                    errors.push(format!(
                        "`{}` must succeed but {}",
                        args.join(" "),
                        out.describe()
                    ));
                    break;
                }
            }
            Step::Fail(args) => {
                let args: Vec<String> = args.iter().map(|a| subst(a)).collect();
                let out = invoke(ctx.runtime, &p.root, &args, ctx.work);
                if out.timed_out {
                    errors.push(format!("`{}` {}", args.join(" "), out.describe()));
                    break;
                }
                if out.success() {
                    if args[0] == "create" {
                        created = true;
                    }
                    if let (Some(mp), true) = (&case.may_succeed, args[0] == "create") {
                        match mounted_inside(ctx.runtime, &p.root, &id, mp, ctx.work) {
                            Ok(()) => notes.push(format!(
                                "{} accepts this safely: {mp} is a mount point inside the container",
                                ctx.rt_name
                            )),
                            Err(e) => {
                                errors.push(format!("create succeeded but {e}"));
                                break;
                            }
                        }
                    } else if ctx.strict {
                        errors.push(format!("`{}` must fail but exited 0", args.join(" ")));
                        break;
                    } else {
                        notes.push(format!("{} accepts this: {}", ctx.rt_name, case.about));
                    }
                } else if ctx.strict {
                    if let Err(e) = check_stderr(&out.stderr, &expect) {
                        errors.push(format!("`{}`: {e}", args.join(" ")));
                    }
                }
            }
            Step::Status(sid, want) => {
                let sid = subst(sid);
                if let Err(e) = wait_status(ctx.runtime, &p.root, &sid, want, ctx.work) {
                    errors.push(e);
                    break;
                }
            }
        }
    }

    // --- clean up what was legitimately created, then check that nothing is left
    if created {
        let out = invoke(
            ctx.runtime,
            &p.root,
            &words(&format!("delete -f {id}")),
            ctx.work,
        );
        if !out.success() {
            errors.push(format!("cleanup `delete -f {id}` {}", out.describe()));
        }
    }
    errors.extend(leftovers(case, &p, &cg, &mounts_before));
    for (k, before) in &sysctl_before {
        let now = read_sysctl(k);
        if &now != before {
            if let Some(v) = before {
                let _ = fs::write(sysctl_path(k), v);
            }
            errors.push(format!(
                "host sysctl {k} changed from {before:?} to {now:?} (restored)"
            ));
        }
    }

    // --- forced cleanup, so that a failed case does not spoil the next ones
    if !errors.is_empty() {
        let _ = invoke(
            ctx.runtime,
            &p.root,
            &words(&format!("delete -f {id}")),
            ctx.work,
        );
        for pid in leftover_pids(&p.dir, &cg) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        sleep(Duration::from_millis(100));
        unmount_under(&p.dir);
        remove_case_cgroups(&cg);
        for h in &case.host_absent {
            let _ = fs::remove_dir(h);
        }
    }
    if let Err(e) = remove_tree(&p.dir) {
        errors.push(format!("cannot remove the case directory: {e}"));
    }
    if errors.is_empty() {
        Ok(if notes.is_empty() {
            None
        } else {
            Some(notes.join("; "))
        })
    } else {
        Err(errors.join("; "))
    }
}

fn check_stderr(stderr: &str, expect: &str) -> Result<(), String> {
    let text = stderr.strip_suffix('\n').unwrap_or(stderr);
    if text.trim().is_empty() {
        return Err("stderr is empty (want one line containing the error)".into());
    }
    if text.contains('\n') {
        return Err(format!(
            "stderr has {} lines, want exactly one: {text:?}",
            text.lines().count()
        ));
    }
    if !text.contains(expect) {
        return Err(format!("stderr {text:?} does not contain {expect:?}"));
    }
    Ok(())
}

/// Everything the case may have left on the host; empty when clean. Process checks get a
/// short grace period (a killed container can take a moment to be reaped).
fn leftovers(case: &Case, p: &Paths, cg: &str, mounts_before: &[String]) -> Vec<String> {
    let mut errs = Vec::new();
    match fs::read_dir(&p.root) {
        Ok(rd) => {
            let left: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            if !left.is_empty() {
                errs.push(format!("--root is not empty: {left:?}"));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => errs.push(format!("cannot read --root: {e}")),
    }
    if let Ok(rd) = fs::read_dir(&p.dir) {
        let extra: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "bundle" && n != "state")
            .collect();
        if !extra.is_empty() {
            errs.push(format!("created outside --root: {extra:?}"));
        }
    }
    for c in case_cgroups(cg) {
        errs.push(format!("cgroup left: {}", c.display()));
    }
    let after = mountinfo();
    if after != mounts_before {
        let added: Vec<&String> = after
            .iter()
            .filter(|l| !mounts_before.contains(l))
            .collect();
        let gone: Vec<&String> = mounts_before
            .iter()
            .filter(|l| !after.contains(l))
            .collect();
        errs.push(format!(
            "host mountinfo changed: added {added:?}, removed {gone:?}"
        ));
    }
    for h in &case.host_absent {
        if h.symlink_metadata().is_ok() {
            errs.push(format!("host path {} was created", h.display()));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids = leftover_pids(&p.dir, cg);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let desc: Vec<String> = pids.iter().map(|p| describe_pid(*p)).collect();
            errs.push(format!("processes left: {}", desc.join(", ")));
            break;
        }
        sleep(Duration::from_millis(50));
    }
    errs
}

// ------------------------------------------------------------------ runtime calls

struct Outcome {
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn success(&self) -> bool {
        self.code == Some(0)
    }
    fn describe(&self) -> String {
        let how = if self.timed_out {
            format!("did not return within {}s", STEP_TIMEOUT.as_secs())
        } else {
            match self.code {
                Some(c) => format!("exited {c}"),
                None => "was killed by a signal".to_string(),
            }
        };
        format!("{how}, stderr {:?}", self.stderr.trim())
    }
}

/// Runs `RUNTIME --root ROOT ARGS...` with stdin from /dev/null and stdout/stderr to files:
/// a container process may inherit them and outlive the call, so pipes could block.
fn invoke(runtime: &Path, root: &Path, args: &[String], work: &Path) -> Outcome {
    let out_path = work.join("stdout");
    let err_path = work.join("stderr");
    let out_f = fs::File::create(&out_path).expect("create stdout file");
    let err_f = fs::File::create(&err_path).expect("create stderr file");
    let mut child = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(out_f)
        .stderr(err_f)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", runtime.display()));
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    let (code, timed_out) = loop {
        match child.try_wait().expect("wait for the runtime") {
            Some(st) => break (st.code(), false),
            None if start.elapsed() > STEP_TIMEOUT => {
                let _ = child.kill();
                let st = child.wait().expect("wait for the runtime");
                break (st.code(), true);
            }
            None => {
                sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
        }
    };
    Outcome {
        code,
        timed_out,
        stdout: String::from_utf8_lossy(&fs::read(&out_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned(),
    }
}

fn state(runtime: &Path, root: &Path, id: &str, work: &Path) -> Result<serde_json::Value, String> {
    let out = invoke(runtime, root, &["state".to_string(), id.to_string()], work);
    if !out.success() {
        return Err(format!("`state {id}` {}", out.describe()));
    }
    serde_json::from_str(&out.stdout)
        .map_err(|e| format!("`state {id}` printed no JSON ({e}): {:?}", out.stdout))
}

fn wait_status(
    runtime: &Path,
    root: &Path,
    id: &str,
    want: &str,
    work: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = state(runtime, root, id, work)?;
        let got = st
            .get("status")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        if got == want {
            return Ok(());
        }
        // only "stopped" is worth waiting for: the process may still be exiting
        if want != "stopped" || Instant::now() > deadline {
            return Err(format!("`state {id}` says status {got:?}, want {want:?}"));
        }
        sleep(Duration::from_millis(20));
    }
}

/// The container created by a `may-succeed` case must have `mp` as a mount point in its
/// own mount namespace (i.e. the mount landed inside the rootfs).
fn mounted_inside(
    runtime: &Path,
    root: &Path,
    id: &str,
    mp: &str,
    work: &Path,
) -> Result<(), String> {
    let st = state(runtime, root, id, work)?;
    let pid = st
        .get("pid")
        .and_then(|p| p.as_i64())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("`state {id}` has no pid: {st}"))?;
    let mi = fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map_err(|e| format!("cannot read /proc/{pid}/mountinfo: {e}"))?;
    if mi.lines().any(|l| l.split(' ').nth(4) == Some(mp)) {
        Ok(())
    } else {
        Err(format!("{mp} is not a mount point inside the container"))
    }
}

// ------------------------------------------------------------------ host state

fn mountinfo() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Detaches every mount at or below `dir` (deepest first): mounts a runtime leaked into
/// the case directory, so that it can be removed and later cases start clean.
fn unmount_under(dir: &Path) {
    let mut points: Vec<PathBuf> = mountinfo()
        .iter()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in points {
        let c = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()).expect("no NUL in a path");
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

fn read_sysctl(key: &str) -> Option<String> {
    fs::read_to_string(sysctl_path(key)).ok()
}

/// Cgroup hierarchies: /sys/fs/cgroup itself (pure v2) and every directory in it
/// (v1 controllers, the hybrid cgroup2 at `unified`).
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let top = PathBuf::from("/sys/fs/cgroup");
    let mut v = vec![top.clone()];
    if let Ok(rd) = fs::read_dir(&top) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                v.push(e.path());
            }
        }
    }
    v
}

fn case_cgroups(cg: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(cg.trim_start_matches('/')))
        .filter(|p| p.is_dir())
        .collect()
}

fn remove_case_cgroups(cg: &str) {
    for c in case_cgroups(cg) {
        let _ = fs::remove_dir(c);
    }
}

fn remove_cgroup_parents() {
    for h in cgroup_hierarchies() {
        let d = h.join("bad-input");
        if d.is_dir() {
            if let Err(e) = fs::remove_dir(&d) {
                println!("note: cannot remove {}: {e}", d.display());
            }
        }
    }
}

/// Processes whose cwd or root is inside `dir`, or that live in the case's cgroup.
fn leftover_pids(dir: &Path, cg: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let inside = ["cwd", "root"].iter().any(|l| {
            fs::read_link(e.path().join(l))
                .map(|t| t.starts_with(dir))
                .unwrap_or(false)
        });
        let in_cg = fs::read_to_string(e.path().join("cgroup"))
            .map(|s| {
                s.lines().any(|l| {
                    let path = l.splitn(3, ':').nth(2).unwrap_or("");
                    path == cg || path.starts_with(&format!("{cg}/"))
                })
            })
            .unwrap_or(false);
        if inside || in_cg {
            v.push(pid);
        }
    }
    v
}

fn describe_pid(pid: i32) -> String {
    let cmd = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    format!("{pid} ({cmd})")
}

// ------------------------------------------------------------------ files

/// The temporary work directory; removed (without crossing mount points) on drop.
struct Work {
    path: PathBuf,
}

impl Work {
    fn new() -> Work {
        let path = std::env::temp_dir().join(format!("berth-bad-input.{}", std::process::id()));
        if path.exists() {
            remove_tree(&path).expect("remove a stale work directory");
        }
        fs::create_dir_all(&path).expect("create the work directory");
        Work { path }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.path) {
            eprintln!("bad_input: left {}: {e}", self.path.display());
        }
    }
}

/// Like `fs::remove_dir_all`, but refuses to descend into another filesystem: a mount
/// leaked into a bundle (say, a bind of the host's /) must never be emptied.
fn remove_tree(path: &Path) -> io::Result<()> {
    let md = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_tree_on(path, md.dev())
}

fn remove_tree_on(path: &Path, dev: u64) -> io::Result<()> {
    let md = path.symlink_metadata()?;
    if !md.is_dir() {
        return fs::remove_file(path);
    }
    if md.dev() != dev {
        return Err(io::Error::other(format!(
            "{} is on another filesystem (a leaked mount?), not removed",
            path.display()
        )));
    }
    for e in fs::read_dir(path)? {
        remove_tree_on(&e?.path(), dev)?;
    }
    fs::remove_dir(path)
}

/// Copies a tree, hard-linking regular files (the busybox binary) and recreating symlinks.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let md = from.symlink_metadata()?;
    fs::create_dir(to)?;
    fs::set_permissions(to, md.permissions())?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// A busybox rootfs: static busybox, one symlink per applet, /etc/passwd and /etc/group.
fn make_template_rootfs(dir: &Path) {
    let busybox = find_static_busybox();
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
        fs::create_dir_all(dir.join(d)).expect("create rootfs dir");
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    let bb = dir.join("bin/busybox");
    fs::copy(&busybox, &bb).expect("copy busybox");
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = dir.join("bin").join(applet);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink("busybox", link).expect("applet symlink");
        }
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\n").expect("group");
}

fn find_static_busybox() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(b) = std::env::var_os("BUSYBOX") {
        candidates.push(b.into());
    }
    candidates.extend(
        [
            "/bin/busybox",
            "/usr/bin/busybox",
            "/usr/lib/busybox/busybox-static",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|c| is_static_elf(c))
        .expect("a statically linked busybox is needed (Debian: apt-get install busybox-static)")
}

/// An ELF64 little-endian executable without a PT_INTERP program header.
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}
