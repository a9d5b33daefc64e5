#!/usr/bin/env python3
"""test.py RUNTIME - a runtime's own terminal handling, seen from a user's terminal.

Every runtime command runs in a fresh pty: its stdin, stdout and stderr are the slave,
which is also its controlling terminal (as in a shell); this program plays the user on
the master. Three parts:

  adventure  "RUNTIME run" of the Colossal Cave Adventure bundle (scripts/mkadvent.sh,
             process.terminal true, no --console-socket, so the runtime proxies the
             terminal itself): the welcome, "n" to the instructions, a move east, quit;
             the runtime exits 0 and the container is gone.
  winsize    "RUNTIME run" of a busybox shell that prints "stty size" twice, each after
             a line from the test: the pty's size before the run is the container's,
             and a resize during the run (SIGWINCH to the runtime) reaches the container.
  background "RUNTIME run" of a terminal container as a background job (its session
             leader stays the foreground job): the runtime leaves the terminal's mode
             alone; berth also proxies the output and exits (runc 1.1 is stopped by
             SIGTTOU, as a background job that touches its terminal is).
  exec       "RUNTIME exec -t ID sh -c ..." into a container started with "run -d" and
             no terminal: the process gets a /dev/pts terminal of the pty's size, exec
             exits with it, and the container keeps running.

Each run checks that the runtime put the terminal in raw mode while it ran and gave it
back exactly as it found it (termios compared field by field, from a deliberately
non-default starting state so that a runtime which merely resets to defaults fails).

A shell that reads its size does so only after a line from the test, sent once the
runtime proxies output: runc 1.1 copies the user's window size onto the container's pty
after the process has started, so a size read at once races with that copy and can see
0 0 (measured: a few runs in a hundred, more under load). berth sizes the pty before the
process starts; a size read at once is checked for berth only.

Prints "ok   terminal: ..." or "FAIL terminal: ... (detail)" per check and a total line;
exits 1 if any check failed. Containers use a private --root in a temp dir. Root only.
TERMINAL_TESTS=adventure,winsize,exec picks parts; TERMINAL_TEST_TIMEOUT (seconds, 15)
bounds each wait for output or exit. Takes about 2 s.
"""

import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = float(os.environ.get("TERMINAL_TEST_TIMEOUT", "15"))
# How long the runtime gets to act on something (a resize, its own start) before input
# that depends on it is sent.
SETTLE = 0.3

# What the game really prints (open-adventure 1.x).
WELCOME = "Welcome to Adventure!!"
INSTRUCTIONS = "Would you like instructions?"
AFTER_NO = "You are standing at the end of a road before a small brick building."
AFTER_EAST = "You are inside a building, a well house for a large spring."
QUIT_QUESTION = "Do you really want to quit now?"
QUIT_DONE = "You scored"

results = []


def check(name, ok, detail=""):
    results.append(ok)
    if ok:
        print(f"ok   terminal: {name}", flush=True)
    else:
        print(f"FAIL terminal: {name} ({detail})", flush=True)
    return ok


def is_berth(runtime):
    """The runtime under test is berth (checks of what berth does beyond runc 1.1)."""
    return os.path.basename(runtime) == "berth"


def clean(data):
    """Terminal output as text: escape sequences and carriage returns removed."""
    text = data.decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]", "", text)
    return text.replace("\r", "")


def short(text, n=300):
    text = text if len(text) <= n else "..." + text[-n:]
    return repr(text)


def state_status(out):
    """The status field of "RUNTIME state" output, or None."""
    try:
        return json.loads(out).get("status")
    except (ValueError, AttributeError):
        return None


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def user_termios(slave):
    """A cooked terminal, but not the kernel's defaults: ^H erase, ^K kill, IXANY on,
    ECHOCTL off. A runtime has to save and restore these to give them back."""
    attrs = termios.tcgetattr(slave)
    attrs[0] |= termios.IXANY
    attrs[3] &= ~termios.ECHOCTL
    attrs[6][termios.VERASE] = b"\x08"
    attrs[6][termios.VKILL] = b"\x0b"
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    return termios.tcgetattr(slave)


def is_raw(attrs):
    lflag = attrs[3]
    return not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)


