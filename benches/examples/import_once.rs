//! One import as a whole process, for timing beside `openssl dgst` and
//! `/usr/bin/time -v` (peak RSS), and the generator of its inputs:
//!
//! ```text
//! import_once gen-docker DIR MIB      # DIR/docker.tar, MIB MiB in 4 plain layers
//! import_once gen-gzip DIR MIB        # DIR/gzip-layout/, 4 gzip layers
//! import_once gen-many DIR FILE N OFFSET   # N small images, tags from OFFSET
//! import_once fresh ROOT PATH [fs]    # empties ROOT, then imports PATH into it
//! import_once into ROOT PATH [fs]     # imports PATH into the store at ROOT
//! ```
//!
//! The store is SQLite, or the fs backend when `fs` follows the path.

use std::path::Path;
use std::process::ExitCode;

use imgstore::{Backend, Options, Store};
use imgstore_benches::import_inputs;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let number = |i: usize| arg(i).parse::<usize>().unwrap_or(0);
    match arg(0) {
        "gen-docker" => {
            println!(
                "{}",
                import_inputs::docker_save_archive(Path::new(arg(1)), number(2), 4).display()
            );
        }
        "gen-gzip" => {
            let (layout, blobs) = import_inputs::gzip_layout(Path::new(arg(1)), number(2), 4);
            println!("{}", layout.display());
            for blob in blobs {
                println!("{}", blob.display());
            }
        }
        "gen-many" => {
            let path =
                import_inputs::many_images_archive(Path::new(arg(1)), arg(2), number(3), number(4));
            println!("{}", path.display());
        }
        mode @ ("fresh" | "into") => {
            let root = Path::new(arg(1));
            if mode == "fresh" {
                let _ = std::fs::remove_dir_all(root);
            }
            let mut options = Options::default();
            if arg(3) == "fs" {
                options.backend = Some(Backend::Fs);
            }
            let store = match Store::open_with(root, options) {
                Ok(store) => store,
                Err(e) => {
                    eprintln!("open {}: {e}", root.display());
                    return ExitCode::FAILURE;
                }
            };
            match store.import(arg(2)) {
                Ok(imported) => println!("{} images", imported.len()),
                Err(e) => {
                    eprintln!("import {}: {e}", arg(2));
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => {
            eprintln!("usage: see the doc comment of benches/examples/import_once.rs");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
