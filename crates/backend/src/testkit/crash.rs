//! The crash harness: a writer child process killed with SIGKILL at random
//! moments, and the checks the parent runs on the store after each kill.
//!
//! The child ([`writer_main`]) writes random image configs with `set`,
//! streams blobs with `write_blob`, sets metadata, deletes content and applies
//! record batches, and appends to a log file a `begin` line before each call
//! and an `ok` line after the call returned Ok. After each kill the parent
//! ([`run`]) reopens the store and checks that
//!
//! - it opens;
//! - every acknowledged write is there and verifies (content, metadata,
//!   records), and every acknowledged delete stays deleted;
//! - the one call in flight at the kill either happened or did not — record
//!   batches all-or-nothing, a batch's precondition-guarded counter moved
//!   by exactly one or not at all;
//! - no partial content is visible: every digest that `walk` lists reads
//!   back verified (temporary files never show), and nothing is listed that
//!   the writer did not write.
//!
//! The same store is reopened by the next child, so recovery after a crash
//! (including a crash during recovery: some kills come before the child has
//! finished opening) is exercised as well.
//!
//! Wiring, in a backend crate's `tests/crash.rs`:
//!
//! ```ignore
//! use imgstore_backend::testkit::crash;
//!
//! // Re-invoked by the harness as the writer child; returns at once otherwise.
//! #[test]
//! fn crash_writer_child() {
//!     crash::child_main(&MyHarness);
//! }
//!
//! #[test]
//! fn crash_kills_lose_no_acknowledged_write() {
//!     let config = crash::CrashConfig::from_env(100, Duration::from_secs(60));
//!     let report = crash::run(&MyHarness, &|| crash::self_test_command("crash_writer_child"), &config);
//!     eprintln!("{report}");
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imgstore_digest::Digest;

use super::{Generator, Harness, Rng};
use crate::{Batch, Error, ErrorKind, Precondition, RecordStore, Result, StoreBackend, Subject};

/// Number of kills to run; read by [`CrashConfig::from_env`] (`cargo xtask stress` sets it).
pub const ENV_KILLS: &str = "IMGSTORE_CRASH_KILLS";
/// Time budget in seconds; read by [`CrashConfig::from_env`].
pub const ENV_SECONDS: &str = "IMGSTORE_CRASH_SECONDS";
/// Seed of the run, to replay a failure; read by [`CrashConfig::from_env`].
pub const ENV_SEED: &str = "IMGSTORE_CRASH_SEED";
/// Set by the parent on the child: the store directory. Its presence makes
/// [`ChildEnv::from_env`] answer `Some`.
pub const ENV_CHILD_DIR: &str = "IMGSTORE_CRASH_CHILD_DIR";
/// Set by the parent on the child: the log file to append to.
pub const ENV_CHILD_LOG: &str = "IMGSTORE_CRASH_CHILD_LOG";
/// Set by the parent on the child: the run number and the child's seed, `run:seed`.
pub const ENV_CHILD_RUN: &str = "IMGSTORE_CRASH_CHILD_RUN";

/// Bucket of the records each batch creates (`g<run>.<seq>/<i>`).
const GROUPS: &str = "crash-groups";
/// Bucket of the counter every batch increments under an `Equals` precondition.
const COUNTER_BUCKET: &str = "crash-counter";
const COUNTER_KEY: &str = "n";

/// How long and how hard to crash.
#[derive(Debug, Clone)]
pub struct CrashConfig {
    /// How many times to kill the writer.
    pub kills: u32,
    /// Stop earlier when this much time has passed (the report says how many
    /// kills were run).
    pub time_budget: Duration,
    /// The longest a child writes (after it has opened the store) before it
    /// is killed; each run picks a random time up to this.
    pub max_run: Duration,
    /// Seed of everything random (the children's writes, the kill times).
    pub seed: u64,
}

impl CrashConfig {
    /// `kills` kills within `time_budget`, children writing up to 80 ms, a
    /// seed from the clock.
    pub fn new(kills: u32, time_budget: Duration) -> CrashConfig {
        CrashConfig {
            kills,
            time_budget,
            max_run: Duration::from_millis(80),
            seed: Rng::from_entropy().next_u64(),
        }
    }

