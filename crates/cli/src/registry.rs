//! `pull` and `push`, printing Docker's lines as they happen (its output
//! when not on a terminal: one line per layer status, no progress bars).

use std::io::Write;
use std::process::ExitCode;

use imgstore::digest::Digest;
use imgstore::refs::reference::Reference;
use imgstore::registry::{
    ClientOptions, Credentials, DockerConfig, PullOptions, PushOptions, config_key, login_host,
};
use imgstore::{Platform, PlatformChoice, Store};
use imgstore_cli::args::{LoginArgs, PullArgs, PushArgs};

use crate::output_error;

/// The first 12 hex digits of a digest, as Docker names layers.
fn short(digest: &Digest) -> &str {
    let encoded = digest.encoded();
    &encoded[..encoded.len().min(12)]
}

/// A reference as typed, normalised as Docker does, with the tag it
/// defaulted to (when the user gave neither tag nor digest).
fn parse(reference: &str) -> Result<(Reference, bool), String> {
    let parsed = Reference::parse_normalized(reference)
        .map_err(|e| format!("invalid reference format: {e}: {reference:?}"))?;
    let defaulted = parsed.is_name_only();
    Ok((parsed.with_default_tag(), defaulted))
}

/// How to reach `host`: plain HTTP if listed insecure, with the
/// credentials `imgstore login` (or `docker login`) stored for it.
fn client_options(host: &str, insecure_registries: &[String]) -> Result<ClientOptions, String> {
    let mut options = ClientOptions::default();
    options.insecure_registries = insecure_registries.to_vec();
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
    let mut options = ClientOptions::default();
    options.insecure_registries = args.insecure_registry.clone();
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
    options.client = client_options(reference.domain(), &args.insecure_registry)?;
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
    let mut written: std::io::Result<()> = Ok(());
    let report = store
        .pull_with_progress(&reference.to_string(), &options, &mut |event| {
            if !quiet && written.is_ok() {
                written = writeln!(out, "{}: {}", short(&event.layer), event.status)
                    .and_then(|()| out.flush());
            }
        })
        .map_err(|e| e.to_string())?;
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

/// `imgstore push [-q] IMAGE [REF]`.
pub(crate) fn push(
    store: &Store,
    args: &PushArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let (reference, defaulted) = parse(args.reference.as_deref().unwrap_or(&args.image))?;
    let mut options = PushOptions::default();
    options.client = client_options(reference.domain(), &args.insecure_registry)?;
    let quiet = args.quiet;
    if !quiet {
        if defaulted {
            writeln!(out, "Using default tag: latest").map_err(output_error)?;
        }
        writeln!(out, "The push refers to repository [{}]", reference.name())
            .map_err(output_error)?;
        out.flush().map_err(output_error)?;
    }
    let mut written: std::io::Result<()> = Ok(());
    let report = store
        .push_with_progress(
            &args.image,
            &reference.to_string(),
            &options,
            &mut |event| {
                if !quiet && written.is_ok() {
                    let layer = short(&event.diff_id);
                    written = match &event.mounted_from {
                        Some(from) => writeln!(out, "{layer}: {} {from}", event.status),
                        None => writeln!(out, "{layer}: {}", event.status),
                    }
                    .and_then(|()| out.flush());
                }
            },
        )
        .map_err(|e| e.to_string())?;
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
