//! `pull` and `push`, printing Docker's lines as they happen: on a
//! terminal, a line per layer that a progress bar redraws (indicatif);
//! otherwise Docker's output when not on a terminal, one line per layer
//! status and no byte counts.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use imgstore::digest::Digest;
use imgstore::refs::reference::Reference;
use imgstore::registry::{
    ClientOptions, Credentials, DockerConfig, LayerStatus, PullOptions, PushOptions, PushStatus,
    config_key, login_host,
};
use imgstore::{Platform, PlatformChoice, Store};
use imgstore_cli::args::{LoginArgs, PullArgs, PushArgs, RegistryAccess};

use crate::output_error;

/// The first 12 hex digits of a digest, as Docker names layers.
fn short(digest: &Digest) -> &str {
    let encoded = digest.encoded();
    &encoded[..encoded.len().min(12)]
}

/// How the layers' progress is shown.
enum LayerLines {
    /// Nothing (`-q`).
    Quiet,
    /// One line per status, byte counts left out: Docker's output when
    /// stdout is not a terminal.
    Plain,
    /// On a terminal, one line per layer, redrawn as its status changes,
    /// with a bar while its bytes move (Docker's 50 columns, decimal units).
    Bars {
        multi: indicatif::MultiProgress,
        /// Each layer's bar, and whether it now shows a byte count.
        bars: HashMap<String, (indicatif::ProgressBar, bool)>,
    },
}

impl LayerLines {
    /// Bars when stdout is a terminal, plain lines otherwise, nothing when quiet.
    fn new(quiet: bool) -> LayerLines {
        if quiet {
            LayerLines::Quiet
        } else if std::io::stdout().is_terminal() {
            LayerLines::Bars {
                multi: indicatif::MultiProgress::with_draw_target(
                    indicatif::ProgressDrawTarget::stdout(),
                ),
                bars: HashMap::new(),
            }
        } else {
            LayerLines::Plain
        }
    }

    /// Shows that layer `id` is at `status` (`Pull complete`, `Mounted from
    /// x`), with `bytes` (done, total) while it downloads or uploads.
    fn show(
        &mut self,
        out: &mut impl Write,
        id: &str,
        status: &str,
        bytes: Option<(u64, u64)>,
    ) -> std::io::Result<()> {
        match self {
            LayerLines::Quiet => Ok(()),
            // Docker prints no progress when not on a terminal.
            LayerLines::Plain if bytes.is_some() => Ok(()),
            LayerLines::Plain => writeln!(out, "{id}: {status}").and_then(|()| out.flush()),
            LayerLines::Bars { multi, bars } => {
                let (bar, counting) = bars.entry(id.to_owned()).or_insert_with(|| {
                    let bar = multi.add(indicatif::ProgressBar::new(0));
                    bar.set_prefix(id.to_owned());
                    bar.set_style(layer_style(false));
                    (bar, false)
                });
                if *counting != bytes.is_some() {
                    *counting = bytes.is_some();
                    bar.set_style(layer_style(*counting));
                }
                if let Some((current, total)) = bytes {
                    bar.set_length(total);
                    bar.set_position(current);
                }
                bar.set_message(status.to_owned());
                Ok(())
            }
        }
    }

    /// Leaves every bar's last state on the screen, so the lines after
    /// come below them.
    fn finish(self) {
        if let LayerLines::Bars { bars, .. } = self {
            for (bar, _) in bars.values() {
                bar.finish();
            }
        }
    }
}