    /// Like [`new`](Self::new) with the defaults given, overridden by
    /// `IMGSTORE_CRASH_KILLS`, `IMGSTORE_CRASH_SECONDS` and `IMGSTORE_CRASH_SEED`.
    pub fn from_env(default_kills: u32, default_budget: Duration) -> CrashConfig {
        let mut config = CrashConfig::new(default_kills, default_budget);
        if let Some(kills) = env_number(ENV_KILLS) {
            config.kills = u32::try_from(kills).unwrap_or(u32::MAX);
        }
        if let Some(seconds) = env_number(ENV_SECONDS) {
            config.time_budget = Duration::from_secs(seconds);
        }
        if let Some(seed) = env_number(ENV_SEED) {
            config.seed = seed;
        }
        config
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("testkit: {name}={value:?} is not a number"),
    }
}

/// What a crash campaign did.
#[derive(Debug, Clone, Default)]
pub struct CrashReport {
    /// Children killed (each followed by a full check).
    pub kills: u32,
    /// Kills that hit before the child had finished opening the store.
    pub kills_during_open: u32,
    /// Writes acknowledged by the children (all found intact).
    pub acknowledged: u64,
    /// Kills that interrupted a call (which was then found whole or absent).
    pub interrupted: u64,
    /// Digests stored at the end.
    pub digests: usize,
    /// Record groups stored at the end.
    pub groups: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// The seed, to replay with `IMGSTORE_CRASH_SEED`.
    pub seed: u64,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash: {} kills ({} during open) in {:.1?}, {} acknowledged writes intact, \
             {} interrupted calls whole or absent, {} digests and {} record groups at the end \
             (seed {})",
            self.kills,
            self.kills_during_open,
            self.elapsed,
            self.acknowledged,
            self.interrupted,
            self.digests,
            self.groups,
            self.seed
        )
    }
}

/// A command that runs one test of the current test binary, `--exact`: the
/// usual way to re-invoke a backend's own `tests/crash.rs` as the writer child.
pub fn self_test_command(test_name: &str) -> Command {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("testkit: cannot find the current test binary: {e}"),
    };
    let mut command = Command::new(exe);
    command.args([test_name, "--exact", "--nocapture", "--test-threads=1"]);
    command
}

// ---- the child --------------------------------------------------------------

/// What the parent tells a writer child, through environment variables.
#[derive(Debug, Clone)]
pub struct ChildEnv {
    /// The store directory (pass it to the backend's open).
    pub dir: PathBuf,
    log: PathBuf,
    run: u64,
    seed: u64,
}

impl ChildEnv {
    /// `Some` when this process was started by [`run`] as a writer child.
    pub fn from_env() -> Option<ChildEnv> {
        let dir = std::env::var_os(ENV_CHILD_DIR)?;
        let log = std::env::var_os(ENV_CHILD_LOG)?;
        let run = std::env::var(ENV_CHILD_RUN).ok()?;
        let (run, seed) = run.split_once(':')?;
        Some(ChildEnv {
            dir: PathBuf::from(dir),
            log: PathBuf::from(log),
            run: run.parse().ok()?,
            seed: seed.parse().ok()?,
        })
    }
}

/// The child's entry point: when this process is a writer child, opens the
/// store with `harness` and writes until killed (exiting with status 3 and a
/// message on stderr if a call fails); otherwise returns at once.
pub fn child_main<H: Harness>(harness: &H) {
    let Some(env) = ChildEnv::from_env() else {
        return;
    };
    let backend = match harness.open(&env.dir) {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("crash child: open failed: {e}");
            std::process::exit(3);
        }
    };
    let error = writer_main(&backend, &env);
    eprintln!("crash child: {error}");
    std::process::exit(3);
}

/// The writer loop: random writes, each logged as acknowledged once it
/// returned Ok, until the process is killed. Returns only the error that
/// stopped it.
pub fn writer_main<B: StoreBackend + RecordStore>(backend: &B, env: &ChildEnv) -> Error {
    match write_forever(backend, env) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

struct Log {
    file: File,
    run: u64,
}

impl Log {
    fn line(&mut self, seq: u64, text: &str) -> Result<()> {
        // One write call per line: a kill leaves whole lines and at most one torn tail.
        let line = format!("{} {seq} {text}\n", self.run);
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| Error::io("append to", Subject::Store("crash log".into()), e))
    }
}

