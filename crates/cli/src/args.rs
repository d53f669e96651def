//! The command line's arguments: clap's derive types for every command,
//! under Docker's names (`images`, `rmi`, `df`) and its command tree
//! (`image ls`, `image rm`, `system df`); [`Command::canonical`] maps the
//! second onto the first. A library so that `cargo xtask dist` writes the
//! man pages from the same definitions.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// A local container image store.
#[derive(Debug, Parser)]
#[command(name = "imgstore", version, about, max_term_width = 100)]
pub struct Cli {
    /// The store's directory [default: $IMGSTORE_ROOT, else
    /// $XDG_DATA_HOME/imgstore, else ~/.local/share/imgstore]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The backend the store keeps its state in [default: the one the
    /// root was created with; sqlite for a new root]
    #[arg(long, global = true, value_enum, env = "IMGSTORE_BACKEND")]
    pub backend: Option<BackendArg>,
    /// The database of a postgres store (postgres://user@host/db): needed
    /// to create one; later commands use the one the root recorded, without
    /// its password, unless given
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "IMGSTORE_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// The namespace of the names (containerd's).
    #[arg(
        long,
        global = true,
        value_name = "NS",
        env = "IMGSTORE_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
    /// No progress bars (as `load -q`, `save -q`).
    #[arg(long)]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// SQLite databases (content.db, images.db).
    Sqlite,
    /// Files in moby's layout (content/, imagedb/).
    Fs,
    /// A PostgreSQL database many nodes may share (--database-url).
    Postgres,
}

/// `layers --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// One JSON object per line.
    Json,
}

/// What `--format` of `images`, `history` and `df` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat<'a> {
    /// Docker's table (no `--format`, an empty one, or `table`).
    Table,
    /// imgstore's JSON rows (`json`, which Docker 20.10 lacks; 23.0 added it).
    Json,
    /// A Go template as Docker runs it (`table ...` prints a header row).
    Template(&'a str),
}

impl<'a> ListFormat<'a> {
    /// Reads a `--format` value; Docker takes an empty one for the table.
    pub fn parse(format: Option<&'a str>) -> ListFormat<'a> {
        match format {
            None | Some("" | "table") => ListFormat::Table,
            Some("json") => ListFormat::Json,
            Some(template) => ListFormat::Template(template),
        }
    }
}

/// `save --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaveFormat {
    /// A `docker save` tar (`docker load` reads it).
    Docker,
    /// An oci-archive: an OCI image layout in a tar.
    Oci,
    /// An OCI image layout directory.
    OciLayout,
}

