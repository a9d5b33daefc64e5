//! Pausing and resuming a container's processes: the v1 freezer controller
//! (`freezer.state`) and cgroup2's `cgroup.freeze`.
//!
//! Both kernels freeze asynchronously: the write only asks, and each task stops when it next
//! passes through the freezer, so a freeze is only done once the kernel reports the whole
//! cgroup frozen. A freeze that cannot complete in time is undone: a cgroup left half frozen
//! would hold some of the container's processes stopped with nobody meaning to resume them.
//!
//! "Frozen" in `state_*` means that this cgroup itself was asked to freeze, as runc reports
//! it: a container frozen only through a frozen ancestor was not paused by the runtime, and
//! resuming it could not change anything.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;

use super::{errno, is_errno, read_file, write_file};

/// How long a freeze may take before it is given up and the cgroup thawed back. Freezing
/// takes microseconds normally; seconds mean a task that cannot stop (uninterruptible
/// sleep, e.g. on a dead NFS server) or, on v1, a container forking faster than the sweeps.
const FREEZE_PATIENCE: Duration = Duration::from_secs(4);

/// Longest sleep between two checks of a freeze in progress.
const MAX_NAP: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1State {
    Thawed,
    Freezing,
    Frozen,
}

fn parse_v1_state(text: &str) -> Result<V1State> {
    match text.trim() {
        "THAWED" => Ok(V1State::Thawed),
        "FREEZING" => Ok(V1State::Freezing),
        "FROZEN" => Ok(V1State::Frozen),
        other => bail!("unknown freezer state {other:?}"),
    }
}

/// A 0/1 flag file (`freezer.self_freezing`, `cgroup.freeze`).
fn parse_flag(text: &str) -> Result<bool> {
    match text.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        other => bail!("expected 0 or 1, found {other:?}"),
    }
}

/// The `frozen` field of cgroup.events.
fn parse_events_frozen(text: &str) -> Result<bool> {
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .context("no \"frozen\" line (the kernel has no cgroup2 freezer before 5.2)")?;
    parse_flag(value)
}

/// The file's contents, None when it does not exist: the cgroup is gone (ENOENT, or ENODEV
/// when removed while open) or the kernel has no such file.
fn read_opt(path: &Path) -> Result<Option<String>> {
    match read_file(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if is_errno(&e, Errno::ENOENT) || is_errno(&e, Errno::ENODEV) => Ok(None),
        Err(e) => Err(errno(e)).with_context(|| format!("read {}", path.display())),
    }
}

fn read_parsed<T>(path: &Path, parse: fn(&str) -> Result<T>) -> Result<T> {
    let text = read_file(path)
        .map_err(errno)
        .with_context(|| format!("read {}", path.display()))?;
    parse(&text).with_context(|| format!("parse {}", path.display()))
}

fn is_missing(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<Errno>(),
        Some(Errno::ENOENT | Errno::ENODEV)
    )
}

/// Doubling sleeps: a freeze normally completes within the first few, and a stuck one
/// should not be polled in a tight loop for seconds.
fn nap(cur: &mut Duration) {
    sleep(*cur);
    *cur = (*cur * 2).min(MAX_NAP);
}

/// Runs `freeze`; if it fails, thaws the cgroup back and says so in the error.
fn or_thaw_back(
    dir: &Path,
    freeze: impl FnOnce() -> Result<()>,
    thaw: fn(&Path) -> Result<()>,
) -> Result<()> {
    let Err(e) = freeze() else {
        return Ok(());
    };
    match thaw(dir) {
        Ok(()) => Err(e.context(format!("freeze {} (thawed it back)", dir.display()))),
        Err(t) => Err(e.context(format!(
            "freeze {} (and thawing it back failed too: {t:#})",
            dir.display()
        ))),
    }
}

/// Freezes every task of the v1 cgroup `dir` (its directory in the freezer hierarchy),
/// returning once the kernel reports it FROZEN.
pub fn freeze_v1(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    // The first write tells whether the cgroup is there at all; nothing to undo if not.
    write_file(&file, "FROZEN").context("freezing needs the v1 freezer controller")?;
    or_thaw_back(dir, || wait_frozen_v1(&file), thaw_v1)
}

fn wait_frozen_v1(file: &Path) -> Result<()> {
    let deadline = Instant::now() + FREEZE_PATIENCE;
    let mut pause = Duration::from_micros(100);
    let mut attempts = 0u32;
    loop {
        let state = read_parsed(file, parse_v1_state)?;
        if state == V1State::Frozen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "still {state:?} after {FREEZE_PATIENCE:?} (a task in uninterruptible sleep, or \
                 the container forking faster than it can be frozen)"
            );
        }
        attempts += 1;
        if attempts.is_multiple_of(50) {
            // Tasks forked after a sweep escape it, and a parent in vfork waits for a child
            // that cannot finish while frozen; a short thaw lets such pairs get past that
            // point, so a busy container eventually freezes in one go.
            write_file(file, "THAWED")?;
            sleep(MAX_NAP);
        } else {
            nap(&mut pause);
        }
        // Unlike a read, a write makes the kernel sweep the cgroup again and freeze tasks that
        // appeared since the last sweep; without it those would keep it FREEZING forever.
        write_file(file, "FROZEN")?;
    }
}

