//! cgroup v1 backend: one directory per mounted hierarchy, named ones (name=systemd)
//! included, plus the cgroup2 hierarchy on a hybrid host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{add_pid, all_pids, errno, mkdir_levels, read_file, remove_all, write_file};
use super::{Cgroup, Dir};

pub struct V1 {
    dirs: Vec<Dir>,
}

impl V1 {
    pub(super) fn new(dirs: Vec<Dir>) -> V1 {
        V1 { dirs }
    }

    /// The container's directory in the hierarchy of `controller`.
    fn controller_dir(&self, controller: &str) -> Result<PathBuf> {
        self.dirs
            .iter()
            .find(|d| d.has_v1_controller(controller))
            .map(|d| d.path())
            .ok_or_else(|| {
                anyhow::anyhow!("the {controller} cgroup controller is not mounted on this host")
            })
    }
}

/// Gives a cpuset cgroup its parent's cpus and mems when they are empty: the kernel starts
/// new cpuset cgroups empty (unless the parent has clone_children) and refuses tasks with
/// ENOSPC until both are set.
pub(super) fn fill_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    // Hierarchies mounted with `noprefix` drop the "cpuset." prefix.
    let prefix = if dir.join("cpuset.cpus").exists() {
        "cpuset."
    } else {
        ""
    };
    for name in ["cpus", "mems"] {
        let file = format!("{prefix}{name}");
        let read = |p: &Path| {
            read_file(p)
                .map_err(errno)
                .with_context(|| format!("read {}", p.display()))
        };
        if !read(&dir.join(&file))?.trim().is_empty() {
            continue;
        }
        let inherited = read(&parent.join(&file))?;
        if !inherited.trim().is_empty() {
            write_file(&dir.join(&file), inherited.trim())?;
        }
    }
    Ok(())
}

impl Cgroup for V1 {
    fn create(&self) -> Result<()> {
        for d in &self.dirs {
            let cpuset = d.has_v1_controller("cpuset");
            mkdir_levels(d, |level| if cpuset { fill_cpuset(level) } else { Ok(()) })?;
        }
        Ok(())
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            add_pid(d, pid)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        // Membership is the same in every hierarchy the container was placed in; these
        // controllers are the ones least likely to have been left out of a placement.
        let pick = ["pids", "freezer", "memory"]
            .iter()
            .find_map(|c| self.dirs.iter().find(|d| d.has_v1_controller(c)))
            .or_else(|| self.dirs.first());
        match pick {
            Some(d) => all_pids(&d.path()),
            None => Ok(Vec::new()),
        }
    }

    fn destroy(&self) -> Result<()> {
        remove_all(&self.dirs)
    }

    fn mount_sources(&self) -> Result<Vec<(String, PathBuf)>> {
        self.dirs
            .iter()
            .map(|d| {
                let name = if d.v2 {
                    "unified".to_string()
                } else {
                    d.mountpoint
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .with_context(|| {
                            format!("cgroup mount point {} has no name", d.mountpoint.display())
                        })?
                };
                Ok((name, d.path()))
            })
            .collect()
    }

    fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        super::limits_v1::apply(&self.dirs, r)
    }

    fn freeze(&self) -> Result<()> {
        super::freezer::freeze_v1(&self.controller_dir("freezer")?)
    }

    fn thaw(&self) -> Result<()> {
        super::freezer::thaw_v1(&self.controller_dir("freezer")?)
    }

    fn is_frozen(&self) -> Result<bool> {
        super::freezer::state_v1(&self.controller_dir("freezer")?)
    }

    fn frozen_effective(&self) -> Result<bool> {
        for d in &self.dirs {
            let frozen = if d.v2 {
                super::freezer::frozen_effective_v2(&d.path())?
            } else if d.has_v1_controller("freezer") {
                super::freezer::frozen_effective_v1(&d.path())?
            } else {
                false
            };
            if frozen {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn stats(&self) -> Result<serde_json::Value> {
        let dirs: Vec<(String, PathBuf)> = self
            .dirs
            .iter()
            .filter(|d| !d.v2)
            .map(|d| (d.key.clone(), d.path()))
            .collect();
        super::stats::stats_v1(&dirs)
    }

    fn oom_kills(&self) -> Result<u64> {
        super::stats::oom_kill_count_v1(&self.controller_dir("memory")?)
    }

    fn memory_usage(&self) -> Result<Option<u64>> {
        let Ok(dir) = self.controller_dir("memory") else {
            return Ok(None);
        };
        super::memory_usage_file(&dir.join("memory.usage_in_bytes"))
    }
}
