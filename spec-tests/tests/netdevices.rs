//! linux.netDevices (config-linux.md "Network Devices"): a host interface moves into the
//! container's network namespace under its new name.

use serde_json::json;
use spec_tests::*;
use std::process::Command;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Deletes the veth pair even when the test fails.
struct Veth(String);

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn host_interface_moves_in_under_its_new_name() {
    if is_runc() {
        // runc 1.1.5 predates runtime-spec 1.3's netDevices and ignores it.
        skip(
            "host_interface_moves_in_under_its_new_name",
            "runc 1.1 ignores linux.netDevices",
        );
        return;
    }
    let n = std::process::id() % 10000;
    let (host, peer) = (format!("bnd{n}a"), format!("bnd{n}b"));
    assert!(
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]),
        "veth"
    );
    let _guard = Veth(peer.clone());
    let rt = Runtime::new();
    let mut b = rt.bundle("netdev");
    b.config_mut()["linux"]["netDevices"] = json!({ host.clone(): {"name": "eth9"} });
    b.sh("ip link show eth9 && echo moved");
    let out = rt.run(&b).assert_ok();
    assert!(
        out.stdout.contains("eth9") && out.stdout.contains("moved"),
        "{out}"
    );
    // The container's namespace is gone now and the veth pair with it: the host end did not
    // come back under its old name.
    let out2 = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out2.stdout).contains(&format!("{host}@")),
        "still on the host"
    );
}
