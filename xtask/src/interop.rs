//! `cargo xtask interop`: our exports against a real Docker daemon.
//!
//! Loads the good inputs of the image corpus (`examples/images`) into a fresh store, exports
//! every name (plus a Docker Hub name, `interop-demo:v1`) as a `docker save`
//! tar and starts a private `dockerd` (Debian's
//! docker.io, installed with apt-get when missing; vfs storage, no iptables,
//! no bridge, its own data root and socket in a temporary directory; run as
//! root). Then checks that `docker load` of our tar gives the same image IDs,
//! RepoTags and layer diff IDs; that `docker save` of those images imports
//! into a fresh store of ours with the same IDs, names and diff IDs; and that
//! Docker's `/system/df` (what `docker system df -v` shows) reports the sizes
//! our `disk_usage` does; and both directions again through pipes
//! (`docker save | import_reader`, `export_to_writer | docker load`). Then
//! what the `imgstore` command prints against what the `docker` client
//! prints for the same images (our export loaded into both): `images`,
//! `inspect`, `history`, `system df` (table, `-v`, JSON), `rmi` and `image
//! prune -a`; only the order of images with the same `Created` (and so
//! prune's groups), the storage driver's name in `inspect` and imgstore's
//! own JSON keys after Docker's may differ. The daemon is always stopped at
//! the end. Prints one line per check and a summary; fails on any mismatch.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imgstore::image::ImageStore;
use imgstore::refs::reference::familiar;
use imgstore::{ExportFormat, Store};
use serde_json::Value;

/// Good corpus inputs: OCI layouts, then tarballs.
const LAYOUTS: [&str; 2] = ["oci/main", "oci/quirk-unterminated"];
const ARCHIVES: [&str; 4] = [
    "docker/base.docker.tar",
    "docker/child.docker.tar",
    "oci-archive/sibling.oci.tar",
    "docker/docker-save-multi.docker.tar",
];
/// How long dockerd may take to answer, and to stop.
const START_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Per image ID: sorted names (full form), diff IDs.
type View = BTreeMap<String, (Vec<String>, Vec<String>)>;

