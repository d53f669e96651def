//! `cargo xtask dist [--out DIR]`: what a package of the `imgstore` command
//! ships beside the binary, generated from the command's own definition
//! (`imgstore_cli::command`), so they never drift from `--help`:
//!
//! - `man/`: a man page per command (clap_mangen): `imgstore.1`,
//!   `imgstore-images.1`, `imgstore-image.1`, `imgstore-image-ls.1`, ...
//! - `completions/`: `imgstore.bash`, `_imgstore` (zsh), `imgstore.fish`,
//!   the scripts `imgstore completion SHELL` prints.
//!
//! The default directory is `target/dist` under the workspace.

use std::fs;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Writes the man pages and completions under `out` (or the directory an
/// `--out DIR` argument names).
pub fn run(args: &[String], out: PathBuf) -> Result<(), String> {
    let out = match args {
        [] => out,
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => return Err("usage: cargo xtask dist [--out DIR]".to_owned()),
    };
    let pages = write_man_pages(&out.join("man"))?;
    let scripts = write_completions(&out.join("completions"))?;
    eprintln!(
        "dist: {pages} man page(s) in {}, {scripts} completion script(s) in {}",
        out.join("man").display(),
        out.join("completions").display()
    );
    Ok(())
}

/// One page per command and subcommand (section 1); the number written.
fn write_man_pages(dir: &Path) -> Result<usize, String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    clap_mangen::generate_to(imgstore_cli::command(), dir)
        .map_err(|e| format!("write man pages to {}: {e}", dir.display()))?;
    count_files(dir)
}

/// The bash, zsh and fish scripts; the number written.
fn write_completions(dir: &Path) -> Result<usize, String> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut imgstore_cli::command(), "imgstore", dir)
            .map_err(|e| format!("write {shell} completions to {}: {e}", dir.display()))?;
    }
    count_files(dir)
}

fn count_files(dir: &Path) -> Result<usize, String> {
    Ok(fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_writes_a_man_page_per_command_and_three_completions() {
        let out = tempfile::tempdir().expect("temp dir");
        run(&[], out.path().to_path_buf()).expect("dist");
        let man = out.path().join("man");
        for page in [
            "imgstore.1",
            "imgstore-load.1",
            "imgstore-images.1",
            "imgstore-image.1",
            "imgstore-image-ls.1",
            "imgstore-image-rm.1",
            "imgstore-system-df.1",
            "imgstore-completion.1",
        ] {
            assert!(man.join(page).is_file(), "{page}");
        }
        let main = fs::read_to_string(man.join("imgstore.1")).expect("read page");
        assert!(main.contains(".TH imgstore 1"), "{main}");
        let history = fs::read_to_string(man.join("imgstore-history.1")).expect("read page");
        assert!(history.contains("\\-\\-no\\-trunc"), "{history}");
        let completions = out.path().join("completions");
        for script in ["imgstore.bash", "_imgstore", "imgstore.fish"] {
            assert!(completions.join(script).is_file(), "{script}");
        }
    }
}
