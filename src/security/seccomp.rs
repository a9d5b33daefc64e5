//! `linux.seccomp`: checking the profile at config load, compiling it to a BPF program with
//! libseccomp, loading that program into the container's init, and handing the listener of
//! SCMP_ACT_NOTIFY rules to the seccomp agent at `listenerPath`.
//!
//! libseccomp only compiles: berth exports the program (`seccomp_export_bpf`) and loads it
//! with seccomp(2) itself. A [`Filter`] is therefore plain data, made in the runtime before
//! the fork and loaded in init with one system call and no allocation, and a filter read back
//! from the cache ([`compile_cached`]) is loaded by exactly the same code as a fresh one.
//!
//! # What the caller of [`Filter::load`] must guarantee
//!
//! * The kernel only accepts a filter from a thread that has no_new_privs set or that has
//!   CAP_SYS_ADMIN in its user namespace. berth never sets no_new_privs on its own (libseccomp's
//!   `seccomp_load` would, by default): with `process.noNewPrivileges` true, load after
//!   `prctl(PR_SET_NO_NEW_PRIVS)`, as late as possible (just before telling the runtime
//!   "ready"); with it false, load while CAP_SYS_ADMIN is still effective, i.e. before
//!   `process::set_capabilities` drops it.
//! * Everything init does after loading runs under the filter, so the profile must allow it
//!   (capset, umask, the sync socket, read of the exec fifo, close_range, execve...). That is
//!   why the no_new_privs case loads as late as possible.
//! * With SCMP_ACT_NOTIFY rules, `load` returns the listener fd (close-on-exec). It must reach
//!   the agent through [`send_listener`] before the container can make a notified system call
//!   and get an answer. The system calls init uses to hand it over must not be notified, or
//!   init waits for an agent that is waiting for the fd: [`check`] refuses SCMP_ACT_NOTIFY on
//!   [`NOTIFY_FORBIDDEN`]. Suggested flow (tried end to end): init sends the fd to the
//!   runtime over its sync socket (sendmsg + SCM_RIGHTS) and drops its copy; the runtime,
//!   before it waits for "ready", receives it with recvmsg, calls [`send_listener`] with the
//!   "creating" state and closes its copy.
//! * A process can have only one listener in its filter stack: a second filter with
//!   SCMP_ACT_NOTIFY fails with EBUSY.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpSyscall, ScmpVersion};
use nix::errno::Errno;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};

mod cache;
mod kernel;
#[cfg(test)]
mod tests;

const P: &str = "linux.seccomp";

/// System calls that may not be SCMP_ACT_NOTIFY: the ones init needs between loading the
/// filter and the listener reaching the agent (sendmsg carries the fd, send/write carry sync
/// messages and errors). runc refuses `write` for the same reason.
pub const NOTIFY_FORBIDDEN: &[&str] = &["sendmsg", "sendto", "write"];

/// A compiled seccomp program, ready for [`Filter::load`].
#[derive(Clone)]
pub struct Filter {
    /// The BPF program as `seccomp_export_bpf` wrote it and as the kernel takes it.
    prog: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* from `linux.seccomp.flags` that this kernel supports.
    flags: u32,
    /// Some rule is SCMP_ACT_NOTIFY: loading asks the kernel for a listener fd.
    notify: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.prog.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .finish()
    }
}

impl Filter {
    /// Installs the filter on the calling process (thread; all threads with
    /// SECCOMP_FILTER_FLAG_TSYNC). Returns the listener fd when a rule is SCMP_ACT_NOTIFY.
    ///
    /// One seccomp(2) call and no allocation unless it fails, so it is safe in a forked child.
    /// See the module documentation for what must hold when it is called.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        match kernel::load(&self.prog, self.flags, self.notify) {
            Ok(kernel::Loaded::Plain) => Ok(None),
            Ok(kernel::Loaded::Listener(fd)) => Ok(Some(fd)),
            Ok(kernel::Loaded::TsyncFailed(tid)) => Err(anyhow!(
                "{P}: load the filter: thread {tid} could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)"
            )),
            Err(Errno::EACCES) => Err(anyhow!(
                "{P}: load the filter: {}: the process needs no_new_privs or CAP_SYS_ADMIN",
                Errno::EACCES
            )),
            Err(Errno::EBUSY) if self.notify => Err(anyhow!(
                "{P}: load the filter: {}: a filter of this process already has a SCMP_ACT_NOTIFY listener",
                Errno::EBUSY
            )),
            Err(e) => Err(anyhow!("{P}: load the filter: {e}")),
        }
    }

    /// Whether [`Filter::load`] will return a listener fd to pass to [`send_listener`].
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    pub fn instructions(&self) -> usize {
        self.prog.len()
    }
}

