//! Root filesystem, mounts, devices, masked and read-only paths
//! (config.md "Root", "Mounts"; config-linux.md "Devices", "Default
//! Devices", "Default Filesystems", "Masked Paths", "Readonly Paths",
//! "Rootfs Mount Propagation").

use serde_json::json;
use spec_tests::*;
use std::ffi::CString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Runs `cat /proc/self/mountinfo` (plus `script` first, if any) in `b` and
/// returns the parsed mount table seen inside.
fn mounts_inside(rt: &Runtime, b: &mut Bundle) -> Vec<MountEntry> {
    b.args(&["cat", "/proc/self/mountinfo"]);
    let out = rt.run(b).assert_ok();
    let m = mountinfo::parse(&out.stdout);
    assert!(!m.is_empty(), "no mountinfo printed:\n{out}");
    m
}

#[track_caller]
fn mount_at<'a>(m: &'a [MountEntry], point: &str) -> &'a MountEntry {
    mountinfo::find(m, point).unwrap_or_else(|| panic!("nothing mounted at {point}: {m:#?}"))
}

#[track_caller]
fn assert_opts(e: &MountEntry, fstype: &str, opts: &[&str]) {
    assert_eq!(e.fstype, fstype, "{} type", e.mount_point);
    for o in opts {
        assert!(
            e.has_mount_opt(o),
            "{} lacks mount option {o}: {e:?}",
            e.mount_point
        );
    }
}

/// The config's mounts appear with their types and flags.
#[test]
fn default_mounts_have_requested_options() {
    let rt = Runtime::new();
    let mut b = rt.bundle("mounts");
    let m = mounts_inside(&rt, &mut b);
    assert_opts(mount_at(&m, "/proc"), "proc", &[]);
    let dev = mount_at(&m, "/dev");
    assert_opts(dev, "tmpfs", &["nosuid"]);
    assert!(dev.has_super_opt("mode=755"), "/dev mode: {dev:?}");
    assert_opts(mount_at(&m, "/dev/pts"), "devpts", &["nosuid", "noexec"]);
    let shm = mount_at(&m, "/dev/shm");
    assert_opts(shm, "tmpfs", &["nosuid", "nodev", "noexec"]);
    assert!(shm.has_super_opt("size=65536k"), "/dev/shm size: {shm:?}");
    assert_opts(
        mount_at(&m, "/dev/mqueue"),
        "mqueue",
        &["nosuid", "nodev", "noexec"],
    );
    assert_opts(
        mount_at(&m, "/sys"),
        "sysfs",
        &["ro", "nosuid", "nodev", "noexec"],
    );
}

/// /dev/shm is a tmpfs the container can write to.
#[test]
fn dev_shm_is_writable_tmpfs() {
    let rt = Runtime::new();
    let mut b = rt.bundle("shm");
    b.sh("stat -f -c %T /dev/shm; echo data > /dev/shm/f && cat /dev/shm/f");
    let out = rt.run(&b).assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["tmpfs", "data"],
        "{out}"
    );
}

/// tmpcopyup (runc's extension, sent by Podman for --read-only and --tmpfs): the tmpfs
/// starts with the image's files at its destination and takes writes on a read-only root.
/// Control: the same tmpfs without it is empty.
#[test]
fn tmpfs_copy_up() {
    let rt = Runtime::new();
    let script =
        "stat -f -c %T /etc; cat /etc/group | head -1; echo new > /etc/new && cat /etc/new";
    let tmpfs = |opts: &[&str]| json!({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": opts});
    let mut b = rt.bundle("copyup");
    b.add_mount(tmpfs(&["rw", "nosuid", "nodev", "tmpcopyup"]));
    b.sh(script);
    let out = rt.run(&b).assert_ok();
    let first_group = fs::read_to_string(b.rootfs().join("etc/group")).unwrap();
    let first_group = first_group.lines().next().unwrap();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        vec!["tmpfs", first_group, "new"],
        "{out}"
    );
    assert!(
        !b.rootfs().join("etc/new").exists(),
        "the write reached the image"
    );

    let mut plain = rt.bundle("nocopyup");
    plain.add_mount(tmpfs(&["rw", "nosuid", "nodev"]));
    plain.sh("ls /etc | wc -l");
    let out = rt.run(&plain).assert_ok();
    assert_eq!(out.stdout.trim(), "0", "control: {out}");
}

/// A read-write bind mount shares the host directory both ways.
#[test]
fn bind_mount_read_write() {
    let rt = Runtime::new();
    let mut b = rt.bundle("bindrw");
    let host = b.bind_dir("data", "/data", false);
    fs::write(host.join("from-host"), "host-data").unwrap();
    b.sh("cat /data/from-host; echo; echo container-data > /data/from-container");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "host-data", "{out}");
    assert_eq!(
        fs::read_to_string(host.join("from-container")).unwrap(),
        "container-data\n"
    );
}

