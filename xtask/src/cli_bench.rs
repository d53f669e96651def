//! `cargo xtask bench cli`: the whole `imgstore` process timed on a store of
//! 10k small images, against the goals of issue 7 (Docker 20.10 figures
//! beside them).
//!
//! Builds release, generates the archives (`fixtures`), loads 9000 images
//! into a template store, then times, each on a fresh copy of the template
//! where it writes: `load` of 1000 into an empty store and into the 9000;
//! on the resulting 10k store `images`, `images -q` and `rmi` of one name.
//! Uses hyperfine when installed, else its own loop (median of the runs).
//! The binary is `imgstore` (crates/cli) when the workspace has it, else the
//! stand-in example `imgstore_ops` (same arguments, same facade calls).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixtures::{archive_name, write_archive};

/// One timed figure: what is run, and the goal in milliseconds.
struct Figure {
    name: &'static str,
    goal_ms: f64,
    docker: &'static str,
}

const FIGURES: [Figure; 5] = [
    Figure {
        name: "images",
        goal_ms: 50.0,
        docker: "640-840 ms",
    },
    Figure {
        name: "images -q",
        goal_ms: 30.0,
        docker: "-",
    },
    Figure {
        name: "rmi",
        goal_ms: 10.0,
        docker: "30 ms",
    },
    Figure {
        name: "load 1000 (empty)",
        goal_ms: 1000.0,
        docker: "2.0 s",
    },
    Figure {
        name: "load 1000 (9000)",
        goal_ms: 1000.0,
        docker: "15.0 s",
    },
];

fn sh(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

/// `cp -a from to`, after removing `to`.
fn fresh_copy(from: &Path, to: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(to);
    sh(Command::new("cp").arg("-a").arg(from).arg(to))
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn has_hyperfine() -> bool {
    Command::new("hyperfine")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Median wall time of `runs` runs of `args`, `prepare` before each.
fn time_own(
    binary: &Path,
    args: &[String],
    runs: usize,
    prepare: &dyn Fn() -> Result<(), String>,
) -> Result<Duration, String> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        prepare()?;
        let began = Instant::now();
        let out = Command::new(binary)
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        let took = began.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{} {} failed: {}",
                binary.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        times.push(took);
    }
    times.sort();
    times
        .get(times.len() / 2)
        .copied()
        .ok_or_else(|| "no runs".to_owned())
}

/// Median wall time and mean CPU time (user + system) through hyperfine
/// (`prepare` as a shell command).
fn time_hyperfine(
    binary: &Path,
    args: &[String],
    runs: usize,
    prepare: Option<String>,
    export: &Path,
) -> Result<(Duration, Option<Duration>), String> {
    let command = std::iter::once(quote(binary))
        .chain(args.iter().map(|a| quote(Path::new(a))))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = Command::new("hyperfine");
    cmd.args(["--style", "basic", "--runs", &runs.to_string()]);
    match prepare {
        // The prepare command needs the shell.
        Some(prepare) => cmd.args(["--prepare", &prepare]),
        None => cmd.arg("-N"),
    };
    cmd.arg("--export-json").arg(export).arg(&command);
    sh(&mut cmd)?;
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(export).map_err(|e| format!("{}: {e}", export.display()))?,
    )
    .map_err(|e| format!("{}: {e}", export.display()))?;
    let median = json
        .pointer("/results/0/median")
        .and_then(serde_json::Value::as_f64)
        .ok_or("hyperfine gave no median")?;
    let cpu = ["user", "system"]
        .iter()
        .map(|k| {
            json.pointer(&format!("/results/0/{k}"))
                .and_then(serde_json::Value::as_f64)
        })
        .sum::<Option<f64>>()
        .map(Duration::from_secs_f64);
    Ok((Duration::from_secs_f64(median), cpu))
}

fn build(root: &Path, has_cli: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if has_cli {
        sh(Command::new(&cargo)
            .args(["build", "--release", "-p", "imgstore-cli"])
            .current_dir(root))?;
        Ok(target.join("release/imgstore"))
    } else {
        sh(Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "imgstore-benches",
                "--example",
                "imgstore_ops",
            ])
            .current_dir(root))?;
        Ok(target.join("release/examples/imgstore_ops"))
    }
}

