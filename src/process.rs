//! The container process's own attributes: rlimits, user and groups, capabilities,
//! no_new_privs, umask, environment, and the lookup of the program to exec.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use caps::{CapSet, CapsHashSet};
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, PosixRlimitType, Process};

pub fn resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => Resource::RLIMIT_CPU,
        RlimitFsize => Resource::RLIMIT_FSIZE,
        RlimitData => Resource::RLIMIT_DATA,
        RlimitStack => Resource::RLIMIT_STACK,
        RlimitCore => Resource::RLIMIT_CORE,
        RlimitRss => Resource::RLIMIT_RSS,
        RlimitNproc => Resource::RLIMIT_NPROC,
        RlimitNofile => Resource::RLIMIT_NOFILE,
        RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        RlimitAs => Resource::RLIMIT_AS,
        RlimitLocks => Resource::RLIMIT_LOCKS,
        RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        RlimitNice => Resource::RLIMIT_NICE,
        RlimitRtprio => Resource::RLIMIT_RTPRIO,
        RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

pub fn apply_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        setrlimit(resource(r.typ()), r.soft(), r.hard()).map_err(|e| {
            let why = if e != nix::errno::Errno::EPERM {
                ""
            } else if r.typ() == oci_spec::runtime::PosixRlimitType::RlimitNofile {
                " (above fs.nr_open, or raising a hard limit without CAP_SYS_RESOURCE)"
            } else {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            };
            anyhow!(
                "process.rlimits[{i}]: set {:?} to soft {} hard {}: {e}{why}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    let norm = |s: &str| {
        s.trim_start_matches("CAP_")
            .replace('_', "")
            .to_ascii_uppercase()
    };
    for c in set.iter().flatten() {
        let want = norm(&c.to_string());
        if let Some(k) = caps::all()
            .into_iter()
            .find(|k| norm(&k.to_string()) == want)
        {
            out.insert(k);
        }
    }
    out
}

/// Drops the bounding set while still privileged (it needs CAP_SETPCAP).
pub fn drop_bounding(c: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = c.map(|c| to_caps(c.bounding())).unwrap_or_default();
    for cap in caps::all() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| anyhow!("process.capabilities.bounding: drop {cap}: {e}"))?;
        }
    }
    Ok(())
}

/// Whether this process's user namespace may forbid setgroups: its /proc/self/setgroups
/// says "deny", or no procfs is mounted to tell (the setresgid that follows then fails
/// anyway if the process lacks CAP_SETGID).
fn setgroups_denied() -> bool {
    !crate::sys::read_text("/proc/self/setgroups").is_ok_and(|s| s.trim() == "allow")
}

/// Switches to the process's user and groups, keeping the capabilities through the switch
/// so that the configured sets can then be set exactly.
pub fn set_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    nix::sys::prctl::set_keepcaps(true).context("set keepcaps")?;
    if setgroups_allowed {
        let groups: Vec<Gid> = u
            .additional_gids()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|g| Gid::from_raw(*g))
            .collect();
        match nix::unistd::setgroups(&groups) {
            Ok(()) => {}
            // A user namespace whose maps an unprivileged user wrote has setgroups denied:
            // the process keeps the groups it has, which only a privileged user could drop.
            Err(nix::errno::Errno::EPERM) if groups.is_empty() && setgroups_denied() => {}
            Err(e) => return Err(anyhow!("process.user.additionalGids: setgroups: {e}")),
        }
    } else if u.additional_gids().as_ref().is_some_and(|g| !g.is_empty()) {
        bail!("process.user.additionalGids: setgroups is denied in this user namespace");
    }
    let gid = Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| anyhow!("process.user.gid: setresgid {}: {e}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| anyhow!("process.user.uid: setresuid {}: {e}", u.uid()))?;
    nix::sys::prctl::set_keepcaps(false).context("clear keepcaps")?;
    Ok(())
}

/// Sets inheritable, permitted, effective and ambient exactly as configured.
pub fn set_capabilities(c: Option<&LinuxCapabilities>) -> Result<()> {
    let (inh, prm, eff, amb) = match c {
        Some(c) => (
            to_caps(c.inheritable()),
            to_caps(c.permitted()),
            to_caps(c.effective()),
            to_caps(c.ambient()),
        ),
        None => Default::default(),
    };
    let mask = |s: &CapsHashSet| s.iter().fold(0u64, |m, c| m | c.bitmask());
    crate::sys::capset(mask(&eff), mask(&prm), mask(&inh)).map_err(|e| {
        anyhow!("process.capabilities: capset: {e} (effective must be within permitted, inheritable within bounding)")
    })?;
    caps::clear(None, CapSet::Ambient).map_err(|e| anyhow!("clear ambient: {e}"))?;
    for cap in amb {
        // The kernel refuses an ambient cap that is not also inheritable; runc drops those
        // silently (its default spec asks for such ones), so a config written for runc works.
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            crate::log::debug(&format!(
                "process.capabilities.ambient: {cap} not raised ({e}): it must be permitted and inheritable"
            ));
        }
    }
    Ok(())
}

/// The environment, with HOME from the container's /etc/passwd when the config has none (runc
/// does the same).
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_home(&passwd, uid)
}

fn passwd_home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty())
            .then(|| f[5].to_string())
    })
}

