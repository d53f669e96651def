//! `cargo xtask bench cli`: whole `imgstore` processes timed on generated
//! stores of 1k, 10k and 100k images, against the goals of issue 13 ("state
//! on disk, not in memory"), optionally beside a real Docker daemon.
//!
//! ```text
//! cargo xtask bench cli [--backend sqlite|fs|sqlite,fs] [--sizes 1000,10000,100000]
//!                       [--runs N] [--docker] [--dir DIR]
//! ```
//!
//! - **Stores.** The store of N images holds fixture images `0 .. N` (see
//!   `fixtures.rs`), loaded 1000 per `imgstore load` as a user would. Stores
//!   are cached in `DIR` (default `target/bench-cli`) as
//!   `store-<backend>-<N>`; a missing one is built from the largest smaller
//!   cached one, so a rerun times at once and 100k reuses 10k.
//! - **Timings.** hyperfine when installed (`-N`, one warm-up run for the
//!   commands that only read), else an own loop of the same shape; median,
//!   min and max of whole-process wall times. A command that writes runs
//!   each time on a fresh `cp --reflink=auto -a` copy of the cached store,
//!   made (and `sync`ed) before the timed run, outside the timing.
//! - **Rows.** The process floor `imgstore --version`; the single-image
//!   commands `inspect`, `history`, `tag`, `rmi NAME` (an image with a
//!   second name: an untag only), `rmi ID` (a short ID of an image with one
//!   name: untag and delete), `pin`, all on images in the middle of the
//!   store; the listings `images`, `images -q`, `df`, `prune -f` (nothing to
//!   prune: every image is named); `load` of the next 1000 images into the
//!   store and into an empty store; the first `inspect` after
//!   `echo 3 > /proc/sys/vm/drop_caches` (as root only); the peak RSS of one
//!   `inspect` (GNU `time -f %M`).
//! - **`--docker`** (as root): a private dockerd (vfs, its own data root,
//!   exec root, pid file and socket) loaded with the same archives, at the
//!   sizes up to 10k; `docker image inspect`, `history`, `tag`, `rmi` by
//!   name and by ID, `images`, `system df`, `image prune -f` timed the same
//!   way (its writes are undone by an untimed prepare step instead of a
//!   copy) and printed beside ours. Its data root is cached too.
//!
//! Nothing here runs in CI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{alias_of, cached_archive, image_id};

/// Images per `load`, both when building stores and in the `load` rows.
const CHUNK: usize = 1000;

/// The largest store `--docker` loads into dockerd (10k takes minutes with vfs).
const DOCKER_MAX: usize = 10_000;

/// What one table row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Floor,
    Inspect,
    History,
    Tag,
    RmiName,
    RmiId,
    Pin,
    Images,
    ImagesQuiet,
    Df,
    Prune,
    LoadInto,
    LoadEmpty,
    ColdInspect,
    PeakRss,
}

/// The rows in table order.
const ROWS: [Row; 15] = [
    Row::Floor,
    Row::Inspect,
    Row::History,
    Row::Tag,
    Row::RmiName,
    Row::RmiId,
    Row::Pin,
    Row::Images,
    Row::ImagesQuiet,
    Row::Df,
    Row::Prune,
    Row::LoadInto,
    Row::LoadEmpty,
    Row::ColdInspect,
    Row::PeakRss,
];

/// A goal of issue 13 for one row.
struct Goal {
    /// `(store size, at most this much)`; size 0 means "at every size".
    at: Vec<(usize, f64)>,
    /// The 100k figure must stay within 1.2× the 1k figure.
    flat: bool,
}

impl Row {
    fn label(self) -> &'static str {
        match self {
            Row::Floor => "--version (floor)",
            Row::Inspect => "inspect NAME",
            Row::History => "history NAME",
            Row::Tag => "tag NAME new:tag",
            Row::RmiName => "rmi NAME (untag)",
            Row::RmiId => "rmi ID (delete)",
            Row::Pin => "pin NAME",
            Row::Images => "images",
            Row::ImagesQuiet => "images -q",
            Row::Df => "df",
            Row::Prune => "prune -f (nothing)",
            Row::LoadInto => "load 1000 into N",
            Row::LoadEmpty => "load 1000 into empty",
            Row::ColdInspect => "inspect, caches dropped",
            Row::PeakRss => "peak RSS inspect (MiB)",
        }
    }

    fn single_image(self) -> bool {
        matches!(
            self,
            Row::Inspect | Row::History | Row::Tag | Row::RmiName | Row::RmiId | Row::Pin
        )
    }

    /// Whether the command changes the store (so runs on a fresh copy).
    fn writes(self) -> bool {
        matches!(
            self,
            Row::Tag | Row::RmiName | Row::RmiId | Row::Pin | Row::LoadInto
        )
    }

    /// Issue 13's goal for this row on `backend` (none for the floor).
    fn goal(self, backend: &str) -> Goal {
        let single = if backend == "fs" {
            vec![(10_000, 30.0)]
        } else {
            vec![(10_000, 10.0), (100_000, 10.0)]
        };
        let (at, flat) = match self {
            Row::Floor => (vec![], false),
            r if r.single_image() => (single, backend != "fs"),
            Row::Images => (vec![(10_000, 25.0), (100_000, 250.0)], false),
            Row::ImagesQuiet => (vec![(10_000, 12.0)], false),
            Row::Df | Row::Prune => (vec![(10_000, 50.0)], false),
            Row::LoadInto | Row::LoadEmpty => (vec![(0, 1000.0)], false),
            Row::ColdInspect => (vec![(10_000, 60.0)], false),
            _ => (vec![(100_000, 12.0)], false),
        };
        Goal { at, flat }
    }
}

