//! cgroup v2 backend: one directory in the single unified tree.
//!
//! `create` enables no controllers, so it works under a parent whose
//! cgroup.subtree_control is empty, and the "no internal processes" rule never bites
//! because the new cgroup delegates nothing to its children. `apply` enables, in the
//! ancestors only, the controllers the resources need.

use std::path::PathBuf;

use anyhow::Result;

use super::{add_pid, all_pids, mkdir_levels, remove_all};
use super::{Cgroup, Dir};

pub struct V2 {
    dir: Dir,
}

impl V2 {
    pub(super) fn new(dir: Dir) -> V2 {
        V2 { dir }
    }
}

impl Cgroup for V2 {
    fn create(&self) -> Result<()> {
        mkdir_levels(&self.dir, |_| Ok(()))
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        add_pid(&self.dir, pid)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        all_pids(&self.dir.path())
    }

    fn destroy(&self) -> Result<()> {
        remove_all(std::slice::from_ref(&self.dir))
    }

    fn mount_sources(&self) -> Result<Vec<(String, PathBuf)>> {
        Ok(vec![(String::new(), self.dir.path())])
    }

    fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        super::limits_v2::apply(&self.dir, r)
    }

    fn freeze(&self) -> Result<()> {
        super::freezer::freeze_v2(&self.dir.path())
    }

    fn thaw(&self) -> Result<()> {
        super::freezer::thaw_v2(&self.dir.path())
    }

    fn is_frozen(&self) -> Result<bool> {
        super::freezer::state_v2(&self.dir.path())
    }

    fn frozen_effective(&self) -> Result<bool> {
        super::freezer::frozen_effective_v2(&self.dir.path())
    }

    fn stats(&self) -> Result<serde_json::Value> {
        super::stats::stats_v2(&self.dir.path())
    }

    fn oom_kills(&self) -> Result<u64> {
        super::stats::oom_kill_count_v2(&self.dir.path())
    }

    fn memory_usage(&self) -> Result<Option<u64>> {
        super::memory_usage_file(&self.dir.path().join("memory.current"))
    }

    fn kill_atomic(&self) -> Result<bool> {
        let f = self.dir.path().join("cgroup.kill");
        if !f.exists() {
            return Ok(false);
        }
        super::write_file(&f, "1")?;
        Ok(true)
    }
}
