//! Loads OCI image layouts (directories) and image tarballs (oci-archive or
//! `docker save` files) into the default store and lists its images, as
//! `docker load` followed by `docker images` would:
//! `cargo run -p imgstore --example load -- DIR|FILE...`.
//!
//! The store lives at [`imgstore::default_root`]: `$IMGSTORE_ROOT`, else
//! `$XDG_DATA_HOME/imgstore`, else `~/.local/share/imgstore` (SQLite). The
//! `imgstore` command (`crates/cli`) does the same with `imgstore load` and
//! `imgstore images`.

use std::process::ExitCode;

use imgstore::{Store, default_root};

fn main() -> ExitCode {
    let root = default_root();
    let store = match std::fs::create_dir_all(&root)
        .map_err(|e| e.to_string())
        .and_then(|()| Store::open(&root).map_err(|e| e.to_string()))
    {
        Ok(store) => store,
        Err(e) => {
            eprintln!("cannot open the store at {}: {e}", root.display());
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for input in std::env::args().skip(1) {
        let result = if std::path::Path::new(&input).is_file() {
            store.import_archive(&input)
        } else {
            store.import_oci_layout(&input)
        };
        match result {
            Ok(imported) => {
                for image in imported {
                    if image.names.is_empty() {
                        println!("Loaded image ID: {}", image.id);
                    }
                    for name in &image.names {
                        println!("Loaded image: {name}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{input}: {e}");
                failed = true;
            }
        }
    }
    println!("\nstore: {}", root.display());
    println!(
        "{:<40} {:<10} {:<14} {:>10}",
        "REPOSITORY", "TAG", "IMAGE ID", "SIZE"
    );
    for image in store.images() {
        let short = &image.id.digest().encoded()[..12];
        let names = if image.references.is_empty() {
            vec!["<none>:<none>".to_owned()]
        } else {
            image.references.clone()
        };
        for name in names {
            let (repository, tag) = match name.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
                _ => (name.clone(), "<none>".to_owned()),
            };
            println!(
                "{repository:<40} {tag:<10} {short:<14} {:>10}",
                format!("{} B", image.size)
            );
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