/// The value of record `i` of a group; the parent recomputes it.
fn group_value(group: &str, i: u32) -> Vec<u8> {
    let mut value = format!("{group}/{i}=").into_bytes();
    value.resize(value.len() + (i as usize * 37) % 300, b'v');
    value
}

fn read_counter(store: &impl RecordStore) -> Result<u64> {
    match store.get_record(COUNTER_BUCKET, COUNTER_KEY)? {
        None => Ok(0),
        Some(bytes) => String::from_utf8_lossy(&bytes)
            .parse()
            .map_err(|_| Error::invalid_argument("counter", "the crash counter is not a number")),
    }
}

/// A random, JSON-looking image config of 200 bytes to 3 KiB.
fn random_config(rng: &mut Rng) -> Vec<u8> {
    let len = rng.range(200, 3 * 1024) as usize;
    let mut out = format!(
        "{{\"architecture\":\"amd64\",\"id\":\"{}\",\"pad\":\"",
        rng.hex(32)
    );
    while out.len() + 2 < len {
        out.push_str(&rng.hex(16));
    }
    out.push_str("\"}");
    out.into_bytes()
}

fn write_forever<B: StoreBackend + RecordStore>(store: &B, env: &ChildEnv) -> Result<Never> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&env.log)
        .map_err(|e| Error::io("open", Subject::Store(env.log.display().to_string()), e))?;
    let mut log = Log { file, run: env.run };
    let mut rng = Rng::new(env.seed);
    let mut counter = read_counter(store)?;
    let mut live: Vec<Digest> = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    log.line(0, "open")?;
    for seq in 1.. {
        match rng.range(0, 100) {
            0..40 => {
                let data = random_config(&mut rng);
                let digest = Digest::from_bytes(&data);
                log.line(seq, &format!("begin set {digest}"))?;
                store.set(&data)?;
                live.push(digest);
            }
            40..55 if !live.is_empty() => {
                let digest = live[rng.range(0, live.len() as u64) as usize].clone();
                let key = format!("k{seq}");
                let len = rng.range(0, 64) as usize;
                let value = rng.hex(len);
                log.line(seq, &format!("begin meta {digest} {key} {value}"))?;
                store.set_metadata(&digest, &key, value.as_bytes())?;
            }
            55..80 => {
                let group = format!("g{}.{seq}", env.run);
                let keys = rng.range(1, 6) as u32;
                let deleted = if !groups.is_empty() && rng.chance(30) {
                    Some(groups.swap_remove(rng.range(0, groups.len() as u64) as usize))
                } else {
                    None
                };
                let mut batch = Batch::new();
                let condition = match counter {
                    0 => Precondition::Absent,
                    n => Precondition::Equals(n.to_string().into_bytes()),
                };
                batch.require(COUNTER_BUCKET, COUNTER_KEY, condition);
                batch.put(
                    COUNTER_BUCKET,
                    COUNTER_KEY,
                    (counter + 1).to_string().into_bytes(),
                );
                for i in 0..keys {
                    batch.put(GROUPS, &format!("{group}/{i}"), group_value(&group, i));
                }
                // Deleting by prefix needs the key count; the writer made the group, it knows.
                if let Some(old) = &deleted {
                    for i in 0..6 {
                        batch.delete(GROUPS, &format!("{old}/{i}"));
                    }
                }
                let deleted_name = deleted.as_deref().unwrap_or("-");
                log.line(
                    seq,
                    &format!("begin batch {group} {keys} {counter} {deleted_name}"),
                )?;
                store.apply(&batch)?;
                counter += 1;
                groups.push(group);
            }
            80..90 if !live.is_empty() => {
                let digest = live.swap_remove(rng.range(0, live.len() as u64) as usize);
                log.line(seq, &format!("begin delete {digest}"))?;
                store.delete(&digest)?;
            }
            90..100 => {
                let size = rng.range(4 * 1024, 256 * 1024);
                let seed = rng.next_u64();
                let digest = imgstore_digest::Algorithm::Sha256
                    .from_reader(Generator::new(seed, size))
                    .map_err(|e| Error::io("hash", Subject::Store("generator".into()), e))?;
                log.line(seq, &format!("begin blob {digest} {size}"))?;
                let expected = rng.chance(50).then_some(&digest);
                store.write_blob(expected, &mut Generator::new(seed, size))?;
                live.push(digest);
            }
            _ => continue,
        }
        log.line(seq, "ok")?;
    }
    Err(Error::invalid_argument("seq", "the sequence ran out"))
}