/// Runs the interop checks.
pub fn run() -> Result<(), String> {
    if !is_root() {
        return Err("interop runs dockerd, which needs root".to_owned());
    }
    let corpus = crate::workspace_root().join("examples/images");
    if !corpus.join("expected").is_dir() {
        return Err(format!("no image corpus at {}", corpus.display()));
    }
    ensure_docker()?;
    let tmp = tempfile::Builder::new()
        .prefix("imgstore-interop-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("temporary directory: {e}"))?;
    let mut checks = Checks::default();

    // Our store, and our docker save of every name.
    let store = open(&tmp.path().join("ours"))?;
    for dir in LAYOUTS {
        store
            .import_oci_layout(corpus.join(dir))
            .map_err(|e| format!("import {dir}: {e}"))?;
    }
    for tar in ARCHIVES {
        store
            .import_archive(corpus.join(tar))
            .map_err(|e| format!("import {tar}: {e}"))?;
    }
    // A Docker Hub name too: RepoTags carry it in Docker's familiar form.
    store
        .tag("registry.demo.test/demo/base:v1", "interop-demo:v1")
        .map_err(|e| format!("tag: {e}"))?;
    let ours = view(&store)?;
    let names = store.names().map_err(|e| e.to_string())?;
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let our_tar = tmp.path().join("ours.docker.tar");
    let exported = store
        .export(&inputs, &our_tar, ExportFormat::DockerSave)
        .map_err(|e| format!("export: {e}"))?;
    println!(
        "our store: {} images, {} names from {} corpus inputs; exported as docker save: {} files, {} bytes",
        ours.len(),
        names.len(),
        LAYOUTS.len() + ARCHIVES.len(),
        exported.blobs,
        exported.bytes
    );

    let imgstore = imgstore_binary()?;
    let daemon = Daemon::start(tmp.path())?;
    let result = check_daemon(&daemon, &store, &ours, &our_tar, tmp.path(), &mut checks)
        .and_then(|()| check_output(&daemon, &imgstore, &our_tar, tmp.path(), &mut checks));
    daemon.stop();
    result?;

    println!(
        "interop: {} checks, {} passed, {} failed",
        checks.total,
        checks.total - checks.failed.len(),
        checks.failed.len()
    );
    if checks.failed.is_empty() {
        Ok(())
    } else {
        for failure in &checks.failed {
            eprintln!("mismatch: {failure}");
        }
        Err(format!("{} interop mismatches", checks.failed.len()))
    }
}

/// The checks that need the daemon.
fn check_daemon(
    daemon: &Daemon,
    store: &Store,
    ours: &View,
    our_tar: &Path,
    tmp: &Path,
    checks: &mut Checks,
) -> Result<(), String> {
    let version = daemon.get("/version")?;
    let info = daemon.get("/info")?;
    println!(
        "dockerd {} (API {}), storage driver {}",
        version["Version"].as_str().unwrap_or("?"),
        version["ApiVersion"].as_str().unwrap_or("?"),
        info["Driver"].as_str().unwrap_or("?")
    );

    // docker load of our export.
    let loaded = daemon.cli(&["load", "-i", &our_tar.to_string_lossy()])?;
    for line in loaded.lines() {
        println!("docker load: {line}");
    }
    let listed = daemon.get("/images/json")?;
    let mut docker_ids = Vec::new();
    for image in listed.as_array().into_iter().flatten() {
        let id = image["Id"].as_str().unwrap_or_default().to_owned();
        docker_ids.push(id.clone());
        let mut tags = strings(&image["RepoTags"]);
        tags.sort();
        let inspect = daemon.get(&format!("/images/{id}/json"))?;
        let layers = strings(&inspect["RootFS"]["Layers"]);
        let short = &id[7.min(id.len())..19.min(id.len())];
        match ours.get(&id) {
            None => checks.check(
                false,
                format!("load  {short}: docker has an image we do not"),
            ),
            Some((names, diff_ids)) => {
                let mut expected: Vec<String> = names
                    .iter()
                    .map(|n| familiar(n).unwrap_or_else(|_| n.clone()))
                    .collect();
                expected.sort();
                checks.check(
                    tags == expected,
                    format!("load  {short} RepoTags: ours {expected:?}, docker {tags:?}"),
                );
                checks.check(
                    &layers == diff_ids,
                    format!(
                        "load  {short} diff IDs: {} layers, docker {}",
                        diff_ids.len(),
                        layers.len()
                    ),
                );
            }
        }
    }
    docker_ids.sort();
    let our_ids: Vec<String> = ours.keys().cloned().collect();
    checks.check(
        docker_ids == our_ids,
        format!(
            "load  image IDs: ours {}, docker {} (same set)",
            our_ids.len(),
            docker_ids.len()
        ),
    );

    // docker system df -v against our disk_usage.
    let df = daemon.get("/system/df")?;
    let usage = store.disk_usage().map_err(|e| format!("disk_usage: {e}"))?;
    for image in df["Images"].as_array().into_iter().flatten() {
        let id = image["Id"].as_str().unwrap_or_default();
        let short = &id[7.min(id.len())..19.min(id.len())];
        let size = image["Size"].as_i64().unwrap_or(-1);
        let shared = image["SharedSize"].as_i64().unwrap_or(-1);
        let docker = (size, shared, size - shared);
        let ours = usage
            .images
            .iter()
            .find(|u| u.id.as_str() == id)
            .map(|u| (u.size as i64, u.shared_size as i64, u.unique_size as i64));
        checks.check(
            ours == Some(docker),
            format!(
                "df    {short} size/shared/unique: ours {}, docker {}/{}/{}",
                ours.map_or_else(|| "none".to_owned(), |(a, b, c)| format!("{a}/{b}/{c}")),
                docker.0,
                docker.1,
                docker.2
            ),
        );
    }

    // docker save of those images, imported by us.
    let tags: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|image| strings(&image["RepoTags"]))
        .collect();
    let their_tar = tmp.join("theirs.docker.tar");
    let mut args = vec![
        "save".to_owned(),
        "-o".to_owned(),
        their_tar.to_string_lossy().into_owned(),
    ];
    args.extend(tags.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.cli(&args)?;
    let again = open(&tmp.join("again"))?;
    let imported = again
        .import_archive(&their_tar)
        .map_err(|e| format!("import of docker save: {e}"))?;
    println!(
        "docker save of {} names: {} bytes, imported {} images",
        tags.len(),
        std::fs::metadata(&their_tar).map(|m| m.len()).unwrap_or(0),
        imported.len()
    );
    let theirs = view(&again)?;
    for (id, (names, diff_ids)) in ours {
        let short = &id[7..19];
        match theirs.get(id) {
            None => checks.check(
                false,
                format!("save  {short}: missing after import of docker save"),
            ),
            Some((their_names, their_diff_ids)) => {
                checks.check(
                    their_names == names,
                    format!(
                        "save  {short} names: ours {names:?}, after docker save {their_names:?}"
                    ),
                );
                checks.check(
                    their_diff_ids == diff_ids,
                    format!("save  {short} diff IDs: {} layers", diff_ids.len()),
                );
            }
        }
    }
    checks.check(
        theirs.len() == ours.len(),
        format!(
            "save  image IDs: ours {}, after docker save {}",
            ours.len(),
            theirs.len()
        ),
    );
    check_pipes(daemon, store, &tags, &theirs, tmp, checks)
}

/// `docker save | imgstore load` and `imgstore save | docker load`, through
/// pipes (the facade's `import_reader` and `export_to_writer`, what the CLI
/// calls without `-i` / `-o`).
fn check_pipes(
    daemon: &Daemon,
    store: &Store,
    tags: &[String],
    theirs: &View,
    tmp: &Path,
    checks: &mut Checks,
) -> Result<(), String> {
    let mut save = daemon
        .command()
        .arg("save")
        .args(tags)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run docker save: {e}"))?;
    let piped = open(&tmp.join("piped"))?;
    let stdout = save.stdout.take().ok_or("docker save: no stdout")?;
    let imported = piped.import_reader(stdout, "docker save", &Default::default());
    let status = save
        .wait()
        .map_err(|e| format!("wait for docker save: {e}"))?;
    checks.check(
        status.success() && imported.is_ok() && view(&piped)? == *theirs,
        format!(
            "pipe  docker save | import_reader: {} images, the same as from the file ({})",
            imported.as_ref().map_or(0, Vec::len),
            imported
                .err()
                .map_or_else(|| status.to_string(), |e| e.to_string())
        ),
    );

    // Into a daemon with none of them: remove what the checks above loaded.
    let ids: Vec<String> = theirs.keys().cloned().collect();
    let mut rmi = vec!["rmi", "-f"];
    rmi.extend(ids.iter().map(String::as_str));
    daemon.cli(&rmi)?;
    let mut load = daemon
        .command()
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run docker load: {e}"))?;
    let stdin = load.stdin.take().ok_or("docker load: no stdin")?;
    let names = store.names().map_err(|e| e.to_string())?;
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    let exported = store.export_to_writer(&inputs, stdin, "docker load", ExportFormat::DockerSave);
    let output = load
        .wait_with_output()
        .map_err(|e| format!("wait for docker load: {e}"))?;
    let loaded = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("Loaded image"))
        .count();
    let listed = daemon.get("/images/json")?;
    let mut docker_ids: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|image| image["Id"].as_str().map(str::to_owned))
        .collect();
    docker_ids.sort();
    checks.check(
        output.status.success() && exported.is_ok() && docker_ids == ids,
        format!(
            "pipe  export_to_writer | docker load: {loaded} names loaded, {} images, docker {} ({})",
            ids.len(),
            docker_ids.len(),
            exported.err().map_or_else(|| output.status.to_string(), |e| e.to_string())
        ),
    );
    Ok(())
}