/// Checks `linux.seccomp` at config load, naming the offending field by its JSON path. The
/// names of actions, architectures, flags and operators were already checked when oci_spec
/// parsed them; this checks what their combination means.
pub fn check(s: &LinuxSeccomp) -> Result<()> {
    if s.default_action() == Act::ScmpActNotify {
        bail!(
            "{P}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action: every system call, \
             including those that hand the listener to the agent, would wait for that agent"
        );
    }
    check_errno(
        &format!("{P}.defaultErrnoRet"),
        s.default_action(),
        s.default_errno_ret(),
    )?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        if let Some(sa) = scmp_arch(*a) {
            if !arch_known(sa) {
                bail!(
                    "{P}.architectures[{i}]: unknown architecture {a} for libseccomp {}",
                    libseccomp_version()
                );
            }
        }
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        bail!("{P}.listenerMetadata: set without listenerPath");
    }
    if let Some(p) = s.listener_path() {
        let len = p.as_os_str().len();
        if len == 0 {
            bail!("{P}.listenerPath: empty path");
        }
        // sun_path holds 108 bytes with the terminating NUL.
        if len > 107 {
            bail!(
                "{P}.listenerPath: {} is {len} bytes, more than a unix socket address holds (107)",
                p.display()
            );
        }
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let at = format!("{P}.syscalls[{i}]");
        if sc.names().is_empty() {
            bail!("{at}.names: needs at least one system call name");
        }
        if let Some(j) = sc.names().iter().position(|n| n.is_empty()) {
            bail!("{at}.names[{j}]: empty name");
        }
        check_errno(&format!("{at}.errnoRet"), sc.action(), sc.errno_ret())?;
        if sc.action() == Act::ScmpActNotify {
            if s.listener_path().is_none() {
                bail!("{P}.listenerPath: needed by SCMP_ACT_NOTIFY ({at}.action)");
            }
            if let Some(n) = sc
                .names()
                .iter()
                .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                bail!(
                    "{at}.action: SCMP_ACT_NOTIFY cannot be used for {n}: the runtime needs it \
                     to hand the seccomp listener to the agent"
                );
            }
        }
        for (k, a) in sc.args().iter().flatten().enumerate() {
            if a.index() > 5 {
                bail!(
                    "{at}.args[{k}].index: {} is out of range (system call arguments are 0 to 5)",
                    a.index()
                );
            }
        }
    }
    Ok(())
}

fn check_errno(at: &str, action: Act, errno: Option<u32>) -> Result<()> {
    let Some(e) = errno else { return Ok(()) };
    if !matches!(action, Act::ScmpActErrno | Act::ScmpActTrace) {
        bail!("{at}: {action} takes no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)");
    }
    // The return data of a seccomp action is 16 bits; libseccomp would silently truncate.
    if e > u16::MAX as u32 {
        bail!("{at}: {e} is out of range (0 to 65535)");
    }
    Ok(())
}

/// Compiles the profile with libseccomp. Warnings (unknown system calls, flags the kernel
/// lacks) go to the log. The runtime itself always goes through [`compile_cached`].
#[cfg(test)]
pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let c = build(s)?;
    for w in &c.warnings {
        crate::log::warn(w);
    }
    Ok(c.filter)
}

/// A compiled filter with the warnings compiling it gave (kept so that a cache hit can repeat
/// them).
struct Compiled {
    filter: Filter,
    warnings: Vec<String>,
    /// System call names libseccomp does not know, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    unknown: Vec<String>,
}

