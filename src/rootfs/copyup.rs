//! `tmpcopyup` (a runc mount option Podman sends for `--read-only` and `--tmpfs`): a tmpfs
//! mounted over a directory of the image starts with a copy of that directory. The image is
//! the container's, so the copy never follows a symlink: every step is relative to a
//! directory fd and opens with O_NOFOLLOW.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use anyhow::{anyhow, bail, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

/// Deeper trees than this are refused rather than copied (a loop is impossible without
/// following links, but a hostile image could still be very deep).
const MAX_DEPTH: u32 = 128;

/// Copies the contents of directory `from` into directory `to`, and `from`'s owner and mode
/// onto `to` unless `keep_mode` (a `mode=` option chose it).
pub fn copy_dir(from: BorrowedFd, to: BorrowedFd, keep_mode: bool) -> Result<()> {
    let st = nix::sys::stat::fstat(from.as_raw_fd()).map_err(|e| anyhow!("stat source: {e}"))?;
    copy_entries(from, to, 0)?;
    if keep_mode {
        return Ok(());
    }
    nix::unistd::fchown(
        to.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| anyhow!("chown: {e}"))?;
    nix::sys::stat::fchmod(
        to.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(|e| anyhow!("chmod: {e}"))
}

fn open_dir(at: BorrowedFd, name: &std::ffi::OsStr) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(at.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn copy_entries(from: BorrowedFd, to: BorrowedFd, depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!("directory tree deeper than {MAX_DEPTH} levels");
    }
    let names: Vec<std::ffi::OsString> = {
        let mut dir = nix::dir::Dir::openat(
            Some(from.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("open directory: {e}"))?;
        dir.iter()
            .filter_map(|e| e.ok())
            .map(|e| {
                use std::os::unix::ffi::OsStrExt;
                std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string()
            })
            .filter(|n| n != "." && n != "..")
            .collect()
    };
    let (f, t) = (Some(from.as_raw_fd()), Some(to.as_raw_fd()));
    for name in names {
        let what = || name.to_string_lossy().into_owned();
        let st = nix::sys::stat::fstatat(f, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| anyhow!("stat {}: {e}", what()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
        match kind {
            SFlag::S_IFDIR => {
                nix::sys::stat::mkdirat(t, name.as_os_str(), Mode::from_bits_truncate(0o700))
                    .map_err(|e| anyhow!("mkdir {}: {e}", what()))?;
                let sub_from =
                    open_dir(from, &name).map_err(|e| anyhow!("open {}: {e}", what()))?;
                let sub_to = open_dir(to, &name).map_err(|e| anyhow!("open {}: {e}", what()))?;
                copy_entries(
                    std::os::fd::AsFd::as_fd(&sub_from),
                    std::os::fd::AsFd::as_fd(&sub_to),
                    depth + 1,
                )
                .map_err(|e| anyhow!("{}/{e:#}", what()))?;
            }
            SFlag::S_IFREG => {
                let src = nix::fcntl::openat(
                    f,
                    name.as_os_str(),
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| anyhow!("open {}: {e}", what()))?;
                // SAFETY: openat just returned this fd; the File owns it from here.
                let mut src = unsafe { std::fs::File::from_raw_fd(src) };
                let dst = nix::fcntl::openat(
                    t,
                    name.as_os_str(),
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| anyhow!("create {}: {e}", what()))?;
                // SAFETY: as above.
                let mut dst = unsafe { std::fs::File::from_raw_fd(dst) };
                std::io::copy(&mut src, &mut dst).map_err(|e| anyhow!("copy {}: {e}", what()))?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(f, name.as_os_str())
                    .map_err(|e| anyhow!("readlink {}: {e}", what()))?;
                nix::unistd::symlinkat(target.as_os_str(), t, name.as_os_str())
                    .map_err(|e| anyhow!("symlink {}: {e}", what()))?;
            }
            _ => {
                nix::sys::stat::mknodat(t, name.as_os_str(), kind, perm, st.st_rdev)
                    .map_err(|e| anyhow!("mknod {}: {e}", what()))?;
            }
        }
        nix::unistd::fchownat(
            t,
            name.as_os_str(),
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| anyhow!("chown {}: {e}", what()))?;
        if kind != SFlag::S_IFLNK {
            // After chown, which clears set-id bits.
            nix::sys::stat::fchmodat(
                t,
                name.as_os_str(),
                perm,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| anyhow!("chmod {}: {e}", what()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_files_dirs_links_modes_and_owners_without_following_links() {
        let base = std::env::temp_dir().join(format!("berth-copyup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("file"), "content").unwrap();
        std::fs::write(src.join("sub/deeper/f2"), "x").unwrap();
        std::fs::set_permissions(src.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1777)).unwrap();
        // A link out of the tree is copied as a link, never through.
        std::os::unix::fs::symlink("/etc/passwd", src.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", src.join("escapedir")).unwrap();
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(src.join("file"), Some(1234), Some(5678)).unwrap();
        }
        let open = |p: &std::path::Path| std::fs::File::open(p).unwrap();
        let (s, d) = (open(&src), open(&dst));
        copy_dir(
            std::os::fd::AsFd::as_fd(&s),
            std::os::fd::AsFd::as_fd(&d),
            false,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.join("file")).unwrap(),
            "content"
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/deeper/f2")).unwrap(),
            "x"
        );
        let m = std::fs::metadata(dst.join("file")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        if nix::unistd::geteuid().is_root() {
            assert_eq!((m.uid(), m.gid()), (1234, 5678));
        }
        assert_eq!(
            std::fs::metadata(&dst).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            std::fs::read_link(dst.join("escape")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        assert!(std::fs::symlink_metadata(dst.join("escapedir"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