def termios_diff(before, after):
    names = ["iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed"]
    diffs = [
        f"{n} {before[i]:#o} -> {after[i]:#o}"
        for i, n in enumerate(names)
        if before[i] != after[i]
    ]
    diffs += [
        f"cc[{i}] {before[6][i]!r} -> {after[6][i]!r}"
        for i in range(len(before[6]))
        if before[6][i] != after[6][i]
    ]
    return ", ".join(diffs)


class Pty:
    """A fresh pty with a command running on its slave, as its controlling terminal."""

    def __init__(self, rows=24, cols=80):
        self.master, self.slave = os.openpty()
        set_size(self.master, rows, cols)
        self.initial = user_termios(self.slave)
        self.buf = b""
        self.mark = 0
        self.pid = None
        self.status = None
        self.stopped = ""

    def spawn(self, argv, background=False):
        """Runs argv as the terminal's foreground job or, with `background`, as a
        background job of a session whose leader stays in the foreground (`argv &` in an
        interactive shell)."""
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)
                for fd in (0, 1, 2):
                    os.dup2(self.slave, fd)
                if background:
                    job = os.fork()
                    if job == 0:
                        os.setpgid(0, 0)
                        os.execv(argv[0], argv)
                    _, st = os.waitpid(job, 0)
                    os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
                os.execv(argv[0], argv)
            except BaseException as e:  # noqa: BLE001 - anything: report and leave
                os.write(2, f"spawn {argv[0]}: {e}\n".encode())
            os._exit(127)
        self.pid = pid

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: no slave open anywhere (not the case while we hold one)
            return False
        self.buf += data
        return bool(data)

    def _find(self, needle):
        text = clean(self.buf)[self.mark :]
        if isinstance(needle, str):
            i = text.find(needle)
            return (needle, i + len(needle)) if i >= 0 else (None, 0)
        m = needle.search(text)
        return (m, m.end()) if m else (None, 0)

    def expect(self, needle, timeout=TIMEOUT):
        """Waits for `needle` (a str, or a compiled regex) in the output after the last
        match; returns the match (the str or an re.Match) or None, and moves past it."""
        end = time.monotonic() + timeout
        while True:
            found, cut = self._find(needle)
            if found is not None:
                self.mark += cut
                return found
            left = end - time.monotonic()
            if left <= 0:
                return None
            if not self._read(min(left, 0.2)) and self.exited():
                # gone: whatever it wrote is read by now
                while self._read(0.1):
                    pass
                found, cut = self._find(needle)
                if found is not None:
                    self.mark += cut
                return found

    def since_mark(self):
        return clean(self.buf)[self.mark :]

    def send(self, text):
        os.write(self.master, text.encode())

    def exited(self):
        if self.status is None and self.pid is not None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status is not None

    def _wait_until(self, end):
        while not self.exited():
            if time.monotonic() > end:
                return False
            self._read(0.05)  # keep the pty drained so the runtime never blocks
        while self._read(0.05):
            pass
        return True

    def wait(self, timeout=TIMEOUT):
        """The command's exit code (-N for signal N) if it exits by itself within
        `timeout`, else None: it is then stopped as a user would, with SIGTERM (which a
        runtime forwards to the container, then exits and gives the terminal back), and
        SIGKILL if that is not enough; `stopped` says how and `status` holds its code."""
        if self._wait_until(time.monotonic() + timeout):
            return self.status
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.stopped = f"did not exit by itself; after {sig.name}: "
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            if self._wait_until(time.monotonic() + 5):
                break
        self.stopped += f"exit {self.status}"
        return None

    def exit_detail(self, code):
        return f"exit {code}" if code is not None else self.stopped

    def attrs(self):
        return termios.tcgetattr(self.slave)

    def close(self):
        if self.pid is not None and not self.exited():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.status = "killed"
        os.close(self.master)
        os.close(self.slave)


