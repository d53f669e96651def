//! What `imgstore` prints, compared with what a real Docker 20.10 printed
//! for the same images: the outputs in `tests/fixtures/docker/` (their
//! README says how they were made). Both load
//! `examples/images/docker/docker-save-multi.docker.tar`.
//!
//! Compared byte for byte, except:
//! - `CreatedSince` / CREATED (`3 years ago`) is relative to now: the
//!   number of years is masked on both sides;
//! - `GraphDriver.Name` in `inspect` is Docker's storage driver (`vfs`
//!   there), imgstore's backend here (`sqlite`);
//! - `image prune` deletes images in Go's map order, and which image's
//!   group a shared layer's `deleted:` line falls in depends on it: the
//!   lines are compared as a set, and each group must start with its
//!   image's `untagged:` and `deleted: <image ID>` lines;
//! - imgstore's own keys after Docker's in the JSON rows (`Pinned`,
//!   `ContentSize`, `Id`, `References`, ...) are cut before comparing, and
//!   checked on their own.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const REPO: &str = "registry.demo.test/demo";

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A captured Docker output; a missing fixture fails the test.
fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/docker")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn corpus_file(relative: &str) -> PathBuf {
    let path = repository().join("examples/images").join(relative);
    assert!(
        path.exists(),
        "{} is part of the repository",
        path.display()
    );
    path
}

fn imgstore(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imgstore"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("IMGSTORE_ROOT")
        .env_remove("IMGSTORE_BACKEND")
        .env_remove("IMGSTORE_NAMESPACE")
        .output()
        .expect("run imgstore")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let output = imgstore(root, args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "imgstore {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A store holding what Docker held: `docker load` of the multi-image
/// archive.
fn loaded() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let archive = corpus_file("docker/docker-save-multi.docker.tar");
    ok(
        root.path(),
        &["load", "-i", archive.to_str().expect("UTF-8")],
    );
    root
}

/// `N years ago` (or any other count of a unit) with the count masked:
/// the one part of the output that depends on today's date.
fn mask_since(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" ago") {
        let (before, after) = rest.split_at(at);
        // `<digits> <unit>` before ` ago`.
        let unit_start = before.rfind(' ').map_or(0, |i| i + 1);
        let count_end = unit_start.saturating_sub(1);
        let count_start = before[..count_end]
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |i| i + 1);
        if count_start < count_end {
            out.push_str(&before[..count_start]);
            out.push('N');
            out.push_str(&before[count_end..]);
        } else {
            out.push_str(before);
        }
        out.push_str(" ago");
        rest = &after[" ago".len()..];
    }
    out.push_str(rest);
    out
}

/// A JSON row with imgstore's own keys (from `first_own_key` on) cut off.
fn docker_part<'a>(line: &'a str, first_own_key: &str) -> String {
    let cut = line
        .find(&format!(",\"{first_own_key}\":"))
        .unwrap_or_else(|| panic!("no {first_own_key} in {line}"));
    let docker: &'a str = &line[..cut];
    format!("{docker}}}")
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(mask_since).collect();
    lines.sort();
    lines
}

#[test]
fn images_json_rows_are_dockers_then_imgstores_facts() {
    let root = loaded();
    let ours = ok(root.path(), &["images", "--format", "json"]);
    let docker_rows: Vec<String> = ours
        .lines()
        .map(|line| mask_since(&docker_part(line, "Pinned")))
        .collect();
    let want: Vec<String> = fixture("images.json").lines().map(mask_since).collect();
    assert_eq!(docker_rows, want);
    // `-a` lists the same here: no intermediate images.
    let all = ok(root.path(), &["images", "-a", "--format", "json"]);
    let all: Vec<String> = all
        .lines()
        .map(|line| mask_since(&docker_part(line, "Pinned")))
        .collect();
    let want: Vec<String> = fixture("images-a.json").lines().map(mask_since).collect();
    assert_eq!(all, want);
    // imgstore's own keys, after Docker's.
    let child: Value = serde_json::from_str(ours.lines().next().expect("a row")).expect("JSON");
    assert_eq!(child["Pinned"], false);
    assert_eq!(
        child["Id"],
        "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4"
    );
    assert_eq!(child["References"], json!([format!("{REPO}/child:v1")]));
    assert_eq!(child["SizeBytes"], 90);
    assert!(child["ContentSize"].as_u64().is_some_and(|size| size > 90));
    assert_eq!(child["Parent"], Value::Null);
}

