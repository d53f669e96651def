//! The fuzz loop on the stable toolchain: `imgstore-fuzz run <target|all>
//! [--execs N] [--seconds S] [--seed X] [--dump-exec N]`, as run by
//! `cargo xtask fuzz`; `imgstore-fuzz seeds <dir>` writes the seed corpora
//! for libFuzzer; `imgstore-fuzz hostile <case> <n>` imports one large
//! crafted input (gzip bomb, many members, many layers, huge index.json) to
//! measure its time and memory.
//!
//! Each target starts from its seed corpus and a pool of recent mutants;
//! every input is a pool entry with stacked mutations (deterministic from the
//! printed seed). Findings: a panic (caught; the input is saved under
//! `fuzz-findings/`), an input that runs longer than one second (saved and
//! counted), and a heap of more than 1 GiB live (the counting allocator below
//! aborts the process, printing the exec number to rerun with `--dump-exec`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use imgstore_fuzz::Target;
use imgstore_fuzz::mutate::Rng;

/// The allocation cap: live heap above this aborts.
const HEAP_CAP: usize = 1 << 30;
/// An input running longer than this is a finding.
const SLOW: Duration = Duration::from_secs(1);
/// Mutants kept in the pool beside the seeds.
const POOL: usize = 1024;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The exec in progress (for the abort message).
static EXEC: AtomicU64 = AtomicU64::new(0);

/// Counts live heap bytes; aborts over [`HEAP_CAP`].
struct Counting;

fn over_cap(size: usize) -> ! {
    // No allocation here: format the exec number by hand.
    let mut buf = [0u8; 20];
    let mut n = EXEC.load(Ordering::Relaxed);
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut err = std::io::stderr();
    let _ = err.write_all(b"imgstore-fuzz: FINDING: heap over 1 GiB (allocation cap) at exec ");
    let _ = err.write_all(&buf[i..]);
    let _ = err.write_all(if size > HEAP_CAP {
        b" (one allocation over the cap)\n"
    } else {
        b" (live total over the cap)\n"
    });
    std::process::abort()
}

