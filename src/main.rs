//! berth: an OCI runtime with runc's command line.
//!
//! Layers, top to bottom: `cli` parses → `bundle` loads and checks config.json → `container`
//! owns the state store and the lifecycle → `launch` forks the container process and syncs
//! with it → the leaves (`namespaces`, `rootfs`, `process`, `sysctl`, `cgroups`, `tty`, ...)
//! each own one kernel concern.

// berth has its own entry point (below) instead of Rust's runtime start-up; the test
// harness brings its own.
#![cfg_attr(not(test), no_main)]

use clap::Parser;

mod bundle;
mod cgroups;
mod cli;
mod container;
mod default_spec;
mod exe;
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
mod rootless;
mod sched;
mod security;
mod sys;
mod sysctl;
mod tty;

/// musl's own malloc makes a system call for nearly every small allocation (Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The process's entry point, called by libc. Rust's runtime start-up (what runs before
/// `fn main`) arms a stack-overflow message: a read of /proc/self/maps, an alternate signal
/// stack and a dozen system calls at every start of berth, twice for the verbs that
/// re-execute themselves (issue 16). berth keeps only what it needs of it (sys::init_process);
/// a stack overflow is still stopped by the kernel's guard gap, as a plain SIGSEGV.
#[cfg(not(test))]
#[no_mangle]
// libc is its only caller, and the C signature of main cannot be an unsafe fn.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    sys::init_process();
    // From libc's own argv: std learns the arguments only from glibc (an init hook that
    // musl does not call), so `std::env::args` would be empty in a musl build.
    // SAFETY: libc calls main with argv[0..argc] valid NUL-terminated strings that live for
    // the whole process.
    berth_main(unsafe { sys::args_from(argc, argv) })
}

/// Every path ends in `std::process::exit`, which flushes stdout.
#[cfg_attr(test, allow(dead_code))]
fn berth_main(args: Vec<std::ffi::OsString>) -> ! {
    // Before anything else: no container process may ever run the host's writable binary.
    if exe::starts_container_processes(&args) {
        if let Err(e) = exe::ensure_read_only(&args) {
            eprintln!("berth: {e:#}");
            std::process::exit(1);
        }
    }
    // As runc: `-v`/`--version` before (or without) a command prints the version.
    if matches!(
        args.get(1).and_then(|a| a.to_str()),
        Some("-v" | "--version")
    ) {
        print!("{}", cli::version_text());
        std::process::exit(0);
    }
    // Usage errors exit 1, as runc's do (clap's own code is 2); help goes to stdout, exit 0.
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let fail_code = cli::error_exit_code(&cli);
    // Before berth opens any fd of its own (the log first): reported through the log.
    let passed = cli::fds::check_passed(&cli);
    if let Err(e) = log::init(cli.log.as_deref(), &cli.log_format, cli.debug) {
        eprintln!("berth: {e:#}");
        std::process::exit(1);
    }
    match passed.and_then(|()| cli::run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line, the whole context chain: "create abc: mount /proc ...: EPERM".
            let msg = format!("{e:#}").replace('\n', " ");
            log::error(&msg);
            eprintln!("berth: {msg}");
            std::process::exit(fail_code);
        }
    }
}