/// A bind mount with "ro" is readable but writes fail with EROFS.
#[test]
fn bind_mount_read_only() {
    let rt = Runtime::new();
    let mut b = rt.bundle("bindro");
    let host = b.bind_dir("data", "/data", true);
    fs::write(host.join("from-host"), "host-data").unwrap();
    b.sh("cat /data/from-host; echo; if touch /data/new; then echo wrote; fi");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "host-data", "{out}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "write did not fail with EROFS: {out}"
    );
    assert!(!host.join("new").exists(), "write went through to the host");
}

/// A regular file can be bind-mounted; the runtime creates the (missing)
/// destination file in the rootfs.
#[test]
fn bind_mount_single_file() {
    let rt = Runtime::new();
    let mut b = rt.bundle("bindfile");
    b.private_rootfs();
    let src = b.dir().join("hostfile");
    fs::write(&src, "file-content\n").unwrap();
    b.add_mount(json!({"destination": "/etc/bound-file", "type": "bind", "source": src.to_string_lossy(), "options": ["bind", "ro"]}));
    b.args(&["cat", "/etc/bound-file"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout, "file-content\n", "{out}");
}

/// Mounts are made in the listed order (config.md): a bind listed after a
/// tmpfs lands inside that tmpfs.
#[test]
fn mounts_are_made_in_order() {
    let rt = Runtime::new();
    let mut b = rt.bundle("order");
    let src = b.dir().join("inner-src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("marker"), "inner").unwrap();
    b.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.add_mount(json!({"destination": "/scratch/inner", "type": "bind", "source": src.to_string_lossy(), "options": ["rbind"]}));
    b.args(&["cat", "/scratch/inner/marker"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout, "inner", "{out}");
}

/// root.readonly: the root is mounted read-only.
#[test]
fn readonly_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("roroot");
    b.sh("if touch /x; then echo wrote; fi; awk '$5 == \"/\" {print $6}' /proc/self/mountinfo");
    let out = rt.run(&b).assert_ok();
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!out.stdout.contains("wrote"), "{out}");
    let opts = out.stdout.lines().last().unwrap_or_default();
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "/ is not mounted ro: {out}"
    );
    assert!(!shared_rootfs().join("x").exists());
}

/// root.readonly false: the container can write its root (a private copy).
#[test]
fn writable_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("rwroot");
    let rootfs = b.private_rootfs();
    b.config_mut()["root"]["readonly"] = json!(false);
    b.sh("echo written > /written");
    rt.run(&b).assert_ok();
    assert_eq!(
        fs::read_to_string(rootfs.join("written")).unwrap(),
        "written\n"
    );
}

/// Splits busybox `stat -c '%n %F %t %T ...'` output ("character special
/// file" has spaces) into name, kind, major, minor (hex) and the rest.
fn parse_stat(line: &str) -> (String, String, u32, u32, Vec<String>) {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let name = words.remove(0).to_string();
    let kind_len = words.iter().position(|w| *w == "file").expect("file type") + 1;
    let kind = words[..kind_len].join(" ");
    let rest = &words[kind_len..];
    let hex = |s: &str| u32::from_str_radix(s, 16).unwrap();
    (
        name,
        kind,
        hex(rest[0]),
        hex(rest[1]),
        rest[2..].iter().map(|s| s.to_string()).collect(),
    )
}

