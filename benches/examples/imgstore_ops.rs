//! A stand-in for the `imgstore` command with the subcommands the CLI timings
//! of `cargo xtask bench cli` run, over the facade exactly as the command
//! does (open, one operation, print): `images [-q]`, `rmi NAME...`,
//! `load -i FILE...`, with `--root DIR` and `--backend sqlite|fs`; and
//! `time-rmi NAME...`, the in-process time of each removal on the open store.
//!
//! `cargo run --release -p imgstore-benches --example imgstore_ops -- --root R images -q`

use std::io::Write;
use std::process::ExitCode;

use imgstore::{Backend, Options, Store};

fn run(args: &[String]) -> Result<(), String> {
    let mut options = Options::default();
    let mut root = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--root" => root = it.next().cloned(),
            "--backend" => {
                options.backend = match it.next().map(String::as_str) {
                    Some("fs") => Some(Backend::Fs),
                    Some("sqlite") => Some(Backend::Sqlite),
                    other => return Err(format!("unknown backend {other:?}")),
                }
            }
            _ => rest.push(arg.clone()),
        }
    }
    let root = root.ok_or("--root DIR is required")?;
    let store = Store::open_with(&root, options).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let w = |e: std::io::Error| e.to_string();
    match rest.first().map(String::as_str) {
        Some("images") if rest.get(1).is_some_and(|a| a == "-q") => {
            // IDs only: nothing per image beyond the image store's map.
            let summaries = imgstore::image::ImageStore::summaries(store.image_store())
                .map_err(|e| e.to_string())?;
            for (id, _) in &summaries {
                writeln!(out, "{}", id.short()).map_err(w)?;
            }
        }
        Some("images") => {
            writeln!(out, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE").map_err(w)?;
            for image in store.images().map_err(|e| e.to_string())? {
                let created = image.created.as_deref().unwrap_or("N/A");
                if image.references.is_empty() {
                    writeln!(
                        out,
                        "<none>\t<none>\t{}\t{created}\t{}",
                        image.id.short(),
                        image.size
                    )
                    .map_err(w)?;
                }
                for name in &image.references {
                    let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "<none>"));
                    writeln!(
                        out,
                        "{repo}\t{tag}\t{}\t{created}\t{}",
                        image.id.short(),
                        image.size
                    )
                    .map_err(w)?;
                }
            }
        }
        Some("rmi") => {
            for name in &rest[1..] {
                let report = store.remove(name, false).map_err(|e| e.to_string())?;
                for name in report.untagged {
                    writeln!(out, "Untagged: {name}").map_err(w)?;
                }
                for id in report.deleted {
                    writeln!(out, "Deleted: {id}").map_err(w)?;
                }
            }
        }
        Some("time-rmi") => {
            // In-process: what a long-lived caller (a node agent, a daemon)
            // pays per removal once the store is open.
            let mut times = Vec::new();
            for name in &rest[1..] {
                let began = std::time::Instant::now();
                store.remove(name, false).map_err(|e| e.to_string())?;
                times.push(began.elapsed());
            }
            times.sort();
            let median = times.get(times.len() / 2).ok_or("no names given")?;
            writeln!(
                out,
                "remove on an open store: median {:.2} ms over {} names",
                median.as_secs_f64() * 1e3,
                times.len()
            )
            .map_err(w)?;
        }
        Some("load") => {
            let files: Vec<_> = rest[1..].iter().filter(|a| *a != "-i").collect();
            for file in files {
                for image in store.import_archive(file).map_err(|e| e.to_string())? {
                    for name in &image.names {
                        writeln!(out, "Loaded image: {name}").map_err(w)?;
                    }
                }
            }
        }
        other => return Err(format!("unknown command {other:?}")),
    }
    out.flush().map_err(w)?;
    drop(out);
    // As the command does: the process ends without freeing the store's
    // memory piece by piece (SQLite is consistent without a clean close).
    std::mem::forget(store);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imgstore_ops: {e}");
            ExitCode::FAILURE
        }
    }
}
