//! The state store: ROOT/ID/state.json, written atomically, one directory per container,
//! locked with flock while a verb changes it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use super::{check_id, state_dir, Container, State};

pub struct Store {
    pub root: PathBuf,
}

/// An exclusive lock on one container's directory, released on drop.
pub struct Lock(#[allow(dead_code)] Flock<std::fs::File>);

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// Makes ROOT/ID for a new container; fails if the id is taken.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("create state root {}", self.root.display()))?;
        let dir = state_dir(&self.root, id);
        match nix::unistd::mkdir(&dir, Mode::from_bits_truncate(0o711)) {
            Ok(()) => Ok(dir),
            Err(nix::errno::Errno::EEXIST) => bail!("container {id:?} already exists"),
            Err(e) => Err(anyhow!("create {}: {e}", dir.display())),
        }
    }

    pub fn lock(&self, dir: &Path) -> Result<Lock> {
        let f = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| anyhow!("lock {}: {e}", dir.display()))
    }

    pub fn load(&self, id: &str) -> Result<Container> {
        check_id(id)?;
        let dir = state_dir(&self.root, id);
        let text = match std::fs::read(dir.join("state.json")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(anyhow!("read state of {id:?}: {e}")),
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

/// Writes `data` to `path` atomically (temp file + rename), so a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

pub fn save(c: &Container) -> Result<()> {
    write_atomic(&c.dir.join("state.json"), &serde_json::to_vec(&c.state)?)
}

/// Creates the exec fifo and opens it read-write (which does not block), for init to hold.
pub fn make_exec_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o622))
        .map_err(|e| anyhow!("mkfifo {}: {e}", path.display()))?;
    let fd = crate::sys::open(path, OFlag::O_RDWR, Mode::empty())
        .map_err(|e| anyhow!("open {}: {e}", path.display()))?;
    debug_assert!(fd.as_raw_fd() > 2);
    Ok(fd)
}
