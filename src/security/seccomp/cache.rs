//! A cache of compiled filters: libseccomp takes milliseconds to compile a large profile
//! (Podman's or Docker's default) and every container of an engine uses the same one.
//!
//! A file holds what [`Filter`] holds (the BPF program, the kernel flags, whether it needs a
//! listener) plus the warnings compiling gave, so a hit repeats them. Its name is the FNV-1a
//! hash of the key: the canonical JSON of the profile, the kernel (libseccomp probes it for
//! supported actions and berth for supported flags), the libseccomp version and file, and
//! berth's version and executable (a rebuild may compile differently under the same version). The
//! file also holds the whole key, compared byte for byte on a hit: FNV is not
//! collision-resistant, and a profile crafted to collide with another must not get its filter.
//!
//! Files are written whole to a temporary name and renamed, 0600, in a directory that only the
//! runtime's user may write; a file that fails any check (owner, mode, magic, length,
//! checksum, key) is ignored and rewritten. No fsync: a file lost or truncated by a crash is
//! just a miss.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Result};
use oci_spec::runtime::LinuxSeccomp;

use super::{build, check, kernel, libseccomp_version, Filter, P};

const MAGIC: &[u8; 8] = b"BERTHBPF";
/// Bumped whenever the layout or the meaning of a field changes.
const FORMAT: u32 = 1;
/// magic, format, flags, notify, key length, warnings length, instruction count.
const HEADER: usize = 8 + 6 * 4;
const KNOWN_FLAGS: u32 = kernel::FLAG_TSYNC
    | kernel::FLAG_LOG
    | kernel::FLAG_SPEC_ALLOW
    | kernel::FLAG_WAIT_KILLABLE_RECV;
/// No real key is near this (the Podman profile's JSON is ~20 KiB); it bounds what a
/// corrupt length field can make us read.
const MAX_FILE: u64 = 16 << 20;

/// [`super::compile`] through the cache in `cache_dir` (created 0700 if missing). Any
/// problem with the cache only costs a compile: it is reported as a warning, never an error.
pub fn compile_cached(s: &LinuxSeccomp, cache_dir: &Path) -> Result<Filter> {
    // A hit must refuse exactly what a compile refuses.
    check(s)?;
    let key = key(s)?;
    let path = cache_dir.join(file_name(&key));
    let usable = match usable_dir(cache_dir) {
        Ok(()) => true,
        Err(e) => {
            crate::log::warn(&format!(
                "{P}: not caching in {}: {e:#}",
                cache_dir.display()
            ));
            false
        }
    };
    if usable {
        match read(&path, &key) {
            Ok(Some((filter, warnings))) => {
                for w in &warnings {
                    crate::log::warn(w);
                }
                crate::log::debug(&format!("{P}: filter from cache {}", path.display()));
                return Ok(filter);
            }
            Ok(None) => {}
            Err(e) => crate::log::debug(&format!(
                "{P}: ignoring cache file {}: {e:#}",
                path.display()
            )),
        }
    }
    let c = build(s)?;
    for w in &c.warnings {
        crate::log::warn(w);
    }
    if usable {
        if let Err(e) = write(cache_dir, &path, &encode(&key, &c.filter, &c.warnings)) {
            crate::log::warn(&format!("{P}: write cache file {}: {e:#}", path.display()));
        }
        prune(cache_dir, MAX_ENTRIES);
    }
    Ok(c.filter)
}

/// How many filters the cache keeps. A node runs few distinct profiles at a time (an
/// engine's default and a handful of custom ones); every upgrade of berth, libseccomp or
/// the kernel changes every key, so without a bound the stale files would pile up forever.
const MAX_ENTRIES: usize = 32;

/// A temporary file older than this was left by a runtime that died while writing it.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps the `keep` most recently written filters and removes the rest, with temporary
/// files left by crashed writers. Runs only after a miss, so hits pay nothing; failures
/// only leave files for the next prune.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut filters = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(m) = e.metadata() else { continue };
        let mtime = m.modified().unwrap_or(std::time::UNIX_EPOCH);
        if name.ends_with(".bpf") && m.is_file() {
            filters.push((mtime, e.path()));
        } else if name.starts_with('.')
            && name.ends_with(".tmp")
            && now.duration_since(mtime).unwrap_or_default() > STALE_TMP
        {
            let _ = fs::remove_file(e.path());
        }
    }
    if filters.len() <= keep {
        return;
    }
    // Newest first; what is past `keep` goes.
    filters.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in &filters[keep..] {
        let _ = fs::remove_file(path);
    }
}

