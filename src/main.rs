//! berth: an OCI runtime with runc's command line.
//!
//! Layers, top to bottom: `cli` parses → `bundle` loads and checks config.json → `container`
//! owns the state store and the lifecycle → `launch` forks the container process and syncs
//! with it → the leaves (`namespaces`, `rootfs`, `process`, `sysctl`, `cgroups`, `tty`, ...)
//! each own one kernel concern.

use clap::Parser;

mod bundle;
mod cgroups;
mod cli;
mod container;
mod default_spec;
mod features;
mod hooks;
mod launch;
mod log;
mod namespaces;
mod netdev;
mod notify;
mod process;
mod resctrl;
mod rootfs;
mod sched;
mod security;
mod sys;
mod sysctl;
mod tty;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = log::init(cli.log.as_deref(), &cli.log_format, cli.debug) {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line, the whole context chain: "create abc: mount /proc ...: EPERM".
            let msg = format!("{e:#}").replace('\n', " ");
            log::error(&msg);
            eprintln!("berth: {msg}");
            std::process::exit(1);
        }
    }
}
