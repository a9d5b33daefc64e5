//! Terminals (config.md process.terminal and consoleSize, config-linux.md
//! "/dev/console"; runc's --console-socket protocol: the pty master is sent
//! over the unix socket with SCM_RIGHTS).

use serde_json::json;
use spec_tests::*;
use std::time::Duration;

const CONSOLE_WAIT: Duration = Duration::from_secs(15);

/// Creates and starts a terminal container running `script`, returning the
/// console socket (which holds the received master).
fn with_terminal(
    rt: &Runtime,
    prefix: &str,
    script: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (Bundle, ConsoleSocket) {
    let mut b = rt.bundle(prefix);
    b.config_mut()["process"]["terminal"] = json!(true);
    b.sh(script);
    edit(b.config_mut());
    let console = ConsoleSocket::new(rt.tmp());
    let sock = console.path().to_string_lossy().into_owned();
    rt.create_with(&b, &["--console-socket", &sock]).assert_ok();
    assert!(
        console.received(),
        "create returned without sending the pty master"
    );
    rt.start(b.id()).assert_ok();
    (b, console)
}

/// The master arrives on the console socket and carries the output.
#[test]
fn console_socket_receives_master_and_output() {
    let rt = Runtime::new();
    let (_, console) = with_terminal(&rt, "tty", "echo hello-from-the-pty", |_| {});
    let out = console.wait_for("hello-from-the-pty", CONSOLE_WAIT);
    assert!(
        out.lines().any(|l| l.trim() == "hello-from-the-pty"),
        "{out:?}"
    );
}

/// `tty` inside names a pty of the container's devpts.
#[test]
fn tty_is_a_dev_pts_device() {
    let rt = Runtime::new();
    let (_, console) = with_terminal(&rt, "ttyname", "echo tty=$(tty) end", |_| {});
    let out = console.wait_for(" end", CONSOLE_WAIT);
    let line = out
        .lines()
        .find(|l| l.starts_with("tty="))
        .unwrap_or_else(|| panic!("{out:?}"));
    let n = line
        .trim()
        .trim_end_matches(" end")
        .strip_prefix("tty=/dev/pts/")
        .unwrap_or_else(|| panic!("not a /dev/pts tty: {line:?}"));
    assert!(
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        "{line:?}"
    );
}

/// config-linux.md: with a terminal, /dev/console is the container's pty
/// (a char device with the same numbers as the process's tty).
#[test]
fn dev_console_is_the_terminal() {
    let rt = Runtime::new();
    let script = "echo console=$(stat -c %t:%T /dev/console) tty=$(stat -L -c %t:%T $(tty)) char=$([ -c /dev/console ] && echo yes) end";
    let (_, console) = with_terminal(&rt, "console", script, |_| {});
    let out = console.wait_for(" end", CONSOLE_WAIT);
    let line = out
        .lines()
        .find(|l| l.starts_with("console="))
        .unwrap_or_else(|| panic!("{out:?}"));
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        field("char="),
        "yes",
        "/dev/console is not a char device: {line}"
    );
    assert!(!field("console=").is_empty(), "{line}");
    assert_eq!(
        field("console="),
        field("tty="),
        "/dev/console is not the process's tty: {line}"
    );
}

/// stdin, stdout and stderr are all the terminal.
#[test]
fn stdio_is_the_terminal() {
    let rt = Runtime::new();
    let (_, console) = with_terminal(
        &rt,
        "stdio",
        "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-three-tty || echo not-tty",
        |_| {},
    );
    let out = console.wait_for("tty", CONSOLE_WAIT);
    assert!(out.contains("all-three-tty"), "{out:?}");
}

/// process.consoleSize sets the window size of the terminal.
#[test]
fn console_size_is_applied() {
    let rt = Runtime::new();
    let (_, console) = with_terminal(&rt, "size", "echo size=$(stty size) end", |c| {
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let out = console.wait_for(" end", CONSOLE_WAIT);
    assert!(
        out.lines().any(|l| l.trim() == "size=33 101 end"),
        "{out:?}"
    );
}

/// `run --detach --console-socket` hands over the master too, and the
/// container keeps running.
#[test]
fn run_detach_with_console_socket() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ttydetach");
    b.config_mut()["process"]["terminal"] = json!(true);
    b.sh("echo detached-pty; exec sleep 300");
    let console = ConsoleSocket::new(rt.tmp());
    let sock = console.path().to_string_lossy().into_owned();
    rt.run_with(&b, &["--detach", "--console-socket", &sock])
        .assert_ok();
    console.wait_for("detached-pty", CONSOLE_WAIT);
    assert_eq!(rt.status(b.id()), "running");
}

/// With terminal false, the process's stdio is not a terminal.
#[test]
fn no_terminal_means_no_tty() {
    let rt = Runtime::new();
    let mut b = rt.bundle("notty");
    b.sh("if [ -t 0 ] || [ -t 1 ] || [ -t 2 ]; then echo has-tty; else echo no-tty; fi");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "no-tty", "{out}");
}

/// The pty is given to the process's user before it changes to it (runc: its uid; the
/// group stays devpts's gid=5), so the process owns its terminal.
#[test]
fn terminal_belongs_to_the_process_user() {
    let rt = Runtime::new();
    let (_, console) = with_terminal(
        &rt,
        "ttyowner",
        "echo owner=$(stat -L -c %u:%g /proc/self/fd/0) end",
        |c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}),
    );
    let out = console.wait_for(" end", CONSOLE_WAIT);
    assert!(out.contains("owner=1000:5 end"), "{out:?}");
}
