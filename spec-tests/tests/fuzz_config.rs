//! A seeded property test of the runtime's config loading and checks: configs made by
//! changing `base_config` at known JSON paths (and some unknown ones) to odd values, each
//! given to `create`. What must hold for every one:
//!
//! - the runtime neither panics (exit 101, "panicked") nor dies of a signal nor hangs (20 s);
//! - a refusal is one stderr line naming the fault: a JSON path of the config or the file;
//! - an accepted config gives a container that `delete --force` removes, leaving nothing.
//!
//! First the corpus: every bad-input case's config.json (spec-tests/bad-input) and the
//! oversized values of issue 14 (10 MB hostname, cwd, env). Then generated configs until
//! FUZZ_SECS (default 60) have passed, FUZZ_CASES (default 100000) were tried or 10 failed.
//! The seed is fixed (FUZZ_SEED, hex, to try others), so a run replays; each failing config
//! is printed.
//!
//! Bounded to what is safe on a host: root.path, linux.cgroupsPath, hooks, mount sources
//! and rootfsPropagation are never changed, namespace paths are only ones whose joining
//! cannot touch the host (its network or pid namespace, files that are no namespace), and
//! the process is /bin/true.
//!
//! berth only: the point is berth's one-line errors (another runtime is skipped).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use spec_tests::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// Top-level fields: a JSON path in an error begins with one of these.
const FIELDS: &[&str] = &[
    "ociVersion",
    "process",
    "root",
    "hostname",
    "domainname",
    "mounts",
    "hooks",
    "annotations",
    "linux",
];

/// Where values are put: "." separates keys, a number indexes an array (one past the end
/// appends). Sysctl keys contain dots, so `linux.sysctl` gets whole maps instead.
const PATHS: &[&str] = &[
    "ociVersion",
    "process",
    "process.terminal",
    "process.user",
    "process.user.uid",
    "process.user.gid",
    "process.user.umask",
    "process.user.additionalGids",
    "process.args",
    "process.args.0",
    "process.args.1",
    "process.env",
    "process.env.0",
    "process.env.2",
    "process.cwd",
    "process.capabilities",
    "process.capabilities.bounding",
    "process.capabilities.effective.0",
    "process.capabilities.ambient.3",
    "process.rlimits",
    "process.rlimits.0",
    "process.rlimits.0.type",
    "process.rlimits.0.hard",
    "process.rlimits.0.soft",
    "process.rlimits.1",
    "process.noNewPrivileges",
    "process.oomScoreAdj",
    "process.apparmorProfile",
    "process.selinuxLabel",
    "process.consoleSize",
    "process.scheduler",
    "process.ioPriority",
    "process.execCPUAffinity",
    "hostname",
    "domainname",
    "annotations",
    "annotations.org.example",
    "root.readonly",
    "mounts",
    "mounts.0.destination",
    "mounts.0.type",
    "mounts.0.options",
    "mounts.2.options.0",
    "mounts.7",
    "linux",
    "linux.namespaces",
    "linux.namespaces.0",
    "linux.namespaces.0.type",
    "linux.namespaces.0.path",
    "linux.namespaces.1.path",
    "linux.namespaces.4.type",
    "linux.namespaces.5",
    "linux.uidMappings",
    "linux.uidMappings.0",
    "linux.uidMappings.0.containerID",
    "linux.uidMappings.0.size",
    "linux.gidMappings",
    "linux.gidMappings.1",
    "linux.timeOffsets",
    "linux.timeOffsets.monotonic",
    "linux.timeOffsets.monotonic.secs",
    "linux.timeOffsets.boottime.nanosecs",
    "linux.resources",
    "linux.resources.memory",
    "linux.resources.memory.limit",
    "linux.resources.memory.swap",
    "linux.resources.memory.reservation",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.pids",
    "linux.resources.pids.limit",
    "linux.resources.cpu",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.cpu.cpus",
    "linux.resources.cpu.mems",
    "linux.resources.blockIO",
    "linux.resources.blockIO.weight",
    "linux.resources.hugepageLimits",
    "linux.resources.devices",
    "linux.resources.devices.0.access",
    "linux.resources.devices.1",
    "linux.resources.unified",
    "linux.resources.network",
    "linux.sysctl",
    "linux.seccomp",
    "linux.seccomp.defaultAction",
    "linux.seccomp.architectures",
    "linux.seccomp.syscalls",
    "linux.maskedPaths",
    "linux.maskedPaths.0",
    "linux.readonlyPaths.1",
    "linux.devices",
    "linux.devices.0",
    "linux.mountLabel",
    "linux.intelRdt",
    "linux.personality",
    "linux.netDevices",
    "linux.memoryPolicy",
    "x-unknown",
];