/// The commands, under Docker's short names, plus `image` and `system`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load images from OCI layouts, oci-archive or `docker save` tarballs
    /// (also gzip-compressed), or from STDIN.
    Load(LoadArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Log in to a registry (Docker's credentials file, shared with `docker login`).
    Login(LoginArgs),
    /// Log out from a registry.
    Logout {
        /// The registry [default: Docker Hub].
        server: Option<String>,
    },
    /// List images.
    Images(ImagesArgs),
    /// Show images as JSON, as `docker inspect` does.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// List stored layers and how many images use each.
    Layers {
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Create a name TARGET that refers to SOURCE.
    Tag(TagArgs),
    /// Save images to a `docker save` tar, an oci-archive or an OCI layout
    /// (a tar to STDOUT by default).
    Save(SaveArgs),
    /// Show disk usage: layer bytes, shared and unique per image.
    Df(DfArgs),
    /// Remove names and images, as `docker rmi`.
    Rmi(RmiArgs),
    /// Pin images (the CRI's pinned label): prune keeps them, rmi needs -f.
    Pin {
        /// Names or (short) IDs; an ID pins every name of the image.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Undo pin.
    Unpin {
        /// Names or (short) IDs; an ID unpins every name of the image.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove unused images: dangling ones, or with -a every image without
    /// child images (pinned images are kept).
    Prune(PruneArgs),
    /// Remove unreferenced layers and unreachable blobs.
    Gc,
    /// Re-verify every blob, layer record and name; report (and repair).
    Fsck {
        /// Delete what is corrupt or dangling, then gc.
        #[arg(long)]
        repair: bool,
    },
    /// Serve the store to the docker CLI: the Docker Engine API's image
    /// endpoints on a unix socket, until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Manage images (Docker's `docker image` commands).
    Image {
        /// What to do.
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Manage the store (Docker's `docker system` commands).
    System {
        /// What to do.
        #[command(subcommand)]
        command: SystemCommand,
    },
    /// Print a shell completion script (`source <(imgstore completion bash)`).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `imgstore image ...`: Docker's canonical names of the image commands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON, as `docker image inspect` does.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Create a name TARGET that refers to SOURCE.
    Tag(TagArgs),
    /// Remove names and images.
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Save images to a tar (STDOUT by default) or an OCI layout.
    Save(SaveArgs),
    /// Load images from tarballs, OCI layouts or STDIN.
    Load(LoadArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
}

/// `imgstore system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df(DfArgs),
}

impl Command {
    /// The command under its short name: `image ls` is `images`, `image rm`
    /// is `rmi`, `system df` is `df`, and so on (one dispatch for both).
    pub fn canonical(self) -> Command {
        match self {
            Command::Image { command } => match command {
                ImageCommand::Ls(args) => Command::Images(args),
                ImageCommand::Inspect(args) => Command::Inspect(args),
                ImageCommand::History(args) => Command::History(args),
                ImageCommand::Tag(args) => Command::Tag(args),
                ImageCommand::Rm(args) => Command::Rmi(args),
                ImageCommand::Save(args) => Command::Save(args),
                ImageCommand::Load(args) => Command::Load(args),
                ImageCommand::Prune(args) => Command::Prune(args),
                ImageCommand::Pull(args) => Command::Pull(args),
                ImageCommand::Push(args) => Command::Push(args),
            },
            Command::System {
                command: SystemCommand::Df(args),
            } => Command::Df(args),
            other => other,
        }
    }
}

/// `load`'s arguments.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from an image tarball or an OCI layout directory instead of
    /// STDIN; `-` is STDIN (repeatable).
    #[arg(short, long = "input", value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// From multi-platform indexes: `all`, or OS/ARCH[/VARIANT]
    /// [default: this host's]
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Suppress the progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `images`' arguments.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only images with this name (a reference filter; `*` matches within
    /// a path component).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
    /// Show all images (also intermediate ones).
    #[arg(short, long)]
    pub all: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE,
    /// since=IMAGE, until=TIMESTAMP, label=KEY[=VALUE] (repeatable).
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// `table` (the default), `json` (a JSON object per row), or a Go
    /// template as Docker's (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}\t{{.Size}}`).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Don't truncate output (full image IDs).
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `inspect`'s arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Names or (short) IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// A Go template run on each image's JSON, as Docker's
    /// (`{{.Config.Env}}`, `{{json .RootFS}}`, `{{index .RepoTags 0}}`).
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// `history`'s arguments.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A name or (short) ID.
    pub image: String,
    /// Print sizes and dates in human readable format (`--human=false`:
    /// bytes and RFC 3339 times).
    #[arg(
        short = 'H',
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub human: bool,
    /// Don't truncate output (full IDs and CREATED BY).
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// `table` (the default), `json` (a JSON object per row), or a Go
    /// template as Docker's (`{{.ID}} {{.Size}}`).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `tag`'s arguments.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// A name or (short) ID.
    pub source: String,
    /// The new name.
    pub target: String,
}

/// `save`'s arguments.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file (or, for oci-layout, a directory), instead of STDOUT;
    /// `-` is STDOUT. A file is replaced.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What to write.
    #[arg(long, value_enum, default_value_t = SaveFormat::Docker)]
    pub format: SaveFormat,
    /// Suppress the progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Names or (short) IDs; a name keeps its name.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `df`'s arguments.
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Per image: SIZE, SHARED SIZE, UNIQUE SIZE.
    #[arg(short, long)]
    pub verbose: bool,
    /// `table` (the default), `json` (a JSON object per type; with -v one
    /// object), or a Go template as Docker's (`{{.Type}}`; with -v run once
    /// on the whole `{Images, Containers, Volumes, BuildCache}` object).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `rmi`'s arguments.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove an image several names point at, by ID.
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    pub no_prune: bool,
    /// Names or (short) IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `serve`'s arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Docker Engine API socket (then `DOCKER_HOST=unix://PATH docker
    /// images`) [default: docker.sock in the store's directory].
    #[arg(long, value_name = "PATH")]
    pub docker_socket: Option<PathBuf>,
    /// Also serve the CRI v1 ImageService (gRPC) on this socket (builds
    /// with the feature `cri`).
    #[arg(long, value_name = "PATH")]
    pub cri_socket: Option<PathBuf>,
    /// Let this group (name or ID) use the socket too: mode 0660 instead
    /// of 0600.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
}

/// `prune`'s arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// How `pull`, `push` and `login` reach a registry.
#[derive(Debug, Args)]
pub struct RegistryAccess {
    /// An insecure registry (HOST or HOST:PORT; repeatable): HTTPS without
    /// verifying its certificate, or plain HTTP when HTTPS fails. Loopback
    /// registries (localhost, 127.0.0.0/8) are spoken to over plain HTTP
    /// unless they speak only HTTPS.
    #[arg(long, value_name = "HOST")]
    pub insecure_registry: Vec<String>,
    /// Verify the registry's TLS certificate (against the system's roots and
    /// /etc/docker/certs.d/HOST/ca.crt); `--tls-verify=false` makes the
    /// registry insecure, as podman's and skopeo's flag does.
    #[arg(
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub tls_verify: bool,
}

/// `pull`'s arguments.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Of a multi-platform image, this platform's manifest: OS/ARCH[/VARIANT]
    /// [default: this host's]
    #[arg(long, value_name = "PLATFORM", conflicts_with = "all_platforms")]
    pub platform: Option<String>,
    /// Of a multi-platform image, every platform's manifest.
    #[arg(long)]
    pub all_platforms: bool,
    /// Layers downloaded at once (Docker's daemon option of that name).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_downloads: u16,
    /// How the registry is reached.
    #[command(flatten)]
    pub access: RegistryAccess,
    /// Suppress verbose output: print only the name pulled.
    #[arg(short, long)]
    pub quiet: bool,
    /// The image: a name with a tag, a digest or neither (`busybox` is
    /// docker.io/library/busybox:latest).
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

/// `push`'s arguments.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// How the registry is reached.
    #[command(flatten)]
    pub access: RegistryAccess,
    /// Layers uploaded at once (Docker's daemon option of that name).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_uploads: u16,
    /// Suppress verbose output: print only the name pushed.
    #[arg(short, long)]
    pub quiet: bool,
    /// A name or (short) ID of a stored image.
    pub image: String,
    /// Where to push it, a name with or without a tag (IMAGE itself when
    /// not given, which must then be a name).
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: Option<String>,
}

/// `login`'s arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The user name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from STDIN.
    #[arg(long)]
    pub password_stdin: bool,
    /// How the registry is reached.
    #[command(flatten)]
    pub access: RegistryAccess,
    /// The registry [default: Docker Hub].
    pub server: Option<String>,
}