/// A layer's line: `ID: STATUS`, with Docker's 50-column bar and the byte
/// counts in decimal units while `counting`.
fn layer_style(counting: bool) -> indicatif::ProgressStyle {
    let template = if counting {
        "{prefix}: {msg} [{bar:50}] {decimal_bytes}/{decimal_total_bytes}"
    } else {
        "{prefix}: {msg}"
    };
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A reference as typed, normalised as Docker does, with the tag it
/// defaulted to (when the user gave neither tag nor digest).
fn parse(reference: &str) -> Result<(Reference, bool), String> {
    let parsed = Reference::parse_normalized(reference)
        .map_err(|e| format!("invalid reference format: {e}: {reference:?}"))?;
    let defaulted = parsed.is_name_only();
    Ok((parsed.with_default_tag(), defaulted))
}

/// How to reach a registry as `access` says (insecure registries, TLS
/// verification), without credentials.
fn access_options(access: &RegistryAccess) -> ClientOptions {
    let mut options = ClientOptions::default();
    options.insecure_registries = access.insecure_registry.clone();
    options.tls_verify = access.tls_verify;
    options
}

/// How to reach `host`, as `access` says, with the credentials
/// `imgstore login` (or `docker login`) stored for it.
fn client_options(host: &str, access: &RegistryAccess) -> Result<ClientOptions, String> {
    let mut options = access_options(access);
    options.credentials = DockerConfig::default_location()
        .credentials_for(host)
        .map_err(|e| e.to_string())?;
    Ok(options)
}

/// `imgstore login [-u USER] [-p PASSWORD | --password-stdin] [SERVER]`.
pub(crate) fn login(args: &LoginArgs) -> Result<ExitCode, String> {
    let host = login_host(args.server.as_deref());
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => {
            return Err("--password and --password-stdin are mutually exclusive".to_owned());
        }
        (Some(password), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            password.clone()
        }
        (None, true) => {
            let mut input = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                .map_err(|e| format!("read the password from stdin: {e}"))?;
            input.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => {
            return Err("Cannot perform an interactive login from a non TTY device".to_owned());
        }
    };
    let Some(username) = args.username.clone() else {
        return Err("Cannot perform an interactive login from a non TTY device".to_owned());
    };
    if password.is_empty() {
        return Err("password is empty".to_owned());
    }
    let config = DockerConfig::default_location();
    let options = access_options(&args.access);
    let credentials = Credentials { username, password };
    imgstore::registry::login(&host, &credentials, &options, &config).map_err(|e| e.to_string())?;
    if config
        .helper_for(&host)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            config.path().display()
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Login Succeeded").map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

/// `imgstore logout [SERVER]`.
pub(crate) fn logout(server: Option<&str>) -> Result<ExitCode, String> {
    let host = login_host(server);
    let removed = DockerConfig::default_location()
        .erase(&host)
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let key = config_key(&host);
    if removed {
        writeln!(out, "Removing login credentials for {key}").map_err(output_error)?;
    } else {
        writeln!(out, "Not logged in to {key}").map_err(output_error)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `imgstore pull [--platform P] [-q] REF`.
pub(crate) fn pull(
    store: &Store,
    args: &PullArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let (reference, defaulted) = parse(&args.reference)?;
    let platform = match args.platform.as_deref() {
        None if args.all_platforms => PlatformChoice::All,
        None => PlatformChoice::Host,
        Some(exact) => PlatformChoice::Exact(
            exact
                .parse::<Platform>()
                .map_err(|e| format!("--platform {exact:?}: {e}"))?,
        ),
    };
    let mut options = PullOptions::with_platform(platform);
    options.client = client_options(reference.domain(), &args.access)?;
    options.max_concurrent_downloads = usize::from(args.max_concurrent_downloads);
    let quiet = args.quiet;
    if !quiet {
        if defaulted {
            writeln!(out, "Using default tag: latest").map_err(output_error)?;
        }
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, tag) => tag.unwrap_or("latest").to_owned(),
        };
        writeln!(out, "{wanted}: Pulling from {}", reference.path()).map_err(output_error)?;
        out.flush().map_err(output_error)?;
    }
    let mut lines = LayerLines::new(quiet);
    let mut written: std::io::Result<()> = Ok(());
    let pulled = store.pull_with_progress(&reference.to_string(), &options, &mut |event| {
        if written.is_ok() {
            let bytes = match event.status {
                LayerStatus::Downloading { current, total } => Some((current, total)),
                _ => None,
            };
            written = lines.show(out, short(&event.layer), &event.status.to_string(), bytes);
        }
    });
    lines.finish();
    let report = pulled.map_err(|e| e.to_string())?;
    written.map_err(output_error)?;
    if !quiet {
        writeln!(out, "Digest: {}", report.digest).map_err(output_error)?;
        let status = if report.up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        writeln!(out, "Status: {status} {}", reference.familiar_string()).map_err(output_error)?;
    }
    writeln!(out, "{}", report.name).map_err(output_error)?;
    Ok(ExitCode::SUCCESS)
}

/// `imgstore push [--max-concurrent-uploads N] [-q] IMAGE [REF]`.
pub(crate) fn push(
    store: &Store,
    args: &PushArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let (reference, defaulted) = parse(args.reference.as_deref().unwrap_or(&args.image))?;
    let mut options = PushOptions::default();
    options.client = client_options(reference.domain(), &args.access)?;
    options.max_concurrent_uploads = usize::from(args.max_concurrent_uploads);
    let quiet = args.quiet;
    if !quiet {
        if defaulted {
            writeln!(out, "Using default tag: latest").map_err(output_error)?;
        }
        writeln!(out, "The push refers to repository [{}]", reference.name())
            .map_err(output_error)?;
        out.flush().map_err(output_error)?;
    }
    let mut lines = LayerLines::new(quiet);
    let mut written: std::io::Result<()> = Ok(());
    let pushed = store.push_with_progress(
        &args.image,
        &reference.to_string(),
        &options,
        &mut |event| {
            if written.is_ok() {
                let status = match &event.mounted_from {
                    Some(from) => format!("{} {from}", event.status),
                    None => event.status.to_string(),
                };
                let bytes = match event.status {
                    PushStatus::Pushing { current, total } => Some((current, total)),
                    _ => None,
                };
                written = lines.show(out, short(&event.diff_id), &status, bytes);
            }
        },
    );
    lines.finish();
    let report = pushed.map_err(|e| e.to_string())?;
    written.map_err(output_error)?;
    if quiet {
        writeln!(out, "{reference}").map_err(output_error)?;
    } else {
        writeln!(
            out,
            "{}: digest: {} size: {}",
            report.tag, report.digest, report.size
        )
        .map_err(output_error)?;
    }
    Ok(ExitCode::SUCCESS)
}