/// The `imgstore` binary: `$IMGSTORE_BIN`, else built now (debug).
fn imgstore_binary() -> Result<PathBuf, String> {
    if let Some(binary) = std::env::var_os("IMGSTORE_BIN") {
        return Ok(PathBuf::from(binary));
    }
    crate::cargo(&["build", "--quiet", "-p", "imgstore-cli"], &[])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    Ok(target.join("debug/imgstore"))
}

/// Runs `imgstore --root ROOT ARGS`; its stdout (an error on failure).
fn run_imgstore(binary: &Path, root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("IMGSTORE_NAMESPACE")
        .env_remove("IMGSTORE_BACKEND")
        .output()
        .map_err(|e| format!("run {}: {e}", binary.display()))?;
    if !output.status.success() {
        return Err(format!(
            "imgstore {}: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A JSON row of ours with imgstore's own keys (from `first_own_key` on)
/// cut off: what Docker's row holds.
fn docker_part(line: &str, first_own_key: &str) -> String {
    match line.find(&format!(",\"{first_own_key}\":")) {
        Some(cut) => format!("{}}}", &line[..cut]),
        None => line.to_owned(),
    }
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// One check of ours against Docker's text; the first differing line when
/// they differ.
fn same_text(checks: &mut Checks, what: &str, ours: &[String], docker: &[String]) {
    let first_difference = ours
        .iter()
        .zip(docker)
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!(": ours {a:?}, docker {b:?}"))
        .unwrap_or_else(|| {
            if ours.len() == docker.len() {
                String::new()
            } else {
                format!(": ours {} lines, docker {}", ours.len(), docker.len())
            }
        });
    checks.check(
        first_difference.is_empty(),
        format!("out   {what}{first_difference}"),
    );
}

/// The `imgstore` command's output against the `docker` client's, both
/// holding what `our_tar` holds.
fn check_output(
    daemon: &Daemon,
    imgstore: &Path,
    our_tar: &Path,
    tmp: &Path,
    checks: &mut Checks,
) -> Result<(), String> {
    let root = tmp.join("cli");
    let ours = |args: &[&str]| run_imgstore(imgstore, &root, args);
    ours(&["load", "-i", &our_tar.to_string_lossy()])?;
    let lines = |text: String| -> Vec<String> { text.lines().map(str::to_owned).collect() };

    // images: Docker's rows (ties of Created in any order).
    let our_rows: Vec<String> = ours(&["images", "--format", "json"])?
        .lines()
        .map(|line| docker_part(line, "Pinned"))
        .collect();
    let mut our_sorted = our_rows.clone();
    our_sorted.sort();
    let docker_rows = sorted_lines(&daemon.cli(&["images", "--format", "{{json .}}"])?);
    same_text(checks, "images --format json", &our_sorted, &docker_rows);
    same_text(
        checks,
        "images (table)",
        &sorted_lines(&ours(&["images"])?),
        &sorted_lines(&daemon.cli(&["images"])?),
    );
    same_text(
        checks,
        "images --digests (table)",
        &sorted_lines(&ours(&["images", "--digests"])?),
        &sorted_lines(&daemon.cli(&["images", "--digests"])?),
    );

    // inspect and history of every image.
    let mut ids: Vec<String> = lines(daemon.cli(&["images", "-q", "--no-trunc"])?);
    ids.sort();
    ids.dedup();
    let driver = daemon.get("/info")?["Driver"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for id in &ids {
        let short = &id[7.min(id.len())..19.min(id.len())];
        let our_inspect = ours(&["inspect", id])?
            .replace("\"Name\": \"sqlite\"", &format!("\"Name\": \"{driver}\""));
        same_text(
            checks,
            &format!("inspect {short}"),
            &lines(our_inspect),
            &lines(daemon.cli(&["image", "inspect", id])?),
        );
        let our_history: Vec<String> = ours(&["history", "--format", "json", id])?
            .lines()
            .map(|line| docker_part(line, "Id"))
            .collect();
        same_text(
            checks,
            &format!("history {short}"),
            &our_history,
            &lines(daemon.cli(&["history", "--format", "{{json .}}", id])?),
        );
        same_text(
            checks,
            &format!("history {short} (table)"),
            &lines(ours(&["history", id])?),
            &lines(daemon.cli(&["history", id])?),
        );
    }

    // system df: the table, -v (rows of tied Created in any order), JSON.
    same_text(
        checks,
        "system df",
        &lines(ours(&["df"])?),
        &lines(daemon.cli(&["system", "df"])?),
    );
    same_text(
        checks,
        "system df -v",
        &sorted_lines(&ours(&["df", "-v"])?),
        &sorted_lines(&daemon.cli(&["system", "df", "-v"])?),
    );
    same_text(
        checks,
        "system df --format json",
        &lines(ours(&["df", "--format", "json"])?),
        &lines(daemon.cli(&["system", "df", "--format", "{{json .}}"])?),
    );
    let mut our_df: Value = serde_json::from_str(&ours(&["df", "-v", "--format", "json"])?)
        .map_err(|e| format!("our df -v JSON: {e}"))?;
    let mut docker_df: Value =
        serde_json::from_str(&daemon.cli(&["system", "df", "-v", "--format", "{{json .}}"])?)
            .map_err(|e| format!("docker's df -v JSON: {e}"))?;
    if let Some(object) = our_df.as_object_mut() {
        object.remove("LayersSize");
        object.remove("ContentSize");
    }
    for df in [&mut our_df, &mut docker_df] {
        if let Some(images) = df["Images"].as_array_mut() {
            for image in images.iter_mut() {
                if let Some(image) = image.as_object_mut() {
                    for own in [
                        "References",
                        "SizeBytes",
                        "SharedSizeBytes",
                        "UniqueSizeBytes",
                    ] {
                        image.remove(own);
                    }
                }
            }
            images.sort_by_key(|image| image["ID"].as_str().unwrap_or_default().to_owned());
        }
    }
    checks.check(
        our_df == docker_df,
        "out   system df -v --format json (Docker's keys, images by ID)".to_owned(),
    );

    // rmi of one name, then prune -a: the same lines (prune's in any order).
    if let Some(name) = ["registry.demo.test/demo/child:v1"]
        .into_iter()
        .find(|name| daemon.cli(&["image", "inspect", name]).is_ok())
    {
        same_text(
            checks,
            &format!("rmi {name}"),
            &lines(ours(&["rmi", name])?),
            &lines(daemon.cli(&["rmi", name])?),
        );
    }
    same_text(
        checks,
        "image prune -a -f",
        &sorted_lines(&ours(&["prune", "-a", "-f"])?),
        &sorted_lines(&daemon.cli(&["image", "prune", "-a", "-f"])?),
    );
    Ok(())
}

#[derive(Default)]
struct Checks {
    total: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, line: String) {
        self.total += 1;
        println!("{} {line}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.failed.push(line);
        }
    }
}

fn open(root: &Path) -> Result<Store, String> {
    Store::open(root).map_err(|e| format!("open store {}: {e}", root.display()))
}

fn view(store: &Store) -> Result<View, String> {
    let mut view = View::new();
    for summary in store.images().map_err(|e| e.to_string())? {
        let image = store
            .image_store()
            .get(&summary.id)
            .map_err(|e| e.to_string())?;
        let mut names = summary.references.clone();
        names.sort();
        let diff_ids = image.diff_ids().iter().map(ToString::to_string).collect();
        view.insert(summary.id.to_string(), (names, diff_ids));
    }
    Ok(view)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian's docker.io when dockerd is missing.
fn ensure_docker() -> Result<(), String> {
    if on_path("dockerd") {
        return Ok(());
    }
    println!("dockerd missing: apt-get install docker.io");
    for args in [
        &["update", "-qq"][..],
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "docker.io",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get {} failed ({status})", args.join(" ")));
        }
    }
    Ok(())
}

/// A private dockerd, stopped by [`Daemon::stop`] or when dropped.
struct Daemon {
    child: Option<Child>,
    socket: PathBuf,
    log: PathBuf,
    cli: &'static str,
}

/// A dockerd of its own: data root, exec root, pid file and socket all
/// private (so it never meets another daemon on the machine), vfs storage,
/// no iptables or bridge (none here). `cargo xtask bench cli --docker`
/// starts one the same way.
pub(crate) fn dockerd_command(
    data_root: &Path,
    exec_root: &Path,
    pid_file: &Path,
    socket: &Path,
) -> Command {
    let mut command = Command::new("dockerd");
    command
        .arg("--data-root")
        .arg(data_root)
        .arg("--exec-root")
        .arg(exec_root)
        .arg("--pidfile")
        .arg(pid_file)
        .args([
            "--storage-driver",
            "vfs",
            "--iptables=false",
            "--bridge=none",
        ])
        .arg("--host")
        .arg(format!("unix://{}", socket.display()));
    command
}

impl Daemon {
    fn start(tmp: &Path) -> Result<Daemon, String> {
        let socket = tmp.join("docker.sock");
        let log = tmp.join("dockerd.log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = dockerd_command(
            &tmp.join("docker"),
            &tmp.join("exec"),
            &tmp.join("docker.pid"),
            &socket,
        )
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("start dockerd: {e}"))?;
        // Debian's client matches its daemon; another on PATH may not.
        let cli = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut daemon = Daemon {
            child: Some(child),
            socket,
            log,
            cli,
        };
        let started = Instant::now();
        loop {
            if daemon.request("/_ping").is_ok_and(|body| body == "OK") {
                println!(
                    "dockerd up in {:.1} s (socket {})",
                    started.elapsed().as_secs_f64(),
                    daemon.socket.display()
                );
                return Ok(daemon);
            }
            let exited = daemon
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!("dockerd exited ({status}):\n{}", daemon.log_tail()));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "dockerd did not answer in {START_TIMEOUT:?}:\n{}",
                    daemon.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// An API GET over the socket (HTTP/1.0: the body ends with the connection).
    fn request(&self, path: &str) -> Result<String, String> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("GET {path}: {e}"))?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: no HTTP response"))?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return Err(format!(
                "GET {path}: {}",
                head.lines().next().unwrap_or_default()
            ));
        }
        Ok(body.to_owned())
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        let body = self.request(path)?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}"))
    }

    /// The docker client, set to talk to this daemon.
    fn command(&self) -> Command {
        let mut command = Command::new(self.cli);
        command
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()));
        command
    }

    /// Runs the docker client against this daemon; its stdout.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|e| format!("run docker: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "docker {}: {}\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// SIGTERM, then SIGKILL if it has not stopped in time.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = child.try_wait() {
                println!("dockerd stopped ({status})");
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        println!("dockerd killed after {STOP_TIMEOUT:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}