/// Thaws the v1 cgroup `dir`. A cgroup that does not exist has nothing to thaw. Tasks stay
/// frozen if an ancestor is frozen: that is not this cgroup's to undo.
pub fn thaw_v1(dir: &Path) -> Result<()> {
    match write_file(&dir.join("freezer.state"), "THAWED") {
        Err(e) if is_missing(&e) => Ok(()),
        r => r,
    }
}

/// Whether the v1 cgroup `dir` is paused: asked to freeze itself (not only through an
/// ancestor), whether or not the kernel has finished freezing it. A freeze still in
/// progress counts, so that a stuck one left by a crashed `pause` shows as paused and can
/// be thawed by resuming. A cgroup without a freezer (gone, or the controller not mounted)
/// is not frozen.
pub fn state_v1(dir: &Path) -> Result<bool> {
    let file = dir.join("freezer.state");
    let Some(text) = read_opt(&file)? else {
        return Ok(false);
    };
    match parse_v1_state(&text).with_context(|| format!("parse {}", file.display()))? {
        V1State::Thawed => return Ok(false),
        V1State::Frozen | V1State::Freezing => {}
    }
    let own = dir.join("freezer.self_freezing");
    match read_opt(&own)? {
        Some(t) => parse_flag(&t).with_context(|| format!("parse {}", own.display())),
        // Kernels before 3.12 have no self_freezing; only the cgroup's own freeze existed.
        None => Ok(true),
    }
}

/// Freezes every task of the cgroup2 cgroup `dir`, returning once cgroup.events reports
/// it frozen.
pub fn freeze_v2(dir: &Path) -> Result<()> {
    write_file(&dir.join("cgroup.freeze"), "1")
        .context("freezing needs cgroup.freeze (kernel 5.2 or later, not the root cgroup)")?;
    or_thaw_back(dir, || wait_frozen_v2(dir), thaw_v2)
}

fn wait_frozen_v2(dir: &Path) -> Result<()> {
    let events = dir.join("cgroup.events");
    let deadline = Instant::now() + FREEZE_PATIENCE;
    let mut pause = Duration::from_micros(100);
    // cgroup2 freezes tasks that arrive later by itself, so no rewriting is needed here.
    while !read_parsed(&events, parse_events_frozen)? {
        if Instant::now() >= deadline {
            bail!("not frozen after {FREEZE_PATIENCE:?} (a task in uninterruptible sleep?)");
        }
        nap(&mut pause);
    }
    Ok(())
}

/// Thaws the cgroup2 cgroup `dir`. A cgroup that does not exist has nothing to thaw; a
/// frozen ancestor keeps it frozen.
pub fn thaw_v2(dir: &Path) -> Result<()> {
    match write_file(&dir.join("cgroup.freeze"), "0") {
        Err(e) if is_missing(&e) => Ok(()),
        r => r,
    }
}

/// Whether the cgroup2 cgroup `dir` is paused: asked to freeze itself, whether or not the
/// kernel has finished (see `state_v1`). A cgroup without cgroup.freeze (gone, or a kernel
/// before 5.2) is not frozen.
pub fn state_v2(dir: &Path) -> Result<bool> {
    let freeze = dir.join("cgroup.freeze");
    match read_opt(&freeze)? {
        Some(t) => parse_flag(&t).with_context(|| format!("parse {}", freeze.display())),
        None => Ok(false),
    }
}

/// Whether tasks placed in the v1 cgroup `dir` would stop: it or an ancestor is frozen or
/// freezing. A new cgroup starts in its parent's state, so this reads the effect of every
/// ancestor's freeze, unlike `state_v1`. A cgroup without a freezer is not frozen.
pub fn frozen_effective_v1(dir: &Path) -> Result<bool> {
    let file = dir.join("freezer.state");
    match read_opt(&file)? {
        None => Ok(false),
        Some(t) => Ok(
            parse_v1_state(&t).with_context(|| format!("parse {}", file.display()))?
                != V1State::Thawed,
        ),
    }
}