#[test]
fn images_tables_are_dockers() {
    let root = loaded();
    assert_eq!(
        mask_since(&ok(root.path(), &["images"])),
        mask_since(&fixture("images.txt"))
    );
    assert_eq!(
        mask_since(&ok(root.path(), &["images", "--digests"])),
        mask_since(&fixture("images-digests.txt"))
    );
}

#[test]
fn history_json_and_table_are_dockers() {
    let root = loaded();
    for name in ["base", "child", "sibling"] {
        let image = format!("{REPO}/{name}:v1");
        let ours = ok(root.path(), &["history", "--format", "json", &image]);
        let docker_rows: Vec<String> = ours
            .lines()
            .map(|line| mask_since(&docker_part(line, "Id")))
            .collect();
        let want: Vec<String> = fixture(&format!("history-{name}.json"))
            .lines()
            .map(mask_since)
            .collect();
        assert_eq!(docker_rows, want, "{name}");
        assert_eq!(
            mask_since(&ok(root.path(), &["history", &image])),
            mask_since(&fixture(&format!("history-{name}.txt"))),
            "{name}"
        );
    }
    // imgstore's own keys: the full ID on the newest step only, the raw
    // time and size, whether the step made a layer.
    let ours = ok(
        root.path(),
        &["history", "--format", "json", &format!("{REPO}/child:v1")],
    );
    let steps: Vec<Value> = ours
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(
        steps[0]["Id"],
        "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4"
    );
    assert_eq!(steps[1]["Id"], Value::Null);
    assert_eq!(steps[1]["Created"], "2023-11-21T22:16:20Z");
    assert_eq!(steps[1]["SizeBytes"], 6);
    assert_eq!(steps[1]["EmptyLayer"], false);
    // `--no-trunc`: the whole command and the full ID, as Docker.
    let full = ok(
        root.path(),
        &[
            "history",
            "--no-trunc",
            "--format",
            "json",
            &format!("{REPO}/child:v1"),
        ],
    );
    let full: Vec<Value> = full
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    assert_eq!(full[0]["ID"], steps[0]["Id"]);
    assert_eq!(
        full[1]["CreatedBy"],
        "/bin/sh -c rm -rf /etc/motd /usr/share/doc && echo 1.0.0 > VERSION"
    );
}

#[test]
fn inspect_prints_every_field_docker_prints() {
    let root = loaded();
    for name in ["base", "child", "sibling"] {
        let ours = ok(root.path(), &["inspect", &format!("{REPO}/{name}:v1")]);
        // The one known difference: the storage driver's name.
        let want = fixture(&format!("inspect-{name}.json"))
            .replace("\"Name\": \"vfs\"", "\"Name\": \"sqlite\"");
        assert_eq!(ours, want, "{name}");
    }
}