fn build(s: &LinuxSeccomp) -> Result<Compiled> {
    check(s)?;
    let lib = |what: &str| format!("{P}: libseccomp {}: {what}", libseccomp_version());
    let default = scmp_action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).with_context(|| lib("create a filter"))?;
    // The native architecture is always in a new context; the others are added.
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        let Some(sa) = scmp_arch(*a) else { continue };
        if !ctx.is_arch_present(sa).unwrap_or(false) {
            ctx.add_arch(sa)
                .with_context(|| format!("{P}.architectures[{i}]: add {a}"))?;
        }
    }
    let mut unknown: Vec<String> = Vec::new();
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let action = scmp_action(sc.action(), sc.errno_ret());
        if action == default {
            // libseccomp refuses a rule that only repeats the default (EACCES); it would
            // change nothing anyway.
            crate::log::debug(&format!(
                "{P}.syscalls[{i}]: same action as defaultAction, skipped"
            ));
            continue;
        }
        let args: &[LinuxSeccompArg] = sc.args().as_deref().unwrap_or(&[]);
        let conds: Vec<ScmpArgCompare> = args.iter().map(condition).collect();
        // Conditions on distinct arguments are ANDed in one rule. Profiles written for runc
        // list several conditions on the same argument to mean "any of these" (libseccomp
        // cannot AND two comparisons of one argument): those become one rule per condition.
        let mut seen = [false; 6];
        let repeated = args
            .iter()
            .any(|a| std::mem::replace(&mut seen[a.index()], true));
        for name in sc.names() {
            let nr = match ScmpSyscall::from_name(name) {
                Ok(nr) => nr,
                Err(_) => {
                    if !unknown.contains(name) {
                        unknown.push(name.clone());
                    }
                    continue;
                }
            };
            let ctx_err = || format!("{P}.syscalls[{i}]: add the rule for {name}");
            if conds.is_empty() {
                ctx.add_rule(action, nr).with_context(ctx_err)?;
            } else if !repeated {
                ctx.add_rule_conditional(action, nr, &conds)
                    .with_context(ctx_err)?;
            } else {
                for c in &conds {
                    ctx.add_rule_conditional(action, nr, std::slice::from_ref(c))
                        .with_context(ctx_err)?;
                }
            }
        }
    }
    add_enosys_stub(&mut ctx, s, default);
    let prog = export_bpf(&ctx).with_context(|| lib("export the BPF program"))?;
    if prog.is_empty() || prog.len() > kernel::BPF_MAXINSNS {
        bail!(
            "{P}: the profile compiles to {} BPF instructions; the kernel takes 1 to {}",
            prog.len(),
            kernel::BPF_MAXINSNS
        );
    }
    let notify = s
        .syscalls()
        .iter()
        .flatten()
        .any(|sc| sc.action() == Act::ScmpActNotify);
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        // As runc: a profile may name system calls newer than the libseccomp at hand.
        warnings.push(format!(
            "{P}: skipping system calls unknown to libseccomp {}: {}",
            libseccomp_version(),
            unknown.join(", ")
        ));
    }
    let flags = kernel_flags(s, notify, &mut warnings);
    Ok(Compiled {
        filter: Filter {
            prog,
            flags,
            notify,
        },
        warnings,
        unknown,
    })
}

/// The highest system call number scanned for the ENOSYS stub: beyond every syscall table
/// libseccomp has today (x86_64 ends in the 460s), below the x32 range.
const STUB_SCAN_END: i32 = 1024;

/// runc's ENOSYS stub: under a profile that denies by default, system calls newer than every
/// one it names get ENOSYS rather than the default errno. A profile written before a system
/// call existed cannot have meant to forbid it, and libc treats ENOSYS (only) as "this
/// kernel lacks it" and falls back: clone3 to clone, openat2 to openat, close_range and
/// faccessat2 to their older forms. "Newer" is by number on the native architecture; the
/// rules are added by name, so libseccomp places them for every architecture of the filter.
fn add_enosys_stub(ctx: &mut ScmpFilterContext, s: &LinuxSeccomp, default: ScmpAction) {
    if matches!(default, ScmpAction::Allow | ScmpAction::Log)
        || default == ScmpAction::Errno(libc::ENOSYS)
    {
        return;
    }
    let native = ScmpArch::native();
    let named: std::collections::HashSet<&str> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|sc| sc.names().iter().map(String::as_str))
        .collect();
    let newest = named
        .iter()
        .filter_map(|n| ScmpSyscall::from_name_by_arch(n, native).ok())
        .map(|nr| nr.as_raw_syscall())
        .max()
        .unwrap_or(-1);
    for nr in (newest + 1)..STUB_SCAN_END {
        let Ok(name) = ScmpSyscall::from_raw_syscall(nr).get_name_by_arch(native) else {
            continue;
        };
        if named.contains(name.as_str()) {
            continue;
        }
        let Ok(sc) = ScmpSyscall::from_name(&name) else {
            continue;
        };
        // A call that some added architecture lacks is simply not stubbed there.
        if let Err(e) = ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), sc) {
            crate::log::debug(&format!("seccomp ENOSYS stub: {name}: {e}"));
        }
    }
}