/// The figures of one backend (or dockerd) per `(row, store size)`.
type Measured = BTreeMap<(Row, usize), Stats>;

/// Median, min and max of the runs, in milliseconds (MiB for the RSS row).
#[derive(Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

impl Stats {
    fn of(mut values: Vec<f64>) -> Option<Stats> {
        values.sort_by(f64::total_cmp);
        Some(Stats {
            median: *values.get(values.len() / 2)?,
            min: *values.first()?,
            max: *values.last()?,
        })
    }

    fn single(value: f64) -> Stats {
        Stats {
            median: value,
            min: value,
            max: value,
        }
    }

    fn cell(self) -> String {
        if self.min == self.max {
            format!("{:.1}", self.median)
        } else {
            format!("{:.1} ({:.0}-{:.0})", self.median, self.min, self.max)
        }
    }
}

/// How commands are timed.
enum Timer {
    /// hyperfine, writing its JSON results to this file.
    Hyperfine(PathBuf),
    /// Our own loop (hyperfine is not installed).
    OwnLoop,
}

impl Timer {
    fn detect(dir: &Path) -> Timer {
        let installed = Command::new("hyperfine")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if installed {
            Timer::Hyperfine(dir.join("hyperfine.json"))
        } else {
            Timer::OwnLoop
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Timer::Hyperfine(_) => "hyperfine -N",
            Timer::OwnLoop => "own loop (hyperfine not installed)",
        }
    }

    /// Times `command` (program, then arguments) `runs` times; the shell
    /// script `prepare` runs before each run, untimed. `warmup` adds one
    /// untimed run first (for commands that only read: a warm page cache).
    fn time(
        &self,
        command: &[String],
        prepare: Option<&str>,
        runs: usize,
        warmup: bool,
    ) -> Result<Stats, String> {
        match self {
            Timer::Hyperfine(export) => {
                let mut cmd = Command::new("hyperfine");
                cmd.args(["-N", "--style", "basic", "--runs", &runs.to_string()]);
                if warmup {
                    cmd.args(["--warmup", "1"]);
                }
                if let Some(script) = prepare {
                    // hyperfine hides a failed prepare's message: keep it.
                    let log = export.with_file_name("prepare.log");
                    let script = format!("{{ {script}; }} 2>>{}", shown(&log));
                    // With -N hyperfine splits command lines as a shell would.
                    cmd.arg("--prepare")
                        .arg(format!("sh -c {}", quote(&script)));
                }
                let line: Vec<String> = command.iter().map(|a| quote(a)).collect();
                cmd.arg("--export-json").arg(export).arg(line.join(" "));
                run_quiet(&mut cmd)?;
                hyperfine_stats(export)
            }
            Timer::OwnLoop => {
                let mut times = Vec::with_capacity(runs);
                for round in 0..runs + usize::from(warmup) {
                    if let Some(script) = prepare {
                        run_quiet(Command::new("sh").arg("-c").arg(script))?;
                    }
                    let began = Instant::now();
                    run_quiet(&mut program(command)?)?;
                    if round >= usize::from(warmup) {
                        times.push(began.elapsed().as_secs_f64() * 1e3);
                    }
                }
                Stats::of(times).ok_or_else(|| "no runs".to_owned())
            }
        }
    }
}

