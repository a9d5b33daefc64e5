//! runc's command line: the same verbs, flags and exit codes, so engines can call berth as
//! they call runc.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::container::{self, Store};

mod events;
pub mod fds;
mod list;
mod ps;
mod state;
mod update;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    disable_version_flag = true,
    about = "An OCI runtime: runs containers from bundles, as runc does",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Root directory for the containers' state (a tmpfs is best) [default: /run/berth;
    /// rootless: $XDG_RUNTIME_DIR/berth].
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Write the log to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver: the container's cgroup is a transient systemd unit
    /// (linux.cgroupsPath is then "SLICE:PREFIX:NAME").
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto (rootless when not root, or root of a user
    /// namespace) [default: auto].
    /// `spec --rootless`, without a value, writes a spec for a rootless container.
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Print the version (berth's, the runtime-spec's, libseccomp's).
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Path to criu (accepted for runc compatibility; checkpoint is not built yet).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// Each verb's arguments are built only when that verb is parsed (or its help shown): every
// call pays for one parser, not fifteen (issue 16: most of berth's user-space start-up).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container: set it up and leave its process waiting for `start`.
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start(IdArg),
    /// Print the container's state as JSON.
    State(IdArg),
    /// Send a signal to the container's init process (default SIGTERM).
    Kill(KillArgs),
    /// Delete a container and what it holds.
    Delete(DeleteArgs),
    /// Create and start a container, wait for it and delete it.
    Run(RunArgs),
    /// List containers.
    List(ListArgs),
    /// Write a default config.json.
    Spec(SpecArgs),
    /// Print the runtime-spec features berth supports, as JSON.
    Features,
    /// Freeze every process of the container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// List the container's processes.
    Ps(PsArgs),
    /// Print the container's events: resource stats and OOM kills.
    Events(EventsArgs),
    /// Change the resource limits of a running container.
    Update(update::UpdateArgs),
    /// Run another process in a created or running container.
    Exec(ExecArgs),
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A unix socket to send the pty master to (with --tty).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE).
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Allocate a pseudo-terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// An additional group id.
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// A process.json to run (the other process flags are then ignored, as with runc).
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Return once the process runs instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label for the process.
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability (CAP_NET_ADMIN) to the bounding, effective and permitted sets.
    #[arg(long, short = 'c')]
    pub cap: Vec<String>,
    /// Pass this many fds after stdio (3, 4, ...) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Run the process in an existing sub-cgroup of the container's: [CONTROLLER[,...]:]PATH
    /// (repeatable; without controllers, in every hierarchy).
    #[arg(long)]
    pub cgroup: Vec<String>,
    /// Allow exec in a paused container (the process starts frozen).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// table (ps's own output) or json (the pids).
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    pub id: String,
    /// Options for ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats (Go duration: 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// The bundle directory (default: the current directory).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// A unix socket to send the pty master to, when the process has a terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Write the init process's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Pass this many fds after stdio (3, 4, ...) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Move the root with MS_MOVE and chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after start instead of waiting for the container.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long = "keep")]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process in the container, not only init.
    #[arg(long, short = 'a')]
    pub all: bool,
    pub id: String,
    /// A signal name (KILL, SIGKILL) or number; default SIGTERM.
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container if it still runs.
    #[arg(long, short = 'f')]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table")]
    pub format: String,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    // `spec --rootless` is the global --rootless given without a value (see Cli::rootless):
    // clap cannot have a verb's flag and a global option of the same name.
}

/// Runs a verb; returns the process exit code.
/// The exit code of a failed command: runc exits 255 when `exec` fails (scripts tell that
/// from the process's own codes), 1 otherwise.
pub fn error_exit_code(cli: &Cli) -> i32 {
    match cli.command {
        Command::Exec(_) => 255,
        _ => 1,
    }
}

/// `-v`/`--version`, in runc's form: name and version, the runtime-spec version implemented,
/// the libseccomp linked.
pub fn version_text() -> String {
    format!(
        "berth version {}\nspec: {}\nlibseccomp: {}\n",
        env!("CARGO_PKG_VERSION"),
        crate::default_spec::OCI_VERSION,
        crate::security::seccomp::libseccomp_version()
    )
}

pub fn run(cli: Cli) -> Result<i32> {
    // Only where it changes something: the default root and what create does. `state`,
    // `kill` and the rest with --root skip the read of /proc/self/uid_map (issue 16).
    let needed = cli.root.is_none()
        || cli.rootless.is_some()
        || matches!(cli.command, Command::Create(_) | Command::Run(_));
    let rootless = needed && crate::rootless::detect(cli.rootless.as_deref())?;
    let store = Store::new(&crate::rootless::state_root(cli.root.as_deref(), rootless)?);
    match cli.command {
        Command::Create(a) => {
            let mut opts: container::CreateOptions = a.clone().into();
            opts.systemd_cgroup = cli.systemd_cgroup;
            opts.rootless = rootless;
            container::create(&store, &a.id, &opts)?;
            Ok(0)
        }
        Command::Start(a) => {
            container::start(&store, &a.id)?;
            Ok(0)
        }
        Command::State(a) => state::print(&store, &a.id),
        Command::Kill(a) => {
            let sig = container::parse_signal(a.signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(&store, &a.id, sig, a.all)?;
            Ok(0)
        }
        Command::Delete(a) => {
            container::delete(&store, &a.id, a.force)?;
            Ok(0)
        }
        Command::Run(a) => {
            let mut opts: container::CreateOptions = a.create.clone().into();
            opts.systemd_cgroup = cli.systemd_cgroup;
            opts.rootless = rootless;
            container::run(&store, &a.create.id, &opts, a.detach, a.keep)
        }
        Command::List(a) => list::print(&store, &a.format, a.quiet),
        Command::Spec(a) => {
            crate::default_spec::write_default_spec(
                &a.bundle,
                cli.rootless.as_deref() == Some("true"),
            )?;
            Ok(0)
        }
        Command::Pause(a) => {
            container::pause(&store, &a.id)?;
            Ok(0)
        }
        Command::Resume(a) => {
            container::resume(&store, &a.id)?;
            Ok(0)
        }
        Command::Ps(a) => ps::print(&store, &a.id, &a.format, &a.ps_args),
        Command::Events(a) => events::run(&store, &a.id, a.stats, &a.interval),
        Command::Update(a) => update::run(&store, &a),
        Command::Exec(a) => {
            let id = a.id.clone();
            container::exec(&store, &id, &a.into())
        }
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&crate::features::features())?
            );
            Ok(0)
        }
    }
}

impl From<CreateArgs> for container::CreateOptions {
    fn from(a: CreateArgs) -> Self {
        container::CreateOptions {
            bundle: a.bundle,
            console_socket: a.console_socket,
            pid_file: a.pid_file,
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            systemd_cgroup: false,
            rootless: false,
        }
    }
}

impl From<ExecArgs> for container::ExecOptions {
    fn from(a: ExecArgs) -> Self {
        container::ExecOptions {
            process: a.process,
            args: a.command,
            tty: a.tty,
            console_socket: a.console_socket,
            detach: a.detach,
            pid_file: a.pid_file,
            cwd: a.cwd,
            env: a.env,
            user: a.user,
            additional_gids: a.additional_gids,
            caps: a.cap,
            no_new_privs: a.no_new_privs,
            apparmor: a.apparmor,
            process_label: a.process_label,
            preserve_fds: a.preserve_fds,
            ignore_paused: a.ignore_paused,
            sub_cgroups: a.cgroup,
        }
    }
}