fn grow(size: usize) {
    if size > HEAP_CAP {
        over_cap(size);
    }
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    if live > HEAP_CAP {
        over_cap(size);
    }
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the same layout; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grow(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Args {
    targets: Vec<Target>,
    execs: Option<u64>,
    seconds: Option<f64>,
    seed: u64,
    dump_exec: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("run") => {}
        _ => return Err("usage: imgstore-fuzz run <target|all> [--execs N] [--seconds S] [--seed X] [--dump-exec N]".into()),
    }
    let which = args.next().unwrap_or_else(|| "all".into());
    let targets = if which == "all" {
        Target::ALL.to_vec()
    } else {
        vec![Target::from_name(&which).ok_or_else(|| {
            let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
            format!("unknown target {which:?} (targets: {})", names.join(", "))
        })?]
    };
    let mut parsed = Args {
        targets,
        execs: None,
        seconds: None,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        dump_exec: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| -> Result<u64, String> {
            let v = v.replace('_', "");
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            }
            .map_err(|e| format!("{flag} {v}: {e}"))
        };
        match flag.as_str() {
            "--execs" => parsed.execs = Some(number(&value)?),
            "--seconds" => {
                parsed.seconds = Some(value.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--seed" => parsed.seed = number(&value)?,
            "--dump-exec" => parsed.dump_exec = Some(number(&value)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if parsed.execs.is_none() && parsed.seconds.is_none() {
        parsed.execs = Some(10_000_000);
    }
    Ok(parsed)
}

/// The input being run, for the watchdog to save when it hangs.
static CURRENT: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Start of the current exec, in ms since the loop began (0 = idle).
static STARTED_MS: AtomicU64 = AtomicU64::new(0);

fn findings_dir() -> PathBuf {
    PathBuf::from("fuzz-findings")
}

fn save(target: Target, kind: &str, exec: u64, input: &[u8]) -> PathBuf {
    let dir = findings_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{}-{kind}-{exec}", target.name()));
    let _ = std::fs::write(&path, input);
    path
}

struct Report {
    execs: u64,
    panics: u64,
    slow: u64,
    slowest: Duration,
    elapsed: Duration,
    outcomes: Option<(u64, u64)>,
}

fn run_target(target: Target, args: &Args, epoch: Instant) -> Result<Report, String> {
    let mut runner = target
        .runner()
        .map_err(|e| format!("{}: cannot set up: {e}", target.name()))?;
    let seeds = target.seeds();
    let dict = target.dict();
    let mut rng = Rng::new(args.seed ^ target.name().len() as u64);
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    let mut report = Report {
        execs: 0,
        panics: 0,
        slow: 0,
        slowest: Duration::ZERO,
        elapsed: Duration::ZERO,
        outcomes: None,
    };
    let start = Instant::now();
    let deadline = args.seconds.map(|s| start + Duration::from_secs_f64(s));
    let mut exec: u64 = 0;
    loop {
        if args.execs.is_some_and(|n| exec >= n) {
            break;
        }
        if exec.is_multiple_of(256) && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // One in sixteen inputs is a seed itself, the rest mutants.
        let mut input = if rng.one_in(64) {
            rng.pick(&seeds).cloned().unwrap_or_default()
        } else {
            rng.pick(&pool).cloned().unwrap_or_default()
        };
        if !rng.one_in(16) {
            target.mutate(&mut rng, &mut input, &dict, &pool);
        }
        if args.dump_exec == Some(exec) {
            let path = save(target, "dump", exec, &input);
            eprintln!(
                "imgstore-fuzz: exec {exec} input saved to {}",
                path.display()
            );
        }
        if let Ok(mut current) = CURRENT.lock() {
            current.clear();
            current.extend_from_slice(&input);
        }
        EXEC.store(exec, Ordering::Relaxed);
        let t0 = Instant::now();
        STARTED_MS.store((t0 - epoch).as_millis() as u64 + 1, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(&input)));
        let took = t0.elapsed();
        STARTED_MS.store(0, Ordering::Relaxed);
        if took > report.slowest {
            report.slowest = took;
        }
        if took > SLOW {
            report.slow += 1;
            let path = save(target, "slow", exec, &input);
            eprintln!(
                "imgstore-fuzz: FINDING: {} exec {exec} took {took:?} (> 1 s), input {}",
                target.name(),
                path.display()
            );
        }
        if outcome.is_err() {
            report.panics += 1;
            let path = save(target, "panic", exec, &input);
            eprintln!(
                "imgstore-fuzz: FINDING: {} exec {exec} panicked, input {}",
                target.name(),
                path.display()
            );
            // A fresh runner: the old one may be mid-change.
            runner = target
                .runner()
                .map_err(|e| format!("{}: cannot set up: {e}", target.name()))?;
            if report.panics >= 20 {
                break;
            }
        }
        if pool.len() < POOL {
            pool.push(input);
        } else if rng.one_in(8) {
            let i = rng.below(pool.len() - seeds.len()) + seeds.len();
            pool[i] = input;
        }
        exec += 1;
        if exec.is_multiple_of(1_000_000) {
            eprintln!(
                "imgstore-fuzz: {}: {exec} execs, {:.0}/s, {} panics, {} slow",
                target.name(),
                exec as f64 / start.elapsed().as_secs_f64(),
                report.panics,
                report.slow
            );
        }
    }
    report.outcomes = runner.outcomes();
    report.execs = exec;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// `imgstore-fuzz seeds <dir>`: writes each target's seed corpus to
/// `<dir>/<target>/` (for libFuzzer).
fn write_seeds(dir: &str) -> ExitCode {
    for target in Target::ALL {
        let sub = PathBuf::from(dir).join(target.name());
        let written = std::fs::create_dir_all(&sub).and_then(|()| {
            for (i, seed) in target.seeds().iter().enumerate() {
                std::fs::write(sub.join(format!("seed-{i}")), seed)?;
            }
            Ok(())
        });
        if let Err(e) = written {
            eprintln!("imgstore-fuzz: {}: {e}", sub.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `imgstore-fuzz hostile <case> <n>`: builds one large hostile input in a
/// scratch directory (under /dev/shm when present), imports it into a fresh
/// SQLite store and prints the outcome, the import's time and the peak live
/// heap. Cases: `bomb <GiB>`, `entries <count>`, `layers <count>`,
/// `index <MB>`.
fn hostile_case(case: &str, n: usize) -> Result<(), String> {
    use imgstore_fuzz::hostile;
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .map_err(|e| format!("scratch directory: {e}"))?;
    let io = |e: std::io::Error| format!("building the input: {e}");
    let store = imgstore::Store::open(dir.path().join("store")).map_err(|e| e.to_string())?;
    let before = imgstore_fuzz::targets::store_state(&store);
    let built = Instant::now();
    let import: Box<dyn Fn() -> imgstore::Result<Vec<imgstore::Imported>>> = match case {
        "bomb" => {
            let layout = hostile::bomb_layout(dir.path(), n).map_err(io)?;
            Box::new(move || store.import_oci_layout(&layout))
        }
        "entries" => {
            let path = dir.path().join("many.tar");
            hostile::write_many_entries(&path, n).map_err(io)?;
            Box::new(move || store.import_archive(&path))
        }
        "layers" => {
            let layout = hostile::many_layers_layout(dir.path(), n).map_err(io)?;
            Box::new(move || store.import_oci_layout(&layout))
        }
        "index" => {
            let layout = dir.path().join("layout");
            imgstore_fuzz::seeds::SeedImage::new(b"x")
                .write_layout(&layout)
                .map_err(io)?;
            let file = std::fs::File::create(layout.join("index.json")).map_err(io)?;
            file.set_len(n as u64 * 1_000_000).map_err(io)?;
            Box::new(move || store.import_oci_layout(&layout))
        }
        other => {
            return Err(format!(
                "unknown case {other:?} (bomb, entries, layers, index)"
            ));
        }
    };
    let build_time = built.elapsed();
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let heap_before = LIVE.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let result = import();
    let took = t0.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(heap_before);
    drop(import);
    let outcome = match &result {
        Ok(imported) => format!("imported {} image(s)", imported.len()),
        Err(e) => format!("refused ({:?}): {e}", e.kind()),
    };
    let outcome: String = outcome.chars().take(300).collect();
    println!(
        "hostile {case} {n}: input built in {:.1} s; import {:.2} s, peak heap during import {:.1} MiB: {outcome}",
        build_time.as_secs_f64(),
        took.as_secs_f64(),
        peak as f64 / (1 << 20) as f64
    );
    if result.is_err() {
        let store = imgstore::Store::open(dir.path().join("store")).map_err(|e| e.to_string())?;
        if imgstore_fuzz::targets::store_state(&store) != before {
            return Err("the refused import changed the store".into());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("seeds") {
        return write_seeds(argv.get(2).map_or("fuzz/corpus", String::as_str));
    }
    if argv.get(1).map(String::as_str) == Some("hostile") {
        let case = argv.get(2).map_or("", String::as_str);
        let n = argv.get(3).and_then(|n| n.parse().ok()).unwrap_or(1);
        return match hostile_case(case, n) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("imgstore-fuzz: {message}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let epoch = Instant::now();
    // Watchdog: says when an input runs over a second; over a minute, the
    // input is saved and the process aborts (a hang).
    std::thread::spawn(move || {
        let mut warned_for = 0;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let started = STARTED_MS.load(Ordering::Relaxed);
            if started == 0 {
                continue;
            }
            let running = (epoch.elapsed().as_millis() as u64).saturating_sub(started - 1);
            if running > 1000 && warned_for != started {
                warned_for = started;
                eprintln!(
                    "imgstore-fuzz: exec {} running for over 1 s",
                    EXEC.load(Ordering::Relaxed)
                );
            }
            if running > 60_000 {
                let input = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
                let _ = std::fs::create_dir_all(findings_dir());
                let path = findings_dir().join(format!("hang-{}", EXEC.load(Ordering::Relaxed)));
                let _ = std::fs::write(&path, input);
                eprintln!(
                    "imgstore-fuzz: FINDING: hang over 60 s, input {}",
                    path.display()
                );
                std::process::abort();
            }
        }
    });
    // Panics are counted and saved; print the first few messages only.
    let printed = AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if printed.fetch_add(1, Ordering::Relaxed) < 5 {
            default_hook(info);
        }
    }));
    println!(
        "imgstore-fuzz: seed {:#x} (rerun with --seed {:#x}), heap cap 1 GiB, slow limit 1 s",
        args.seed, args.seed
    );
    let mut failed = false;
    for &target in &args.targets {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        match run_target(target, &args, epoch) {
            Ok(r) => {
                println!(
                    "{:<10} {:>11} execs in {:>8.1} s ({:>7.0}/s): {} panics, {} over 1 s (slowest {:.1} ms), 0 over the heap cap (peak live heap {:.1} MiB)",
                    target.name(),
                    r.execs,
                    r.elapsed.as_secs_f64(),
                    r.execs as f64 / r.elapsed.as_secs_f64(),
                    r.panics,
                    r.slow,
                    r.slowest.as_secs_f64() * 1000.0,
                    PEAK.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
                );
                if let Some((imported, refused)) = r.outcomes {
                    println!(
                        "{:<10} imports: {imported} accepted, {refused} refused (store unchanged after each)",
                        ""
                    );
                }
                failed |= r.panics > 0 || r.slow > 0;
            }
            Err(message) => {
                eprintln!("imgstore-fuzz: {message}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