/// Whether tasks placed in the cgroup2 cgroup `dir` would stop: cgroup.events says frozen,
/// which for an empty cgroup follows its own and every ancestor's cgroup.freeze at once.
pub fn frozen_effective_v2(dir: &Path) -> Result<bool> {
    let events = dir.join("cgroup.events");
    match read_opt(&events)? {
        None => Ok(false),
        Some(t) => parse_events_frozen(&t).with_context(|| format!("parse {}", events.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::super::stats::tests::Scratch;
    use super::*;

    #[test]
    fn parses_v1_state() {
        assert_eq!(parse_v1_state("THAWED\n").unwrap(), V1State::Thawed);
        assert_eq!(parse_v1_state("FREEZING\n").unwrap(), V1State::Freezing);
        assert_eq!(parse_v1_state("FROZEN\n").unwrap(), V1State::Frozen);
        assert!(parse_v1_state("frozen\n").is_err());
        assert!(parse_v1_state("").is_err());
    }

    #[test]
    fn parses_flags_and_events() {
        assert!(parse_flag("1\n").unwrap());
        assert!(!parse_flag("0\n").unwrap());
        assert!(parse_flag("2\n").is_err());
        assert!(parse_events_frozen("populated 1\nfrozen 1\n").unwrap());
        assert!(!parse_events_frozen("populated 0\nfrozen 0\n").unwrap());
        assert!(parse_events_frozen("populated 1\n").is_err());
    }

    #[test]
    fn missing_cgroup() {
        let gone = Path::new("/nonexistent/berth-freezer-test");
        assert!(!state_v1(gone).unwrap());
        assert!(!state_v2(gone).unwrap());
        thaw_v1(gone).unwrap();
        thaw_v2(gone).unwrap();
        let e = freeze_v1(gone).unwrap_err();
        assert!(format!("{e:#}").contains("ENOENT"), "{e:#}");
        assert!(freeze_v2(gone).is_err());
    }

    #[test]
    fn failed_freeze_is_thawed_back() {
        let dir = std::env::temp_dir().join(format!("berth-frz-fake-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("freezer.state"), "FROZEN").unwrap();
        let e = or_thaw_back(&dir, || bail!("stuck"), thaw_v1).unwrap_err();
        let state = fs::read_to_string(dir.join("freezer.state")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(state, "THAWED");
        assert!(
            format!("{e:#}").contains("(thawed it back): stuck"),
            "{e:#}"
        );
    }

    /// One kind of freezer, for tests that run against each the host has.
    struct Ops {
        freeze: fn(&Path) -> Result<()>,
        thaw: fn(&Path) -> Result<()>,
        state: fn(&Path) -> Result<bool>,
    }

    const V1: Ops = Ops {
        freeze: freeze_v1,
        thaw: thaw_v1,
        state: state_v1,
    };

    const V2: Ops = Ops {
        freeze: freeze_v2,
        thaw: thaw_v2,
        state: state_v2,
    };

    /// The scratch cgroup's directory for each freezer the host has: v1's freezer
    /// hierarchy, and the cgroup2 tree, whose cgroup.freeze works without any controller
    /// enabled (so hybrid hosts have both).
    fn freezers(cg: &Scratch) -> Vec<(PathBuf, &'static Ops)> {
        let mut out = Vec::new();
        if let Some(d) = cg.v1("freezer") {
            out.push((d, &V1));
        }
        if let Some(d) = cg.v2() {
            out.push((d, &V2));
        }
        assert!(!out.is_empty(), "no freezer on this host");
        out
    }

    /// Freezes `dir`, which holds a process bumping a counter in `count` as fast as it
    /// can, and checks the counter stands still while frozen and moves again once thawed.
    fn freeze_round_trip(dir: &Path, count: &Path, ops: &Ops) {
        let read = || fs::read_to_string(count).unwrap_or_default();
        let moving = |secs: u64| {
            let before = read();
            let deadline = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < deadline {
                sleep(Duration::from_millis(20));
                if read() != before {
                    return true;
                }
            }
            false
        };
        assert!(moving(10), "the counter never started in {}", dir.display());
        assert!(!(ops.state)(dir).unwrap());

        let t = Instant::now();
        (ops.freeze)(dir).unwrap();
        eprintln!("{}: frozen in {:?}", dir.display(), t.elapsed());
        assert!((ops.state)(dir).unwrap());
        let frozen = read();
        sleep(Duration::from_millis(300));
        assert_eq!(read(), frozen, "the counter moved while frozen");
        // Freezing what is frozen succeeds at once.
        (ops.freeze)(dir).unwrap();

        (ops.thaw)(dir).unwrap();
        assert!(!(ops.state)(dir).unwrap());
        assert!(moving(10), "the counter did not move again after thawing");
    }

    #[test]
    fn real_freeze_and_thaw() {
        let Some(mut cg) = Scratch::new("frz") else {
            return;
        };
        let count = std::env::temp_dir().join(format!("berth-frz-count-{}", std::process::id()));
        cg.spawn(&format!(
            "i=0; while :; do i=$((i+1)); echo $i > {}; done",
            count.display()
        ));
        for (dir, ops) in freezers(&cg) {
            freeze_round_trip(&dir, &count, ops);
        }
        let _ = fs::remove_file(&count);
    }

    /// A cgroup frozen only because its parent is was not paused itself: state says so.
    #[test]
    fn real_state_ignores_a_frozen_parent() {
        let Some(mut cg) = Scratch::new("frzpar") else {
            return;
        };
        cg.spawn("while :; do :; done");
        for (dir, ops) in freezers(&cg) {
            let child = dir.join("nested");
            fs::create_dir(&child).unwrap();
            (ops.freeze)(&dir).unwrap();
            let child_state = (ops.state)(&child);
            (ops.thaw)(&dir).unwrap();
            fs::remove_dir(&child).unwrap();
            assert!(!child_state.unwrap(), "{}", child.display());
        }
    }
}