/// config-linux.md "Default Devices": null, zero, full, random, urandom
/// and tty are character devices with their standard numbers.
#[test]
fn default_devices_exist() {
    let rt = Runtime::new();
    let mut b = rt.bundle("devices");
    let want = [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ];
    let paths: Vec<String> = want.iter().map(|(n, _, _)| format!("/dev/{n}")).collect();
    let mut args = vec!["stat", "-c", "%n %F %t %T"];
    args.extend(paths.iter().map(String::as_str));
    b.args(&args);
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), want.len(), "{out}");
    for ((name, major, minor), line) in want.iter().zip(lines) {
        let (path, kind, maj, min, _) = parse_stat(line);
        assert_eq!(path, format!("/dev/{name}"));
        assert_eq!(kind, "character special file", "{line}");
        assert_eq!((maj, min), (*major, *minor), "{line}");
    }
}

/// The conventional links: /dev/fd and /dev/std{in,out,err} into
/// /proc/self/fd, and /dev/ptmx leading to the container's devpts ptmx
/// (config-linux.md allows a symlink or a bind mount of /dev/pts/ptmx).
#[test]
fn dev_links_exist() {
    let rt = Runtime::new();
    let mut b = rt.bundle("devlinks");
    b.sh(
        "for l in fd stdin stdout stderr; do echo $l $(readlink /dev/$l); done; \
         if [ -L /dev/ptmx ]; then echo ptmx link $(readlink /dev/ptmx); else echo ptmx node $(stat -c '%t:%T' /dev/ptmx); fi",
    );
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        &[
            "fd /proc/self/fd",
            "stdin /proc/self/fd/0",
            "stdout /proc/self/fd/1",
            "stderr /proc/self/fd/2"
        ],
        "{out}"
    );
    let ptmx = lines.get(4).copied().unwrap_or_default();
    assert!(
        [
            "ptmx link pts/ptmx",
            "ptmx link /dev/pts/ptmx",
            "ptmx node 5:2"
        ]
        .contains(&ptmx),
        "/dev/ptmx is not the container's pts/ptmx: {out}"
    );
}

/// /dev is the container's own tmpfs: no host block devices show up.
#[test]
fn dev_has_no_host_block_devices() {
    let rt = Runtime::new();
    let mut b = rt.bundle("devclean");
    b.args(&["find", "/dev", "-type", "b"]);
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "", "host block devices visible: {out}");
}

/// config-linux.md "Devices": each entry is created with the given type,
/// numbers, mode and owner.
#[test]
fn linux_devices_are_created() {
    let rt = Runtime::new();
    let mut b = rt.bundle("mknod");
    b.config_mut()["linux"]["devices"] = json!([
        {"path": "/dev/spec-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/spec-block", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600, "uid": 0, "gid": 0}
    ]);
    b.args(&[
        "stat",
        "-c",
        "%n %F %t %T %a %u %g",
        "/dev/spec-char",
        "/dev/spec-block",
    ]);
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let (_, kind, maj, min, rest) = parse_stat(lines[0]);
    assert_eq!(
        (kind.as_str(), maj, min),
        ("character special file", 1, 3),
        "{out}"
    );
    assert_eq!(
        rest,
        vec!["640", "1000", "1001"],
        "char device mode/owner: {out}"
    );
    let (_, kind, maj, min, rest) = parse_stat(lines[1]);
    assert_eq!(
        (kind.as_str(), maj, min),
        ("block special file", 7, 0),
        "{out}"
    );
    assert_eq!(
        rest,
        vec!["600", "0", "0"],
        "block device mode/owner: {out}"
    );
}