/// The SECCOMP_FILTER_FLAG_* bits of `linux.seccomp.flags` this kernel accepts; the others
/// are skipped with a warning rather than failing the container, as they only tune the filter.
fn kernel_flags(s: &LinuxSeccomp, notify: bool, warnings: &mut Vec<String>) -> u32 {
    let mut flags = 0;
    for (i, f) in s.flags().iter().flatten().enumerate() {
        let bit = match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => kernel::FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => kernel::FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => kernel::FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                kernel::FLAG_WAIT_KILLABLE_RECV
            }
        };
        if bit == kernel::FLAG_WAIT_KILLABLE_RECV && !notify {
            // The kernel refuses it without a listener.
            warnings.push(format!(
                "{P}.flags[{i}]: {f} only applies to SCMP_ACT_NOTIFY rules; ignored"
            ));
            continue;
        }
        if !kernel::flag_supported(bit) {
            warnings.push(format!(
                "{P}.flags[{i}]: {f} is not supported by this kernel; ignored"
            ));
            continue;
        }
        flags |= bit;
    }
    if notify
        && flags & kernel::FLAG_TSYNC != 0
        && !kernel::flag_supported(kernel::FLAG_TSYNC_ESRCH)
    {
        // Before Linux 5.7 TSYNC and a listener exclude each other; init is single-threaded,
        // so TSYNC has nothing to synchronize there anyway.
        warnings.push(format!(
            "{P}.flags: SECCOMP_FILTER_FLAG_TSYNC cannot be combined with SCMP_ACT_NOTIFY on this kernel; ignored"
        ));
        flags &= !kernel::FLAG_TSYNC;
    }
    flags
}

/// seccomp_export_bpf writes to an fd; a memfd keeps it in memory and needs no cleanup.
fn export_bpf(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd =
        memfd_create(c"berth-seccomp", MemFdCreateFlag::MFD_CLOEXEC).context("memfd_create")?;
    ctx.export_bpf(&fd)?;
    let mut f = std::fs::File::from(fd);
    f.seek(SeekFrom::Start(0))?;
    let mut raw = Vec::new();
    f.read_to_end(&mut raw)?;
    if raw.len() % 8 != 0 {
        bail!("{} bytes is not a whole number of instructions", raw.len());
    }
    // struct sock_filter in the machine's byte order: u16 code, u8 jt, u8 jf, u32 k.
    Ok(raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

fn scmp_action(a: Act, errno: Option<u32>) -> ScmpAction {
    // The spec's default errno is EPERM, for SCMP_ACT_TRACE's message number too.
    let data = errno.unwrap_or(libc::EPERM as u32);
    match a {
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActErrno => ScmpAction::Errno(data as u16 as i32),
        Act::ScmpActTrace => ScmpAction::Trace(data as u16),
        Act::ScmpActNotify => ScmpAction::Notify,
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActAllow => ScmpAction::Allow,
    }
}

/// None for SCMP_ARCH_NATIVE, which every filter has.
fn scmp_arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => return None,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    })
}

/// Whether the libseccomp at hand knows `a` (newer architectures, LoongArch, M68K, SuperH,
/// came with 2.6). Resolving a system call every architecture has fails only for an
/// architecture the library does not know.
fn arch_known(a: ScmpArch) -> bool {
    ScmpSyscall::from_name_by_arch("read", a).is_ok()
}

fn condition(a: &LinuxSeccompArg) -> ScmpArgCompare {
    let arg = a.index() as u32;
    match a.op() {
        // value is the mask, valueTwo what the masked argument must equal (as runc and
        // libseccomp's SCMP_CMP_MASKED_EQ(mask, datum)).
        Op::ScmpCmpMaskedEq => ScmpArgCompare::new(
            arg,
            ScmpCompareOp::MaskedEqual(a.value()),
            a.value_two().unwrap_or(0),
        ),
        op => {
            let op = match op {
                Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
                Op::ScmpCmpLt => ScmpCompareOp::Less,
                Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
                Op::ScmpCmpEq => ScmpCompareOp::Equal,
                Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
                Op::ScmpCmpGt => ScmpCompareOp::Greater,
                Op::ScmpCmpMaskedEq => unreachable!("handled above"),
            };
            ScmpArgCompare::new(arg, op, a.value())
        }
    }
}

pub fn libseccomp_version() -> String {
    match ScmpVersion::current() {
        Ok(v) => v.to_string(),
        Err(_) => "(unknown version)".into(),
    }
}