/// Strings worth trying at any path: names the spec uses, edges of the kernel's limits,
/// and the bad values of issue 14.
fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,16}",
        Just(String::new()),
        Just("A=\0".to_string()),
        Just("a\0b".to_string()),
        Just("KEY=VALUE".to_string()),
        Just("=x".to_string()),
        Just("relative/path".to_string()),
        Just("/proc/self/ns/net".to_string()),
        Just("/proc/self/ns/pid".to_string()),
        Just("/dev/null".to_string()),
        Just("/nonexistent".to_string()),
        Just("/tmp".to_string()),
        Just("pid".to_string()),
        Just("network".to_string()),
        Just("user".to_string()),
        Just("time".to_string()),
        Just("cgroup".to_string()),
        Just("RLIMIT_NOFILE".to_string()),
        Just("RLIMIT_BOGUS".to_string()),
        Just("CAP_SYS_ADMIN".to_string()),
        Just("CAP_BOGUS".to_string()),
        Just("SCMP_ACT_ERRNO".to_string()),
        Just("SCMP_ACT_BOGUS".to_string()),
        Just("tmpfs".to_string()),
        Just("bind".to_string()),
        Just("0-1".to_string()),
        Just("99999".to_string()),
        Just("rwm".to_string()),
        Just("1.0.2".to_string()),
        Just("2.0.0".to_string()),
        Just("a".repeat(65)),
        Just("x".repeat(300)),
        Just(format!("/{}", "d".repeat(256))),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(2),
            Just(64),
            Just(340),
            Just(1000),
            Just(1001),
            Just(4096),
            Just(8192),
            Just(1_000_000_000),
            Just(4_294_967_295),
            Just(4_294_967_296),
            Just(-99_999_999_999),
            Just(i64::MAX),
            Just(i64::MIN),
        ]
        .prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        strings().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((strings(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            // Objects shaped like the spec's own entries, with odd values.
            (strings(), leaf()).prop_map(|(t, p)| json!({"type": t, "path": p})),
            (leaf(), leaf(), leaf())
                .prop_map(|(c, h, s)| json!({"containerID": c, "hostID": h, "size": s})),
            (strings(), leaf(), leaf())
                .prop_map(|(t, h, s)| json!({"type": t, "hard": h, "soft": s})),
            (leaf(), leaf()).prop_map(|(s, n)| json!({"secs": s, "nanosecs": n})),
            (strings(), leaf()).prop_map(|(k, v)| json!({ k: v })),
        ]
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
    Sysctl(String, Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    let path = prop::sample::select(PATHS);
    prop_oneof![
        6 => (path.clone(), value()).prop_map(|(p, v)| Edit::Set(p, v)),
        2 => path.prop_map(Edit::Remove),
        1 => (
            prop::sample::select(&[
                "net.ipv4.ip_forward",
                "kernel.shm_rmid_forced",
                "kernel.domainname",
                "vm.swappiness",
                "fs.nope",
            ][..]),
            leaf()
        )
            .prop_map(|(k, v)| Edit::Sysctl(k.to_string(), v)),
    ]
}

/// Where `path` leads, made as needed (objects for keys, arrays for numbers; appending one
/// past an array's end). None where a value of another kind is in the way.
fn slot<'a>(root: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = match part.parse::<usize>() {
            Ok(i) => {
                if cur.is_null() {
                    *cur = json!([]);
                }
                let a = cur.as_array_mut()?;
                if i >= a.len() {
                    a.push(Value::Null);
                    let last = a.len() - 1;
                    &mut a[last]
                } else {
                    &mut a[i]
                }
            }
            Err(_) => {
                if cur.is_null() {
                    *cur = json!({});
                }
                cur.as_object_mut()?.entry(part).or_insert(Value::Null)
            }
        };
    }
    Some(cur)
}

