//! `pull` and `push`, printing Docker's lines as they happen (its output
//! when not on a terminal: one line per layer status, no progress bars).

use std::io::Write;
use std::process::ExitCode;

use imgstore::digest::Digest;
use imgstore::refs::reference::Reference;
use imgstore::registry::{ClientOptions, PullOptions, PushOptions};
use imgstore::{Platform, PlatformChoice, Store};
use imgstore_cli::args::{PullArgs, PushArgs};

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

fn client_options(insecure_registries: &[String]) -> ClientOptions {
    let mut options = ClientOptions::default();
    options.insecure_registries = insecure_registries.to_vec();
    options
}

/// `imgstore pull [--platform P] [-q] REF`.
pub(crate) fn pull(
    store: &Store,
    args: &PullArgs,
    out: &mut impl Write,
) -> Result<ExitCode, String> {
    let (reference, defaulted) = parse(&args.reference)?;
    let platform = match args.platform.as_deref() {
        None => PlatformChoice::Host,
        Some(exact) => PlatformChoice::Exact(
            exact
                .parse::<Platform>()
                .map_err(|e| format!("--platform {exact:?}: {e}"))?,
        ),
    };
    let mut options = PullOptions::with_platform(platform);
    options.client = client_options(&args.insecure_registry);
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
    options.client = client_options(&args.insecure_registry);
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
                    written = writeln!(out, "{}: {}", short(&event.diff_id), event.status)
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