// ---- the parent -------------------------------------------------------------

#[derive(Debug, Clone)]
enum LoggedOp {
    Set(Digest),
    Blob(Digest, u64),
    Meta(Digest, String, String),
    Delete(Digest),
    Batch {
        group: String,
        keys: u32,
        counter_before: u64,
        deleted: Option<String>,
    },
}

fn parse_op(words: &[&str]) -> Option<LoggedOp> {
    let digest = |s: &str| Digest::parse(s).ok();
    match words {
        ["set", d] => Some(LoggedOp::Set(digest(d)?)),
        ["blob", d, size] => Some(LoggedOp::Blob(digest(d)?, size.parse().ok()?)),
        ["meta", d, key, value] => Some(LoggedOp::Meta(digest(d)?, (*key).into(), (*value).into())),
        ["meta", d, key] => Some(LoggedOp::Meta(digest(d)?, (*key).into(), String::new())),
        ["delete", d] => Some(LoggedOp::Delete(digest(d)?)),
        ["batch", group, keys, counter, deleted] => Some(LoggedOp::Batch {
            group: (*group).into(),
            keys: keys.parse().ok()?,
            counter_before: counter.parse().ok()?,
            deleted: (*deleted != "-").then(|| (*deleted).to_owned()),
        }),
        _ => None,
    }
}

/// What the store must hold, from the acknowledged writes so far.
#[derive(Debug, Default)]
struct Model {
    content: BTreeMap<Digest, Option<u64>>,
    deleted: BTreeSet<Digest>,
    metadata: BTreeMap<Digest, BTreeMap<String, String>>,
    groups: BTreeMap<String, u32>,
    counter: u64,
    acknowledged: u64,
}