#[test]
fn a_docker_save_image_has_no_repo_digests_even_after_tag_and_an_oci_one_has() {
    let root = loaded();
    ok(
        root.path(),
        &["tag", &format!("{REPO}/base:v1"), "again:v2"],
    );
    let view: Value =
        serde_json::from_str(&ok(root.path(), &["inspect", "again:v2"])).expect("JSON");
    assert_eq!(view[0]["RepoDigests"], json!([]));
    assert_eq!(
        view[0]["RepoTags"],
        json!(["again:v2", format!("{REPO}/base:v1")])
    );
    let listed = ok(
        root.path(),
        &["images", "--digests", "--filter", "reference=again"],
    );
    assert!(
        listed.lines().skip(1).all(|row| row.contains("<none>")),
        "{listed}"
    );

    // From an OCI layout the manifest came with the image: its digest shows.
    let other = tempfile::tempdir().expect("tempdir");
    let layout = corpus_file("oci/main");
    ok(
        other.path(),
        &["load", "-i", layout.to_str().expect("UTF-8")],
    );
    let view: Value =
        serde_json::from_str(&ok(other.path(), &["inspect", &format!("{REPO}/base:v1")]))
            .expect("JSON");
    let digests = view[0]["RepoDigests"].as_array().expect("RepoDigests");
    assert_eq!(digests.len(), 1, "{view}");
    assert!(
        digests[0]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("{REPO}/base@sha256:"))),
        "{view}"
    );
    let row: Value = serde_json::from_str(
        ok(
            other.path(),
            &[
                "images",
                "--digests",
                "--format",
                "json",
                "--filter",
                &format!("reference={REPO}/base"),
            ],
        )
        .lines()
        .next()
        .expect("a row"),
    )
    .expect("JSON");
    assert_eq!(
        Some(row["Digest"].as_str().unwrap_or_default()),
        digests[0].as_str().and_then(|d| d.split('@').nth(1))
    );
}

#[test]
fn df_tables_and_json_are_dockers() {
    let root = loaded();
    assert_eq!(ok(root.path(), &["df"]), fixture("system-df.txt"));
    assert_eq!(
        mask_since(&ok(root.path(), &["df", "-v"])),
        mask_since(&fixture("system-df-v.txt"))
    );
    assert_eq!(
        ok(root.path(), &["df", "--format", "json"]),
        fixture("system-df.json")
    );
    // `-v --format json`: Docker's one object; imgstore's keys cut off.
    let ours: Value =
        serde_json::from_str(&ok(root.path(), &["df", "-v", "--format", "json"])).expect("JSON");
    let want: Value = serde_json::from_str(&fixture("system-df-v.json")).expect("JSON");
    let own_image_keys = [
        "References",
        "SizeBytes",
        "SharedSizeBytes",
        "UniqueSizeBytes",
    ];
    let mut docker_only = ours.clone();
    for image in docker_only["Images"].as_array_mut().expect("Images") {
        let image = image.as_object_mut().expect("object");
        for key in own_image_keys {
            assert!(image.remove(key).is_some(), "{key}");
        }
        image.insert("CreatedSince".into(), json!("masked"));
    }
    let object = docker_only.as_object_mut().expect("object");
    assert_eq!(object.remove("LayersSize"), Some(json!(125)));
    assert!(object.remove("ContentSize").is_some());
    let mut want = want;
    for image in want["Images"].as_array_mut().expect("Images") {
        image["CreatedSince"] = json!("masked");
    }
    assert_eq!(docker_only, want);
    // And the same order of keys, newest image first.
    let text = ok(root.path(), &["df", "-v", "--format", "json"]);
    let ids: Vec<&str> = text
        .match_indices("\"ID\":\"sha256:")
        .map(|(i, _)| &text[i + 13..i + 19])
        .collect();
    assert_eq!(ids, ["d96e5d", "96b315", "ccb28a"]);
}

