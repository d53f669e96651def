//! `imgstore`: the command line of the imgstore facade, with the output a
//! Docker user expects (`Loaded image: NAME`, the `images` table,
//! `Untagged:` / `Deleted:` lines, `docker inspect` JSON).
//!
//! The binary is thin: it parses arguments (clap) and prints; everything it
//! does is a call on [`imgstore::Store`] a library user could make too.
//! Exit codes: 0 success, 1 an operation failed (`Error: <message>` on
//! stderr; a `--format` template that fails says `template parsing error:
//! <message>`, as Docker), 2 a usage error, 64 an `inspect -f` template that
//! does not parse (Docker's code).
//!
//! ```text
//! imgstore load -i corpus/oci/main -i corpus/docker/child.docker.tar
//! imgstore images --format json
//! imgstore images --format 'table {{.Repository}}:{{.Tag}}\t{{.Size}}'
//! imgstore inspect -f '{{json .Config.Env}}' base:latest
//! imgstore rmi registry.demo.test/demo/sibling:v1
//! imgstore save registry.demo.test/demo/base:v1 | ssh host imgstore load
//! imgstore image ls --no-trunc; imgstore system df
//! ```
//!
//! The arguments are defined in the crate's library (`args.rs`), shared
//! with `imgstore completion` and the man pages of `cargo xtask dist`.

mod format;
mod print;
mod registry;
mod template;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use imgstore::{
    Backend, ExportFormat, ImageQuery, ImportOptions, Options, Platform, PlatformChoice, Store,
};
use indicatif::{ProgressBar, ProgressStyle};

use imgstore_cli::args::{BackendArg, Cli, Command, ImagesArgs, SaveArgs, SaveFormat, ServeArgs};

use crate::print::{df, fsck, gc, history, images, inspect, layers, pin, prune, rmi};

/// mimalloc: a listing or an open of 10k images makes some 100k small
/// allocations; with it the whole `images -q` process took 13 ms instead
/// of 22 ms.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What [`output_error`] says for a closed stdout, which `run` forgives.
const BROKEN_PIPE: &str = "write output: broken pipe";

