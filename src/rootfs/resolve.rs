//! Paths inside the container's root, resolved by the kernel (openat2 RESOLVE_IN_ROOT) so that
//! a symlink planted in the rootfs can never take a lookup, or a mount, outside it
//! (CVE-2021-30465, CVE-2023-27561).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::Mode;

fn in_root() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Opens `path` (as the container will see it) inside `root`, with `flags` (O_PATH, say).
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    crate::sys::openat2(root, rel, flags, in_root())
}

/// Opens `path` inside `root` as an O_PATH fd, creating what is missing on the way: directories,
/// and the last component as an empty file when `file` is set (a bind mount of a file needs a
/// file to mount on).
pub fn create_in_root(root: BorrowedFd, path: &Path, file: bool) -> Result<OwnedFd> {
    create_in_root_depth(root, path, file, 0)
}

/// Symlinks followed while creating, at most (the kernel's own limit is 40).
const MAX_LINKS: u32 = 40;

fn create_in_root_depth(root: BorrowedFd, path: &Path, file: bool, depth: u32) -> Result<OwnedFd> {
    if depth > MAX_LINKS {
        bail!("{}: too many levels of symbolic links", path.display());
    }
    match open_in_root(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!("open {}: {e}", path.display())),
    }
    let comps: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    if path.components().any(|c| c == Component::ParentDir) {
        bail!(
            "{}: \"..\" is not allowed in a path to create",
            path.display()
        );
    }
    let mut cur = open_in_root(root, Path::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(|e| anyhow!("open rootfs: {e}"))?;
    let mut sofar = PathBuf::from("/");
    for (i, name) in comps.iter().enumerate() {
        sofar.push(name);
        let last = i + 1 == comps.len();
        match open_in_root(root, &sofar, OFlag::O_PATH) {
            Ok(fd) => {
                cur = fd;
                continue;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => bail!("open {}: {e}", sofar.display()),
        }
        // `cur` was itself resolved inside root, so creating `name` in it stays inside. A
        // dangling symlink in the way makes the create fail (EEXIST) and the reopen below
        // resolve it inside root.
        let dir = crate::sys::openat(
            cur.as_fd(),
            ".",
            OFlag::O_DIRECTORY | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .with_context(|| format!("open {}", sofar.display()))?;
        let made = if last && file {
            crate::sys::openat(
                dir.as_fd(),
                *name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            nix::sys::stat::mkdirat(
                Some(std::os::fd::AsRawFd::as_raw_fd(&dir)),
                *name,
                Mode::from_bits_truncate(0o755),
            )
        };
        match made {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("create {}: {e}", sofar.display()),
        }
        cur = match open_in_root(root, &sofar, OFlag::O_PATH) {
            Ok(fd) => fd,
            // A dangling symlink (an image's /var/run -> /run with no /run, say): create its
            // target, itself resolved inside root, then go through the link.
            Err(Errno::ENOENT) => {
                let target =
                    nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&dir)), *name)
                        .map_err(|e| anyhow!("open {}: {e}", sofar.display()))?;
                let base = sofar.parent().unwrap_or(Path::new("/"));
                let target = clean(&base.join(target));
                create_in_root_depth(root, &target, last && file, depth + 1)?;
                open_in_root(root, &sofar, OFlag::O_PATH)
                    .map_err(|e| anyhow!("open {}: {e}", sofar.display()))?
            }
            Err(e) => bail!("open {}: {e}", sofar.display()),
        };
    }
    Ok(cur)
}

/// Lexically cleans an absolute path: `.` dropped, `..` pops (never above `/`), as the kernel
/// treats `..` at the root of a RESOLVE_IN_ROOT lookup.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-resolve-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlink_to_outside_stays_inside() {
        let d = tmpdir("escape");
        let root = d.join("root");
        let outside = d.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        let rfd =
            crate::sys::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        create_in_root(rfd.as_fd(), Path::new("/evil/sub"), false).unwrap();
        // The absolute link target is taken relative to root: created inside, not outside.
        assert!(!outside.join("sub").exists());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn creates_file_leaf() {
        let d = tmpdir("file");
        let rfd = crate::sys::open(&d, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        create_in_root(rfd.as_fd(), Path::new("/a/b/f"), true).unwrap();
        assert!(d.join("a/b/f").is_file());
        assert!(create_in_root(rfd.as_fd(), Path::new("/a/../x"), false).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
