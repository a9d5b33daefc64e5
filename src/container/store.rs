//! The state store: ROOT/ID/state.json, written atomically, one directory per container,
//! locked with flock while a verb changes it.
//!
//! Whatever the caller's umask, the root is created 0700, each container's directory is 0700
//! and every file in it 0600 (modes set with fchmod, not left to the umask): a state file
//! another user could write would let them add a hook that root's `delete` runs, or start a
//! container through its exec fifo. A root or container directory that exists and that
//! another user could write (not ours, or group/other-writable) is refused.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use super::{check_id, state_dir, Container, State};

pub struct Store {
    pub root: PathBuf,
}

/// An exclusive lock on one container's directory, released on drop.
pub struct Lock(Flock<std::fs::File>);

/// How long a command waits for another one that holds a container's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// Creates the root (0700, and any missing parent) if it is missing, and checks that no
    /// other user can write in it.
    pub fn ensure_root(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("create state root {}", self.root.display()))?;
        self.check_root()
    }

    /// Refuses a root that another user could write in (a missing one is fine: it holds
    /// nothing to trust).
    pub fn check_root(&self) -> Result<()> {
        check_dir(&self.root).map(drop)
    }

    /// Makes ROOT/ID (0700) for a new container; fails if the id is taken.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        self.ensure_root()?;
        let dir = state_dir(&self.root, id);
        match nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => bail!("container with given ID already exists: {id}"),
            Err(e) => bail!("create {}: {e}", dir.display()),
        }
        // The umask can only have taken bits away; this makes it exactly 0700.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod {}", dir.display()))?;
        Ok(dir)
    }

    /// Takes the container's lock, waiting for the command that holds it (a `create` in
    /// flight holds it until its state is complete), but not forever: no command may hang.
    pub fn lock(&self, dir: &Path) -> Result<Lock> {
        let mut f = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(Lock(l)),
                Err((back, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR))
                    if std::time::Instant::now() < deadline =>
                {
                    f = back;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                    "{} is locked by another berth command for over {}s",
                    dir.display(),
                    LOCK_WAIT.as_secs()
                ),
                Err((_, e)) => bail!("lock {}: {e}", dir.display()),
            }
        }
    }

    /// The raw fd of a lock, for the forked container processes to close at once (a lock
    /// an init inherited would be held until `start`).
    pub fn lock_fd(l: &Lock) -> std::os::fd::RawFd {
        l.0.as_raw_fd()
    }

    /// A missing container is "container does not exist", runc's words: containerd's shim
    /// takes a delete or kill error with "does not exist" as the container being gone, Docker
    /// reads "container does not exist" as not-found. Callers add the verb and the id.
    pub fn load(&self, id: &str) -> Result<Container> {
        check_id(id)?;
        self.check_root()?;
        let dir = state_dir(&self.root, id);
        if !check_dir(&dir)? {
            bail!("container does not exist");
        }
        let text = match read_private(&dir.join("state.json")) {
            Ok(Some(t)) => t,
            Ok(None) => bail!("container does not exist"),
            Err(e) => return Err(e.context(format!("read state of {id:?}"))),
        };
        let state: State = serde_json::from_slice(&text)
            .with_context(|| format!("state of {id:?} in {} is corrupt", dir.display()))?;
        Ok(Container { state, dir })
    }

    /// Whether ROOT/ID/state.json exists (`id` checked by the caller).
    pub fn has_state(&self, id: &str) -> bool {
        state_dir(&self.root, id).join("state.json").exists()
    }

    /// Removes ROOT/ID if it holds no state (`id` checked by the caller).
    pub fn remove_leftover(&self, id: &str) {
        let dir = state_dir(&self.root, id);
        if dir.is_dir() && !dir.join("state.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    pub fn load_all(&self) -> Result<Vec<Container>> {
        self.check_root()?;
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(anyhow!("read {}: {e}", self.root.display())),
        };
        for ent in rd.flatten() {
            if let Some(id) = ent.file_name().to_str() {
                if let Ok(c) = self.load(id) {
                    out.push(c);
                }
            }
        }
        out.sort_by(|a, b| a.state.id.cmp(&b.state.id));
        Ok(out)
    }
}

/// Whether `dir` exists; an error if it is not a directory, or if a user other than us could
/// write in it (owned by another uid, or writable by group or others). Symlinks to it are
/// followed: what counts is the directory berth ends up using.
fn check_dir(dir: &Path) -> Result<bool> {
    let m = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => bail!("state dir {}: {e}", dir.display()),
    };
    if !m.is_dir() {
        bail!("state dir {}: not a directory", dir.display());
    }
    let euid = nix::unistd::geteuid().as_raw();
    if m.uid() != euid {
        bail!(
            "state dir {} is owned by uid {}, not {euid}: refusing to use it",
            dir.display(),
            m.uid()
        );
    }
    if m.mode() & 0o022 != 0 {
        bail!(
            "state dir {} is writable by group or others (mode {:o}): refusing to use it",
            dir.display(),
            m.mode() & 0o7777
        );
    }
    Ok(true)
}

