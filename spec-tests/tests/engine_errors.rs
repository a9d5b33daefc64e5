//! Error words that engines match. containerd's runc shim, Podman and Docker tell a
//! runtime's failures apart only by words in what it prints (and its exit code), so a
//! runtime must fail with runc's words there. One test per matched text; each names the
//! engine code that reads it. Every test passes with RUNTIME=/usr/sbin/runc.
//!
//! - containerd pkg/process (checkKillError): a kill error with "container not running"
//!   (or "no such process") is "process already finished", with "does not exist" "no such
//!   container": both ErrNotFound, so StopContainer and StopPodSandbox go on. Any other
//!   text is "unknown error after kill" and the kubelet retries forever.
//! - containerd pkg/process (Init.delete): a delete error with "does not exist" is ignored.
//! - Docker libcontainerd (wrapError): "container does not exist" is not-found.
//! - Podman (UpdateContainerStatus): a state error with "does not exist" marks it exited.
//! - Docker (translateContainerdStartErr) and Podman (getOCIRuntimeError): a start or exec
//!   error naming the command with "executable file not found" or "no such file or
//!   directory" exits 127, with "permission denied" 126.
//! - Docker (translateContainerdStartErr): "not a directory" (a file bound onto a directory)
//!   exits 127.
//! - runc's own refusals (exec into a stopped container, start of a stopped one, create of
//!   a taken id) keep runc's words for whatever wraps them.

use spec_tests::*;

/// A container whose process has exited (status stopped, not deleted).
fn stopped(rt: &Runtime, prefix: &str) -> Bundle {
    let mut b = rt.bundle(prefix);
    b.args(&["true"]);
    rt.create_and_start(&b);
    rt.wait_status(b.id(), "stopped");
    b
}

/// A running container that sleeps until killed.
fn running(rt: &Runtime, prefix: &str) -> Bundle {
    let mut b = rt.bundle(prefix);
    b.args(&["sleep", "300"]);
    rt.create_and_start(&b);
    rt.wait_status(b.id(), "running");
    b
}

#[track_caller]
fn fails_with(out: Out, code: i32, words: &str) {
    assert_eq!(out.code(), Some(code), "exit code, expected {code}:\n{out}");
    assert!(out.stderr.contains(words), "stderr lacks {words:?}:\n{out}");
}

/// containerd's checkKillError: "container not running" is "process already finished".
/// Without it, StopContainer on an exited container fails for ever.
#[test]
fn kill_of_a_stopped_container_says_container_not_running() {
    let rt = Runtime::new();
    let b = stopped(&rt, "ee-killstopped");
    fails_with(rt.kill(b.id(), Some("KILL")), 1, "container not running");
    fails_with(rt.kill(b.id(), Some("TERM")), 1, "container not running");
    assert_eq!(rt.status(b.id()), "stopped");
}

/// containerd's checkKillError: "does not exist" is "no such container".
#[test]
fn kill_of_a_missing_container_says_does_not_exist() {
    let rt = Runtime::new();
    fails_with(
        rt.kill("ee-no-such-container", Some("KILL")),
        1,
        "container does not exist",
    );
}

/// containerd's Init.delete ignores "does not exist"; Docker reads "container does not
/// exist" as not-found.
#[test]
fn delete_of_a_missing_container_says_container_does_not_exist() {
    let rt = Runtime::new();
    fails_with(
        rt.delete("ee-no-such-container"),
        1,
        "container does not exist",
    );
}

/// Podman's UpdateContainerStatus: a state error with "does not exist" means the container
/// is gone (exited).
#[test]
fn state_of_a_missing_container_says_does_not_exist() {
    let rt = Runtime::new();
    fails_with(
        rt.state_out("ee-no-such-container"),
        1,
        "container does not exist",
    );
}

/// Docker and Podman: a command that is not there, named, with "executable file not found"
/// → exit 127 for the user. create exits 1.
#[test]
fn create_of_a_missing_command_says_executable_file_not_found() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ee-nocmd");
    b.args(&["ee-no-such-command"]);
    let out = rt.create(&b);
    assert!(out.stderr.contains("ee-no-such-command"), "{out}");
    fails_with(out, 1, "executable file not found in $PATH");
}