/// `cargo xtask bench cli [--backend sqlite|fs] [--runs N] [--dir DIR]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let root = crate::workspace_root();
    let mut backend = "sqlite".to_owned();
    let mut runs = 10usize;
    let mut dir = root.join("target/bench-cli");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--backend" => backend = it.next().ok_or("--backend needs a value")?.clone(),
            "--runs" => {
                runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--runs needs a positive number")?;
            }
            "--dir" => dir = PathBuf::from(it.next().ok_or("--dir needs a directory")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let has_cli = root.join("crates/cli/Cargo.toml").exists();
    let binary = build(&root, has_cli)?;
    eprintln!("bench cli: timing {}", binary.display());

    let fixtures = root.join("target/fixtures");
    let base = fixtures.join(archive_name(0, 9000));
    let extra = fixtures.join(archive_name(9000, 1000));
    for (path, start, count) in [(&base, 0, 9000), (&extra, 9000, 1000)] {
        if !path.exists() {
            write_archive(path, start, count)?;
        }
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let template = dir.join(format!("store-9000-{backend}"));
    let store10k = dir.join(format!("store-10000-{backend}"));
    let work = dir.join("work");
    let common = |root: &Path| -> Vec<String> {
        vec![
            "--root".into(),
            root.display().to_string(),
            "--backend".into(),
            backend.clone(),
        ]
    };
    let with = |root: &Path, rest: &[&str]| -> Vec<String> {
        let mut args = common(root);
        args.extend(rest.iter().map(|s| (*s).to_owned()));
        args
    };
    if !template.exists() {
        eprintln!("bench cli: loading 9000 images into {}", template.display());
        let partial = dir.join("store-9000-partial");
        let _ = std::fs::remove_dir_all(&partial);
        sh(Command::new(&binary)
            .args(with(&partial, &["load", "-i", &base.display().to_string()])))?;
        std::fs::rename(&partial, &template).map_err(|e| format!("{e}"))?;
    }
    if !store10k.exists() {
        fresh_copy(&template, &store10k)?;
        sh(Command::new(&binary).args(with(
            &store10k,
            &["load", "-i", &extra.display().to_string()],
        )))?;
    }

    let hyperfine = has_hyperfine();
    let load_before = load_average();
    let export = dir.join("hyperfine.json");
    let mut results = Vec::new();
    for figure in &FIGURES {
        let (args, prepare_from): (Vec<String>, Option<&Path>) = match figure.name {
            "images" => (with(&store10k, &["images"]), None),
            "images -q" => (with(&store10k, &["images", "-q"]), None),
            // Removes one name (and its image) from a fresh copy each run.
            "rmi" => (
                with(&work, &["rmi", "fixture/img4242:latest"]),
                Some(&store10k),
            ),
            "load 1000 (empty)" => (
                with(&work, &["load", "-i", &extra.display().to_string()]),
                None,
            ),
            _ => (
                with(&work, &["load", "-i", &extra.display().to_string()]),
                Some(&template),
            ),
        };
        let copies = figure.name.starts_with("rmi") || figure.name.starts_with("load");
        let runs = if figure.name.starts_with("load") {
            runs.min(5)
        } else {
            runs
        };
        let took = if hyperfine {
            let prepare = copies.then(|| match prepare_from {
                Some(from) => format!(
                    "rm -rf {w} && cp -a {f} {w}",
                    w = quote(&work),
                    f = quote(from)
                ),
                None => format!("rm -rf {}", quote(&work)),
            });
            time_hyperfine(&binary, &args, runs, prepare, &export)?
        } else {
            let prepare = || -> Result<(), String> {
                if copies {
                    match prepare_from {
                        Some(from) => fresh_copy(from, &work)?,
                        None => {
                            let _ = std::fs::remove_dir_all(&work);
                        }
                    }
                }
                Ok(())
            };
            (time_own(&binary, &args, runs, &prepare)?, None)
        };
        results.push((figure, took));
    }
    // In-process removal on the open 10k store (what Docker's daemon, which
    // keeps its state in memory, is compared with), through the example.
    let ops = build(&root, false)?;
    fresh_copy(&store10k, &work)?;
    let names: Vec<String> = (0..21)
        .map(|i| format!("fixture/img{}:latest", 100 + i * 37))
        .collect();
    let in_process = Command::new(&ops)
        .args(with(&work, &["time-rmi"]))
        .args(&names)
        .output()
        .map_err(|e| format!("{}: {e}", ops.display()))?;
    if !in_process.status.success() {
        return Err(format!(
            "time-rmi failed: {}",
            String::from_utf8_lossy(&in_process.stderr)
        ));
    }
    let _ = std::fs::remove_dir_all(&work);
    let load_after = load_average();

    println!(
        "bench cli ({backend}, {} runs, {}; binary {})",
        runs,
        if hyperfine {
            "hyperfine median"
        } else {
            "median of own loop"
        },
        binary.display()
    );
    println!(
        "{:<20} {:>10} {:>10} {:>8} {:>10} {:>8}   docker 20.10",
        "figure", "median", "goal", "ratio", "cpu", "ratio"
    );
    for (figure, (took, cpu)) in &results {
        let ms = took.as_secs_f64() * 1e3;
        let (cpu_ms, cpu_ratio) = match cpu {
            Some(cpu) => {
                let cpu_ms = cpu.as_secs_f64() * 1e3;
                (
                    format!("{cpu_ms:.1}ms"),
                    format!("{:.2}x", cpu_ms / figure.goal_ms),
                )
            }
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<20} {:>8.1}ms {:>8.0}ms {:>7.2}x {:>10} {:>8}   {}",
            figure.name,
            ms,
            figure.goal_ms,
            ms / figure.goal_ms,
            cpu_ms,
            cpu_ratio,
            figure.docker
        );
    }
    print!("{}", String::from_utf8_lossy(&in_process.stdout));
    println!(
        "cpu: user + system time of the process (mean), the figure a busy machine distorts least"
    );
    let loaded = [load_before, load_after].iter().flatten().any(|&l| l > 2.0);
    println!(
        "load average before/after: {} / {}{}",
        load_before.map_or("?".into(), |l| format!("{l:.2}")),
        load_after.map_or("?".into(), |l| format!("{l:.2}")),
        if loaded {
            "  (LOADED: figures measured on a busy machine)"
        } else {
            ""
        }
    );
    Ok(())
}
