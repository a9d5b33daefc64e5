//! OCI hooks (config.md "POSIX-platform Hooks"): each is run with the container's state JSON on
//! stdin, its own args and env, and an optional timeout. Where and when each kind runs is the
//! caller's business (runtime namespace or container namespace, see launch and container).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Hook, Hooks};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    pub fn field(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    pub fn list(self, h: &Hooks) -> &[Hook] {
        let v = match self {
            #[allow(deprecated)]
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        v.as_deref().unwrap_or(&[])
    }
}

/// The container state a hook reads on stdin.
pub fn state_json(
    oci_version: &str,
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::HashMap<String, String>,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": oci_version,
        "id": id,
        "status": status,
        "pid": pid,
        "bundle": bundle,
    });
    if !annotations.is_empty() {
        v["annotations"] = serde_json::json!(annotations);
    }
    v
}

/// Checks the hooks at config load: absolute paths and sane timeouts.
pub fn check(h: &Hooks) -> Result<()> {
    for k in Kind::ALL {
        for (i, hook) in k.list(h).iter().enumerate() {
            if !hook.path().is_absolute() {
                bail!(
                    "hooks.{}[{i}].path: {:?} is not an absolute path",
                    k.field(),
                    hook.path()
                );
            }
            if hook.timeout().is_some_and(|t| t <= 0) {
                bail!(
                    "hooks.{}[{i}].timeout: must be a positive number of seconds",
                    k.field()
                );
            }
        }
    }
    Ok(())
}

/// Runs every hook of `kind` in order; the first failure stops the list and is returned.
pub fn run_all(hooks: Option<&Hooks>, kind: Kind, state: &serde_json::Value) -> Result<()> {
    run_all_in(hooks, kind, state, None)
}

/// `run_all` with the hooks' working directory set (createContainer: the container's root,
/// runtime-spec config.md).
pub fn run_all_in(
    hooks: Option<&Hooks>,
    kind: Kind,
    state: &serde_json::Value,
    cwd: Option<&std::path::Path>,
) -> Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    let input = serde_json::to_vec(state)?;
    for (i, hook) in kind.list(h).iter().enumerate() {
        run_one(hook, &input, cwd)
            .with_context(|| format!("hooks.{}[{i}] {}", kind.field(), hook.path().display()))?;
    }
    Ok(())
}

/// Runs the hooks of a kind whose failure the spec makes a warning (poststart, poststop):
/// each failure is logged and the rest still run (runtime.md: "the runtime MUST log a
/// warning, but the remaining hooks and lifecycle continue").
pub fn run_all_warn(hooks: Option<&Hooks>, kind: Kind, state: &serde_json::Value) {
    let Some(h) = hooks else { return };
    let input = match serde_json::to_vec(state) {
        Ok(v) => v,
        Err(e) => return crate::log::warn(&format!("hooks.{}: state: {e}", kind.field())),
    };
    for (i, hook) in kind.list(h).iter().enumerate() {
        if let Err(e) = run_one(hook, &input, None) {
            crate::log::warn(&format!(
                "hooks.{}[{i}] {}: {e:#}",
                kind.field(),
                hook.path().display()
            ));
        }
    }
}

fn run_one(hook: &Hook, input: &[u8], cwd: Option<&std::path::Path>) -> Result<()> {
    let args = hook.args().as_deref().unwrap_or(&[]);
    let mut cmd = Command::new(hook.path());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for e in hook.env().as_deref().unwrap_or(&[]) {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    // A hook gets the state on stdin, stdout and stderr: none of the runtime's fds.
    crate::sys::cloexec_from_at_spawn(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| anyhow!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(input);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut delay = Duration::from_micros(100);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| anyhow!("wait: {e}"))? {
            break st;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} s", hook.timeout().unwrap_or(0));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    };
    if !status.success() {
        bail!("failed: {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: &str) -> Hooks {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn runs_with_state_on_stdin_args_and_env() {
        let dir = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hooks(&format!(
            r#"{{"poststart":[{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \" $0 $1 $X\" >> {0}","a0","a1"],"env":["X=y"]}}]}}"#,
            out.display()
        ));
        run_all(Some(&h), Kind::Poststart, &serde_json::json!({"id": "c1"})).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, "{\"id\":\"c1\"} a0 a1 y\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_and_timeout_are_errors() {
        let h = hooks(r#"{"createRuntime":[{"path":"/bin/false"}]}"#);
        let e = run_all(Some(&h), Kind::CreateRuntime, &serde_json::json!({})).unwrap_err();
        assert!(format!("{e:#}").starts_with("hooks.createRuntime[0] /bin/false: failed"));
        let h =
            hooks(r#"{"createRuntime":[{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}]}"#);
        let t = Instant::now();
        let e = run_all(Some(&h), Kind::CreateRuntime, &serde_json::json!({})).unwrap_err();
        assert!(format!("{e:#}").contains("timed out"));
        assert!(t.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn relative_path_refused() {
        let h = hooks(r#"{"poststop":[{"path":"bin/x"}]}"#);
        assert!(format!("{:#}", check(&h).unwrap_err()).starts_with("hooks.poststop[0].path"));
    }
}
