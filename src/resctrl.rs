//! linux.intelRdt: the container's processes in a resctrl group (config-linux.md "IntelRdt"):
//! the group named by closID (or the container id), its schemata written or checked, and
//! optionally a monitoring group of the container's own.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

/// Where resctrl is mounted; its `schemata` file says it is there.
pub const ROOT: &str = "/sys/fs/resctrl";

/// What berth made in resctrl for one container, kept in its state to be undone at delete.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The control group (ROOT/closID) the container's processes go to.
    pub dir: PathBuf,
    /// berth created `dir` (so delete removes it); a closID that already existed is shared.
    pub created: bool,
    /// A monitoring group (dir/mon_groups/ID) the processes go to instead, when asked.
    pub monitor: Option<PathBuf>,
}

/// Checks the fields (at load, before anything exists).
pub fn check(rdt: &LinuxIntelRdt) -> Result<()> {
    if let Some(c) = rdt.clos_id() {
        if c.is_empty() || c == "." || c == ".." || c.contains('/') || c.contains('\n') {
            bail!("linux.intelRdt.closID: {c:?} is not a directory name");
        }
    }
    if let Some(m) = rdt.mem_bw_schema() {
        if !m.starts_with("MB:") || m.contains('\n') {
            bail!("linux.intelRdt.memBwSchema: {m:?} must be one line starting with \"MB:\"");
        }
    }
    if !Path::new(ROOT).join("schemata").exists() {
        bail!("linux.intelRdt: resctrl is not mounted at {ROOT} on this host (no Intel RDT)");
    }
    Ok(())
}

/// The lines for the group's schemata file: `schemata` as given, else l3CacheSchema (less
/// its MB: lines when memBwSchema is set) and memBwSchema.
pub fn schemata_lines(rdt: &LinuxIntelRdt) -> Vec<String> {
    if let Some(s) = rdt.schemata().as_ref().filter(|s| !s.is_empty()) {
        return s.iter().map(|l| l.trim().to_string()).collect();
    }
    let mb = rdt.mem_bw_schema().as_deref().filter(|s| !s.is_empty());
    let mut lines: Vec<String> = rdt
        .l3_cache_schema()
        .as_deref()
        .unwrap_or("")
        .lines()
        .map(str::trim)
        // An MB: line in l3CacheSchema gives way to memBwSchema.
        .filter(|l| !l.is_empty())
        .filter(|l| mb.is_none() || !l.starts_with("MB:"))
        .map(String::from)
        .collect();
    lines.extend(mb.map(String::from));
    lines
}

/// One schemata line as the kernel means it: resource, and each domain's value with the
/// padding and leading zeros the kernel prints ("MB:0= 20", "L3:0=07f0") taken out.
fn parse_line(line: &str) -> Option<(String, Vec<(String, String)>)> {
    let (res, rest) = line.split_once(':')?;
    let mut doms: Vec<(String, String)> = rest
        .split(';')
        .filter(|d| !d.trim().is_empty())
        .map(|d| {
            let (id, v) = d.split_once('=').unwrap_or((d, ""));
            let v = v.trim().to_ascii_lowercase();
            let v = v.trim_start_matches('0');
            (
                id.trim().to_string(),
                if v.is_empty() { "0" } else { v }.to_string(),
            )
        })
        .collect();
    doms.sort();
    Some((res.trim().to_string(), doms))
}

/// Whether every line we would write is already what `current` (a schemata file) says.
pub fn schemata_match(current: &str, want: &[String]) -> bool {
    let have: Vec<_> = current.lines().filter_map(parse_line).collect();
    want.iter().all(|w| match parse_line(w) {
        Some((res, doms)) => have
            .iter()
            .any(|(r, d)| *r == res && doms.iter().all(|x| d.contains(x))),
        None => false,
    })
}

/// Makes or checks the container's group under `root` (ROOT but in tests); nothing is left
/// behind on error.
pub fn prepare(rdt: &LinuxIntelRdt, id: &str, root: &Path) -> Result<Group> {
    let name = rdt.clos_id().clone().unwrap_or_else(|| id.to_string());
    let dir = root.join(&name);
    let lines = schemata_lines(rdt);
    let exists = dir.is_dir();
    let mut created = false;
    if exists && !lines.is_empty() {
        let cur = std::fs::read_to_string(dir.join("schemata"))
            .with_context(|| format!("linux.intelRdt: read {}/schemata", dir.display()))?;
        if !schemata_match(&cur, &lines) {
            bail!(
                "linux.intelRdt: resctrl group {name:?} exists with another schemata ({}); want {}",
                cur.trim().replace('\n', "; "),
                lines.join("; ")
            );
        }
    } else if !exists {
        if rdt.clos_id().is_some() && lines.is_empty() {
            bail!("linux.intelRdt.closID: resctrl group {name:?} does not exist and no schema is given to create it");
        }
        std::fs::create_dir(&dir)
            .map_err(|e| anyhow!("linux.intelRdt: create {}: {e}", dir.display()))?;
        created = true;
        if !lines.is_empty() {
            let text = lines.join("\n") + "\n";
            if let Err(e) = std::fs::write(dir.join("schemata"), text) {
                let _ = std::fs::remove_dir(&dir);
                bail!("linux.intelRdt: write {}/schemata: {e}", dir.display());
            }
        }
    }
    let mut g = Group {
        dir,
        created,
        monitor: None,
    };
    #[allow(deprecated)]
    let monitoring = rdt.enable_monitoring().unwrap_or(false)
        || rdt.enable_cmt().unwrap_or(false)
        || rdt.enable_mbm().unwrap_or(false);
    if monitoring {
        let mon = g.dir.join("mon_groups").join(id);
        if let Err(e) = std::fs::create_dir(&mon) {
            let err = anyhow!("linux.intelRdt: create {}: {e}", mon.display());
            g.destroy();
            return Err(err);
        }
        g.monitor = Some(mon);
    }
    Ok(g)
}