/// Finds the program as execve will: a path as given, otherwise through the container's PATH.
/// Done before `create` returns so a missing binary fails create, as with runc.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let executable = |p: &Path| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        if executable(&p) {
            return Ok(p);
        }
        // runc's words (Go's exec.LookPath): Docker and Podman make "no such file or
        // directory" exit code 127 for the user and "permission denied" 126.
        match std::fs::metadata(&p) {
            Err(e) => {
                let why = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT));
                bail!(
                    "process.args[0]: {arg0:?}: stat {arg0}: {}",
                    why.desc().to_lowercase()
                )
            }
            Ok(_) => bail!("process.args[0]: {arg0:?}: permission denied"),
        }
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let p = Path::new(dir).join(arg0);
        if executable(&p) {
            return Ok(p);
        }
    }
    bail!("process.args[0]: {arg0:?}: executable file not found in $PATH")
}

pub fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| anyhow!("{s:?} contains a NUL byte")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n";
        assert_eq!(passwd_home(pw, 0).as_deref(), Some("/root"));
        assert_eq!(passwd_home(pw, 65534).as_deref(), Some("/nonexistent"));
        assert_eq!(passwd_home(pw, 7), None);
    }

    #[test]
    fn caps_names_map() {
        let set: oci_spec::runtime::Capabilities = serde_json::from_str(
            r#"["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH","CAP_PERFMON","CAP_BPF","CAP_CHECKPOINT_RESTORE"]"#,
        )
        .unwrap();
        let c = to_caps(&Some(set));
        assert_eq!(c.len(), 5);
        assert!(c.contains(&caps::Capability::CAP_PERFMON));
    }

    #[test]
    fn finds_sh_in_path() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).unwrap().ends_with("sh"));
        assert!(find_executable("no-such-program-x", &env).is_err());
    }
}

/// A container program that is, or whose `#!` interpreter or ELF interpreter is, the
/// runtime's binary (a symlink or `#!/proc/self/exe`) would run the runtime inside the
/// container. That is harmless since berth runs from a read-only view of itself (`exe`, the
/// CVE-2019-5736 defence), but it is never what a config means, so it is refused with a clear
/// error, following `#!` and PT_INTERP chains as the kernel would. The check is a courtesy,
/// not the defence: a race can always beat a path check.
pub fn refuse_runtime_exe(program: &Path, runtime: (u64, u64)) -> Result<()> {
    check_exe_chain(program, runtime, 0)
}

fn check_exe_chain(path: &Path, runtime: (u64, u64), depth: u32) -> Result<()> {
    // The kernel allows 4 levels of interpreters (BINPRM_MAX_RECURSION) plus the ELF one.
    if depth > 6 {
        return Ok(());
    }
    let Ok(st) = nix::sys::stat::stat(path) else {
        return Ok(());
    };
    if (st.st_dev, st.st_ino) == runtime {
        bail!(
            "process.args[0]: {} leads to the runtime's own binary (CVE-2019-5736): refused",
            path.display()
        );
    }
    let mut head = [0u8; 4096];
    let n = match std::fs::File::open(path).and_then(|mut f| {
        use std::io::Read;
        f.read(&mut head)
    }) {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        // The kernel reads the line as a C string: it ends at a newline or a NUL byte.
        let line = rest.split(|b| *b == b'\n' || *b == 0).next().unwrap_or(&[]);
        let line = String::from_utf8_lossy(line);
        if let Some(interp) = line.split_whitespace().next() {
            check_exe_chain(Path::new(interp), runtime, depth + 1)?;
        }
    } else if let Some(interp) = elf_interpreter(path, head) {
        check_exe_chain(&interp, runtime, depth + 1)?;
    }
    Ok(())
}

/// The PT_INTERP path of a 64-bit little-endian ELF file, if it has one.
fn elf_interpreter(path: &Path, head: &[u8]) -> Option<PathBuf> {
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as usize;
    let u64_at = |b: &[u8], o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
    };
    let phoff = u64_at(head, 0x20)? as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum.min(64) {
        let o = phoff + i * phentsize;
        let ph = head.get(o..o + 56)?;
        if u32::from_le_bytes(ph[..4].try_into().ok()?) == 3 {
            let (off, size) = (u64_at(ph, 8)? as usize, u64_at(ph, 32)? as usize);
            let mut buf = vec![0u8; size.min(4096)];
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(path).ok()?;
            f.seek(SeekFrom::Start(off as u64)).ok()?;
            f.read_exact(&mut buf).ok()?;
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            return Some(PathBuf::from(
                String::from_utf8_lossy(&buf[..end]).into_owned(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod exe_tests {
    use super::*;

    fn id(p: &Path) -> (u64, u64) {
        let st = nix::sys::stat::stat(p).unwrap();
        (st.st_dev, st.st_ino)
    }

    #[test]
    fn symlink_script_and_elf_chains_are_refused() {
        let d = std::env::temp_dir().join(format!("berth-exe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        // Stand-in for the runtime's binary: /bin/true's inode.
        let rt = id(Path::new("/bin/true"));
        std::os::unix::fs::symlink("/bin/true", d.join("link")).unwrap();
        std::fs::write(d.join("script"), "#!/bin/true -x\n").unwrap();
        std::fs::write(
            d.join("script2"),
            format!("#!{}\n", d.join("script").display()),
        )
        .unwrap();
        assert!(refuse_runtime_exe(&d.join("link"), rt).is_err());
        assert!(refuse_runtime_exe(&d.join("script"), rt).is_err());
        assert!(refuse_runtime_exe(&d.join("script2"), rt).is_err());
        // An ELF program whose interpreter is the "runtime": a dynamic binary's ld.so.
        let interp = elf_interpreter(
            Path::new("/bin/ls"),
            &std::fs::read("/bin/ls").unwrap()[..4096],
        );
        let interp = interp.expect("/bin/ls has an ELF interpreter");
        assert!(refuse_runtime_exe(Path::new("/bin/ls"), id(&interp)).is_err());
        // Ordinary programs pass.
        assert!(refuse_runtime_exe(Path::new("/bin/ls"), rt).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