/// The default maskedPaths hide what exists on this host: files read
/// empty, directories list empty.
#[test]
fn default_masked_paths_are_hidden() {
    let candidates = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/acpi",
        "/sys/firmware",
    ];
    let present: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(
        !present.is_empty(),
        "none of the default masked paths exist on this host"
    );
    let rt = Runtime::new();
    let mut b = rt.bundle("masked");
    let script: String = present
        .iter()
        .map(|p| format!("if [ -d {p} ]; then echo {p} $(ls -A {p} | wc -l); else echo {p} $(cat {p} | wc -c); fi;"))
        .collect();
    b.sh(&script);
    let out = rt.run(&b).assert_ok();
    for p in present {
        assert!(
            out.stdout.lines().any(|l| l == format!("{p} 0")),
            "{p} not masked:\n{out}"
        );
    }
}

/// Custom maskedPaths (a file and a directory in a bind mount) are hidden.
#[test]
fn custom_masked_paths_are_hidden() {
    let rt = Runtime::new();
    let mut b = rt.bundle("masked2");
    let host = b.bind_dir("data", "/data", false);
    fs::write(host.join("secret.txt"), "secret").unwrap();
    fs::create_dir(host.join("secret-dir")).unwrap();
    fs::write(host.join("secret-dir/inner"), "secret").unwrap();
    fs::write(host.join("visible.txt"), "visible").unwrap();
    b.config_mut()["linux"]["maskedPaths"] = json!(["/data/secret.txt", "/data/secret-dir"]);
    b.sh("cat /data/secret.txt; ls -A /data/secret-dir; cat /data/visible.txt");
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout, "visible", "masked content leaked: {out}");
}

/// The default readonlyPaths: /proc/sys is read-only. The write target is
/// a uts-namespaced sysctl, so a runtime that fails this test changes
/// nothing outside the container.
#[test]
fn default_readonly_paths() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ropaths");
    b.sh("if echo changed > /proc/sys/kernel/domainname; then echo wrote; fi; awk '$5 == \"/proc/sys\" {print $6}' /proc/self/mountinfo");
    let out = rt.run(&b).assert_ok();
    assert!(
        !out.stdout.contains("wrote"),
        "/proc/sys is writable: {out}"
    );
    let opts = out.stdout.lines().last().unwrap_or_default();
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "/proc/sys not mounted ro: {out}"
    );
}

/// Custom readonlyPaths: a subdir of a writable bind becomes read-only
/// while the rest stays writable.
#[test]
fn custom_readonly_paths() {
    let rt = Runtime::new();
    let mut b = rt.bundle("ropaths2");
    let host = b.bind_dir("data", "/data", false);
    fs::create_dir(host.join("locked")).unwrap();
    b.config_mut()["linux"]["readonlyPaths"] = json!(["/data/locked"]);
    b.sh(
        "touch /data/ok && echo ok-written; if touch /data/locked/x; then echo locked-written; fi",
    );
    let out = rt.run(&b).assert_ok();
    assert_eq!(out.stdout.trim(), "ok-written", "{out}");
    assert!(out.stderr.contains("Read-only file system"), "{out}");
    assert!(!host.join("locked/x").exists());
}

/// A tmpfs mount gets its data options (size, mode) and flags. The
/// destination doesn't exist beforehand: runc copies the mode of an existing
/// destination dir onto the tmpfs (so a tmpfs on /tmp keeps 1777), which
/// would hide whether mode= was applied.
#[test]
fn tmpfs_mount_options() {
    let rt = Runtime::new();
    let mut b = rt.bundle("tmpfs");
    b.private_rootfs();
    b.add_mount(
        json!({"destination": "/fresh-tmpfs", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
    );
    b.sh("stat -c %a /fresh-tmpfs; echo x > /fresh-tmpfs/f && echo writable; grep ' /fresh-tmpfs ' /proc/self/mountinfo");
    let out = rt.run(&b).assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..2], &["700", "writable"], "{out}");
    let m = mountinfo::parse(&out.stdout);
    let e = mount_at(&m, "/fresh-tmpfs");
    assert_opts(e, "tmpfs", &["nosuid", "nodev", "noexec"]);
    assert!(e.has_super_opt("size=1024k"), "size not applied: {e:?}");
    assert!(e.has_super_opt("mode=700"), "mode not applied: {e:?}");
}