/// The `linux.seccomp` object of `berth features` (runtime-spec features-linux.md): what
/// config.json may use here. `archs` are those the linked libseccomp knows; `supportedFlags`
/// those this kernel knows.
pub fn features() -> serde_json::Value {
    use LinuxSeccompFilterFlag as F;
    let actions = [
        Act::ScmpActAllow,
        Act::ScmpActErrno,
        Act::ScmpActKill,
        Act::ScmpActKillProcess,
        Act::ScmpActKillThread,
        Act::ScmpActLog,
        Act::ScmpActNotify,
        Act::ScmpActTrace,
        Act::ScmpActTrap,
    ];
    let operators = [
        Op::ScmpCmpEq,
        Op::ScmpCmpGe,
        Op::ScmpCmpGt,
        Op::ScmpCmpLe,
        Op::ScmpCmpLt,
        Op::ScmpCmpMaskedEq,
        Op::ScmpCmpNe,
    ];
    let archs = [
        Arch::ScmpArchAarch64,
        Arch::ScmpArchArm,
        Arch::ScmpArchLoongarch64,
        Arch::ScmpArchM68k,
        Arch::ScmpArchMips,
        Arch::ScmpArchMips64,
        Arch::ScmpArchMips64n32,
        Arch::ScmpArchMipsel,
        Arch::ScmpArchMipsel64,
        Arch::ScmpArchMipsel64n32,
        Arch::ScmpArchParisc,
        Arch::ScmpArchParisc64,
        Arch::ScmpArchPpc,
        Arch::ScmpArchPpc64,
        Arch::ScmpArchPpc64le,
        Arch::ScmpArchRiscv64,
        Arch::ScmpArchS390,
        Arch::ScmpArchS390x,
        Arch::ScmpArchSh,
        Arch::ScmpArchSheb,
        Arch::ScmpArchX32,
        Arch::ScmpArchX86,
        Arch::ScmpArchX86_64,
    ];
    let flags = [
        (F::SeccompFilterFlagTsync, kernel::FLAG_TSYNC),
        (F::SeccompFilterFlagLog, kernel::FLAG_LOG),
        (F::SeccompFilterFlagSpecAllow, kernel::FLAG_SPEC_ALLOW),
        (
            F::SeccompFilterFlagWaitKillableRecv,
            kernel::FLAG_WAIT_KILLABLE_RECV,
        ),
    ];
    fn strings<T: ToString>(it: impl Iterator<Item = T>) -> Vec<String> {
        it.map(|x| x.to_string()).collect()
    }
    let known_archs = archs
        .into_iter()
        .filter(|a| scmp_arch(*a).is_some_and(arch_known));
    let supported = flags.iter().filter(|(_, bit)| kernel::flag_supported(*bit));
    serde_json::json!({
        "enabled": true,
        "actions": strings(actions.iter()),
        "operators": strings(operators.iter()),
        "archs": strings(known_archs),
        "knownFlags": strings(flags.iter().map(|(f, _)| f)),
        "supportedFlags": strings(supported.map(|(f, _)| f)),
    })
}

/// [`compile`] through a cache of compiled programs in `cache_dir` (created 0700 if missing;
/// `<state root>/seccomp` on tmpfs suits, as a new kernel means a new key anyway). A hit costs
/// reading one file instead of a libseccomp compile; a damaged or foreign cache file is
/// ignored and rewritten, and a cache that cannot be used only costs the compile.
pub fn compile_cached(s: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter> {
    cache::compile_cached(s, cache_dir)
}

/// Sends the seccomp listener to the agent at `listenerPath` as the runtime-spec's "container
/// process state": one connection, one JSON message
/// `{"ociVersion","fds":["seccompFd"],"pid","metadata","state"}` with the fd in SCM_RIGHTS,
/// then the connection is closed. `state_json` is the container's state (status "creating");
/// its `pid` is the container process's pid. An empty `metadata` is left out.
pub fn send_listener(
    listener_path: &Path,
    metadata: &str,
    state_json: &serde_json::Value,
    fd: BorrowedFd,
) -> Result<()> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let at = || format!("{P}.listenerPath: {}", listener_path.display());
    let pid = state_json
        .get("pid")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| anyhow!("{P}: the container state has no pid"))?;
    let mut msg = serde_json::json!({
        "ociVersion": crate::default_spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state_json,
    });
    if !metadata.is_empty() {
        msg["metadata"] = metadata.into();
    }
    let payload = serde_json::to_vec(&msg)?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(at)?;
    let addr = UnixAddr::new(listener_path).with_context(at)?;
    loop {
        match connect(sock.as_raw_fd(), &addr) {
            Err(Errno::EINTR) => continue,
            r => break r.map_err(|e| anyhow!("{}: connect: {e}", at()))?,
        }
    }
    crate::sys::send_with_fd(sock.as_fd(), &payload, fd)
        .map_err(|e| anyhow!("{}: send the seccomp listener: {e}", at()))
    // `sock` closes here: the spec wants one message per connection.
}
