//! The cgroup v2 device controller.
//!
//! cgroup v2 has no devices.allow/devices.deny files: device access is decided by eBPF
//! programs of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The kernel runs
//! them when a task opens or mknods a device node, passing
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` (access_type is
//! `BPF_DEVCG_ACC_* << 16 | BPF_DEVCG_DEV_*`: access bits high, device type low), and
//! allows the access only when every program attached along the way returns 1.
//!
//! - `program(rules)` compiles `linux.resources.devices` (plus the default rules the caller
//!   appends) to such a program.
//! - `attach(cgroup_dir, prog)` loads it and attaches it to the cgroup, replacing the program
//!   berth attached there before (for `update`), new one first so that the cgroup is never
//!   without a filter.
//!
//! Semantics. The list is an allowlist applied in order (config-linux.md, "Allowed Device
//! List"): everything starts denied and a later rule overrides an earlier one. Each access
//! bit (r, w, m) of a request is decided by the last rule that matches the device and names
//! that bit, and the request is allowed when all its bits are. So `open(O_RDWR)` needs both
//! r and w, and a later "deny w" cannot be bypassed by asking for rw at once, which it
//! could if a rule matched only requests whose bits are all within its own access.
//!
//! One difference from the v1 controller, where the kernel keys exceptions by exact
//! type/major/minor: there, a narrower rule of the opposite kind does not punch a hole in
//! an earlier wildcard rule (after "allow c 1:* rwm", "deny c 1:5 rwm" is silently
//! ignored); here the later rule wins, as the list order says.
//!
//! Generated code, registers: r2 = device type, r3 = access bits not yet allowed, r4 = major,
//! r5 = minor, r1 = scratch once the context is read. Rules are emitted last first; each
//! is a block of checks that skip to the next block on a mismatch, then its verdict:
//!
//! - allow: clear its bits from r3; if none are left, return 1.
//! - deny: if any of its bits are still in r3, return 0 (a later rule allowed the others).
//!
//! Falling off the end returns 0.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// The C struct's `dst_reg:4, src_reg:4` bit-fields; see `Insn::new`.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // C allocates bit-fields from the low bits on little-endian ABIs and from the high
        // bits on big-endian ones, so dst_reg moves with the byte order.
        #[cfg(target_endian = "little")]
        let regs = dst | (src << 4);
        #[cfg(target_endian = "big")]
        let regs = (dst << 4) | src;
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }

    // Read back only by the tests' interpreter.
    #[cfg(test)]
    fn dst(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs & 0xf
        } else {
            self.regs >> 4
        }
    }

    #[cfg(test)]
    fn src(&self) -> u8 {
        if cfg!(target_endian = "little") {
            self.regs >> 4
        } else {
            self.regs & 0xf
        }
    }
}

/// Opcodes (include/uapi/linux/bpf.h, bpf_common.h), only those `program` emits.
mod op {
    pub const LDX_W: u8 = 0x01 | 0x60; // BPF_LDX | BPF_MEM | BPF_W
    pub const AND32_K: u8 = 0x04 | 0x50; // BPF_ALU | BPF_AND | BPF_K
    pub const RSH32_K: u8 = 0x04 | 0x70; // BPF_ALU | BPF_RSH | BPF_K
    pub const MOV32_K: u8 = 0x04 | 0xb0; // BPF_ALU | BPF_MOV | BPF_K
    pub const MOV32_X: u8 = 0x04 | 0xb0 | 0x08; // BPF_ALU | BPF_MOV | BPF_X
    pub const JEQ_K: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    pub const JNE_K: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
    pub const EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// The instruction emitters: 32-bit ALU operations (they zero the upper half, so registers
/// keep holding plain u32 values) and 64-bit compares against those.
mod asm {
    use super::{op, Insn};

    pub fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(op::LDX_W, dst, src, off, 0)
    }
    pub fn and32(dst: u8, imm: i32) -> Insn {
        Insn::new(op::AND32_K, dst, 0, 0, imm)
    }
    pub fn rsh32(dst: u8, imm: i32) -> Insn {
        Insn::new(op::RSH32_K, dst, 0, 0, imm)
    }
    pub fn mov32(dst: u8, imm: i32) -> Insn {
        Insn::new(op::MOV32_K, dst, 0, 0, imm)
    }
    pub fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(op::MOV32_X, dst, src, 0, 0)
    }
    /// Skips `off` instructions when `dst != imm`.
    pub fn jne(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(op::JNE_K, dst, 0, off, imm)
    }
    /// Skips `off` instructions when `dst == imm`.
    pub fn jeq(dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(op::JEQ_K, dst, 0, off, imm)
    }
    pub fn exit() -> Insn {
        Insn::new(op::EXIT, 0, 0, 0, 0)
    }
}

// include/uapi/linux/bpf.h: enum bpf_cgroup_dev_type and the access bits.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// The kernel's limit for a privileged program (BPF_COMPLEXITY_LIMIT_INSNS); a list this
/// long (~100,000 rules) is a mistake, better refused here than by the verifier.
const MAX_INSNS: usize = 1_000_000;

/// One rule, checked and reduced to what the program compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// DEV_BLOCK or DEV_CHAR; None matches both.
    typ: Option<i32>,
    major: Option<i32>,
    minor: Option<i32>,
    access: i32,
}

impl Rule {
    /// Matches every device and names every access bit: the rules before it can no longer
    /// change any verdict.
    fn is_catch_all(&self) -> bool {
        self.typ.is_none() && self.major.is_none() && self.minor.is_none() && self.access == ACC_ALL
    }
}

/// A major or minor number in a rule.
enum Num {
    Any,
    Is(i32),
    /// Above i32::MAX: no device has it (majors have 12 bits, minors 20), and the program's
    /// 32-bit immediates could not hold it.
    Never,
}

/// Checks rule `i` and reduces it; None for a rule that can match no device.
fn parse(i: usize, r: &LinuxDeviceCgroup) -> Result<Option<Rule>> {
    let field = format!("linux.resources.devices[{i}]");
    let typ = match r.typ().unwrap_or_default() {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        // "u" is an unbuffered character device: a character device to the kernel.
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::P => {
            bail!("{field}.type: FIFOs are not controlled by the devices cgroup")
        }
    };
    // An absent or empty access means every access, as the v1 backend writes it.
    let access = super::resources::device_access(r.access().as_deref())
        .chars()
        .fold(0, |acc, c| {
            acc | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            }
        });
    if access == 0 {
        return Ok(None);
    }
    let num = |n: Option<i64>, name: &str| -> Result<Num> {
        Ok(match n {
            // -1 is the wildcard in runc's configs; JSON null or absent is the OCI one.
            None => Num::Any,
            Some(n) if n < 0 => Num::Any,
            Some(n) => match i32::try_from(n) {
                Ok(n) => Num::Is(n),
                // The kernel's context holds u32 numbers; v1 refuses bigger ones too.
                Err(_) if n > i64::from(u32::MAX) => {
                    bail!("{field}.{name}: {n} is out of range")
                }
                Err(_) => Num::Never,
            },
        })
    };
    let major = match num(r.major(), "major")? {
        Num::Any => None,
        Num::Is(n) => Some(n),
        Num::Never => return Ok(None),
    };
    let minor = match num(r.minor(), "minor")? {
        Num::Any => None,
        Num::Is(n) => Some(n),
        Num::Never => return Ok(None),
    };
    Ok(Some(Rule {
        allow: r.allow(),
        typ,
        major,
        minor,
        access,
    }))
}

/// Compiles device rules to a BPF_PROG_TYPE_CGROUP_DEVICE program (see the module comment
/// for the semantics). Fails naming the rule's JSON path for a rule the devices cgroup
/// cannot express.
pub fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let mut parsed = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        parsed.extend(parse(i, r)?);
    }

    // Last rule first, up to the last rule that decides everything.
    let mut blocks: Vec<&Rule> = Vec::new();
    for rule in parsed.iter().rev() {
        blocks.push(rule);
        if rule.is_catch_all() {
            break;
        }
    }
    // Deny rules met only after every allow rule lead to the same verdict as falling off
    // the end; typically the leading "deny all" of a config.
    while blocks.last().is_some_and(|r| !r.allow) {
        blocks.pop();
    }

    let mut out = vec![
        asm::ldx_w(R2, R1, 0), // access_type
        asm::ldx_w(R4, R1, 4), // major
        asm::ldx_w(R5, R1, 8), // minor
        asm::mov32_reg(R3, R2),
        asm::rsh32(R3, 16),     // access bits
        asm::and32(R2, 0xffff), // device type
    ];
    for rule in blocks {
        emit_rule(&mut out, rule);
    }
    out.extend([asm::mov32(R0, 0), asm::exit()]);
    if out.len() > MAX_INSNS {
        bail!(
            "linux.resources.devices: {} rules make a device filter of {} instructions, \
             more than the kernel's {MAX_INSNS}",
            rules.len(),
            out.len()
        );
    }
    Ok(out)
}

fn emit_rule(out: &mut Vec<Insn>, rule: &Rule) {
    let verdict = if rule.allow {
        vec![
            asm::and32(R3, !rule.access),
            asm::jne(R3, 0, 2), // bits left for earlier rules to decide
            asm::mov32(R0, 1),
            asm::exit(),
        ]
    } else {
        vec![
            asm::mov32_reg(R1, R3),
            asm::and32(R1, rule.access),
            asm::jeq(R1, 0, 2), // none of its bits are still undecided
            asm::mov32(R0, 0),
            asm::exit(),
        ]
    };
    let checks: Vec<(u8, i32)> = [(R2, rule.typ), (R4, rule.major), (R5, rule.minor)]
        .into_iter()
        .filter_map(|(reg, v)| v.map(|v| (reg, v)))
        .collect();
    for (k, (reg, v)) in checks.iter().enumerate() {
        // A mismatch skips the remaining checks and the verdict: at most 2 + 5, so the
        // 16-bit offset cannot overflow however long the list is.
        let skip = (checks.len() - 1 - k + verdict.len()) as i16;
        out.push(asm::jne(*reg, *v, skip));
    }
    out.extend(verdict);
}

/// The name berth gives its device programs, so that a re-apply detaches those and only
/// those (another tool may have attached its own to the same cgroup). At most 15 bytes of
/// [A-Za-z0-9_.] (BPF_OBJ_NAME_LEN).
const PROG_NAME: &str = "berth_devices";

/// Loads `prog` and attaches it to the cgroup v2 directory `cgroup_dir`, then detaches the
/// device programs berth attached there before, so that a re-apply (`update`) replaces the
/// filter without a moment where none applies: while both are attached, an access needs
/// both to allow it, which never allows more than either.
///
/// Attaches with BPF_F_ALLOW_MULTI, as runc and systemd do, so programs attached by others
/// stay in force; it fails if the cgroup already has a program attached without it.
pub fn attach(cgroup_dir: &Path, prog: &[Insn]) -> Result<()> {
    attach_as(cgroup_dir, prog, PROG_NAME)
}

fn attach_as(cgroup_dir: &Path, prog: &[Insn], name: &str) -> Result<()> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(cgroup_dir)
        .map_err(errno)
        .with_context(|| format!("open cgroup {}", cgroup_dir.display()))?;
    // Listed before the new program is attached, so it cannot be among them.
    let old = programs_named(dir.as_fd(), name)
        .with_context(|| format!("list the device filters of cgroup {}", cgroup_dir.display()))?;
    let new = load(prog, name)?;
    sys::prog_attach(dir.as_fd(), new.as_fd(), sys::BPF_F_ALLOW_MULTI)
        .map_err(errno)
        .with_context(|| {
            format!(
                "attach the eBPF device filter to cgroup {}",
                cgroup_dir.display()
            )
        })?;
    for (id, fd) in old {
        match sys::prog_detach(dir.as_fd(), fd.as_fd()) {
            // ENOENT: someone detached it meanwhile, which is what we wanted.
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                return Err(errno(e)).with_context(|| {
                    format!(
                        "detach the previous eBPF device filter (id {id}) from cgroup {}",
                        cgroup_dir.display()
                    )
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// The device programs attached directly to the cgroup whose name is `name`, with an fd
/// each (detaching one takes its fd).
fn programs_named(cgroup: BorrowedFd, name: &str) -> Result<Vec<(u32, OwnedFd)>> {
    let mut out = Vec::new();
    for id in sys::prog_query(cgroup).map_err(errno)? {
        let fd = match sys::prog_fd_by_id(id) {
            Ok(fd) => fd,
            // Detached and freed since the query.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(errno(e)).context(format!("open program id {id}")),
        };
        let got = sys::prog_name(fd.as_fd())
            .map_err(errno)
            .with_context(|| format!("read the name of program id {id}"))?;
        if got == name {
            out.push((id, fd));
        }
    }
    Ok(out)
}

/// Loads the program. Without a verifier log first: a log is costly and, if the buffer is
/// too small for a long trace, fails a load that would succeed. Only when the kernel
/// refuses the program is it loaded again with a log, for the error message.
fn load(prog: &[Insn], name: &str) -> Result<OwnedFd> {
    let what = || format!("load the eBPF device filter ({} instructions)", prog.len());
    let e = match sys::prog_load(prog, name, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    // Not the verifier: no log would explain these.
    if matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::ENOSYS | libc::ENOMEM)
    ) {
        return Err(errno(e)).with_context(what);
    }
    let mut log = vec![0u8; 256 * 1024];
    match sys::prog_load(prog, name, Some(&mut log)) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let len = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..len]);
            // The verdict is at the end of a trace that can be long.
            let lines: Vec<&str> = text.trim_end().lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let msg = if tail.is_empty() {
                what()
            } else {
                format!("{}; verifier log:\n{tail}", what())
            };
            Err(errno(e)).context(msg)
        }
    }
}

/// io::Error to nix's Errno when it is one, for messages like "EPERM: Operation not
/// permitted" as the rest of berth's cgroup code gives.
fn errno(e: io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(n) => Errno::from_raw(n).into(),
        None => e.into(),
    }
}

/// The bpf(2) commands berth uses, each a safe function over one `unsafe` call.
///
/// Each command reads a prefix of the kernel's `union bpf_attr`; the structs below are
/// those prefixes for the commands used, with explicit padding so that no byte is left
/// uninitialized. The kernel zero-fills the part of the union beyond the size passed.
mod sys {
    use std::io;
    use std::mem::size_of;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    use super::Insn;

    const BPF_PROG_LOAD: libc::c_int = 5;
    const BPF_PROG_ATTACH: libc::c_int = 8;
    const BPF_PROG_DETACH: libc::c_int = 9;
    const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
    const BPF_PROG_QUERY: libc::c_int = 16;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    const BPF_CGROUP_DEVICE: u32 = 6;
    pub const BPF_F_ALLOW_MULTI: u32 = 2;
    const BPF_OBJ_NAME_LEN: usize = 16;

    #[repr(C)]
    struct ProgLoadAttr {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; BPF_OBJ_NAME_LEN],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }

    /// BPF_PROG_ATTACH and BPF_PROG_DETACH.
    #[repr(C)]
    struct AttachAttr {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
        replace_bpf_fd: u32,
    }

    #[repr(C)]
    struct QueryAttr {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        _pad: u32,
    }

    #[repr(C)]
    struct GetFdByIdAttr {
        prog_id: u32,
        next_id: u32,
        open_flags: u32,
    }

    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The start of `struct bpf_prog_info`, up to the name; the kernel writes no more
    /// than the length it is given.
    #[repr(C)]
    #[derive(Default)]
    struct ProgInfo {
        prog_type: u32,
        id: u32,
        tag: [u8; 8],
        jited_prog_len: u32,
        xlated_prog_len: u32,
        jited_prog_insns: u64,
        xlated_prog_insns: u64,
        load_time: u64,
        created_by_uid: u32,
        nr_map_ids: u32,
        map_ids: u64,
        name: [u8; BPF_OBJ_NAME_LEN],
    }

    /// The syscall itself.
    ///
    /// # Safety
    /// `attr` must be the `union bpf_attr` prefix that `cmd` uses, and every address in it
    /// must point to memory valid for what the kernel reads or writes there for `cmd`.
    unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
        // SAFETY: the kernel reads and writes at most size_of::<T>() bytes of `attr`, a
        // live exclusive borrow; the addresses inside it are the caller's promise.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T,
                size_of::<T>() as libc::c_uint,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    /// Takes ownership of an fd bpf(2) just returned.
    fn owned(r: libc::c_long) -> OwnedFd {
        // SAFETY: a bpf(2) command that creates an fd returns a new one (close-on-exec)
        // that nothing else owns.
        unsafe { OwnedFd::from_raw_fd(r as libc::c_int) }
    }

    /// BPF_PROG_LOAD of a cgroup device program; with `log`, the verifier writes its
    /// trace there (NUL-terminated).
    pub fn prog_load(insns: &[Insn], name: &str, log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
        let mut prog_name = [0u8; BPF_OBJ_NAME_LEN];
        let n = name.len().min(BPF_OBJ_NAME_LEN - 1);
        prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        // Device programs call no GPL-only helper, so berth's own licence is fine.
        let license = c"Apache-2.0";
        let (log_level, log_size, log_buf) = match log {
            Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
            None => (0, 0, 0),
        };
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size,
            log_buf,
            kern_version: 0,
            prog_flags: 0,
            prog_name,
            prog_ifindex: 0,
            expected_attach_type: 0,
        };
        // SAFETY: insns (insn_cnt entries of the kernel's struct bpf_insn), the licence
        // string and the log buffer (log_size bytes) are borrowed for the whole call.
        let r = unsafe { bpf(BPF_PROG_LOAD, &mut attr)? };
        Ok(owned(r))
    }

    pub fn prog_attach(cgroup: BorrowedFd, prog: BorrowedFd, flags: u32) -> io::Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: flags,
            replace_bpf_fd: 0,
        };
        // SAFETY: the attributes hold fds and numbers only.
        unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
    }

    pub fn prog_detach(cgroup: BorrowedFd, prog: BorrowedFd) -> io::Result<()> {
        let mut attr = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        // SAFETY: the attributes hold fds and numbers only.
        unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
    }

    /// The ids of the device programs attached directly to the cgroup (not inherited
    /// ones), in the order they run.
    pub fn prog_query(cgroup: BorrowedFd) -> io::Result<Vec<u32>> {
        // The kernel allows 64 programs per cgroup and attach type (BPF_CGROUP_MAX_PROGS);
        // it says how many there are when the buffer is too small, so ask again then.
        let mut ids = vec![0u32; 64];
        loop {
            let mut attr = QueryAttr {
                target_fd: cgroup.as_raw_fd() as u32,
                attach_type: BPF_CGROUP_DEVICE,
                query_flags: 0,
                attach_flags: 0,
                prog_ids: ids.as_mut_ptr() as u64,
                prog_cnt: ids.len() as u32,
                _pad: 0,
            };
            // SAFETY: prog_ids points to prog_cnt writable u32s, borrowed for the call.
            match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
                Ok(_) => {
                    ids.truncate(attr.prog_cnt as usize);
                    return Ok(ids);
                }
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOSPC)
                        && attr.prog_cnt as usize > ids.len() =>
                {
                    ids.resize(attr.prog_cnt as usize, 0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
        let mut attr = GetFdByIdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        // SAFETY: the attributes hold numbers only.
        let r = unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr)? };
        Ok(owned(r))
    }

    /// The program's name as given at load time.
    pub fn prog_name(prog: BorrowedFd) -> io::Result<String> {
        let mut info = ProgInfo::default();
        let mut attr = InfoAttr {
            bpf_fd: prog.as_raw_fd() as u32,
            info_len: size_of::<ProgInfo>() as u32,
            info: &mut info as *mut ProgInfo as u64,
        };
        // SAFETY: info points to info_len writable bytes, borrowed for the call; its
        // address fields are zero, so the kernel fills in no arrays.
        unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)? };
        let len = info
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(BPF_OBJ_NAME_LEN);
        Ok(String::from_utf8_lossy(&info.name[..len]).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        typ: &str,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(match typ {
            "a" => LinuxDeviceType::A,
            "b" => LinuxDeviceType::B,
            "c" => LinuxDeviceType::C,
            "u" => LinuxDeviceType::U,
            _ => LinuxDeviceType::P,
        }));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    }

    fn deny_all() -> LinuxDeviceCgroup {
        rule(false, "a", None, None, "rwm")
    }

    const CTX: u64 = 0x1000_0000;

    /// Runs a program on one request: an interpreter for the instructions `program` emits,
    /// strict about everything else (unknown opcodes, reads outside the context, jumps
    /// out of the program, more steps than instructions since the code only jumps forward).
    fn run(prog: &[Insn], typ: i32, major: u32, minor: u32, access: i32) -> u64 {
        // As the kernel fills it in (bpf.h: "access_type encoded as (BPF_DEVCG_ACC_* << 16)
        // | BPF_DEVCG_DEV_*").
        let ctx = [((access as u32) << 16) | typ as u32, major, minor];
        let mut r = [0u64; 11];
        r[1] = CTX;
        let mut pc = 0usize;
        for _ in 0..=prog.len() {
            let i = prog[pc];
            let (d, s) = (i.dst() as usize, i.src() as usize);
            pc += 1;
            let jump = |cond: bool| if cond { i.off as usize } else { 0 };
            match i.code {
                op::LDX_W => {
                    let addr = r[s].wrapping_add(i.off as i64 as u64);
                    assert!(
                        (CTX..CTX + 12).contains(&addr) && addr % 4 == 0,
                        "bad load {i:?}"
                    );
                    r[d] = u64::from(ctx[((addr - CTX) / 4) as usize]);
                }
                op::AND32_K => r[d] = u64::from(r[d] as u32 & i.imm as u32),
                op::RSH32_K => r[d] = u64::from((r[d] as u32) >> i.imm),
                op::MOV32_K => r[d] = u64::from(i.imm as u32),
                op::MOV32_X => r[d] = u64::from(r[s] as u32),
                op::JNE_K => pc += jump(r[d] != i.imm as i64 as u64),
                op::JEQ_K => pc += jump(r[d] == i.imm as i64 as u64),
                op::EXIT => return r[0],
                _ => panic!("unexpected instruction {i:?}"),
            }
        }
        panic!("program loops");
    }

    /// The intended semantics, written independently of the compiler: each requested bit
    /// is decided by the last rule that matches the device and names it.
    fn model(rules: &[LinuxDeviceCgroup], typ: i32, major: u32, minor: u32, access: i32) -> bool {
        let num_ok = |n: Option<i64>, v: u32| n.is_none_or(|n| n < 0 || n == i64::from(v));
        (0..16).filter(|b| access & (1 << b) != 0).all(|b| {
            let last = rules.iter().rev().find(|r| {
                let t = match r.typ().unwrap_or_default() {
                    LinuxDeviceType::A => true,
                    LinuxDeviceType::B => typ == 1,
                    _ => typ == 2,
                };
                let a = match r.access().as_deref() {
                    None | Some("") => "rwm",
                    Some(a) => a,
                };
                let names = match 1 << b {
                    1 => a.contains('m'),
                    2 => a.contains('r'),
                    4 => a.contains('w'),
                    _ => false,
                };
                t && num_ok(r.major(), major) && num_ok(r.minor(), minor) && names
            });
            last.is_some_and(|r| r.allow())
        })
    }

    fn allowed(prog: &[Insn], typ: i32, major: u32, minor: u32, access: &str) -> bool {
        let acc = access.chars().fold(0, |a, c| {
            a | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                _ => ACC_MKNOD,
            }
        });
        match run(prog, typ, major, minor, acc) {
            0 => false,
            1 => true,
            v => panic!("program returned {v}"),
        }
    }

    #[test]
    fn empty_list_denies_everything() {
        let p = program(&[]).unwrap();
        assert_eq!(p.len(), 8);
        assert!(!allowed(&p, DEV_CHAR, 1, 3, "r"));
        assert!(!allowed(&p, DEV_BLOCK, 8, 0, "m"));
    }

    #[test]
    fn emits_the_last_rule_first_and_drops_the_leading_deny_all() {
        let p = program(&[
            deny_all(),
            rule(true, "c", Some(10), Some(229), "rw"),
            rule(true, "b", Some(8), Some(0), "r"),
        ])
        .unwrap();
        // prologue 6, two blocks of 3 checks + 4, return 0 (2); no block for "deny all"
        assert_eq!(p.len(), 6 + 7 + 7 + 2);
        assert_eq!(p[6], asm::jne(R2, DEV_BLOCK, 2 + 4));
        assert_eq!(p[7], asm::jne(R4, 8, 1 + 4));
        assert_eq!(p[8], asm::jne(R5, 0, 4));
        assert_eq!(p[13], asm::jne(R2, DEV_CHAR, 2 + 4));
        assert_eq!(p[14], asm::jne(R4, 10, 1 + 4));
        assert!(allowed(&p, DEV_CHAR, 10, 229, "rw"));
        assert!(!allowed(&p, DEV_CHAR, 10, 229, "m"));
        assert!(allowed(&p, DEV_BLOCK, 8, 0, "r"));
        assert!(!allowed(&p, DEV_BLOCK, 8, 0, "rw"));
        assert!(!allowed(&p, DEV_CHAR, 8, 0, "r"));
    }

    #[test]
    fn wildcards_emit_no_checks() {
        for (major, minor) in [(None, None), (Some(-1), Some(-1)), (None, Some(-1))] {
            let p = program(&[rule(true, "c", major, minor, "m")]).unwrap();
            assert_eq!(p.len(), 6 + 1 + 4 + 2, "{major:?}:{minor:?}");
            assert!(allowed(&p, DEV_CHAR, 4000, 70000, "m"));
            assert!(!allowed(&p, DEV_BLOCK, 1, 1, "m"));
            assert!(!allowed(&p, DEV_CHAR, 1, 1, "r"));
        }
        // type "a" with a major only: one check, on the major
        let p = program(&[rule(true, "a", Some(136), None, "rw")]).unwrap();
        assert_eq!(p[6], asm::jne(R4, 136, 4));
        assert_eq!(p.len(), 6 + 1 + 4 + 2);
        assert!(allowed(&p, DEV_BLOCK, 136, 9, "rw"));
        assert!(allowed(&p, DEV_CHAR, 136, 0, "w"));
        // absent access means all of them
        let mut r = rule(true, "c", Some(1), Some(3), "");
        r.set_access(None);
        let p = program(&[r]).unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rwm"));
    }

    #[test]
    fn a_catch_all_rule_ends_the_program() {
        let rules = [
            deny_all(),
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(true, "a", None, None, "rwm"),
        ];
        let p = program(&rules).unwrap();
        assert_eq!(p.len(), 6 + 4 + 2);
        assert!(allowed(&p, DEV_BLOCK, 8, 0, "rwm"));
        // ...also when it denies: the rules before it are dead, and so is the block itself
        let rules = [rule(true, "c", Some(1), Some(3), "rw"), deny_all()];
        assert_eq!(program(&rules).unwrap().len(), 8);
        // a wildcard that does not name every access is not a catch-all
        let rules = [
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(true, "a", None, None, "m"),
        ];
        let p = program(&rules).unwrap();
        assert_eq!(p.len(), 6 + 4 + 7 + 2);
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rw"));
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rwm"));
        assert!(!allowed(&p, DEV_CHAR, 1, 4, "rm"));
    }

    #[test]
    fn the_last_matching_rule_wins() {
        let p = program(&[
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(false, "c", Some(1), Some(3), "w"),
        ])
        .unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rm"));
        assert!(!allowed(&p, DEV_CHAR, 1, 3, "w"));
        assert!(!allowed(&p, DEV_CHAR, 1, 3, "rw"));
        let p = program(&[
            rule(false, "c", Some(1), Some(3), "w"),
            rule(true, "c", Some(1), Some(3), "rwm"),
        ])
        .unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rw"));
        // a later narrower rule overrides an earlier wildcard, both ways
        let p = program(&[
            rule(true, "c", Some(1), None, "rwm"),
            rule(false, "c", Some(1), Some(5), "rwm"),
        ])
        .unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rw"));
        assert!(!allowed(&p, DEV_CHAR, 1, 5, "r"));
        let p = program(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), None, "rwm"),
            rule(true, "c", Some(1), Some(5), "r"),
        ])
        .unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 5, "r"));
        assert!(!allowed(&p, DEV_CHAR, 1, 5, "w"));
        assert!(!allowed(&p, DEV_CHAR, 1, 3, "r"));
        assert!(allowed(&p, DEV_BLOCK, 1, 3, "r"));
    }

    #[test]
    fn asking_for_rw_at_once_does_not_bypass_a_write_deny() {
        let p = program(&[
            rule(true, "a", None, None, "rwm"),
            rule(false, "c", Some(1), Some(5), "w"),
        ])
        .unwrap();
        assert!(!allowed(&p, DEV_CHAR, 1, 5, "rw"));
        assert!(allowed(&p, DEV_CHAR, 1, 5, "r"));
        // bits allowed by different rules add up
        let p = program(&[
            rule(true, "c", Some(1), None, "r"),
            rule(true, "c", None, Some(5), "w"),
        ])
        .unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 5, "rw"));
        assert!(!allowed(&p, DEV_CHAR, 1, 6, "rw"));
    }

    #[test]
    fn unknown_access_bits_are_denied() {
        let p = program(&[rule(true, "a", None, None, "rwm")]).unwrap();
        assert_eq!(run(&p, DEV_CHAR, 1, 3, 8), 0);
        assert_eq!(run(&p, DEV_CHAR, 1, 3, 8 | ACC_READ), 0);
        assert_eq!(run(&p, DEV_CHAR, 1, 3, ACC_ALL), 1);
    }

    #[test]
    fn unbuffered_is_char() {
        let p = program(&[rule(true, "u", Some(4), Some(1), "rw")]).unwrap();
        assert!(allowed(&p, DEV_CHAR, 4, 1, "rw"));
        assert!(!allowed(&p, DEV_BLOCK, 4, 1, "rw"));
    }

    #[test]
    fn rejects_what_the_devices_cgroup_cannot_express() {
        let bad = |r: LinuxDeviceCgroup| {
            let e = program(&[deny_all(), r]).unwrap_err().to_string();
            assert!(e.starts_with("linux.resources.devices[1]."), "{e}");
            e
        };
        // Unknown access letters are ignored, as runc ignores them: "rx" is "r".
        let p = program(&[deny_all(), rule(true, "c", Some(1), Some(3), "rx")]).unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "r"));
        assert!(!allowed(&p, DEV_CHAR, 1, 3, "w"));
        assert!(bad(rule(true, "p", None, None, "rw")).contains("type"));
        assert!(bad(rule(true, "c", Some(1 << 32), Some(3), "rw")).contains("major"));
        assert!(bad(rule(true, "c", Some(1), Some(1 << 40), "rw")).contains("minor"));
    }

    #[test]
    fn numbers_no_device_has_match_nothing() {
        let big = i64::from(i32::MAX) + 1;
        let p = program(&[
            rule(true, "c", Some(big), None, "rwm"),
            rule(true, "c", Some(1), Some(u32::MAX.into()), "rwm"),
        ])
        .unwrap();
        assert_eq!(p, program(&[]).unwrap());
    }

    /// runc's default rules behind a deny-all, as the integrator will pass them.
    fn default_rules() -> Vec<LinuxDeviceCgroup> {
        vec![
            deny_all(),
            rule(true, "c", None, None, "m"),
            rule(true, "b", None, None, "m"),
            rule(true, "c", Some(1), Some(3), "rwm"),
            rule(true, "c", Some(1), Some(5), "rwm"),
            rule(true, "c", Some(1), Some(7), "rwm"),
            rule(true, "c", Some(1), Some(8), "rwm"),
            rule(true, "c", Some(1), Some(9), "rwm"),
            rule(true, "c", Some(5), Some(0), "rwm"),
            rule(true, "c", Some(5), Some(1), "rwm"),
            rule(true, "c", Some(5), Some(2), "rwm"),
            rule(true, "c", Some(136), None, "rwm"),
            rule(true, "c", Some(10), Some(200), "rwm"),
        ]
    }

    #[test]
    fn default_rules_behave() {
        let p = program(&default_rules()).unwrap();
        assert!(allowed(&p, DEV_CHAR, 1, 3, "rw"));
        assert!(allowed(&p, DEV_CHAR, 136, 4, "rw"));
        assert!(allowed(&p, DEV_BLOCK, 8, 0, "m"));
        assert!(!allowed(&p, DEV_BLOCK, 8, 0, "r"));
        assert!(!allowed(&p, DEV_CHAR, 1, 1, "r")); // /dev/mem
        assert!(!allowed(&p, DEV_CHAR, 10, 229, "rw")); // /dev/fuse
    }

    /// Random rule lists over a few values each, every request over those values and some
    /// others: the program must agree with the model.
    #[test]
    fn agrees_with_the_model() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let types = ["a", "b", "c"];
        let nums = [None, Some(-1), Some(1), Some(5)];
        let accesses = ["r", "w", "m", "rw", "rm", "wm", "rwm"];
        for _ in 0..3000 {
            let len = next(7);
            let rules: Vec<_> = (0..len)
                .map(|_| {
                    rule(
                        next(3) != 0,
                        types[next(3) as usize],
                        nums[next(4) as usize],
                        nums[next(4) as usize],
                        accesses[next(7) as usize],
                    )
                })
                .collect();
            let p = program(&rules).unwrap();
            for typ in [DEV_BLOCK, DEV_CHAR] {
                for major in [1, 5, 7] {
                    for minor in [1, 5, 7] {
                        for access in 1..16 {
                            let got = run(&p, typ, major, minor, access) == 1;
                            let want = model(&rules, typ, major, minor, access);
                            assert_eq!(
                                got, want,
                                "rules {rules:?}, request type {typ} {major}:{minor} access {access}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Whether this process may load BPF programs; prints why not.
    fn can_load_bpf() -> bool {
        match sys::prog_load(&program(&[]).unwrap(), "berth_probe", None) {
            Ok(_) => true,
            Err(e) => {
                println!("skipped: cannot load an eBPF program here: {e}");
                false
            }
        }
    }

    /// The kernel's verifier accepts what `program` emits. Needs root (CAP_BPF), not cgroup2.
    #[test]
    fn the_verifier_accepts_the_programs() {
        if !can_load_bpf() {
            return;
        }
        let lists = [
            vec![],
            default_rules(),
            vec![rule(true, "a", None, None, "rwm")],
            vec![
                rule(false, "a", None, None, "w"),
                rule(true, "a", None, None, "rwm"),
            ],
            vec![
                rule(true, "a", None, None, "rwm"),
                rule(false, "c", Some(1), None, "rw"),
                rule(true, "c", Some(1), Some(5), "r"),
                rule(false, "b", None, Some(0), "m"),
            ],
        ];
        for rules in lists {
            let p = program(&rules).unwrap();
            load(&p, PROG_NAME).unwrap_or_else(|e| panic!("{rules:?}: {e:#}"));
        }
    }

    #[test]
    fn a_refused_program_reports_the_verifier_log() {
        if !can_load_bpf() {
            return;
        }
        // returns without setting r0
        let e = load(&[asm::exit()], PROG_NAME).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("verifier log:") && msg.contains("R0"), "{msg}");
        assert!(msg.contains("EACCES") || msg.contains("EINVAL"), "{msg}");
    }

    /// A cgroup for the test, removed on drop (after its processes exited).
    struct TestCgroup(std::path::PathBuf);

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            for _ in 0..50 {
                match std::fs::remove_dir(&self.0) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => return,
                }
            }
        }
    }

    /// Forks a child that joins the cgroup and opens each path with its flags, and returns
    /// the errno of each open (0 when it worked).
    fn probe(cgroup: &Path, opens: &[(&std::ffi::CStr, libc::c_int)]) -> Vec<i32> {
        use std::ffi::CString;
        use std::os::fd::{AsRawFd, FromRawFd};

        let procs = CString::new(
            cgroup
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two fds pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds are new and owned here.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut errs = [0i32; 8];
        assert!(opens.len() <= errs.len());
        // SAFETY: the child only makes async-signal-safe calls (open, write, close,
        // _exit) on memory prepared before the fork, so the other threads of the test
        // harness cannot have left it in a state it depends on.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: see above; every pointer is to live memory of this (copied) process.
            unsafe {
                // "0" moves the writer itself.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(100);
                }
                libc::close(fd);
                for (k, (path, flags)) in opens.iter().enumerate() {
                    let fd = libc::open(path.as_ptr(), flags | libc::O_CLOEXEC);
                    errs[k] = if fd < 0 { Errno::last_raw() } else { 0 };
                    if fd >= 0 {
                        libc::close(fd);
                    }
                }
                let len = std::mem::size_of_val(&errs);
                let ok = libc::write(wr.as_raw_fd(), errs.as_ptr().cast(), len) == len as isize;
                libc::_exit(if ok { 0 } else { 101 });
            }
        }
        drop(wr);
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut std::fs::File::from(rd), &mut buf).unwrap();
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "probe child failed: status {status:#x}"
        );
        assert_eq!(buf.len(), std::mem::size_of_val(&errs));
        buf.chunks(4)
            .take(opens.len())
            .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// The real thing: a process in a cgroup with the filter attached gets EPERM for the
    /// devices it is not allowed, and a re-apply replaces berth's filter but leaves
    /// another tool's. Only where /sys/fs/cgroup is cgroup2 (the test VM).
    #[test]
    fn filters_device_access_in_a_cgroup() {
        let root = Path::new("/sys/fs/cgroup");
        match nix::sys::statfs::statfs(root) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => {}
            _ => {
                println!("skipped: {} is not a cgroup2 mount", root.display());
                return;
            }
        }
        if !can_load_bpf() {
            return;
        }
        let cg = TestCgroup(root.join(format!("bpfdev-test-{}", std::process::id())));
        std::fs::create_dir(&cg.0).unwrap();
        let (null, zero, full) = (c"/dev/null", c"/dev/zero", c"/dev/full");
        let (rd, wr, rdwr) = (libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR);

        let only_null = [deny_all(), rule(true, "c", Some(1), Some(3), "rw")];
        attach(&cg.0, &program(&only_null).unwrap()).unwrap();
        let got = probe(&cg.0, &[(null, rdwr), (zero, rd)]);
        println!("null only: null rw -> {}, zero r -> {}", got[0], got[1]);
        assert_eq!(got, [0, libc::EPERM]);

        // Another tool's filter (allowing everything) on the same cgroup.
        let all = [rule(true, "a", None, None, "rwm")];
        attach_as(&cg.0, &program(&all).unwrap(), "other_tool").unwrap();

        let rules = [
            deny_all(),
            rule(true, "c", Some(1), Some(3), "rw"),
            rule(true, "c", Some(1), Some(5), "r"),
        ];
        attach(&cg.0, &program(&rules).unwrap()).unwrap();
        let dir = std::fs::File::open(&cg.0).unwrap();
        let ids = sys::prog_query(dir.as_fd()).unwrap();
        let names: Vec<String> = ids
            .iter()
            .map(|&id| sys::prog_name(sys::prog_fd_by_id(id).unwrap().as_fd()).unwrap())
            .collect();
        println!("attached after re-apply: {names:?}");
        assert_eq!(names.len(), 2);
        assert!(
            names.contains(&"other_tool".to_string()) && names.contains(&PROG_NAME.to_string())
        );

        let got = probe(
            &cg.0,
            &[
                (null, rdwr),
                (zero, rd),
                (zero, wr),
                (zero, rdwr),
                (full, rd),
            ],
        );
        println!(
            "null rw -> {}, zero r -> {}, zero w -> {}, zero rw -> {}, full r -> {}",
            got[0], got[1], got[2], got[3], got[4]
        );
        assert_eq!(got, [0, 0, libc::EPERM, libc::EPERM, libc::EPERM]);
    }
}