/// The same for exec, whose failures exit 255 (runc's code for exec).
#[test]
fn exec_of_a_missing_command_says_executable_file_not_found() {
    let rt = Runtime::new();
    let b = running(&rt, "ee-execnocmd");
    let out = rt.exec(&["exec", b.id(), "ee-no-such-command"]);
    assert!(out.stderr.contains("ee-no-such-command"), "{out}");
    fails_with(out, 255, "executable file not found in $PATH");
    rt.delete_force(b.id()).assert_ok();
}

/// Docker and Podman: a path that is not there, named, with "no such file or directory"
/// → exit 127.
#[test]
fn exec_of_a_missing_path_says_no_such_file_or_directory() {
    let rt = Runtime::new();
    let b = running(&rt, "ee-execnopath");
    let out = rt.exec(&["exec", b.id(), "/ee-no-such-file"]);
    assert!(out.stderr.contains("/ee-no-such-file"), "{out}");
    fails_with(out, 255, "no such file or directory");
    rt.delete_force(b.id()).assert_ok();
}

/// Docker and Podman: "permission denied" (a file that is not executable) → exit 126.
#[test]
fn exec_of_a_non_executable_file_says_permission_denied() {
    let rt = Runtime::new();
    let b = running(&rt, "ee-execnoexec");
    let out = rt.exec(&["exec", b.id(), "/etc/passwd"]);
    assert!(out.stderr.contains("/etc/passwd"), "{out}");
    fails_with(out, 255, "permission denied");
    rt.delete_force(b.id()).assert_ok();
}

/// Docker: a mount error with "not a directory" (a file bound onto a directory) exits 127
/// with a hint that the user mounted a file onto a directory.
#[test]
fn bind_of_a_file_onto_a_directory_says_not_a_directory() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ee-fileondir");
    let file = rt.tmp().join("ee-a-file");
    std::fs::write(&file, "x").unwrap();
    b.add_mount(serde_json::json!({
        "destination": "/tmp",
        "type": "bind",
        "source": file.to_string_lossy(),
        "options": ["bind"]
    }));
    b.args(&["true"]);
    fails_with(rt.create(&b), 1, "not a directory");
}

/// runc's words for an exec into a container whose process has exited.
#[test]
fn exec_into_a_stopped_container_says_cannot_exec_in_a_stopped_container() {
    let rt = Runtime::new();
    let b = stopped(&rt, "ee-execstopped");
    fails_with(
        rt.exec(&["exec", b.id(), "true"]),
        255,
        "cannot exec in a stopped container",
    );
}

/// runc's words for start of a container whose process has exited.
#[test]
fn start_of_a_stopped_container_says_cannot_start_a_container_that_has_stopped() {
    let rt = Runtime::new();
    let b = stopped(&rt, "ee-startstopped");
    fails_with(
        rt.start(b.id()),
        1,
        "cannot start a container that has stopped",
    );
}

/// runc's words for a create of an id that is taken.
#[test]
fn create_of_a_taken_id_says_container_with_given_id_already_exists() {
    let rt = Runtime::new();
    let b = running(&rt, "ee-taken");
    let mut again = rt.bundle_with_id(b.id());
    again.args(&["true"]);
    fails_with(
        rt.create(&again),
        1,
        "container with given ID already exists",
    );
    assert_eq!(rt.status(b.id()), "running");
    rt.delete_force(b.id()).assert_ok();
}

/// pause and update of a stopped container: "container not running", as runc.
#[test]
fn pause_and_update_of_a_stopped_container_say_container_not_running() {
    let rt = Runtime::new();
    let b = stopped(&rt, "ee-pausestopped");
    fails_with(rt.exec(&["pause", b.id()]), 1, "container not running");
    fails_with(
        rt.exec(&["update", "--memory", "100000000", b.id()]),
        1,
        "container not running",
    );
}