impl Model {
    fn apply(&mut self, op: &LoggedOp, problems: &mut Vec<String>) {
        self.acknowledged += 1;
        match op {
            LoggedOp::Set(d) => {
                self.content.insert(d.clone(), None);
            }
            LoggedOp::Blob(d, size) => {
                self.content.insert(d.clone(), Some(*size));
            }
            LoggedOp::Meta(d, key, value) => {
                self.metadata
                    .entry(d.clone())
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            LoggedOp::Delete(d) => {
                self.content.remove(d);
                self.metadata.remove(d);
                self.deleted.insert(d.clone());
            }
            LoggedOp::Batch {
                group,
                keys,
                counter_before,
                deleted,
            } => {
                if *counter_before != self.counter {
                    problems.push(format!(
                        "the writer saw counter {counter_before} before batch {group}, the model says {}",
                        self.counter
                    ));
                }
                self.counter = counter_before + 1;
                self.groups.insert(group.clone(), *keys);
                if let Some(old) = deleted {
                    self.groups.remove(old);
                }
            }
        }
    }

    /// Decides from the reopened store whether the interrupted call happened.
    fn resolve<B: StoreBackend + RecordStore>(
        &mut self,
        op: &LoggedOp,
        store: &B,
        problems: &mut Vec<String>,
    ) {
        match op {
            LoggedOp::Set(d) | LoggedOp::Blob(d, _) => match store.contains(d) {
                Ok(true) => {
                    let size = if let LoggedOp::Blob(_, size) = op {
                        Some(*size)
                    } else {
                        None
                    };
                    self.content.insert(d.clone(), size);
                }
                Ok(false) => {}
                Err(e) => problems.push(format!("contains {d} (interrupted set): {e}")),
            },
            LoggedOp::Meta(d, key, value) => match store.get_metadata(d, key) {
                Ok(got) if got == value.as_bytes() => {
                    self.metadata
                        .entry(d.clone())
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Ok(got) => problems.push(format!(
                    "interrupted set_metadata {d} {key}: partial value {:?}",
                    String::from_utf8_lossy(&got)
                )),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => problems.push(format!("get_metadata {d} {key} (interrupted): {e}")),
            },
            LoggedOp::Delete(d) => match store.contains(d) {
                Ok(false) => {
                    self.content.remove(d);
                    self.metadata.remove(d);
                    self.deleted.insert(d.clone());
                }
                // Content stays; metadata goes first (moby's order), so some of it may be gone.
                Ok(true) => {
                    if let Some(keys) = self.metadata.get_mut(d) {
                        keys.retain(|key, _| store.get_metadata(d, key).is_ok());
                    }
                }
                Err(e) => problems.push(format!("contains {d} (interrupted delete): {e}")),
            },
            LoggedOp::Batch { counter_before, .. } => match read_counter(store) {
                Ok(n) if n == *counter_before => {}
                Ok(n) if n == counter_before + 1 => {
                    self.acknowledged -= 1;
                    self.apply(op, problems);
                }
                Ok(n) => problems.push(format!(
                    "counter is {n} after a batch interrupted at {counter_before}"
                )),
                Err(e) => problems.push(format!("reading the counter: {e}")),
            },
        }
    }

    /// Every check after a kill; returns what failed.
    fn check<B: StoreBackend + RecordStore>(&self, store: &B) -> Vec<String> {
        let mut problems = Vec::new();
        for (digest, size) in &self.content {
            match store.get(digest) {
                Ok(bytes) => {
                    if let Some(size) = size
                        && bytes.len() as u64 != *size
                    {
                        problems.push(format!("{digest}: {} bytes, wrote {size}", bytes.len()));
                    }
                }
                Err(e) => problems.push(format!("acknowledged {digest}: get failed: {e}")),
            }
        }
        for digest in &self.deleted {
            if !matches!(store.contains(digest), Ok(false)) {
                problems.push(format!("deleted {digest} is back"));
            }
        }
        for (digest, keys) in &self.metadata {
            for (key, value) in keys {
                match store.get_metadata(digest, key) {
                    Ok(got) if got == value.as_bytes() => {}
                    Ok(got) => problems.push(format!(
                        "metadata {key} of {digest}: {:?}, wrote {value:?}",
                        String::from_utf8_lossy(&got)
                    )),
                    Err(e) => problems.push(format!("metadata {key} of {digest}: {e}")),
                }
            }
        }
        let walk = store.walk(&mut |digest| {
            if !self.content.contains_key(digest) {
                problems.push(format!("walk lists {digest}, which was never acknowledged"));
                if let Err(e) = store.get(digest) {
                    problems.push(format!(
                        "walk lists {digest}, which does not read back: {e}"
                    ));
                }
            }
            Ok(())
        });
        if let Err(e) = walk {
            problems.push(format!("walk failed: {e}"));
        }
        let mut seen: BTreeMap<String, Vec<(u32, Vec<u8>)>> = BTreeMap::new();
        let scan = store.scan_records(GROUPS, "", &mut |key, value| {
            match key
                .split_once('/')
                .and_then(|(g, i)| Some((g, i.parse::<u32>().ok()?)))
            {
                Some((group, i)) => seen
                    .entry(group.to_owned())
                    .or_default()
                    .push((i, value.to_vec())),
                None => problems.push(format!("unexpected record key {key:?}")),
            }
            Ok(())
        });
        if let Err(e) = scan {
            problems.push(format!("scan failed: {e}"));
        }
        for (group, records) in &seen {
            match self.groups.get(group) {
                None => problems.push(format!("record group {group} should not exist")),
                Some(&keys) => {
                    let indexes: Vec<u32> = records.iter().map(|(i, _)| *i).collect();
                    let mut expected: Vec<u32> = (0..keys).collect();
                    expected.sort_by_key(|i| i.to_string());
                    if indexes != expected {
                        problems.push(format!("record group {group} is partial: {indexes:?}"));
                    }
                    for (i, value) in records {
                        if *value != group_value(group, *i) {
                            problems.push(format!("record {group}/{i} has a wrong value"));
                        }
                    }
                }
            }
        }
        for group in self.groups.keys() {
            if !seen.contains_key(group) {
                problems.push(format!("acknowledged record group {group} is missing"));
            }
        }
        match read_counter(store) {
            Ok(n) if n == self.counter => {}
            Ok(n) => problems.push(format!("counter is {n}, acknowledged {}", self.counter)),
            Err(e) => problems.push(format!("reading the counter: {e}")),
        }
        problems
    }
}

/// Reads the complete lines appended to the log since `offset` (a journal
/// a killed child appends to), and moves `offset` past them.
pub fn read_new_lines(log: &Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut file) = File::open(log) else {
        return Vec::new();
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    // A line torn by the kill has no newline yet: leave it for no one.
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    text[..complete].lines().map(str::to_owned).collect()
}

fn kill(child: &mut Child) {
    // `Child::kill` sends SIGKILL on unix.
    if let Err(e) = child.kill() {
        panic!("testkit: cannot kill the writer child: {e}");
    }
    if let Err(e) = child.wait() {
        panic!("testkit: cannot reap the writer child: {e}");
    }
}

/// Runs the campaign: up to `config.kills` times, start `writer()` as a child
/// (with the `IMGSTORE_CRASH_CHILD_*` variables added), let it write for a
/// random time, SIGKILL it, reopen the store with `harness` and check it.
/// Panics with every problem found (and keeps the store directory for a
/// post-mortem); returns what it did otherwise.
pub fn run<H: Harness>(
    harness: &H,
    writer: &dyn Fn() -> Command,
    config: &CrashConfig,
) -> CrashReport {
    let work = super::scratch();
    let dir = work.path().join("store");
    let log = work.path().join("writes.log");
    let stderr_path = work.path().join("child.stderr");
    let started = Instant::now();
    let mut rng = Rng::new(config.seed);
    let mut model = Model::default();
    let mut report = CrashReport {
        seed: config.seed,
        ..CrashReport::default()
    };
    let mut offset = 0u64;
    for run in 1..=u64::from(config.kills) {
        if started.elapsed() >= config.time_budget {
            break;
        }
        let stderr = match File::create(&stderr_path) {
            Ok(file) => file,
            Err(e) => panic!("testkit: cannot create {}: {e}", stderr_path.display()),
        };
        let mut command = writer();
        command
            .env(ENV_CHILD_DIR, &dir)
            .env(ENV_CHILD_LOG, &log)
            .env(ENV_CHILD_RUN, format!("{run}:{}", rng.next_u64()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => panic!("testkit: cannot start the writer child: {e}"),
        };
        // One kill in eight lands while the child is still opening (recovering).
        let during_open = rng.chance(12);
        let mut lines = Vec::new();
        if during_open {
            std::thread::sleep(Duration::from_micros(rng.range(0, 20_000)));
        } else {
            let ready = format!("{run} 0 open");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                lines.extend(read_new_lines(&log, &mut offset));
                if lines.contains(&ready) {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!(
                        "testkit: the writer child exited ({status}) before opening the store:\n{text}"
                    );
                }
                if Instant::now() > deadline {
                    kill(&mut child);
                    panic!("testkit: the writer child did not open the store within 30 s");
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            let max = config.max_run.as_micros() as u64;
            std::thread::sleep(Duration::from_micros(rng.range(0, max.max(1))));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("testkit: the writer child stopped by itself ({status}):\n{text}");
        }
        kill(&mut child);
        lines.extend(read_new_lines(&log, &mut offset));
        report.kills += 1;
        if !lines.iter().any(|l| *l == format!("{run} 0 open")) {
            report.kills_during_open += 1;
        }

        let mut problems = Vec::new();
        let mut pending: Option<LoggedOp> = None;
        for line in &lines {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                [_, _, "open"] => {}
                [_, _, "begin", rest @ ..] => match parse_op(rest) {
                    Some(op) => pending = Some(op),
                    None => problems.push(format!("unreadable log line {line:?}")),
                },
                [_, _, "ok"] => match pending.take() {
                    Some(op) => model.apply(&op, &mut problems),
                    None => problems.push(format!("log line {line:?} acknowledges nothing")),
                },
                _ => problems.push(format!("unreadable log line {line:?}")),
            }
        }
        let store = match harness.open(&dir) {
            Ok(store) => store,
            Err(e) => {
                let kept = work.keep();
                panic!(
                    "testkit: the store does not open after kill {run}: {e}\n(kept in {}; seed {})",
                    kept.display(),
                    config.seed
                );
            }
        };
        if let Some(op) = &pending {
            report.interrupted += 1;
            model.resolve(op, &store, &mut problems);
        }
        problems.extend(model.check(&store));
        drop(store);
        if !problems.is_empty() {
            let kept = work.keep();
            panic!(
                "testkit: after kill {run} (seed {}, store kept in {}):\n  {}",
                config.seed,
                kept.display(),
                problems.join("\n  ")
            );
        }
    }
    report.acknowledged = model.acknowledged;
    report.digests = model.content.len();
    report.groups = model.groups.len();
    report.elapsed = started.elapsed();
    report
}
