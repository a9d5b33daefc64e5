//! linux.netDevices: host network interfaces moved into the container's network namespace
//! (optionally renamed), over raw rtnetlink on a NETLINK_ROUTE socket.
//!
//! Per config-linux.md the runtime checks the move is possible, moves the device (a name that
//! already exists in the container is an error unless the new name is a `%d` template), keeps
//! its permanent global-scope addresses, and sets it up once it is inside.
//!
//! Sockets are opened *inside* the namespace they should act on (a setns of the calling thread
//! around `socket()`, then back), so every request is a plain rtnetlink exchange and nothing
//! needs a forked child.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::sockopt::ReceiveTimeout;
use nix::sys::socket::{
    recv, sendto, setsockopt, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};
use nix::sys::time::TimeVal;
use oci_spec::runtime::LinuxNetDevice;

// Kernel interface names are at most IFNAMSIZ - 1 bytes.
const IFNAMSIZ: usize = 16;

// nlmsghdr types and flags.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;

// if_link.h
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
// if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const IFA_F_PERMANENT: u32 = 0x80;
const IFA_F_NOPREFIXROUTE: u32 = 0x200;
const RT_SCOPE_UNIVERSE: u8 = 0;

const IFF_UP: u32 = 0x1;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

/// The name the device gets inside the container: `name`, or the host name when unset.
fn target_name<'a>(host: &'a str, dev: &'a LinuxNetDevice) -> &'a str {
    dev.name().as_deref().unwrap_or(host)
}

/// The kernel's dev_valid_name(), plus its `%d` template rule when `template` is allowed.
fn valid_name(name: &str, template: bool) -> bool {
    let ok = !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if !ok {
        return false;
    }
    match name.find('%') {
        None => true,
        Some(i) => template && name[i..].starts_with("%d") && !name[i + 2..].contains('%'),
    }
}

fn is_template(name: &str) -> bool {
    name.contains('%')
}

/// Validates `linux.netDevices`: host and container names are valid interface names, no two
/// entries claim the same container name, and each host interface exists.
pub fn check(devs: &HashMap<String, LinuxNetDevice>) -> Result<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut hosts: Vec<&String> = devs.keys().collect();
    hosts.sort();
    for host in hosts {
        let dev = &devs[host];
        if !valid_name(host, false) {
            bail!("linux.netDevices.{host}: invalid host interface name");
        }
        if let Some(n) = dev.name() {
            if !valid_name(n, true) {
                bail!("linux.netDevices.{host}.name: invalid interface name {n:?}");
            }
        }
        let target = target_name(host, dev);
        if !is_template(target) {
            if let Some(other) = seen.insert(target, host) {
                bail!(
                    "linux.netDevices.{host}: container name {target:?} also used by linux.netDevices.{other}"
                );
            }
        }
        if_index(host).with_context(|| format!("linux.netDevices.{host}"))?;
    }
    Ok(())
}

/// Moves each host interface into the network namespace `netns_fd`, renamed to its `name`,
/// re-adds its permanent global-scope addresses there and sets it up.
pub fn move_into(devs: &HashMap<String, LinuxNetDevice>, netns_fd: BorrowedFd) -> Result<()> {
    let mut host_sock = Netlink::open()?;
    let mut ctr_sock = Netlink::open_in(netns_fd)?;
    let mut hosts: Vec<&String> = devs.keys().collect();
    hosts.sort();
    for host in hosts {
        let target = target_name(host, &devs[host]);
        move_one(&mut host_sock, &mut ctr_sock, host, target, netns_fd, true)
            .with_context(|| format!("linux.netDevices.{host}"))?;
    }
    Ok(())
}