/// Median, min and max of hyperfine's JSON export, in milliseconds.
fn hyperfine_stats(export: &Path) -> Result<Stats, String> {
    let text = std::fs::read(export).map_err(|e| format!("{}: {e}", export.display()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", export.display()))?;
    let field = |name: &str| {
        json.pointer(&format!("/results/0/{name}"))
            .and_then(serde_json::Value::as_f64)
            .map(|seconds| seconds * 1e3)
            .ok_or_else(|| format!("{}: no {name}", export.display()))
    };
    Ok(Stats {
        median: field("median")?,
        min: field("min")?,
        max: field("max")?,
    })
}

/// A `Command` for `command` (program, then arguments).
fn program(command: &[String]) -> Result<Command, String> {
    let (name, args) = command.split_first().ok_or("empty command")?;
    let mut cmd = Command::new(name);
    cmd.args(args);
    Ok(cmd)
}

/// Runs `cmd` with stdout discarded; fails with its stderr unless it succeeds.
fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `text` single-quoted for `sh` (and hyperfine's command-line splitting).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn shown(path: &Path) -> String {
    quote(&path.display().to_string())
}

/// The script that leaves a fresh copy of `template` at `work` (or no `work`
/// at all), then flushes it so the timed run does not share the disk with
/// the copy's write-back.
fn fresh_copy_script(template: Option<&Path>, work: &Path) -> String {
    match template {
        Some(template) => format!(
            "rm -rf {w} && cp --reflink=auto -a {t} {w} && sync",
            w = shown(work),
            t = shown(template)
        ),
        None => format!("rm -rf {} && sync", shown(work)),
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// `2 cores, <CPU model>, <memory>` from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("?", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB RAM", kib / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    format!("{cores} cores, {model}, {memory}")
}

/// The command-line options.
struct Options {
    backends: Vec<String>,
    sizes: Vec<usize>,
    runs: usize,
    docker: bool,
    dir: PathBuf,
}

impl Options {
    fn parse(args: &[String], root: &Path) -> Result<Options, String> {
        let mut options = Options {
            backends: vec!["sqlite".into()],
            sizes: vec![1000, 10_000, 100_000],
            runs: 10,
            docker: false,
            dir: root.join("target/bench-cli"),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |what: &str| it.next().ok_or(format!("{arg} needs {what}"));
            match arg.as_str() {
                "--backend" => {
                    options.backends = value("sqlite, fs or sqlite,fs")?
                        .split(',')
                        .map(str::to_owned)
                        .collect();
                    if let Some(bad) = options
                        .backends
                        .iter()
                        .find(|b| *b != "sqlite" && *b != "fs")
                    {
                        return Err(format!("unknown backend {bad:?} (sqlite or fs)"));
                    }
                }
                "--sizes" => {
                    options.sizes = value("a list such as 1000,10000")?
                        .split(',')
                        .map(|s| match s.parse::<usize>() {
                            Ok(n) if n > 0 && n.is_multiple_of(CHUNK) => Ok(n),
                            _ => Err(format!("--sizes: {s:?} is no positive multiple of {CHUNK}")),
                        })
                        .collect::<Result<_, _>>()?;
                    options.sizes.sort_unstable();
                    options.sizes.dedup();
                }
                "--runs" => {
                    options.runs = value("a number")?
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or("--runs needs a positive number")?;
                }
                "--docker" => options.docker = true,
                "--dir" => options.dir = PathBuf::from(value("a directory")?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

/// The images a store of `size` images is probed with (all in its middle).
struct Probe {
    /// An image with one name, for the commands that read or tag.
    name: String,
    /// The second name of an image that has two: `rmi` only untags.
    alias: String,
    /// The short ID of another image with one name: `rmi` deletes it.
    short_id: String,
    /// That image's index, to restore it in dockerd after `docker rmi`.
    deleted: usize,
}

impl Probe {
    fn at(size: usize) -> Result<Probe, String> {
        let middle = size / 2;
        let deleted = middle + 7;
        Ok(Probe {
            name: format!("fixture/img{}:latest", middle + 1),
            alias: alias_of(middle + 3).ok_or("the fixtures give image 3 mod 10 an alias")?,
            short_id: image_id(deleted)?.encoded().chars().take(12).collect(),
            deleted,
        })
    }
}

/// The state of one run: paths, the binary, the timer, the figures.
struct Bench {
    options: Options,
    binary: PathBuf,
    fixtures: PathBuf,
    timer: Timer,
    /// How long each store took to build, for the report.
    built: Vec<String>,
    /// The rows that failed, with why.
    failures: Vec<String>,
}

impl Bench {
    /// Notes a row that could not be measured (printed with the tables).
    fn failed(&mut self, failure: String) {
        eprintln!("bench cli: FAILED {failure}");
        self.failures.push(failure);
    }

    /// `imgstore --root root --backend backend rest...`.
    fn ours(&self, root: &Path, backend: &str, rest: &[&str]) -> Vec<String> {
        let mut command = vec![
            self.binary.display().to_string(),
            "--root".into(),
            root.display().to_string(),
            "--backend".into(),
            backend.into(),
        ];
        command.extend(rest.iter().map(|s| (*s).to_owned()));
        command
    }

    fn archive(&self, start: usize) -> Result<PathBuf, String> {
        cached_archive(&self.fixtures, start, CHUNK)
    }

    /// The cached store of `size` images on `backend`, built first if missing.
    fn store(&mut self, backend: &str, size: usize) -> Result<PathBuf, String> {
        let path = |n: usize| self.options.dir.join(format!("store-{backend}-{n}"));
        let target = path(size);
        if target.exists() {
            return Ok(target);
        }
        let began = Instant::now();
        let partial = self
            .options
            .dir
            .join(format!("store-{backend}-{size}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        let from = (1..size / CHUNK)
            .rev()
            .map(|k| k * CHUNK)
            .find(|&n| path(n).exists())
            .unwrap_or(0);
        if from > 0 {
            run_quiet(
                Command::new("cp")
                    .args(["--reflink=auto", "-a"])
                    .arg(path(from))
                    .arg(&partial),
            )?;
        }
        let mut last = Duration::ZERO;
        for start in (from..size).step_by(CHUNK) {
            let archive = self.archive(start)?;
            eprintln!(
                "bench cli: {backend} store of {size}: loading images {start}..{} ({:.0?} so far)",
                start + CHUNK,
                began.elapsed()
            );
            let load = Instant::now();
            run_quiet(&mut program(&self.ours(
                &partial,
                backend,
                &["load", "-i", &archive.display().to_string()],
            ))?)?;
            last = load.elapsed();
        }
        std::fs::rename(&partial, &target).map_err(|e| format!("{}: {e}", target.display()))?;
        self.built.push(format!(
            "{backend} store of {size} built in {:.1?} from {} (last load of 1000: {:.1?})",
            began.elapsed(),
            if from == 0 {
                "empty".to_owned()
            } else {
                format!("the cached {from}")
            },
            last
        ));
        Ok(target)
    }

    /// Every row at every size on `backend`.
    fn measure(&mut self, backend: &str) -> Result<Measured, String> {
        let mut figures = BTreeMap::new();
        let runs = self.options.runs;
        let work = self.options.dir.join("work");
        let sizes = self.options.sizes.clone();
        for &size in &sizes {
            let template = self.store(backend, size)?;
            let probe = Probe::at(size)?;
            let next = self.archive(size)?.display().to_string();
            eprintln!("bench cli: timing {backend} at {size}");
            for row in ROWS {
                let store = if row.writes() { &work } else { &template };
                let command = match row {
                    Row::Floor => vec![self.binary.display().to_string(), "--version".into()],
                    Row::Inspect | Row::ColdInspect | Row::PeakRss => {
                        self.ours(store, backend, &["inspect", &probe.name])
                    }
                    Row::History => self.ours(store, backend, &["history", &probe.name]),
                    Row::Tag => self.ours(store, backend, &["tag", &probe.name, "bench/new:tag"]),
                    Row::RmiName => self.ours(store, backend, &["rmi", &probe.alias]),
                    Row::RmiId => self.ours(store, backend, &["rmi", &probe.short_id]),
                    Row::Pin => self.ours(store, backend, &["pin", &probe.name]),
                    Row::Images => self.ours(store, backend, &["images"]),
                    Row::ImagesQuiet => self.ours(store, backend, &["images", "-q"]),
                    Row::Df => self.ours(store, backend, &["df"]),
                    Row::Prune => self.ours(store, backend, &["prune", "-f"]),
                    Row::LoadInto => self.ours(store, backend, &["load", "-i", &next]),
                    Row::LoadEmpty => {
                        // Independent of the size: measured once, with the first.
                        if Some(&size) != sizes.first() {
                            continue;
                        }
                        let first = self.archive(0)?.display().to_string();
                        self.ours(&work, backend, &["load", "-i", &first])
                    }
                };
                let timed = match row {
                    Row::PeakRss => peak_rss_mib(&command).map(|mib| mib.map(Stats::single)),
                    Row::ColdInspect if !is_root() => Ok(None),
                    Row::ColdInspect => {
                        let drop = "sync && echo 3 > /proc/sys/vm/drop_caches";
                        self.timer
                            .time(&command, Some(drop), runs.min(5), false)
                            .map(Some)
                    }
                    Row::LoadEmpty => {
                        let prepare = fresh_copy_script(None, &work);
                        let stats = self
                            .timer
                            .time(&command, Some(&prepare), runs.min(5), false);
                        stats.map(Some)
                    }
                    Row::LoadInto => {
                        let prepare = fresh_copy_script(Some(&template), &work);
                        let stats = self
                            .timer
                            .time(&command, Some(&prepare), runs.min(5), false);
                        stats.map(Some)
                    }
                    r if r.writes() => {
                        let prepare = fresh_copy_script(Some(&template), &work);
                        self.timer
                            .time(&command, Some(&prepare), runs, false)
                            .map(Some)
                    }
                    _ => self.timer.time(&command, None, runs, true).map(Some),
                };
                // One failed row (a full disk during a copy, say) is reported,
                // and the others still measured.
                match timed {
                    Ok(Some(stats)) => {
                        eprintln!("  {:<24} {}", row.label(), stats.cell());
                        figures.insert((row, size), stats);
                    }
                    Ok(None) => {}
                    Err(error) => self.failed(format!("{backend} {size} {}: {error}", row.label())),
                }
            }
        }
        let _ = std::fs::remove_dir_all(&work);
        Ok(figures)
    }
}

/// Peak RSS of one run of `command` in MiB, through GNU time (`None`, with
/// a note, when it is not installed).
fn peak_rss_mib(command: &[String]) -> Result<Option<f64>, String> {
    let gnu_time = Path::new("/usr/bin/time");
    if !gnu_time.exists() {
        eprintln!("bench cli: no /usr/bin/time (apt-get install -y time): peak RSS not measured");
        return Ok(None);
    }
    let out = Command::new(gnu_time)
        .args(["-f", "%M"])
        .args(command)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", gnu_time.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{command:?} failed: {stderr}"));
    }
    let kib: f64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("GNU time printed no peak RSS: {stderr}"))?;
    Ok(Some(kib / 1024.0))
}

/// `1000` as `1k`.
fn short_size(size: usize) -> String {
    if size.is_multiple_of(1000) {
        format!("{}k", size / 1000)
    } else {
        size.to_string()
    }
}

/// One backend's table: medians (min-max) per size, the goal, goal/figure.
fn table(backend: &str, sizes: &[usize], figures: &Measured) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<24}", format!("imgstore {backend}"));
    for size in sizes {
        let _ = write!(out, " {:>19}", short_size(*size));
    }
    let _ = writeln!(out, "   goal (issue 13)  ->  goal/figure (>= 1 meets it)");
    for row in ROWS {
        let _ = write!(out, "{:<24}", row.label());
        for size in sizes {
            let cell = figures.get(&(row, *size)).map_or("-".into(), |s| s.cell());
            let _ = write!(out, " {cell:>19}");
        }
        let _ = writeln!(out, "   {}", goal_text(row, backend, sizes, figures));
    }
    out
}

/// `<= 10 ms at 10k and 100k, 100k/1k <= 1.2  ->  10k 0.040, 100k 0.0046, 100k/1k 9.8`.
fn goal_text(row: Row, backend: &str, sizes: &[usize], figures: &Measured) -> String {
    let goal = row.goal(backend);
    if goal.at.is_empty() {
        return String::new();
    }
    let unit = if row == Row::PeakRss { "MiB" } else { "ms" };
    let mut wanted: Vec<String> = Vec::new();
    let mut met = Vec::new();
    let mut previous = None;
    for &(at, limit) in &goal.at {
        let measured: Vec<usize> = if at == 0 { sizes.to_vec() } else { vec![at] };
        match (at, wanted.last_mut()) {
            (0, _) => wanted.push(format!("<= {limit} {unit}")),
            // The same limit at another size: `<= 10 ms at 10k and 100k`.
            (_, Some(last)) if previous == Some(limit) => {
                let _ = write!(last, " and {}", short_size(at));
            }
            _ => wanted.push(format!("<= {limit} {unit} at {}", short_size(at))),
        }
        previous = Some(limit);
        for size in measured {
            if let Some(stats) = figures.get(&(row, size)) {
                met.push(format!(
                    "{} {}",
                    short_size(size),
                    ratio(limit / stats.median)
                ));
            }
        }
    }
    if goal.flat {
        wanted.push("100k/1k <= 1.2".into());
        if let (Some(small), Some(large)) =
            (figures.get(&(row, 1000)), figures.get(&(row, 100_000)))
        {
            met.push(format!("100k/1k {:.1}", large.median / small.median));
        }
    }
    format!("{}  ->  {}", wanted.join(", "), met.join(", "))
}

/// A ratio with two significant digits below 1 (`0.0046`), else two decimals.
fn ratio(value: f64) -> String {
    let decimals = if value > 0.0 && value < 1.0 {
        // -log10 rounded up: 0.0046 -> 3, plus one more digit.
        (1.0 - value.log10().floor()).clamp(2.0, 9.0) as usize
    } else {
        2
    };
    format!("{value:.decimals$}")
}

/// Builds the release binary; its path.
fn build(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    run_quiet(
        Command::new(cargo)
            .args(["build", "--release", "-p", "imgstore-cli"])
            .current_dir(root),
    )?;
    Ok(target.join("release/imgstore"))
}

/// `cargo xtask bench cli ...` (see the module doc).
pub fn run(args: &[String]) -> Result<(), String> {
    let root = crate::workspace_root();
    let options = Options::parse(args, &root)?;
    std::fs::create_dir_all(&options.dir).map_err(|e| format!("{}: {e}", options.dir.display()))?;
    let binary = build(&root)?;
    let timer = Timer::detect(&options.dir);
    let mut bench = Bench {
        binary,
        fixtures: root.join("target/fixtures"),
        timer,
        built: Vec::new(),
        failures: Vec::new(),
        options,
    };
    let load_before = load_average();
    let began = Instant::now();
    let mut results = Vec::new();
    for backend in bench.options.backends.clone() {
        results.push((backend.clone(), bench.measure(&backend)?));
    }
    // Without dockerd (not root, not installed) our figures still print.
    let docker = if bench.options.docker {
        match docker::measure(&bench) {
            Ok(figures) => Some(figures),
            Err(error) => {
                bench.failed(format!("--docker: {error}"));
                None
            }
        }
    } else {
        None
    };

    let options = &bench.options;
    println!(
        "bench cli: {}; {}; load average {} before, {} after; {:.0?} in all",
        machine(),
        bench.timer.describe(),
        load_before,
        load_average(),
        began.elapsed()
    );
    println!(
        "whole-process wall times in ms: median (min-max) of {} runs ({} for load and the \
         cold inspect), one warm-up run for commands that only read",
        options.runs,
        options.runs.min(5)
    );
    println!(
        "writing commands (tag, rmi, pin, load into N) run each time on a fresh \
         `cp --reflink=auto -a` copy of the cached store, made and synced before the timed run"
    );
    println!(
        "probes: inspect/history/tag/pin fixture/img<N/2+1>:latest; rmi NAME fixture/img<N/2+3>:alias \
         (its image keeps :latest); rmi ID the 12-digit ID of fixture/img<N/2+7> (one name)"
    );
    println!("load 1000 into N: images N..N+1000 into the store of N; into empty: measured once");
    println!("peak RSS: GNU time -f %M, one run");
    if !is_root() {
        println!("inspect after drop_caches: skipped (needs root)");
    }
    for line in &bench.built {
        println!("{line}");
    }
    for (backend, figures) in &results {
        println!();
        print!("{}", table(backend, &options.sizes, figures));
    }
    if let Some(docker) = docker {
        println!();
        print!("{}", docker::table(&docker, &results));
    }
    for failure in &bench.failures {
        println!(
            "FAILED {failure} (prepare steps log to {})",
            bench.options.dir.join("prepare.log").display()
        );
    }
    Ok(())
}

/// The `--docker` comparison: a private dockerd with the same fixtures.
mod docker {
    use super::*;

    /// What dockerd is timed on, in table order (our row each compares with).
    const ROWS: [(Row, &str); 9] = [
        (Row::Floor, "docker --version"),
        (Row::Inspect, "image inspect NAME"),
        (Row::History, "history NAME"),
        (Row::Tag, "tag NAME new:tag"),
        (Row::RmiName, "rmi NAME (untag)"),
        (Row::RmiId, "rmi ID (delete)"),
        (Row::Images, "images"),
        (Row::Df, "system df"),
        (Row::Prune, "image prune -f"),
    ];

    /// dockerd's figures per `(row, size)`, and the sizes it reached.
    pub(super) struct Figures {
        sizes: Vec<usize>,
        stats: Measured,
        notes: Vec<String>,
    }

    /// A private dockerd, stopped (SIGTERM, then waited for) when dropped;
    /// its exec root (sockets, pid file) is removed then too.
    struct Daemon {
        child: Child,
        exec_root: PathBuf,
        socket: PathBuf,
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.exec_root);
        }
    }

    impl Daemon {
        /// Starts dockerd on `data_root`, its exec root, pid file and socket
        /// all private (so it never meets another daemon on the machine).
        fn start(dir: &Path, data_root: &Path) -> Result<Daemon, String> {
            // A short exec root: containerd's socket path must fit 108 bytes.
            let exec_root = PathBuf::from(format!("/tmp/imgstore-bench-{}", std::process::id()));
            let socket = exec_root.join("docker.sock");
            std::fs::create_dir_all(&exec_root)
                .map_err(|e| format!("{}: {e}", exec_root.display()))?;
            let log_path = dir.join("dockerd.log");
            let log = std::fs::File::create(&log_path)
                .map_err(|e| format!("{}: {e}", log_path.display()))?;
            let err_log = log.try_clone().map_err(|e| e.to_string())?;
            let child = crate::interop::dockerd_command(
                data_root,
                &exec_root.join("exec"),
                &exec_root.join("dockerd.pid"),
                &socket,
            )
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("cannot start dockerd ({e}): apt-get install -y docker.io"))?;
            let mut daemon = Daemon {
                child,
                exec_root,
                socket,
            };
            let began = Instant::now();
            loop {
                if daemon
                    .docker(&["version"])
                    .output()
                    .is_ok_and(|o| o.status.success())
                {
                    return Ok(daemon);
                }
                if let Ok(Some(status)) = daemon.child.try_wait() {
                    return Err(format!(
                        "dockerd exited ({status}); see {}",
                        log_path.display()
                    ));
                }
                if began.elapsed() > Duration::from_secs(60) {
                    return Err(format!(
                        "dockerd not up after 60 s; see {}",
                        log_path.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        fn args(&self, rest: &[&str]) -> Vec<String> {
            let mut args = vec![
                "docker".to_owned(),
                "-H".into(),
                format!("unix://{}", self.socket.display()),
            ];
            args.extend(rest.iter().map(|s| (*s).to_owned()));
            args
        }

        fn docker(&self, rest: &[&str]) -> Command {
            let args = self.args(rest);
            let mut cmd = Command::new(&args[0]);
            cmd.args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            cmd
        }

        /// A shell line running `docker rest...`, its failure ignored.
        fn script(&self, rest: &[&str]) -> String {
            let line: Vec<String> = self.args(rest).iter().map(|a| quote(a)).collect();
            format!("{} >/dev/null 2>&1; true", line.join(" "))
        }
    }

    /// Loads the fixtures into a private dockerd up to each size (at most
    /// 10k) and times its commands there.
    pub(super) fn measure(bench: &Bench) -> Result<Figures, String> {
        let options = &bench.options;
        let mut notes = Vec::new();
        if !is_root() {
            return Err("--docker needs root (it starts a private dockerd)".into());
        }
        let sizes: Vec<usize> = options
            .sizes
            .iter()
            .copied()
            .filter(|&s| s <= DOCKER_MAX)
            .collect();
        if sizes.len() < options.sizes.len() {
            notes.push(format!(
                "dockerd: sizes above {} skipped (loading them into vfs takes too long)",
                short_size(DOCKER_MAX)
            ));
        }
        let data_root = options.dir.join("dockerd-root");
        // How many fixture images the cached data root holds.
        let marker = options.dir.join("dockerd-root.loaded");
        let mut loaded: usize = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if loaded == 0 {
            let _ = std::fs::remove_dir_all(&data_root);
        }
        let daemon = Daemon::start(&options.dir, &data_root)?;
        let mut stats = BTreeMap::new();
        for &size in &sizes {
            let began = Instant::now();
            while loaded < size {
                let archive = bench.archive(loaded)?;
                eprintln!(
                    "bench cli: dockerd: loading images {loaded}..{}",
                    loaded + CHUNK
                );
                let archive = archive.display().to_string();
                run_quiet(&mut daemon.docker(&["load", "-q", "-i", &archive]))?;
                loaded += CHUNK;
                std::fs::write(&marker, loaded.to_string())
                    .map_err(|e| format!("{}: {e}", marker.display()))?;
            }
            if began.elapsed() > Duration::from_secs(1) {
                notes.push(format!(
                    "dockerd: loaded up to {} in {:.1?}",
                    short_size(size),
                    began.elapsed()
                ));
            }
            let probe = Probe::at(size)?;
            let single = cached_archive(&bench.fixtures, probe.deleted, 1)?;
            let single = single.display().to_string();
            eprintln!("bench cli: timing dockerd at {size}");
            for (row, label) in ROWS {
                let (command, prepare) = match row {
                    Row::Floor => (vec!["docker".to_owned(), "--version".into()], None),
                    Row::Inspect => (daemon.args(&["image", "inspect", &probe.name]), None),
                    Row::History => (daemon.args(&["history", &probe.name]), None),
                    Row::Tag => (
                        daemon.args(&["tag", &probe.name, "bench/new:tag"]),
                        Some(daemon.script(&["rmi", "bench/new:tag"])),
                    ),
                    Row::RmiName => {
                        let target = probe.alias.replace(":alias", ":latest");
                        (
                            daemon.args(&["rmi", &probe.alias]),
                            Some(daemon.script(&["tag", &target, &probe.alias])),
                        )
                    }
                    Row::RmiId => (
                        daemon.args(&["rmi", &probe.short_id]),
                        Some(daemon.script(&["load", "-q", "-i", &single])),
                    ),
                    Row::Images => (daemon.args(&["images"]), None),
                    Row::Df => (daemon.args(&["system", "df"]), None),
                    _ => (daemon.args(&["image", "prune", "-f"]), None),
                };
                let warmup = prepare.is_none();
                match bench
                    .timer
                    .time(&command, prepare.as_deref(), options.runs, warmup)
                {
                    Ok(figure) => {
                        eprintln!("  {label:<24} {}", figure.cell());
                        stats.insert((row, size), figure);
                    }
                    Err(error) => {
                        eprintln!("bench cli: FAILED dockerd {size} {label}: {error}");
                        notes.push(format!("FAILED dockerd {size} {label}: {error}"));
                    }
                }
                // Undo the last run's change: the next row sees the fixtures.
                if let Some(prepare) = prepare {
                    run_quiet(Command::new("sh").arg("-c").arg(prepare))?;
                }
            }
            // The tag row's prepare removed bench/new:tag before each run,
            // but the last run's tag stays.
            let _ = daemon.docker(&["rmi", "bench/new:tag"]).status();
        }
        drop(daemon);
        Ok(Figures {
            sizes,
            stats,
            notes,
        })
    }

    /// dockerd's medians per size, each beside ours as ours/dockerd.
    pub(super) fn table(docker: &Figures, ours: &[(String, Measured)]) -> String {
        let mut out = String::new();
        for note in &docker.notes {
            let _ = writeln!(out, "{note}");
        }
        let _ = write!(out, "{:<24}", "dockerd 20.10 (vfs)");
        for size in &docker.sizes {
            let _ = write!(out, " {:>19}", short_size(*size));
            for (backend, _) in ours {
                let _ = write!(out, " {:>14}", format!("{backend}/docker"));
            }
        }
        let _ = writeln!(out);
        for (row, label) in ROWS {
            let _ = write!(out, "{label:<24}");
            for size in &docker.sizes {
                let theirs = docker.stats.get(&(row, *size));
                let _ = write!(out, " {:>19}", theirs.map_or("-".into(), |s| s.cell()));
                for (_, figures) in ours {
                    let ratio = match (figures.get(&(row, *size)), theirs) {
                        (Some(ours), Some(theirs)) => {
                            format!("{:.2}", ours.median / theirs.median)
                        }
                        _ => "-".into(),
                    };
                    let _ = write!(out, " {ratio:>14}");
                }
            }
            let _ = writeln!(out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Options::parse(&args, Path::new("/repo"))
    }

    #[test]
    fn options_default_and_parsed() -> Result<(), String> {
        let default = parse(&[])?;
        assert_eq!(default.backends, ["sqlite"]);
        assert_eq!(default.sizes, [1000, 10_000, 100_000]);
        assert_eq!(default.runs, 10);
        assert!(!default.docker);
        assert_eq!(default.dir, Path::new("/repo/target/bench-cli"));
        let given = parse(&[
            "--backend",
            "sqlite,fs",
            "--sizes",
            "10000,1000,1000",
            "--runs",
            "3",
            "--docker",
            "--dir",
            "/d",
        ])?;
        assert_eq!(given.backends, ["sqlite", "fs"]);
        assert_eq!(given.sizes, [1000, 10_000]);
        assert_eq!(given.runs, 3);
        assert!(given.docker);
        assert_eq!(given.dir, Path::new("/d"));
        Ok(())
    }

    #[test]
    fn options_refused_with_the_reason() {
        let error = |args: &[&str]| parse(args).err().unwrap_or_default();
        assert_eq!(
            error(&["--backend", "ext4"]),
            "unknown backend \"ext4\" (sqlite or fs)"
        );
        assert_eq!(
            error(&["--sizes", "1500"]),
            "--sizes: \"1500\" is no positive multiple of 1000"
        );
        assert_eq!(
            error(&["--sizes", "0"]),
            "--sizes: \"0\" is no positive multiple of 1000"
        );
        assert_eq!(error(&["--runs", "0"]), "--runs needs a positive number");
        assert_eq!(error(&["--runs"]), "--runs needs a number");
        assert_eq!(error(&["--fast"]), "unknown argument \"--fast\"");
    }

    #[test]
    fn stats_are_median_min_max() {
        let stats = Stats::of(vec![5.0, 1.0, 3.0, 9.0, 2.0]);
        let (median, min, max) = stats.map_or((0.0, 0.0, 0.0), |s| (s.median, s.min, s.max));
        assert_eq!((median, min, max), (3.0, 1.0, 9.0));
        assert!(Stats::of(Vec::new()).is_none());
        assert_eq!(
            Stats {
                median: 12.34,
                min: 10.2,
                max: 20.7
            }
            .cell(),
            "12.3 (10-21)"
        );
        assert_eq!(Stats::single(49.56).cell(), "49.6");
    }

    #[test]
    fn probes_sit_in_the_middle_of_the_store() -> Result<(), String> {
        let probe = Probe::at(10_000)?;
        assert_eq!(probe.name, "fixture/img5001:latest");
        assert_eq!(probe.alias, "fixture/img5003:alias");
        assert_eq!(probe.deleted, 5007);
        let id = image_id(5007)?;
        assert_eq!(probe.short_id, id.encoded()[..12]);
        Ok(())
    }

    #[test]
    fn goals_and_ratios_beside_the_figures() {
        let mut figures = Measured::new();
        for (size, ms) in [(1000, 20.0), (10_000, 100.0), (100_000, 1000.0)] {
            figures.insert((Row::Inspect, size), Stats::single(ms));
            figures.insert((Row::Images, size), Stats::single(ms / 10.0));
        }
        figures.insert((Row::LoadEmpty, 1000), Stats::single(500.0));
        let sizes = [1000, 10_000, 100_000];
        assert_eq!(
            goal_text(Row::Inspect, "sqlite", &sizes, &figures),
            "<= 10 ms at 10k and 100k, 100k/1k <= 1.2  ->  10k 0.10, 100k 0.010, 100k/1k 50.0"
        );
        assert_eq!(
            goal_text(Row::Inspect, "fs", &sizes, &figures),
            "<= 30 ms at 10k  ->  10k 0.30"
        );
        assert_eq!(
            goal_text(Row::Images, "sqlite", &sizes, &figures),
            "<= 25 ms at 10k, <= 250 ms at 100k  ->  10k 2.50, 100k 2.50"
        );
        assert_eq!(
            goal_text(Row::LoadEmpty, "sqlite", &sizes, &figures),
            "<= 1000 ms  ->  1k 2.00"
        );
        assert_eq!(goal_text(Row::Floor, "sqlite", &sizes, &figures), "");
        // Two columns shown; the goals still read every figure measured.
        let table = table("sqlite", &sizes[..2], &figures);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 1 + ROWS.len());
        assert_eq!(
            lines[2],
            "inspect NAME                            20.0               100.0   \
             <= 10 ms at 10k and 100k, 100k/1k <= 1.2  ->  10k 0.10, 100k 0.010, 100k/1k 50.0"
        );
        assert_eq!(ratio(0.0046), "0.0046");
        assert_eq!(ratio(0.064), "0.064");
        assert_eq!(ratio(0.5), "0.50");
        assert_eq!(ratio(2.185), "2.19");
    }

    #[test]
    fn prepare_scripts_copy_fresh_and_quote_paths() {
        assert_eq!(
            fresh_copy_script(Some(Path::new("/t/store")), Path::new("/t/it's")),
            "rm -rf '/t/it'\\''s' && cp --reflink=auto -a '/t/store' '/t/it'\\''s' && sync"
        );
        assert_eq!(
            fresh_copy_script(None, Path::new("/t/w")),
            "rm -rf '/t/w' && sync"
        );
    }
}