/// The message of a failed write to stdout.
fn output_error(error: std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        BROKEN_PIPE.to_owned()
    } else {
        format!("write output: {error}")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A reader that went away (`imgstore inspect x | head`) is no failure.
        Err(message) if message == BROKEN_PIPE => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; `Err` is a failure before any output (opening the
/// store, a bad filter). Commands over several arguments report each
/// failure themselves and return exit code 1.
fn run(cli: Cli) -> Result<ExitCode, String> {
    let command = cli.command.canonical();
    // What needs no store: completions, and Docker's refusals to read a
    // tar from or write one to a terminal.
    match &command {
        Command::Completion { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut imgstore_cli::command(), "imgstore", &mut out);
            out.flush().map_err(output_error)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Login(args) => return registry::login(args),
        Command::Logout { server } => return registry::logout(server.as_deref()),
        Command::Serve(args) if args.socket_group.is_some() => {
            // A bad group is a usage error, before the store opens.
            let group = args.socket_group.as_deref().unwrap_or_default();
            imgstore_serve::group_id(group).map_err(|e| e.to_string())?;
        }
        Command::Load(args) if reads_stdin(&args.inputs) && std::io::stdin().is_terminal() => {
            return Err("requested load from stdin, but stdin is empty".to_owned());
        }
        Command::Save(args) if writes_stdout(&args.output) && std::io::stdout().is_terminal() => {
            return Err(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect".to_owned(),
            );
        }
        _ => {}
    }
    let root = cli.root.clone().unwrap_or_else(imgstore::default_root);
    let options = Options {
        backend: cli.backend.map(|backend| match backend {
            BackendArg::Sqlite => Backend::Sqlite,
            BackendArg::Fs => Backend::Fs,
            BackendArg::Postgres => Backend::Postgres,
        }),
        database_url: cli.database_url.clone(),
        namespace: cli.namespace.clone(),
        // Only `load` and `pull` make a store; every other command on a root that
        // holds none says so (a mistyped --root creates nothing).
        create: matches!(
            command,
            Command::Load(_) | Command::Pull(_) | Command::Serve(_)
        ),
        ..Options::default()
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let store = Store::open_with(&root, options).map_err(|e| match e {
        imgstore::Error::NoStore { .. } => e.to_string(),
        e => format!("cannot open the store at {}: {e}", root.display()),
    })?;
    let quiet = cli.quiet;
    let result = match command {
        Command::Load(args) => {
            let platform = match args.platform.as_deref() {
                None => PlatformChoice::Host,
                Some("all") => PlatformChoice::All,
                Some(exact) => PlatformChoice::Exact(
                    exact
                        .parse::<Platform>()
                        .map_err(|e| format!("--platform {exact:?}: {e}"))?,
                ),
            };
            let options = ImportOptions::with_platform(platform);
            Ok(load(
                &store,
                &args.inputs,
                &options,
                quiet || args.quiet,
                &mut out,
            ))
        }
        Command::Pull(args) => registry::pull(&store, &args, &mut out),
        Command::Push(args) => registry::push(&store, &args, &mut out),
        Command::Images(args) => images(&store, &args, &mut out),
        Command::Inspect(args) => Ok(inspect(&store, &args, &mut out)),
        Command::History(args) => history(&store, &args, &mut out),
        Command::Layers { format } => layers(&store, format, &mut out),
        Command::Tag(args) => store
            .tag(&args.source, &args.target)
            .map(|_| ExitCode::SUCCESS)
            .map_err(|e| e.to_string()),
        Command::Rmi(args) => Ok(rmi(&store, &args, &mut out)),
        Command::Save(args) => save(&store, &args, quiet || args.quiet, &mut out),
        Command::Df(args) => df(&store, args.verbose, args.format.as_deref(), &mut out),
        Command::Pin { images } => Ok(pin(&store, &images, true, &mut out)),
        Command::Unpin { images } => Ok(pin(&store, &images, false, &mut out)),
        Command::Prune(args) => prune(&store, args.all, args.force, &mut out),
        Command::Gc => gc(&store, &mut out),
        Command::Fsck { repair } => fsck(&store, repair, &mut out),
        Command::Serve(args) => return serve(store, &root, &args),
        Command::Image { .. }
        | Command::System { .. }
        | Command::Completion { .. }
        | Command::Login(_)
        | Command::Logout { .. } => {
            unreachable!(
                "canonical() maps image and system commands; completion, login and logout returned above"
            )
        }
    };
    out.flush().map_err(output_error)?;
    // Every change is durable and its locks are released by now; the
    // process ends next, and the kernel closes files and frees memory
    // faster than dropping 10k images' worth of state one by one (about
    // 25 ms). SQLite treats the unclosed connections like a crash it
    // recovers from, which every committed write survives.
    std::mem::forget(store);
    result
}

/// `imgstore serve`: hands the open store to the server until a signal.
fn serve(store: Store, root: &Path, args: &ServeArgs) -> Result<ExitCode, String> {
    let socket = args
        .docker_socket
        .clone()
        .unwrap_or_else(|| root.join("docker.sock"));
    let mut options = imgstore_serve::ServeOptions::new(&socket);
    options.cri_socket = args.cri_socket.clone();
    if let Some(group) = &args.socket_group {
        options.socket_group = Some(imgstore_serve::group_id(group).map_err(|e| e.to_string())?);
    }
    eprintln!(
        "Serving the Docker Engine API on unix://{}",
        socket.display()
    );
    if let Some(cri) = &options.cri_socket {
        eprintln!("Serving the CRI ImageService on unix://{}", cri.display());
    }
    imgstore_serve::serve(store, &options).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// `-` names standard input or output, as for Docker's `-i` and `-o`.
fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Whether `load` reads standard input: no `-i`, or `-i -`.
fn reads_stdin(inputs: &[PathBuf]) -> bool {
    inputs.is_empty() || inputs.iter().any(|input| is_stdio(input))
}

/// Whether `save` writes to standard output: no `-o`, or `-o -`.
fn writes_stdout(output: &Option<PathBuf>) -> bool {
    output.as_deref().is_none_or(is_stdio)
}

/// The listing `images` asks for: the positional `REPOSITORY[:TAG]` is a
/// reference filter, as Docker adds it.
pub(crate) fn image_query(args: &ImagesArgs) -> ImageQuery {
    let mut filters = args.filters.clone();
    if let Some(reference) = &args.reference {
        filters.push(format!("reference={reference}"));
    }
    ImageQuery {
        all: args.all,
        filters,
    }
}

/// A spinner on stderr while `work` runs, when stderr is a terminal and
/// progress is not silenced.
fn with_progress<T>(quiet: bool, message: String, work: impl FnOnce() -> T) -> T {
    if quiet || !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    let result = work();
    bar.finish_and_clear();
    result
}

fn load(
    store: &Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
    quiet: bool,
    out: &mut impl Write,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let stdin_only = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin_only[..]
    } else {
        inputs
    };
    for input in inputs {
        let result = if is_stdio(input) {
            with_progress(quiet, "Loading from stdin".to_owned(), || {
                store.import_reader(std::io::stdin().lock(), "stdin", options)
            })
        } else {
            with_progress(quiet, format!("Loading {}", input.display()), || {
                store.import_with(input, options)
            })
        };
        match result {
            Ok(imported) => {
                for line in imported.iter().flat_map(imgstore::Imported::load_messages) {
                    let _ = writeln!(out, "{line}");
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

fn save(
    store: &Store,
    args: &SaveArgs,
    quiet: bool,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let format = match args.format {
        SaveFormat::Docker => ExportFormat::DockerSave,
        SaveFormat::Oci => ExportFormat::OciArchive,
        SaveFormat::OciLayout => ExportFormat::OciLayout,
    };
    let images: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let result = match args.output.as_deref().filter(|output| !is_stdio(output)) {
        Some(output) => with_progress(quiet, format!("Saving {}", output.display()), || {
            // `docker save -o` replaces an existing file.
            store.export_replacing(&images, output, format)
        }),
        None => with_progress(quiet, "Saving to stdout".to_owned(), || {
            store.export_to_writer(&images, &mut *out, "stdout", format)
        }),
    };
    match result {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // A reader that went away (`imgstore save x | head -c 10`) is no
        // failure, as for every other command's output.
        Err(imgstore::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Err(BROKEN_PIPE.to_owned())
        }
        Err(e) => Err(e.to_string()),
    }
}
