//! The README's set-up commands stay true: its main job (`imgstore load`
//! of the example images, then `imgstore images`) is run exactly as
//! written there, against a temporary default store, and prints the
//! output the README shows.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the README's main-job command line runs: `cargo run` of this binary.
const CARGO_RUN: &str = "cargo run --release -p imgstore-cli -- ";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn readme() -> String {
    let path = workspace_root().join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The fenced block of `kind` (`sh`, `text`) that follows `after` in `text`.
fn block_after<'a>(text: &'a str, after: &str, kind: &str) -> &'a str {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("README has no {after:?}"));
    let fence = format!("```{kind}\n");
    let open = start
        + text[start..]
            .find(&fence)
            .unwrap_or_else(|| panic!("no ```{kind} block after {after:?}"))
        + fence.len();
    let close = open + text[open..].find("```").expect("the block is closed");
    &text[open..close]
}

/// The README's set-up block: the main job's command line and the test command.
fn setup_commands() -> (String, String) {
    let readme = readme();
    let block = block_after(&readme, "## Set-up: two commands", "sh");
    let commands: Vec<&str> = block
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .collect();
    assert_eq!(commands.len(), 2, "two set-up commands: {commands:?}");
    (commands[0].to_owned(), commands[1].to_owned())
}

/// Runs each `cargo run ... -- ARGS` of `command_line` (joined by `&&`) as
/// the built binary from the workspace root, with `root` as the default store.
fn run_main_job(command_line: &str, root: &Path) -> String {
    let mut printed = String::new();
    for step in command_line.split(" && ") {
        let args = step
            .strip_prefix(CARGO_RUN)
            .unwrap_or_else(|| panic!("{step:?} does not start with {CARGO_RUN:?}"));
        let output = Command::new(env!("CARGO_BIN_EXE_imgstore"))
            .args(args.split_whitespace())
            .current_dir(workspace_root())
            .env("IMGSTORE_ROOT", root)
            .env_remove("IMGSTORE_BACKEND")
            .env_remove("IMGSTORE_NAMESPACE")
            .output()
            .expect("run imgstore");
        assert!(
            output.status.success(),
            "imgstore {args} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed.push_str(&String::from_utf8(output.stdout).expect("stdout is UTF-8"));
    }
    printed
}

/// `3 years ago` -> `N years ago`: the corpus ages, the README is written once.
fn without_ages(text: &str) -> String {
    text.lines()
        .map(|line| match line.find(" years ago") {
            Some(end) => {
                let start = line[..end]
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .len();
                format!("{}N{}\n", &line[..start], &line[end..])
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// The `images` table: the lines from its header on.
fn images_table(output: &str) -> &str {
    let start = output.find("REPOSITORY").expect("an images table");
    &output[start..]
}

#[test]
fn readme_main_job_prints_the_output_the_readme_shows() {
    let (main_job, _) = setup_commands();
    let root = tempfile::tempdir().expect("temp dir");
    let printed = run_main_job(&main_job, root.path());
    let readme = readme();
    let shown = block_after(&readme, "## Set-up: two commands", "text");
    assert_eq!(without_ages(&printed), without_ages(shown));
}

#[test]
fn readme_main_job_run_twice_lists_the_same_images() {
    let (main_job, _) = setup_commands();
    let root = tempfile::tempdir().expect("temp dir");
    let first = run_main_job(&main_job, root.path());
    let second = run_main_job(&main_job, root.path());
    assert_eq!(images_table(&second), images_table(&first));
}

#[test]
fn readme_test_command_is_cargo_xtask_ci() {
    let (_, tests) = setup_commands();
    assert_eq!(tests, "cargo xtask ci");
}

#[test]
fn readme_ages_are_normalised_digit_by_digit() {
    assert_eq!(
        without_ages("a   12 years ago   5B\nb\n"),
        "a   N years ago   5B\nb\n"
    );
}

/// The subcommands the README's "Coming from Docker" table names.
fn docker_table_subcommands() -> Vec<String> {
    let readme = readme();
    let start = readme
        .find("### Coming from Docker")
        .expect("README has a Coming from Docker table");
    let table = readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'));
    let mut names: Vec<String> = table
        .flat_map(|line| {
            line.match_indices("`imgstore ")
                .map(|(at, prefix)| {
                    line[at + prefix.len()..]
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn readme_docker_table_names_commands_that_exist() {
    let names = docker_table_subcommands();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let output = Command::new(env!("CARGO_BIN_EXE_imgstore"))
            .args([name.as_str(), "--help"])
            .output()
            .expect("run imgstore");
        assert!(
            output.status.success(),
            "the README's table names `imgstore {name}`, which does not exist: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