/// The contents of a state file (None if missing), refused unless it is a regular file of
/// ours that no other user can write. Never follows a symlink.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("open {}: {e}", path.display()),
    };
    let m = f.metadata()?;
    let euid = nix::unistd::geteuid().as_raw();
    if !m.is_file() || m.uid() != euid || m.mode() & 0o022 != 0 {
        bail!(
            "{} is not a regular file of uid {euid} that only it can write (uid {}, mode {:o}): refusing to use it",
            path.display(),
            m.uid(),
            m.mode() & 0o7777
        );
    }
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut data)
        .with_context(|| format!("read {}", path.display()))?;
    Ok(Some(data))
}

/// Writes `data` to `path` atomically: a new temp file `PATH.tmp` then a rename, so a reader
/// never sees half a file, and a symlink at PATH is replaced, not followed. The temp file is
/// created with O_EXCL|O_NOFOLLOW: whatever sits at PATH.tmp (a crash's leftover, or a
/// symlink planted to make root overwrite another file) is unlinked, never written through.
/// The file is created with `mode` (less what the umask takes) and, with `exact`, then
/// fchmod'ed to exactly `mode`.
fn write_atomic(path: &Path, data: &[u8], mode: u32, exact: bool) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    let mut f = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // unlink removes a symlink itself; if something is planted again meanwhile,
            // create_new fails once more and so do we.
            std::fs::remove_file(&tmp)
                .and_then(|()| open())
                .with_context(|| format!("create {}", tmp.display()))?
        }
        r => r.with_context(|| format!("create {}", tmp.display()))?,
    };
    let r = (|| -> Result<()> {
        if exact {
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("chmod {}", tmp.display()))?;
        }
        f.write_all(data)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// A file in a container's state directory: 0600 whatever the umask.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    write_atomic(path, data, 0o600, true)
}

/// A `--pid-file` at a path the caller gave: readable by all as runc's (0644, less the
/// caller's umask), never writable by others.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    write_atomic(path, pid.to_string().as_bytes(), 0o644, false)
        .with_context(|| format!("--pid-file {}", path.display()))
}

pub fn save(c: &Container) -> Result<()> {
    write_private(&c.dir.join("state.json"), &serde_json::to_vec(&c.state)?)
}

/// Creates the exec fifo (0600: only the runtime writes it, at `start`) and opens it
/// read-write (which does not block), for init to hold.
pub fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
        .map_err(|e| anyhow!("mkfifo {}: {e}", path.display()))?;
    let fd = crate::sys::open(path, OFlag::O_RDWR | OFlag::O_NOFOLLOW, Mode::empty())
        .map_err(|e| anyhow!("open {}: {e}", path.display()))?;
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o600))
        .map_err(|e| anyhow!("chmod {}: {e}", path.display()))?;
    debug_assert!(fd.as_raw_fd() > 2);
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_planted_temp_symlink_is_replaced_not_followed() {
        let d = scratch("tmp");
        let victim = d.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("pid.tmp")).unwrap();
        write_pid_file(&d.join("pid"), 42).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(d.join("pid")).unwrap(), "42");
        assert!(!d.join("pid.tmp").exists());
        // A symlink at the file itself is replaced by the rename.
        std::os::unix::fs::symlink(&victim, d.join("state.json")).unwrap();
        write_private(&d.join("state.json"), b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(mode(&d.join("state.json")), 0o600);
        assert!(mode(&d.join("pid")) & 0o022 == 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn roots_others_can_write_are_refused() {
        let d = scratch("root");
        for (m, ok) in [(0o700, true), (0o711, true), (0o755, true), (0o775, false)] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(m)).unwrap();
            let r = Store::new(&d).check_root();
            assert_eq!(r.is_ok(), ok, "mode {m:o}: {r:?}");
            if let Err(e) = r {
                assert!(format!("{e:#}").contains(&*d.to_string_lossy()));
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Store::new(&d).load("x").is_err());
        assert!(Store::new(&d).load_all().is_err());
        // Missing: nothing to distrust; created 0700.
        let fresh = d.join("a/b");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(Store::new(&fresh).check_root().is_ok());
        let s = Store::new(&fresh);
        let dir = s.create_dir("c1").unwrap();
        assert_eq!(
            (mode(&fresh), mode(&d.join("a")), mode(&dir)),
            (0o700, 0o700, 0o700)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