class Suite:
    def __init__(self, runtime):
        self.runtime = runtime
        self.tmp = tempfile.mkdtemp(prefix="berth-terminal-")
        self.root = os.path.join(self.tmp, "state")
        self.ids = []
        self.rootfs = None
        # stderr of detached runs: a file, not a pipe (see rt_run)
        self.log_path = os.path.join(self.tmp, "detached.log")
        self.log = open(self.log_path, "w")

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read().strip()

    def rt(self, *args):
        return [self.runtime, "--root", self.root, *args]

    def rt_run(self, *args, timeout=TIMEOUT, detach=False):
        # a detached container keeps the stdio it was given: hand it no pipe of ours,
        # or reading that pipe to its end would wait for the container
        out = subprocess.DEVNULL if detach else subprocess.PIPE
        return subprocess.run(
            self.rt(*args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE if not detach else self.log,
            text=True,
            timeout=timeout,
        )

    def new_id(self, name):
        cid = f"term-{os.getpid()}-{name}"
        self.ids.append(cid)
        return cid

    def busybox_bundle(self, name, args, terminal):
        """A bundle of the shared busybox rootfs with the runtime's default spec."""
        if self.rootfs is None:
            self.rootfs = os.path.join(self.tmp, "busybox-rootfs")
            subprocess.run(["bash", f"{REPO}/scripts/mkbundle.sh", self.rootfs], check=True)
        bundle = os.path.join(self.tmp, name)
        os.makedirs(bundle)
        subprocess.run([self.runtime, "spec"], cwd=bundle, check=True)
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            spec = json.load(f)
        spec["root"]["path"] = self.rootfs
        spec["process"]["terminal"] = terminal
        spec["process"]["args"] = args
        with open(path, "w") as f:
            json.dump(spec, f, indent=2)
        return bundle

    def gone(self, prefix, cid):
        st = self.rt_run("state", cid)
        ls = self.rt_run("list")
        listed = any(line.split()[:1] == [cid] for line in ls.stdout.splitlines())
        check(
            f"{prefix}: container gone after exit (state fails, list lacks it)",
            st.returncode != 0 and not listed,
            f"state exit {st.returncode}: {st.stdout.strip()[:200]!r}; listed: {listed}",
        )

    def terminal_checks(self, prefix, pty, during):
        before = pty.initial
        after = pty.attrs()
        check(
            f"{prefix}: terminal in raw mode during the run",
            during is not None and is_raw(during) and not is_raw(before),
            "never sampled" if during is None else f"lflag during {during[3]:#o}, before {before[3]:#o}",
        )
        check(
            f"{prefix}: terminal restored as found (termios)",
            after == before,
            termios_diff(before, after),
        )

    # ------------------------------------------------------------------ adventure
    def adventure(self):
        bundle = os.path.join(self.tmp, "advent")
        b = subprocess.run(
            ["bash", f"{REPO}/scripts/mkadvent.sh", bundle, self.runtime],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if not check("adventure: bundle built (scripts/mkadvent.sh)", b.returncode == 0, b.stdout.strip()[-300:]):
            return
        cid = self.new_id("advent")
        pty = Pty(24, 80)
        try:
            pty.spawn(self.rt("run", "--bundle", bundle, cid))
            ok = check(
                "adventure: welcome",
                pty.expect(WELCOME) is not None and pty.expect(INSTRUCTIONS) is not None,
                f"wanted {WELCOME!r} and {INSTRUCTIONS!r}, got {short(pty.since_mark())}",
            )
            during = pty.attrs() if ok else None
            if ok:
                pty.send("n\r")
                ok = check(
                    "adventure: 'n' to the instructions, at the end of the road",
                    pty.expect(AFTER_NO) is not None,
                    f"wanted {AFTER_NO!r}, got {short(pty.since_mark())}",
                )
            if ok:
                pty.send("east\r")
                ok = check(
                    "adventure: move 'east' into the well house",
                    pty.expect(AFTER_EAST) is not None,
                    f"wanted {AFTER_EAST!r}, got {short(pty.since_mark())}",
                )
            if ok:
                pty.send("quit\r")
                asked = pty.expect(QUIT_QUESTION) is not None
                if asked:
                    pty.send("y\r")
                check(
                    "adventure: 'quit', 'y' ends the game",
                    asked and pty.expect(QUIT_DONE) is not None,
                    f"wanted {QUIT_QUESTION!r} then {QUIT_DONE!r}, got {short(pty.since_mark())}",
                )
            # a game that went wrong waits for input forever: no use waiting long
            code = pty.wait() if ok else pty.wait(1)
            check(
                "adventure: runtime exits 0 after the game ends",
                code == 0,
                f"{pty.exit_detail(code)}; output {short(pty.since_mark())}",
            )
            self.terminal_checks("adventure", pty, during)
            self.gone("adventure", cid)
        finally:
            pty.close()

    # ------------------------------------------------------------------ winsize
    def winsize(self):
        # The shell reads its size only after a line from us, sent once it said "ready":
        # a runtime copies the size to the container's pty after starting the process
        # (runc 1.1 and berth both do), so a size read at once can race with that copy
        # and see 0 0 (see the docstring at the top).
        # size0 is read at once: berth sizes the pty before the process starts, runc 1.1
        # races (checked for berth only).
        script = ('echo "size0=$(stty size 2>&1)"; echo ready; read x; echo "size1=$(stty size)"; '
                  'read x; echo "size2=$(stty size)"')
        bundle = self.busybox_bundle("winsize", ["sh", "-c", script], True)
        cid = self.new_id("winsize")
        pty = Pty(37, 101)
        try:
            pty.spawn(self.rt("run", "--bundle", bundle, cid))
            m0 = pty.expect(re.compile(r"size0=([^\r\n]*)"))
            if is_berth(self.runtime):
                check(
                    "winsize: the size is there when the process starts (no 0 0 race)",
                    m0 is not None and m0.group(1) == "37 101",
                    f"got {m0.group(0)!r}" if m0 else f"no size0= line: {short(pty.since_mark())}",
                )
            ready = pty.expect("ready") is not None
            during = pty.attrs() if ready else None
            time.sleep(SETTLE)
            pty.send("go\r")
            m = pty.expect(re.compile(r"size1=(\d+ \d+)"))
            check(
                "winsize: container's terminal has the pty's size (37 101)",
                m is not None and m.group(1) == "37 101",
                f"got {m.group(0)!r}" if m else f"no size1= line: {short(pty.since_mark())}",
            )
            # the kernel sends SIGWINCH to the runtime (the pty's foreground group); give
            # the runtime a moment to copy the size before the shell reads its line
            set_size(pty.master, 41, 133)
            time.sleep(SETTLE)
            pty.send("go\r")
            m2 = pty.expect(re.compile(r"size2=(\d+ \d+)"))
            check(
                "winsize: resize during the run reaches the container (41 133)",
                m2 is not None and m2.group(1) == "41 133",
                f"got {m2.group(0)!r}" if m2 else f"no size2= line: {short(pty.since_mark())}",
            )
            code = pty.wait()
            check("winsize: runtime exits 0", code == 0, pty.exit_detail(code))
            self.terminal_checks("winsize", pty, during)
            self.gone("winsize", cid)
        finally:
            pty.close()

    # ------------------------------------------------------------------ background
    def background(self):
        """`RUNTIME run` of a terminal container as a background job: the terminal belongs
        to the foreground job, so the runtime must leave its mode alone (runc does); it
        still proxies the output."""
        bundle = self.busybox_bundle("background", ["sh", "-c", "sleep 0.6; echo bg-done"], True)
        cid = self.new_id("background")
        pty = Pty(24, 80)
        try:
            pty.spawn(self.rt("run", "--bundle", bundle, cid), background=True)
            time.sleep(0.3)
            during = pty.attrs()
            if is_berth(self.runtime):
                # runc 1.1 instead touches the terminal and is stopped by SIGTTOU, as any
                # background job doing so is; berth proxies without touching it.
                done = pty.expect("bg-done") is not None
                code = pty.wait()
                check("background: output proxied, runtime exits 0", done and code == 0,
                      f"{pty.exit_detail(code)}; output {short(pty.since_mark())}")
            check("background: terminal mode untouched while the job runs",
                  not is_raw(during) and not termios_diff(pty.initial, during),
                  f"changed: {termios_diff(pty.initial, during)}")
            after = pty.attrs()
            check("background: terminal as found afterwards", not termios_diff(pty.initial, after),
                  f"changed: {termios_diff(pty.initial, after)}")
            if is_berth(self.runtime):
                self.gone("background", cid)
        finally:
            pty.close()

    # ------------------------------------------------------------------ exec -t
    def exec_t(self):
        h = subprocess.run([self.runtime, "exec", "--help"], capture_output=True, text=True)
        if not check("exec: runtime has an exec verb", h.returncode == 0, (h.stdout + h.stderr).strip()[:200]):
            return
        bundle = self.busybox_bundle("sleeper", ["sleep", "1000"], False)
        cid = self.new_id("exec")
        r = self.rt_run("run", "-d", "--bundle", bundle, cid, detach=True)
        status = state_status(self.rt_run("state", cid).stdout)
        if not check(
            "exec: detached container (terminal false) running",
            r.returncode == 0 and status == "running",
            f"run -d exit {r.returncode} {self.log_text()[-200:]!r}; state {status!r}",
        ):
            return
        pty = Pty(29, 97)
        try:
            # the size is read after a line from us, as in winsize()
            script = ('echo "size0=$(stty size 2>&1)"; echo "tty=$(tty)"; read x; '
                      'echo "size=$(stty size)"; read x; echo "exec-done"')
            pty.spawn(self.rt("exec", "-t", cid, "sh", "-c", script))
            m0 = pty.expect(re.compile(r"size0=([^\r\n]*)"))
            if is_berth(self.runtime):
                check(
                    "exec -t: the size is there when the process starts (no 0 0 race)",
                    m0 is not None and m0.group(1) == "29 97",
                    f"got {m0.group(0)!r}" if m0 else f"no size0= line: {short(pty.since_mark())}",
                )
            m = pty.expect(re.compile(r"tty=([^\n]*)"))
            check(
                "exec -t: the process's stdin is a /dev/pts terminal",
                m is not None and re.fullmatch(r"/dev/pts/\d+", m.group(1)) is not None,
                f"got {m.group(0)!r}" if m else f"no tty= line: {short(pty.since_mark())}",
            )
            time.sleep(SETTLE)
            pty.send("x\r")
            m2 = pty.expect(re.compile(r"size=(\S*(?: \d+)?)"))
            check(
                "exec -t: its terminal has the pty's size (29 97)",
                m2 is not None and m2.group(1) == "29 97",
                f"got {m2.group(0)!r}" if m2 else f"no size= line: {short(pty.since_mark())}",
            )
            during = pty.attrs() if m2 else None
            pty.send("x\r")
            done = pty.expect("exec-done") is not None
            code = pty.wait()
            check(
                "exec -t: exits 0 when the process does",
                done and code == 0,
                f"exec-done seen: {done}; {pty.exit_detail(code)}",
            )
            self.terminal_checks("exec -t", pty, during)
        finally:
            pty.close()
        st = self.rt_run("state", cid)
        check(
            "exec: container still running after the exec",
            st.returncode == 0 and state_status(st.stdout) == "running",
            f"state exit {st.returncode}, status {state_status(st.stdout)!r}",
        )

    def cleanup(self):
        self.log.close()
        for cid in self.ids:
            try:
                self.rt_run("delete", "-f", cid)
            except subprocess.TimeoutExpired:
                print(f"terminal: delete -f {cid} timed out", file=sys.stderr)
        # nothing should be mounted under the temp dir (rootfs mounts live in the
        # containers' mount namespaces); if something is, leave the dir alone
        with open("/proc/self/mountinfo") as f:
            mounted = [line.split()[4] for line in f if line.split()[4].startswith(self.tmp)]
        if mounted:
            print(f"terminal: {self.tmp} left in place, mounts under it: {mounted}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    if len(sys.argv) > 2:
        print("usage: test.py [RUNTIME]", file=sys.stderr)
        return 2
    runtime = sys.argv[1] if len(sys.argv) == 2 else os.environ.get("RUNTIME", f"{REPO}/target/release/berth")
    if "/" not in runtime:
        runtime = shutil.which(runtime) or runtime
    runtime = os.path.abspath(runtime)
    if os.geteuid() != 0:
        print("terminal: run as root (containers need namespaces and cgroups)", file=sys.stderr)
        return 2
    if not os.access(runtime, os.X_OK):
        print(f"terminal: runtime {runtime} not found (make build?)", file=sys.stderr)
        return 2
    print(f"terminal: RUNTIME={runtime}", flush=True)
    start = time.monotonic()
    suite = Suite(runtime)
    parts = [("adventure", suite.adventure), ("winsize", suite.winsize),
             ("background", suite.background), ("exec", suite.exec_t)]
    only = os.environ.get("TERMINAL_TESTS")
    try:
        for name, part in parts:
            if only and name not in only.split(","):
                continue
            try:
                part()
            except Exception as e:  # noqa: BLE001 - one broken part must not hide the others
                check(f"{name}: ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        suite.cleanup()
    passed = sum(results)
    failed = len(results) - passed
    print(f"terminal: {passed} passed, {failed} failed ({time.monotonic() - start:.1f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