/// rootfsPropagation "private": the root mount has no peer group and no
/// master.
#[test]
fn rootfs_propagation_private() {
    let rt = Runtime::new();
    let mut b = rt.bundle("rprivate");
    b.config_mut()["linux"]["rootfsPropagation"] = json!("private");
    let m = mounts_inside(&rt, &mut b);
    let root = mount_at(&m, "/");
    assert!(
        !root.has_optional("shared:") && !root.has_optional("master:"),
        "root not private: {root:?}"
    );
}

/// rootfsPropagation "shared": the root mount is shared (has a peer group).
/// Skipped for runc: runc 1.1 makes the rootfs private whatever this says
/// (opencontainers/runc#1755, fixed by runc#4724 in 1.2.x/1.3).
#[test]
fn rootfs_propagation_shared() {
    if is_runc() {
        skip(
            "rootfs_propagation_shared",
            "runc 1.1 ignores rootfsPropagation=shared (runc#1755)",
        );
        return;
    }
    let rt = Runtime::new();
    let mut b = rt.bundle("rshared");
    b.config_mut()["linux"]["rootfsPropagation"] = json!("shared");
    let m = mounts_inside(&rt, &mut b);
    let root = mount_at(&m, "/");
    assert!(root.has_optional("shared:"), "root not shared: {root:?}");
}

/// A host tmpfs made shared, so its bind mounts can be slaves or peers.
/// The guard unmounts it (TempDir detaches mounts below itself).
struct SharedTmpfs {
    dir: TempDir,
}

impl SharedTmpfs {
    fn new() -> SharedTmpfs {
        let dir = TempDir::new("shared-src");
        let p = CString::new(dir.path().to_string_lossy().as_bytes()).unwrap();
        let fstype = CString::new("tmpfs").unwrap();
        let data = CString::new("size=1m").unwrap();
        unsafe {
            assert_eq!(
                libc::mount(
                    fstype.as_ptr(),
                    p.as_ptr(),
                    fstype.as_ptr(),
                    0,
                    data.as_ptr().cast()
                ),
                0,
                "mount tmpfs"
            );
            assert_eq!(
                libc::mount(
                    std::ptr::null(),
                    p.as_ptr(),
                    std::ptr::null(),
                    libc::MS_SHARED,
                    std::ptr::null()
                ),
                0,
                "make shared"
            );
        }
        for d in ["a", "b", "c"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        SharedTmpfs { dir }
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).to_string_lossy().into_owned()
    }
}

/// Propagation options of bind mounts (config.md mount options rprivate,
/// rslave, rshared) are applied, and rslave really receives host mounts.
#[test]
fn bind_mount_propagation_options() {
    let src = SharedTmpfs::new();
    let rt = Runtime::new();
    let mut b = rt.bundle("bindprop");
    let out = b.out_dir();
    b.add_mount(json!({"destination": "/data", "type": "bind", "source": src.path("a"), "options": ["rbind", "rprivate"]}));
    b.add_mount(json!({"destination": "/mnt", "type": "bind", "source": src.path("b"), "options": ["rbind", "rslave"]}));
    b.add_mount(json!({"destination": "/scratch", "type": "bind", "source": src.path("c"), "options": ["rbind", "rshared"]}));
    b.sh(
        "cat /proc/self/mountinfo > /out/mountinfo; touch /out/ready; \
         i=0; while [ $i -lt 200 ] && ! grep -q ' /mnt/sub ' /proc/self/mountinfo; do sleep 0.05; i=$((i+1)); done; \
         grep -q ' /mnt/sub ' /proc/self/mountinfo && touch /out/propagated; exec sleep 300",
    );
    rt.create_and_start(&b);
    assert!(
        wait_for_file(&out.join("ready"), WAIT_TIMEOUT),
        "container never started"
    );
    let m = mountinfo::parse(&fs::read_to_string(out.join("mountinfo")).unwrap());
    let private = mount_at(&m, "/data");
    assert!(
        !private.has_optional("shared:") && !private.has_optional("master:"),
        "rprivate: {private:?}"
    );
    let slave = mount_at(&m, "/mnt");
    assert!(
        slave.has_optional("master:") && !slave.has_optional("shared:"),
        "rslave: {slave:?}"
    );
    let shared = mount_at(&m, "/scratch");
    assert!(shared.has_optional("shared:"), "rshared: {shared:?}");

    // A mount made on the host under the rslave source must show up inside.
    let sub = src.dir.path().join("b/sub");
    fs::create_dir(&sub).unwrap();
    let p = CString::new(sub.to_string_lossy().as_bytes()).unwrap();
    let fstype = CString::new("tmpfs").unwrap();
    assert_eq!(
        unsafe {
            libc::mount(
                fstype.as_ptr(),
                p.as_ptr(),
                fstype.as_ptr(),
                0,
                std::ptr::null(),
            )
        },
        0
    );
    assert!(
        wait_for_file(&out.join("propagated"), WAIT_TIMEOUT),
        "host mount did not propagate into the rslave mount"
    );
}