fn file_name(key: &[u8]) -> String {
    format!("{:016x}.bpf", fnv1a64(key))
}

/// Everything the compiled program depends on.
fn key(s: &LinuxSeccomp) -> Result<Vec<u8>> {
    let uts = nix::sys::utsname::uname()?;
    let mut k = format!(
        "berth {} {}\nlibseccomp {} {}\nkernel {} {}\narch {}\n",
        env!("CARGO_PKG_VERSION"),
        exe_identity(),
        libseccomp_version(),
        libseccomp_identity(),
        uts.release().to_string_lossy(),
        uts.version().to_string_lossy(),
        std::env::consts::ARCH,
    )
    .into_bytes();
    // Serializing the typed profile gives one text per meaning: fields in a fixed order,
    // unknown fields and whitespace of config.json gone.
    serde_json::to_writer(&mut k, s)?;
    Ok(k)
}

/// Which build of berth this is: a rebuild that changes how profiles compile keeps the
/// version number, but not the executable's inode, size and mtime.
fn exe_identity() -> String {
    match fs::metadata("/proc/self/exe") {
        Ok(m) => format!(
            "{}:{}:{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ),
        Err(_) => String::new(),
    }
}

/// Which libseccomp file is mapped: distributions patch it (new system call names) without
/// changing the version it reports. /proc/self/maps gives its device, inode and path.
/// Linked statically (.cargo/config.toml, issue 16) it is part of the executable, which
/// `exe_identity` names: then there is nothing to read.
fn libseccomp_identity() -> String {
    if libseccomp_static() {
        return "static".to_string();
    }
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
        return String::new();
    };
    maps.lines()
        .find(|l| l.contains("/libseccomp.so"))
        .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// libseccomp-sys's link type, as cargo passed it to this build.
pub(super) fn libseccomp_static() -> bool {
    option_env!("LIBSECCOMP_LINK_TYPE") == Some("static")
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's DefaultHasher.
fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The directory exists (created if not), is a real directory, belongs to us, and nobody else
/// can write in it (or they could plant a filter).
fn usable_dir(dir: &Path) -> Result<()> {
    if let Err(e) = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        bail!("create: {e}");
    }
    let m = fs::symlink_metadata(dir)?;
    if !m.is_dir() {
        bail!("not a directory");
    }
    let euid = nix::unistd::geteuid().as_raw();
    if m.uid() != euid {
        bail!("owned by uid {}, not {euid}", m.uid());
    }
    if m.mode() & 0o022 != 0 {
        bail!("writable by group or others (mode {:o})", m.mode() & 0o7777);
    }
    Ok(())
}

fn encode(key: &[u8], f: &Filter, warnings: &[String]) -> Vec<u8> {
    let warn = warnings.join("\n");
    let mut b = Vec::with_capacity(HEADER + key.len() + warn.len() + f.prog.len() * 8 + 8);
    b.extend_from_slice(MAGIC);
    for v in [
        FORMAT,
        f.flags,
        f.notify as u32,
        key.len() as u32,
        warn.len() as u32,
        f.prog.len() as u32,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(key);
    b.extend_from_slice(warn.as_bytes());
    for i in &f.prog {
        b.extend_from_slice(&i.code.to_le_bytes());
        b.push(i.jt);
        b.push(i.jf);
        b.extend_from_slice(&i.k.to_le_bytes());
    }
    let sum = fnv1a64(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// The filter in `data` if it is whole and was compiled for `key`.
fn decode(data: &[u8], key: &[u8]) -> Result<(Filter, Vec<String>)> {
    if data.len() < HEADER + 8 {
        bail!("truncated ({} bytes)", data.len());
    }
    let (body, sum) = data.split_at(data.len() - 8);
    if fnv1a64(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
        bail!("checksum mismatch");
    }
    if &body[..8] != MAGIC {
        bail!("not a berth seccomp cache file");
    }
    let word = |i: usize| u32::from_le_bytes(body[8 + 4 * i..12 + 4 * i].try_into().expect("4"));
    let (format, flags, notify) = (word(0), word(1), word(2));
    let (key_len, warn_len, n) = (word(3) as usize, word(4) as usize, word(5) as usize);
    if format != FORMAT {
        bail!("format {format}, not {FORMAT}");
    }
    if flags & !KNOWN_FLAGS != 0 || notify > 1 {
        bail!("bad flags {flags:#x} / notify {notify}");
    }
    if n == 0 || n > kernel::BPF_MAXINSNS {
        bail!("{n} instructions");
    }
    if body.len() != HEADER + key_len + warn_len + n * 8 {
        bail!("length {} does not match its header", data.len());
    }
    let rest = &body[HEADER..];
    let (k, rest) = rest.split_at(key_len);
    if k != key {
        bail!("compiled for another profile or system (hash collision or stale)");
    }
    let (w, insns) = rest.split_at(warn_len);
    let w = std::str::from_utf8(w)?;
    let warnings = if w.is_empty() {
        Vec::new()
    } else {
        w.split('\n').map(str::to_string).collect()
    };
    let prog = insns
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let filter = Filter {
        prog,
        flags,
        notify: notify == 1,
    };
    Ok((filter, warnings))
}

/// Ok(None) when there is no cache file.
fn read(path: &Path, key: &[u8]) -> Result<Option<(Filter, Vec<String>)>> {
    let f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("open: {e}"),
    };
    let m = f.metadata()?;
    let euid = nix::unistd::geteuid().as_raw();
    if !m.is_file() || m.uid() != euid || m.mode() & 0o022 != 0 {
        bail!("not a regular file of uid {euid} writable only by it");
    }
    let mut data = Vec::with_capacity(m.len().min(MAX_FILE) as usize);
    f.take(MAX_FILE).read_to_end(&mut data)?;
    decode(&data, key).map(Some)
}

fn write(dir: &Path, path: &Path, data: &[u8]) -> Result<()> {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // A leftover of a crashed run with our pid; create_new below refuses to reuse it.
    let _ = fs::remove_file(&tmp);
    let r = (|| -> Result<()> {
        let mut f: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        drop(f);
        // Readers see the old file or the new one, never a partial one.
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
pub(super) fn tests_key(s: &LinuxSeccomp) -> Vec<u8> {
    key(s).unwrap()
}

#[cfg(test)]
pub(super) fn tests_read(dir: &Path, key: &[u8]) -> (Filter, Vec<String>) {
    read(&dir.join(file_name(key)), key).unwrap().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_drops_stale_temporaries() {
        let dir = std::env::temp_dir().join(format!("berth-bpf-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        let now = std::time::SystemTime::now();
        let touch = |name: &str, age_s: u64| {
            let p = dir.join(name);
            fs::write(&p, b"x").unwrap();
            let f = File::options().write(true).open(&p).unwrap();
            f.set_modified(now - std::time::Duration::from_secs(age_s))
                .unwrap();
        };
        for i in 0..10u64 {
            touch(&format!("{i:016x}.bpf"), i * 10);
        }
        touch(".old.1.tmp", 600);
        touch(".new.2.tmp", 1);
        touch("unrelated", 9999);
        prune(&dir, 4);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            left,
            [
                ".new.2.tmp",
                "0000000000000000.bpf",
                "0000000000000001.bpf",
                "0000000000000002.bpf",
                "0000000000000003.bpf",
                "unrelated"
            ]
        );
    }

    #[test]
    fn fnv1a64_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    fn sample() -> Filter {
        Filter {
            prog: vec![
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 4,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 1,
                    jf: 2,
                    k: 0x7fff_0000,
                },
            ],
            flags: kernel::FLAG_LOG,
            notify: true,
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let f = sample();
        let w = vec!["one".to_string(), "two".to_string()];
        let data = encode(b"KEY", &f, &w);
        let (g, w2) = decode(&data, b"KEY").unwrap();
        assert_eq!(
            super::super::tests::prog_bytes(&g),
            super::super::tests::prog_bytes(&f)
        );
        assert_eq!((g.flags, g.notify), (f.flags, f.notify));
        assert_eq!(w2, w);
        let (_, none) = decode(&encode(b"KEY", &f, &[]), b"KEY").unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn decode_refuses_damage_and_other_keys() {
        let data = encode(b"KEY", &sample(), &[]);
        assert!(decode(&data, b"KEX").is_err(), "other key");
        for cut in [0, 1, HEADER, data.len() / 2, data.len() - 1] {
            assert!(decode(&data[..cut], b"KEY").is_err(), "truncated to {cut}");
        }
        for i in [0, 9, HEADER + 1, data.len() - 9, data.len() - 1] {
            let mut bad = data.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad, b"KEY").is_err(), "byte {i} flipped");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode(&longer, b"KEY").is_err());
    }
}