impl Group {
    /// Puts a process (and the children it forks from now on) in the group.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        let tasks = self.monitor.as_ref().unwrap_or(&self.dir).join("tasks");
        std::fs::write(&tasks, pid.to_string()).map_err(|e| {
            anyhow!(
                "linux.intelRdt: write pid {pid} to {}: {e}",
                tasks.display()
            )
        })
    }

    /// Removes what berth created (resctrl moves the tasks back to the parent group).
    pub fn destroy(&self) {
        if let Some(m) = &self.monitor {
            let _ = std::fs::remove_dir(m);
        }
        if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(json: &str) -> LinuxIntelRdt {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn schemata_follow_the_spec_rules() {
        assert_eq!(
            schemata_lines(&rdt(
                r#"{"l3CacheSchema":"L3:0=7f0;1=1f","memBwSchema":"MB:0=20;1=70"}"#
            )),
            ["L3:0=7f0;1=1f", "MB:0=20;1=70"]
        );
        // An MB: line inside l3CacheSchema gives way to memBwSchema.
        assert_eq!(
            schemata_lines(&rdt(
                r#"{"l3CacheSchema":"L3:0=ff\nMB:0=50","memBwSchema":"MB:0=20"}"#
            )),
            ["L3:0=ff", "MB:0=20"]
        );
        assert_eq!(
            schemata_lines(&rdt(r#"{"l3CacheSchema":"L3:0=ff\nMB:0=50"}"#)),
            ["L3:0=ff", "MB:0=50"]
        );
        // runtime-spec 1.3 schemata replaces both.
        assert_eq!(
            schemata_lines(&rdt(
                r#"{"schemata":["L3:0=f","L2:0=3"],"l3CacheSchema":"L3:0=ff"}"#
            )),
            ["L3:0=f", "L2:0=3"]
        );
        assert!(schemata_lines(&rdt(r#"{"closID":"x"}"#)).is_empty());
    }

    #[test]
    fn schemata_compare_as_the_kernel_prints_them() {
        let kernel = "    L3:0=007f0;1=0001f\n    MB:0= 20;1= 70\n";
        assert!(schemata_match(
            kernel,
            &["L3:0=7f0;1=1f".into(), "MB:0=20;1=70".into()]
        ));
        assert!(!schemata_match(kernel, &["L3:0=7f0;1=3f".into()]));
        assert!(!schemata_match(kernel, &["L2:0=3".into()]));
    }

    #[test]
    fn check_refuses_bad_names_and_schemas() {
        let e = |j: &str| format!("{:#}", check(&rdt(j)).unwrap_err());
        assert!(e(r#"{"closID":"../x"}"#).starts_with("linux.intelRdt.closID"));
        assert!(e(r#"{"memBwSchema":"L3:0=1"}"#).starts_with("linux.intelRdt.memBwSchema"));
    }

    /// The group logic on a plain directory standing in for resctrl (this machine has no
    /// RDT): create, refuse a mismatch, share an existing group, undo.
    #[test]
    fn groups_are_made_checked_and_undone() {
        let root = std::env::temp_dir().join(format!("berth-resctrl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // A plain directory has no mon_groups: the group made for c1 is undone.
        let e = prepare(&rdt(r#"{"enableMonitoring":true}"#), "c1", &root).unwrap_err();
        assert!(format!("{e:#}").contains("mon_groups"), "{e:#}");
        // An existing group, with mon_groups as the kernel makes it.
        std::fs::create_dir_all(root.join("c1x/mon_groups")).unwrap();
        let g = prepare(
            &rdt(r#"{"closID":"c1x","enableMonitoring":true}"#),
            "c1",
            &root,
        )
        .unwrap();
        assert!(!root.join("c1").exists(), "a failed prepare leaves nothing");
        assert_eq!(g.dir, root.join("c1x"));
        assert!(!g.created);
        g.add_task(4242).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("c1x/mon_groups/c1/tasks")).unwrap(),
            "4242"
        );
        // resctrl's own files go with rmdir; a plain directory's must go first.
        std::fs::remove_file(root.join("c1x/mon_groups/c1/tasks")).unwrap();
        g.destroy();
        assert!(!root.join("c1x/mon_groups/c1").exists());
        assert!(root.join("c1x").exists(), "a shared group stays");

        let g = prepare(&rdt(r#"{"l3CacheSchema":"L3:0=f"}"#), "c2", &root).unwrap();
        assert!(g.created);
        assert_eq!(
            std::fs::read_to_string(root.join("c2/schemata")).unwrap(),
            "L3:0=f\n"
        );
        let e = prepare(
            &rdt(r#"{"closID":"c2","l3CacheSchema":"L3:0=3"}"#),
            "c3",
            &root,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("another schemata"), "{e:#}");
        let same = prepare(
            &rdt(r#"{"closID":"c2","l3CacheSchema":"L3:0=0f"}"#),
            "c3",
            &root,
        )
        .unwrap();
        assert!(!same.created);
        let e = prepare(&rdt(r#"{"closID":"nope"}"#), "c4", &root).unwrap_err();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        std::fs::remove_file(root.join("c2/schemata")).unwrap();
        g.destroy();
        assert!(!root.join("c2").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