/// Moves each device (found by its in-container name) from `container_netns_fd` back to
/// `host_netns_fd` under its original host name, with its permanent global-scope addresses.
/// The device is left down, as a freshly returned interface. Entries whose container name is
/// a `%d` template cannot be found by name and are reported as errors (after the others).
// The runtime-spec forbids moving devices out before deletion (the kernel returns physical
// ones when the namespace goes); kept for an explicit use, exercised by the tests.
#[allow(dead_code)]
pub fn move_back(
    devs: &HashMap<String, LinuxNetDevice>,
    container_netns_fd: BorrowedFd,
    host_netns_fd: BorrowedFd,
) -> Result<()> {
    let mut ctr_sock = Netlink::open_in(container_netns_fd)?;
    let mut host_sock = Netlink::open_in(host_netns_fd)?;
    let mut hosts: Vec<&String> = devs.keys().collect();
    hosts.sort();
    let mut first_err = None;
    for host in hosts {
        let name = target_name(host, &devs[host]);
        let r = if is_template(name) {
            Err(anyhow::anyhow!(
                "container name {name:?} is a template; the device cannot be found by name"
            ))
        } else {
            move_one(
                &mut ctr_sock,
                &mut host_sock,
                name,
                host,
                host_netns_fd,
                false,
            )
        };
        if let Err(e) = r {
            first_err.get_or_insert(e.context(format!("linux.netDevices.{host}: move back")));
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Moves `from_name` (looked up through `from`) into the namespace `to_fd` (which `to` lives
/// in) as `to_name`, then restores its addresses and, if `up`, sets it up.
fn move_one(
    from: &mut Netlink,
    to: &mut Netlink,
    from_name: &str,
    to_name: &str,
    to_fd: BorrowedFd,
    up: bool,
) -> Result<()> {
    let index = from
        .link_index(from_name)
        .with_context(|| format!("interface {from_name:?}"))?;
    let addrs = from
        .permanent_addrs(index)
        .context("reading interface addresses")?;

    let mut m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.ifinfo(index, 0, 0);
    m.attr_u32(IFLA_NET_NS_FD, to_fd.as_raw_fd() as u32);
    m.attr_str(IFLA_IFNAME, to_name);
    from.ack(m).with_context(|| {
        format!("moving interface {from_name:?} to the target namespace as {to_name:?}")
    })?;

    // The kernel keeps the ifindex unless it is taken in the target namespace.
    let new_index = if is_template(to_name) {
        match to.link_name(index)? {
            Some(n) if template_matches(to_name, &n) => index,
            _ => bail!("moved as {to_name:?} but cannot locate the renamed interface"),
        }
    } else {
        to.link_index(to_name)
            .with_context(|| format!("locating moved interface {to_name:?}"))?
    };

    for a in &addrs {
        to.add_addr(new_index, a)
            .with_context(|| format!("restoring an address on {to_name:?}"))?;
    }
    if up {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        m.ifinfo(new_index, IFF_UP, IFF_UP);
        to.ack(m)
            .with_context(|| format!("setting interface {to_name:?} up"))?;
    }
    Ok(())
}

/// Whether `name` is what the kernel makes of `template` (`prefix%dsuffix`).
fn template_matches(template: &str, name: &str) -> bool {
    let Some((pre, post)) = template.split_once("%d") else {
        return template == name;
    };
    name.len() > pre.len() + post.len()
        && name.starts_with(pre)
        && name.ends_with(post)
        && name[pre.len()..name.len() - post.len()]
            .bytes()
            .all(|b| b.is_ascii_digit())
}

fn if_index(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).context("interface name contains NUL")?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; if_nametoindex only
    // reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Errno::last()).with_context(|| format!("host interface {name:?} not found"));
    }
    Ok(idx)
}

/// One address as read from RTM_GETADDR, enough to add it again.
struct Addr {
    family: u8,
    prefixlen: u8,
    scope: u8,
    flags: u32,
    attrs: Vec<(u16, Vec<u8>)>,
}

/// An rtnetlink request under construction.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, filled in by finish()
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_seq, filled in by finish()
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: kernel
        Msg { buf }
    }

    /// struct ifinfomsg
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// struct ifaddrmsg
    fn ifaddr(&mut self, family: u8, prefixlen: u8, flags: u8, scope: u8, index: u32) {
        self.buf
            .extend_from_slice(&[family, prefixlen, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    fn attr_u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d);
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Splits a run of rtattrs into (type, payload).
fn parse_attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16_at(b, 0) as usize;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((u16_at(b, 2) & 0x3fff, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// A NETLINK_ROUTE socket bound to the network namespace it was created in.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    fn open() -> Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("opening NETLINK_ROUTE socket")?;
        // Never hang on a kernel that does not answer.
        setsockopt(&fd, ReceiveTimeout, &TimeVal::new(10, 0))
            .context("setting netlink receive timeout")?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Opens the socket inside `netns` by switching the calling thread there and back.
    fn open_in(netns: BorrowedFd) -> Result<Self> {
        let here = File::open("/proc/thread-self/ns/net").context("opening current netns")?;
        nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).context("entering netns")?;
        let sock = Self::open();
        // Going back must not fail silently: the rest of berth would run in the wrong netns.
        nix::sched::setns(here.as_fd(), CloneFlags::CLONE_NEWNET)
            .context("returning to the original netns")?;
        sock
    }

    /// Sends a request and collects the payloads (after the nlmsghdr) of the data messages
    /// answering it, until the ack or NLMSG_DONE. A negative error in the ack is returned.
    fn request(&mut self, mut m: Msg) -> Result<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // Plain gets are answered without an ack unless asked; dumps end with NLMSG_DONE.
        if u16_at(&m.buf, 6) & NLM_F_DUMP == 0 {
            let flags = u16_at(&m.buf, 6) | NLM_F_ACK;
            m.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        }
        let req = m.finish(seq);
        sendto(
            self.fd.as_raw_fd(),
            &req,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .context("netlink send")?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())
                .context("netlink receive")?;
            if n == 0 {
                bail!("netlink socket closed");
            }
            let mut b = &buf[..n];
            while b.len() >= NLMSG_HDRLEN {
                let len = u32_at(b, 0) as usize;
                if len < NLMSG_HDRLEN || len > b.len() {
                    bail!("malformed netlink message");
                }
                let ty = u16_at(b, 4);
                let mseq = u32_at(b, 8);
                let payload = &b[NLMSG_HDRLEN..len];
                b = &b[align4(len).min(b.len())..];
                if mseq != seq {
                    continue; // stale answer to an earlier request
                }
                match ty {
                    NLMSG_ERROR => {
                        if payload.len() < 4 {
                            bail!("short netlink error message");
                        }
                        let err =
                            i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
                        if err < 0 {
                            return Err(Errno::from_raw(-err).into());
                        }
                        return Ok(out);
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((ty, payload.to_vec())),
                }
            }
        }
    }

    fn ack(&mut self, m: Msg) -> Result<()> {
        self.request(m).map(|_| ())
    }

    /// The index of interface `name` in this socket's namespace.
    fn link_index(&mut self, name: &str) -> Result<u32> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        let msgs = self.request(m)?;
        for (ty, p) in msgs {
            if ty == RTM_NEWLINK && p.len() >= IFINFOMSG_LEN {
                return Ok(u32_at(&p, 4));
            }
        }
        bail!("no link message for {name:?}")
    }

    /// The name of interface `index` in this socket's namespace, if it exists.
    fn link_name(&mut self, index: u32) -> Result<Option<String>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_REQUEST);
        m.ifinfo(index, 0, 0);
        let msgs = match self.request(m) {
            Ok(v) => v,
            Err(e) if e.downcast_ref::<Errno>() == Some(&Errno::ENODEV) => return Ok(None),
            Err(e) => return Err(e),
        };
        for (ty, p) in msgs {
            if ty != RTM_NEWLINK || p.len() < IFINFOMSG_LEN {
                continue;
            }
            for (at, d) in parse_attrs(&p[IFINFOMSG_LEN..]) {
                if at == IFLA_IFNAME {
                    let s = d.split(|&c| c == 0).next().unwrap_or_default();
                    return Ok(Some(String::from_utf8_lossy(s).into_owned()));
                }
            }
        }
        Ok(None)
    }

    /// The permanent, global-scope addresses of interface `index` (all families).
    fn permanent_addrs(&mut self, index: u32) -> Result<Vec<Addr>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
        m.ifaddr(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
        let mut out = Vec::new();
        for (ty, p) in self.request(m)? {
            if ty != RTM_NEWADDR || p.len() < IFADDRMSG_LEN || u32_at(&p, 4) != index {
                continue;
            }
            let (family, prefixlen, hflags, scope) = (p[0], p[1], p[2], p[3]);
            let mut flags = u32::from(hflags);
            let mut attrs = Vec::new();
            for (at, d) in parse_attrs(&p[IFADDRMSG_LEN..]) {
                match at {
                    IFA_FLAGS if d.len() >= 4 => flags = u32_at(d, 0),
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => attrs.push((at, d.to_vec())),
                    _ => {}
                }
            }
            if flags & IFA_F_PERMANENT != 0 && scope == RT_SCOPE_UNIVERSE {
                out.push(Addr {
                    family,
                    prefixlen,
                    scope,
                    flags,
                    attrs,
                });
            }
        }
        Ok(out)
    }

    fn add_addr(&mut self, index: u32, a: &Addr) -> Result<()> {
        let mut m = Msg::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        );
        let keep = a.flags & (IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
        m.ifaddr(a.family, a.prefixlen, keep as u8, a.scope, index);
        for (at, d) in &a.attrs {
            m.attr(*at, d);
        }
        if keep > 0xff {
            m.attr_u32(IFA_FLAGS, keep);
        }
        self.ack(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    #[test]
    fn names() {
        assert!(valid_name("eth0", false));
        assert!(valid_name("a23456789012345", false));
        assert!(!valid_name("a234567890123456", false));
        assert!(!valid_name("", false));
        assert!(!valid_name("a/b", false));
        assert!(!valid_name("a b", false));
        assert!(!valid_name("a:b", false));
        assert!(!valid_name("..", false));
        assert!(!valid_name("eth%d", false));
        assert!(valid_name("eth%d", true));
        assert!(!valid_name("eth%s", true));
        assert!(!valid_name("e%dt%d", true));
        assert!(template_matches("eth%d", "eth12"));
        assert!(template_matches("e%dx", "e0x"));
        assert!(!template_matches("eth%d", "eth"));
        assert!(!template_matches("eth%d", "ethx"));
    }

    fn dev(name: Option<&str>) -> LinuxNetDevice {
        let mut d = LinuxNetDevice::default();
        d.set_name(name.map(str::to_string));
        d
    }

    #[test]
    fn check_errors_name_the_field() {
        let mut m = HashMap::new();
        m.insert("bd-nonexistent0".to_string(), dev(None));
        let e = format!("{:#}", check(&m).unwrap_err());
        assert!(e.contains("linux.netDevices.bd-nonexistent0"), "{e}");

        let mut m = HashMap::new();
        m.insert("lo".to_string(), dev(Some("bad/name")));
        let e = format!("{:#}", check(&m).unwrap_err());
        assert!(e.contains("linux.netDevices.lo.name"), "{e}");

        let mut m = HashMap::new();
        m.insert("lo".to_string(), dev(Some("ok0")));
        check(&m).unwrap();
    }

    /// Cleans up the dummy interface (wherever it ended up) and the netns holder.
    struct Fixture {
        sleeper: Child,
        names: Vec<String>,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            for n in &self.names {
                let _ = Command::new("ip").args(["link", "del", n]).output();
            }
            let _ = self.sleeper.kill();
            let _ = self.sleeper.wait();
        }
    }

    fn ip_ok(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    #[test]
    fn move_in_and_back() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
        let host = format!("bdtest{}", std::process::id() % 1000);
        let inner = format!("bdin{}", std::process::id() % 1000);
        let sleeper = Command::new("unshare")
            .args(["-n", "sleep", "30"])
            .spawn()
            .expect("spawn unshare");
        let pid = sleeper.id().to_string();
        let peer = format!("bdpeer{}", std::process::id() % 1000);
        let fx = Fixture {
            sleeper,
            names: vec![host.clone(), peer.clone()],
        };
        // A dummy if the kernel has it, else one end of a veth pair.
        assert!(
            ip_ok(&["link", "add", &host, "type", "dummy"])
                || ip_ok(&["link", "add", &host, "type", "veth", "peer", "name", &peer]),
            "cannot create a test interface"
        );
        assert!(ip_ok(&["addr", "add", "192.0.2.7/24", "dev", &host]));

        // unshare(1) execs sleep after unsharing; wait until the netns differs from ours.
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let ns_path = format!("/proc/{pid}/ns/net");
        for _ in 0..200 {
            if std::fs::read_link(&ns_path).ok().is_some_and(|l| l != mine) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ctr_ns = File::open(&ns_path).unwrap();
        let host_ns = File::open("/proc/thread-self/ns/net").unwrap();

        let mut devs = HashMap::new();
        devs.insert(host.clone(), dev(Some(&inner)));
        check(&devs).unwrap();
        move_into(&devs, ctr_ns.as_fd()).unwrap();

        let show = Command::new("nsenter")
            .args(["-t", &pid, "-n", "ip", "addr", "show", &inner])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&show.stdout);
        assert!(show.status.success(), "{inner} not in container netns");
        assert!(out.contains("192.0.2.7/24"), "address not kept: {out}");
        assert!(out.contains(",UP"), "not up: {out}");
        assert!(!ip_ok(&["link", "show", &host]), "still on host");

        // A second move of the same (now absent) device fails, naming the field.
        let e = format!("{:#}", move_into(&devs, ctr_ns.as_fd()).unwrap_err());
        assert!(e.contains(&format!("linux.netDevices.{host}")), "{e}");

        move_back(&devs, ctr_ns.as_fd(), host_ns.as_fd()).unwrap();
        let show = Command::new("ip")
            .args(["addr", "show", &host])
            .output()
            .unwrap();
        assert!(show.status.success(), "{host} not back on host");
        assert!(String::from_utf8_lossy(&show.stdout).contains("192.0.2.7/24"));
        assert!(!Command::new("nsenter")
            .args(["-t", &pid, "-n", "ip", "link", "show", &inner])
            .output()
            .unwrap()
            .status
            .success());
        // Our thread is back in its own netns.
        assert_eq!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            mine
        );
        drop(fx);
    }
}