/// A mount destination that is a symlink out of the rootfs (absolute
/// target) must be resolved inside the rootfs: nothing may be mounted on,
/// or written to, the host directory it names.
#[test]
fn mount_destination_symlink_does_not_escape() {
    let target = TempDir::new("escape-target");
    fs::write(target.path().join("canary"), "host").unwrap();
    let rt = Runtime::new();
    let mut b = rt.bundle("escape");
    let rootfs = b.private_rootfs();
    symlink(target.path(), rootfs.join("evil")).unwrap();
    b.add_mount(
        json!({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    b.sh("touch /evil/pwned; ls -A /evil");
    let out = rt.run(&b);
    let t = target.path().to_string_lossy().into_owned();
    let leaked = mountinfo::host_lines_mentioning(&t);
    assert!(
        leaked.is_empty(),
        "the runtime mounted on the host dir:\n{}\n{out}",
        leaked.join("\n")
    );
    assert!(
        !target.path().join("pwned").exists(),
        "the container wrote into the host dir: {out}"
    );
    let names: Vec<String> = fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["canary"], "host dir changed");
    if out.success() {
        assert!(
            !out.stdout.contains("canary"),
            "the container saw the host dir: {out}"
        );
    }
}

/// Same with a relative symlink climbing out ("../../..") in an
/// intermediate component of the destination.
#[test]
fn mount_destination_relative_symlink_does_not_escape() {
    let target = TempDir::new("escape-target");
    let rt = Runtime::new();
    let mut b = rt.bundle("escape2");
    let rootfs = b.private_rootfs();
    let climb = format!(
        "{}{}",
        "../".repeat(rootfs.components().count() + 2),
        target.path().to_string_lossy().trim_start_matches('/')
    );
    symlink(&climb, rootfs.join("link")).unwrap();
    // The trap is real: followed on the host, the link leads to the target.
    assert_eq!(
        fs::canonicalize(rootfs.join("link")).unwrap(),
        fs::canonicalize(target.path()).unwrap()
    );
    b.add_mount(json!({"destination": "/link/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    b.sh("touch /link/sub/pwned");
    let out = rt.run(&b);
    let t = target.path().to_string_lossy().into_owned();
    let leaked = mountinfo::host_lines_mentioning(&t);
    assert!(
        leaked.is_empty(),
        "the runtime mounted on the host dir:\n{}\n{out}",
        leaked.join("\n")
    );
    let entries = fs::read_dir(target.path()).unwrap().count();
    assert_eq!(
        entries, 0,
        "the runtime created entries in the host dir: {out}"
    );
}

/// `run --no-pivot` (MS_MOVE + chroot instead of pivot_root) still gives
/// the container its rootfs and nothing of the host's.
#[test]
fn no_pivot_root() {
    let rt = Runtime::new();
    let mut b = rt.bundle("nopivot");
    let host_only = rt.tmp().to_string_lossy().into_owned();
    b.sh(&format!(
        "test -x /bin/busybox && echo rootfs-ok; test -e {host_only} && echo host-visible; true"
    ));
    let out = rt.run_with(&b, &["--no-pivot"]).assert_ok();
    assert_eq!(out.stdout.trim(), "rootfs-ok", "{out}");
}

/// A rootfs whose /sys or /proc is a symlink (to a directory inside it) is refused with a
/// clear error, not mounted on the link's target: the kernel's files would then appear
/// elsewhere than the container and every later path rule expect (CVE-2019-16884's class).
/// runc 1.1.5: "filesystem ... must be mounted on ordinary directory".
#[test]
fn symlinked_proc_or_sys_in_the_rootfs_is_refused() {
    for (dir, fstype) in [("sys", "sysfs"), ("proc", "proc")] {
        let rt = Runtime::new();
        let mut b = rt.bundle("symsys");
        let rootfs = b.private_rootfs();
        fs::remove_dir(rootfs.join(dir)).unwrap();
        fs::create_dir(rootfs.join("elsewhere")).unwrap();
        symlink("/elsewhere", rootfs.join(dir)).unwrap();
        b.sh("true");
        let out = rt.run(&b).assert_fail();
        assert!(
            out.stderr.contains("must be mounted on ordinary directory"),
            "{dir}: {out}"
        );
        assert!(out.stderr.contains(fstype), "{dir}: {out}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out}");
        rt.assert_gone(&b, None);
        // Nothing was mounted on the link's target meanwhile.
        assert!(
            fs::read_dir(rootfs.join("elsewhere"))
                .unwrap()
                .next()
                .is_none(),
            "{dir}: the link's target was used"
        );
    }
}

/// A read-only /dev (a tmpfs with "ro"): its nodes, links and submounts are made first and
/// /dev itself turns read-only after, as with runc; berth failed `create /dev/pts: EROFS`.
#[test]
fn read_only_dev_mount() {
    let rt = Runtime::new();
    let mut b = rt.bundle("devro");
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    let dev = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/dev")
        .unwrap();
    dev["options"].as_array_mut().unwrap().push(json!("ro"));
    b.sh(
        r#"touch /dev/x 2>/dev/null && echo dev-writable || echo dev-ro
            [ -c /dev/null ] && echo > /dev/null && echo null-ok
            [ -e /dev/pts/ptmx ] && echo pts-ok
            touch /dev/shm/y && echo shm-writable"#,
    );
    let out = rt.run(&b).assert_ok();
    for want in ["dev-ro", "null-ok", "pts-ok", "shm-writable"] {
        assert!(out.stdout.lines().any(|l| l == want), "{want}:\n{out}");
    }
}

/// A bind of the host's /proc onto /proc is a proc filesystem on /proc: runc allows it
/// (its checkProcMount accepts a source that is procfs), and so does berth now.
#[test]
fn host_proc_bound_onto_proc() {
    let rt = Runtime::new();
    let mut b = rt.bundle("procbind");
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    let proc = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/proc")
        .unwrap();
    // Docker and Podman spell a bind as type "bind" or with no type; runc takes both.
    *proc = json!({"destination": "/proc", "source": "/proc", "options": ["rbind", "nosuid", "noexec", "nodev"]});
    b.sh("[ -r /proc/self/status ] && echo proc-ok; [ -d /proc/1 ] && echo pid1");
    let out = rt.run(&b).assert_ok();
    assert!(out.stdout.lines().any(|l| l == "proc-ok"), "{out}");
}

/// A bind of anything but procfs onto /proc is refused (it could fake the kernel's files
/// under the container's masked and read-only paths), by runc too.
#[test]
fn fake_proc_bound_onto_proc_is_refused() {
    let rt = Runtime::new();
    let mut b = rt.bundle("fakeproc");
    let fake = rt.tmp().join("fakeproc");
    fs::create_dir_all(fake.join("sys")).unwrap();
    let mounts = b.config_mut()["mounts"].as_array_mut().unwrap();
    let proc = mounts
        .iter_mut()
        .find(|m| m["destination"] == "/proc")
        .unwrap();
    *proc = json!({"destination": "/proc", "source": fake, "options": ["rbind"]});
    b.args(&["true"]);
    let out = rt.run(&b).assert_fail();
    if is_berth() {
        assert!(
            out.stderr.contains("/proc may only hold a proc filesystem"),
            "{out}"
        );
    }
}