fn remove(root: &mut Value, path: &str) {
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, l)) => (p, l),
        None => ("", path),
    };
    let mut cur = root;
    if !parent.is_empty() {
        for part in parent.split('.') {
            let next = match part.parse::<usize>() {
                Ok(i) => cur.get_mut(i),
                Err(_) => cur.get_mut(part),
            };
            match next {
                Some(n) => cur = n,
                None => return,
            }
        }
    }
    match (cur, last.parse::<usize>()) {
        (Value::Array(a), Ok(i)) if i < a.len() => {
            a.remove(i);
        }
        (Value::Object(o), _) => {
            o.remove(last);
        }
        _ => {}
    }
}

/// The fields this test never changes (see the module comment), put back after the edits.
fn pin(config: &mut Value, base: &Value) {
    for key in ["root", "hooks"] {
        match base.get(key) {
            Some(v) => config[key] = v.clone(),
            None => {
                if let Some(o) = config.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
    if !config.is_object() {
        return;
    }
    if !config["linux"].is_object() {
        config["linux"] = json!({});
    }
    config["linux"]["cgroupsPath"] = base["linux"]["cgroupsPath"].clone();
    if let Some(o) = config["linux"].as_object_mut() {
        o.remove("rootfsPropagation");
    }
    // Mounts keep the base's sources; a new mount gets none but a tmpfs's.
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for (i, m) in mounts.iter_mut().enumerate() {
            if let Some(o) = m.as_object_mut() {
                match base["mounts"].get(i).and_then(|b| b.get("source")) {
                    Some(s) => {
                        o.insert("source".into(), s.clone());
                    }
                    None => {
                        o.insert("source".into(), json!("tmpfs"));
                    }
                }
            }
        }
    }
    // Joining is limited to namespaces whose joining cannot change the host (module comment).
    let safe = [
        "/proc/self/ns/net",
        "/proc/self/ns/pid",
        "/dev/null",
        "/nonexistent",
    ];
    if let Some(nss) = config["linux"]["namespaces"].as_array_mut() {
        for n in nss.iter_mut() {
            if let Some(o) = n.as_object_mut() {
                let ok = match o.get("path") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(p)) => !p.starts_with('/') || safe.contains(&p.as_str()),
                    Some(_) => true,
                };
                if !ok {
                    o.remove("path");
                }
            }
        }
    }
}

/// Whether an error line names the fault: the config file, or a JSON path in it.
fn names_fault(line: &str) -> bool {
    line.contains("config.json")
        || FIELDS.iter().any(|f| {
            line.match_indices(f).any(|(i, _)| {
                let before = line[..i].chars().last();
                let after = line[i + f.len()..].chars().next();
                matches!(before, None | Some(' ' | '(' | '"'))
                    && matches!(after, Some('.' | '[' | ':' | ' '))
            })
        })
}

struct Fuzz {
    rt: Runtime,
    accepted: u32,
    refused: u32,
}