#[test]
fn rmi_prints_the_layers_it_frees_as_docker() {
    let root = loaded();
    let output = imgstore(root.path(), &["rmi", &format!("{REPO}/child:v1")]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        fixture("rmi-child.txt")
    );
    // stdout stays Docker's; what is left for gc is said on stderr.
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Note: 2 blobs nothing uses any more (manifests, configs) stay until `imgstore gc`\n"
    );

    // An unknown reference, worded as Docker words it; exit 1.
    let output = imgstore(root.path(), &["rmi", "0123456789ab"]);
    let docker = fixture("rmi-unknown.txt");
    let (message, code) = docker.split_once("rc=").expect("rc= line");
    assert_eq!(String::from_utf8_lossy(&output.stderr), message);
    assert_eq!(
        output.status.code().map(|c| c.to_string()),
        Some(code.trim().to_owned())
    );
    let output = imgstore(root.path(), &["rmi", "0123456789ab:latest"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: No such image: 0123456789ab:latest\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

/// The first two lines of each image's group in a prune report (its
/// `untagged:` line and `deleted: <image ID>`), sorted.
fn prune_group_heads(report: &str) -> Vec<[String; 2]> {
    let lines: Vec<&str> = report.lines().collect();
    let mut heads: Vec<[String; 2]> = lines
        .windows(2)
        .filter(|pair| pair[0].starts_with("untagged: "))
        .map(|pair| [pair[0].to_owned(), pair[1].to_owned()])
        .collect();
    heads.sort();
    heads
}

#[test]
fn prune_prints_dockers_groups_and_reclaimed_space() {
    let root = loaded();
    ok(root.path(), &["rmi", &format!("{REPO}/child:v1")]);
    let output = imgstore(root.path(), &["prune", "-a", "-f"]);
    assert_eq!(output.status.code(), Some(0));
    let ours = String::from_utf8(output.stdout).expect("UTF-8");
    let docker = fixture("prune-a.txt");
    assert_eq!(sorted_lines(&ours), sorted_lines(&docker));
    assert_eq!(prune_group_heads(&ours), prune_group_heads(&docker));
    assert!(ours.starts_with("Deleted Images:\n"), "{ours}");
    // Docker's measure: the files in the layers freed, 117B (the layer
    // tars stored are some kB).
    assert!(
        ours.ends_with("\n\nTotal reclaimed space: 117B\n"),
        "{ours}"
    );
    assert!(docker.ends_with("\n\nTotal reclaimed space: 117B\n"));
    assert_eq!(ours.lines().count(), docker.lines().count());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Note: 4 blobs nothing uses any more (manifests, configs) stay until `imgstore gc`\n"
    );
    let gc = ok(root.path(), &["gc"]);
    // Those of the child removed first, and of the two pruned.
    assert!(gc.contains(", 6 blob(s),"), "{gc}");
}

#[test]
fn load_says_when_a_name_moves_as_docker() {
    let root = loaded();
    ok(
        root.path(),
        &[
            "tag",
            &format!("{REPO}/child:v1"),
            &format!("{REPO}/base:v1"),
        ],
    );
    let archive = corpus_file("docker/base.docker.tar");
    assert_eq!(
        ok(
            root.path(),
            &["load", "-i", archive.to_str().expect("UTF-8")]
        ),
        fixture("load-rename.txt")
    );
    // Loading it again moves nothing: no notice.
    assert_eq!(
        ok(
            root.path(),
            &["load", "-i", archive.to_str().expect("UTF-8")]
        ),
        format!("Loaded image: {REPO}/base:v1\n")
    );
}

#[test]
fn a_dangling_image_and_a_two_name_image_print_as_dockers() {
    let root = loaded();
    // base's name moves to child: base's image is dangling, child's has two.
    ok(
        root.path(),
        &[
            "tag",
            &format!("{REPO}/child:v1"),
            &format!("{REPO}/base:v1"),
        ],
    );
    let rows: Vec<String> = ok(root.path(), &["images", "--format", "json"])
        .lines()
        .map(|line| mask_since(&docker_part(line, "Pinned")))
        .collect();
    let want: Vec<String> = fixture("images-dangling.json")
        .lines()
        .map(mask_since)
        .collect();
    assert_eq!(rows, want);
    // `system df -v` shows the first tag only, `<none>` for the dangling one.
    assert_eq!(
        mask_since(&ok(root.path(), &["df", "-v"])),
        mask_since(&fixture("system-df-v-dangling.txt"))
    );
}

#[test]
fn inspect_of_an_unknown_image_prints_an_empty_array_and_dockers_error() {
    let root = loaded();
    let output = imgstore(root.path(), &["inspect", "foo"]);
    let docker = fixture("inspect-unknown.txt");
    let (text, code) = docker.split_once("rc=").expect("rc= line");
    let (stdout, stderr) = text.split_once("Error").expect("an error line");
    assert_eq!(String::from_utf8_lossy(&output.stdout), stdout);
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("Error{stderr}")
    );
    assert_eq!(
        output.status.code().map(|c| c.to_string()),
        Some(code.trim().to_owned())
    );
}