impl Fuzz {
    /// Runs one config through `create`; Err names what went wrong.
    fn try_config(&mut self, config: &Value) -> Result<(), String> {
        let mut b = self.rt.bundle("fuzz");
        let cgroups_path = b.cgroups_path();
        let mut config = config.clone();
        if config.is_object() {
            config["linux"]["cgroupsPath"] = json!(cgroups_path);
        }
        *b.config_mut() = config;
        b.write();

        let dir = b.dir().to_string_lossy().into_owned();
        let mut create = self.rt.spawn(&["create", "--bundle", &dir, b.id()], &[]);
        let Some(out) = create.try_wait_for(Duration::from_secs(20)) else {
            drop(create);
            let _ = self.rt.delete_force(b.id());
            return Err("create hung for 20 s".into());
        };
        let mut problems = Vec::new();
        if out.signal().is_some() || out.code() == Some(101) || out.stderr.contains("panicked") {
            problems.push("the runtime crashed".to_string());
        }
        if out.success() {
            self.accepted += 1;
            let del = self.rt.delete_force(b.id());
            if !del.success() {
                problems.push(format!("delete --force failed: {}", del.stderr.trim()));
            }
        } else {
            self.refused += 1;
            let lines: Vec<&str> = out.stderr.lines().collect();
            match lines.as_slice() {
                [line] if names_fault(line) => {}
                [line] => problems.push(format!("the error names no field: {line}")),
                _ => problems.push(format!("not one line:\n{}", out.stderr)),
            }
        }
        let dirs: Vec<_> = cgroup_dirs(&cgroups_path)
            .into_iter()
            .filter(|d| d.exists())
            .collect();
        if self.rt.root().join(b.id()).exists() || !dirs.is_empty() {
            let _ = self.rt.delete_force(b.id());
            problems.push(format!("left behind: cgroups {dirs:?} or the state dir"));
        }
        let _ = std::fs::remove_dir_all(b.dir());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Shortened for a failure message: a 10 MB value would drown it.
fn short(config: &Value) -> String {
    let s = config.to_string();
    if s.len() > 2000 {
        format!("{}... ({} bytes)", &s[..2000], s.len())
    } else {
        s
    }
}

/// The corpus: the bad-input cases that are one config, and issue 14's oversized values.
fn corpus(base: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-input");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file() && !p.join("cli").exists())
        .filter(|p| !p.join("may-succeed").exists())
        .collect();
    cases.sort();
    for case in cases {
        let text = std::fs::read_to_string(case.join("config.json")).unwrap();
        let mut config = serde_json::from_str::<Value>(&text).unwrap_or(Value::Null);
        if config.is_null() {
            // Not JSON (the truncated case): its text cannot go through a Value.
            continue;
        }
        pin(&mut config, base);
        out.push((
            case.file_name().unwrap().to_string_lossy().into_owned(),
            config,
        ));
    }
    let big = "a".repeat(10 << 20);
    let mut c = base.clone();
    c["hostname"] = json!(big);
    out.push(("10 MB hostname".into(), c));
    let mut c = base.clone();
    c["process"]["cwd"] = json!(format!("/{big}"));
    out.push(("10 MB cwd".into(), c));
    let mut c = base.clone();
    c["process"]["env"] = json!([format!("A={big}\0")]);
    out.push(("10 MB env with a NUL byte".into(), c));
    out
}

#[test]
fn config_checks_hold_for_odd_configs() {
    if !is_berth() {
        skip(
            "config_checks_hold_for_odd_configs",
            "checks berth's one-line errors",
        );
        return;
    }
    let secs: u64 = std::env::var("FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(&s, 16).ok())
        .unwrap_or(0x1415_9265_3589_7932);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let rt = Runtime::new();
    let mut base = base_config(shared_rootfs(), "/spec-tests/fuzz");
    base["process"]["args"] = json!(["/bin/true"]);
    let mut fuzz = Fuzz {
        rt,
        accepted: 0,
        refused: 0,
    };

    let mut failures = Vec::new();
    for (name, config) in corpus(&base) {
        if let Err(e) = fuzz.try_config(&config) {
            failures.push(format!("corpus {name}: {e}"));
        }
    }
    let corpus_done = fuzz.accepted + fuzz.refused;

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = prop::collection::vec(edit(), 1..4);
    let mut generated = 0;
    // Generated one by one rather than through runner.run: the run stops at the deadline,
    // every failure is collected, and none is shrunk (each try runs a container).
    while generated < cases && Instant::now() < deadline && failures.len() < 10 {
        let edits = strategy
            .new_tree(&mut runner)
            .expect("generate a config")
            .current();
        generated += 1;
        let mut config = base.clone();
        for e in &edits {
            match e {
                Edit::Set(p, v) => {
                    if let Some(s) = slot(&mut config, p) {
                        *s = v.clone();
                    }
                }
                Edit::Remove(p) => remove(&mut config, p),
                Edit::Sysctl(k, v) => {
                    if let Some(s) = slot(&mut config, "linux.sysctl") {
                        if !s.is_object() {
                            *s = json!({});
                        }
                        s[k.as_str()] = v.clone();
                    }
                }
            }
        }
        pin(&mut config, &base);
        if let Err(e) = fuzz.try_config(&config) {
            failures.push(format!(
                "generated #{generated}: {e}\nconfig: {}",
                short(&config)
            ));
        }
    }
    eprintln!(
        "fuzz config: {corpus_done} corpus configs, {generated} generated (seed {seed:x}): {} \
         accepted, {} refused, {} failed",
        fuzz.accepted,
        fuzz.refused,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
