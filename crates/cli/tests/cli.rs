//! The `imgstore` binary run as a user runs it, against a temporary store
//! loaded from the image corpus kept in `examples/images` (a missing
//! fixture fails the test).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{corpus, imgstore, ok, years_ago};

const REPO: &str = "registry.demo.test/demo";
/// Newest first, as `images` lists them (by the configs' `created`).
const MAIN_AND_QUIRK: [&str; 5] = ["quirk", "withenv", "child", "sibling", "base"];

fn expected(corpus: &Path, file: &str) -> Value {
    let path = corpus.join("expected").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn image(corpus: &Path, name: &str) -> Value {
    expected(corpus, &format!("images/{name}.json"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// A temporary store holding `oci/main` and `oci/quirk-unterminated`.
fn loaded(corpus: &Path) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let main = corpus.join("oci/main");
    let quirk = corpus.join("oci/quirk-unterminated");
    ok(
        root.path(),
        &[
            "load",
            "-i",
            main.to_str().expect("UTF-8 path"),
            "--input",
            quirk.to_str().expect("UTF-8 path"),
        ],
    );
    root
}

#[test]
fn load_prints_docker_load_lines() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let main = corpus.join("oci/main");
    let archive = corpus.join("docker/child.docker.tar");
    let out = ok(
        root.path(),
        &[
            "load",
            "-i",
            main.to_str().expect("UTF-8"),
            "-i",
            archive.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(
        out,
        format!(
            "Loaded image: {REPO}/base:v1\nLoaded image: {REPO}/sibling:v1\n\
             Loaded image: {REPO}/child:v1\nLoaded image: {REPO}/withenv:v1\n\
             Loaded image: {REPO}/child:v1\n"
        )
    );
}

#[test]
fn load_of_a_broken_input_fails_with_exit_1_and_keeps_going() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let bad = corpus.join("bad/missing-oci-layout");
    let quirk = corpus.join("oci/quirk-unterminated");
    let output = imgstore(
        root.path(),
        &[
            "load",
            "-i",
            bad.to_str().expect("UTF-8"),
            "-i",
            quirk.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), format!("Loaded image: {REPO}/quirk:v1\n"));
    let err = stderr(&output);
    assert!(
        err.starts_with("Error: ") && err.contains("not an OCI image layout"),
        "{err}"
    );
}

#[test]
fn images_json_has_one_object_per_image_with_the_expected_values() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let lines = json_lines(&ok(root.path(), &["images", "--format", "json"]));
    assert_eq!(lines.len(), 5);
    for (line, name) in lines.iter().zip(MAIN_AND_QUIRK) {
        let want = image(&corpus, name);
        assert_eq!(line["Id"], want["image_id"], "{name}");
        assert_eq!(line["References"], want["ref_names"], "{name}");
        assert_eq!(line["ContentSize"], want["content_size"], "{name}");
        assert_eq!(
            line["SizeBytes"],
            docker_view(&corpus, name)["size"],
            "{name}"
        );
        let created = want["created"].as_str().unwrap_or_default();
        let created_at = line["CreatedAt"].as_str().unwrap_or_default();
        assert_eq!(created_at.get(..10), created.get(..10), "{name}");
        assert_eq!(line["Repository"], format!("{REPO}/{name}"), "{name}");
        assert_eq!(line["Tag"], "v1", "{name}");
        assert_eq!(line["Pinned"], Value::Bool(false), "{name}");
        assert_eq!(line["Parent"], Value::Null, "{name}");
    }
}

#[test]
fn images_quiet_prints_short_ids_newest_first() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let want: String = MAIN_AND_QUIRK
        .iter()
        .map(|name| {
            format!(
                "{}\n",
                image(&corpus, name)["image_id_short"]
                    .as_str()
                    .unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(ok(root.path(), &["images", "-q"]), want);
}

#[test]
fn images_table_is_dockers() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let created = years_ago("2023-11-21T22:17:20Z");
    // Docker's SIZE (expected/docker-view.json): the files in the layers.
    let sizes = ["56B", "95B", "90B", "111B", "82B"];
    let mut want =
        "REPOSITORY                        TAG       IMAGE ID       CREATED       SIZE\n"
            .to_owned();
    for (name, size) in MAIN_AND_QUIRK.iter().zip(sizes) {
        let short = image(&corpus, name)["image_id_short"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        want.push_str(&format!(
            "{:<34}v1        {short}   {created}   {size}\n",
            format!("{REPO}/{name}")
        ));
    }
    assert_eq!(ok(root.path(), &["images"]), want);
}

#[test]
fn images_filters_follow_docker() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let ids = |filters: &[&str]| -> Vec<String> {
        let mut args = vec!["images", "--format", "json"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        json_lines(&ok(root.path(), &args))
            .iter()
            .map(|line| line["References"][0].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    let names = |short: &[&str]| -> Vec<String> {
        short.iter().map(|n| format!("{REPO}/{n}:v1")).collect()
    };
    assert_eq!(ids(&["reference=*/*/b*"]), names(&["base"]));
    assert_eq!(
        ids(&["reference=*/*/base", "reference=*/*/quirk:v1"]),
        names(&["quirk", "base"])
    );
    assert_eq!(ids(&["label=stage=final"]), names(&["withenv"]));
    assert_eq!(
        ids(&["label=org.opencontainers.image.title=base"]),
        names(&["withenv", "base"])
    );
    assert_eq!(
        ids(&[
            "label=org.opencontainers.image.title",
            "label=org.opencontainers.image.version"
        ]),
        names(&["withenv", "child", "base"])
    );
    let before = format!("before={REPO}/child:v1");
    let since = format!("since={REPO}/base:v1");
    assert_eq!(ids(&[&before, &since]), names(&["sibling"]));
    assert_eq!(ids(&["dangling=true"]), Vec::<String>::new());
    assert_eq!(ids(&["dangling=false"]).len(), 5);

    let output = imgstore(root.path(), &["images", "--filter", "colour=blue"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "Error: filter \"colour=blue\": unknown filter (dangling, reference, before, since, until, label)\n"
    );
    let output = imgstore(root.path(), &["images", "--filter", "reference=[a-"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("syntax error in pattern"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn images_digests_column_shows_the_manifest_digest() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let out = ok(
        root.path(),
        &["images", "--digests", "--filter", "reference=*/*/base"],
    );
    let base = image(&corpus, "base");
    let row = out.lines().nth(1).unwrap_or_default();
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &columns[..4],
        [
            format!("{REPO}/base").as_str(),
            "v1",
            base["manifest_digest"].as_str().unwrap_or("?"),
            base["image_id_short"].as_str().unwrap_or("?"),
        ]
    );
    assert!(out.starts_with("REPOSITORY"), "{out}");
    assert!(out.lines().next().unwrap_or_default().contains("DIGEST"));

    // No listing is kept beside the records.
    ok(root.path(), &["images", "-a", "--digests"]);
    assert!(!root.path().join("catalog").exists());
}

#[test]
fn inspect_prints_a_docker_inspect_array() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let base = image(&corpus, "base");
    let short = base["image_id_short"].as_str().unwrap_or("?");
    let out = ok(
        root.path(),
        &["inspect", &format!("{REPO}/base:v1"), &short[..6]],
    );
    let views: Value = serde_json::from_str(&out).expect("inspect prints JSON");
    let views = views.as_array().expect("an array");
    assert_eq!(views.len(), 2);
    assert_eq!(
        views[0], views[1],
        "by name and by short ID: the same image"
    );
    let view = &views[0];
    assert_eq!(view["Id"], base["image_id"]);
    assert_eq!(view["RepoTags"], base["repo_tags"]);
    assert_eq!(
        view["RepoDigests"],
        serde_json::json!([format!(
            "{REPO}/base@{}",
            base["manifest_digest"].as_str().unwrap_or("?")
        )])
    );
    assert_eq!(view["Parent"], "");
    assert_eq!(view["Size"], docker_view(&corpus, "base")["size"]);
    assert_eq!(view["Created"], base["created"]);
    assert_eq!(view["Author"], base["author"]);
    assert_eq!(view["Architecture"], base["architecture"]);
    assert_eq!(view["Os"], base["os"]);
    assert_eq!(view["Config"]["Env"], base["env"]);
    assert_eq!(view["Config"]["Labels"], base["labels"]);
    assert_eq!(view["RootFS"]["Type"], "layers");
    assert_eq!(view["RootFS"]["Layers"], base["diff_ids"]);
    assert_eq!(view["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    assert!(
        out.contains("\n    {\n        \"Id\""),
        "four-space indent: {out}"
    );
}

/// Docker's `LastTagTime`: the zero time for a loaded image, the time of
/// the last `tag` after one (moby's TagImage records it).
#[test]
fn tag_records_the_last_tag_time_inspect_shows() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let name = format!("{REPO}/base:v1");
    let last_tag_time = |root: &Path| -> String {
        let views: Value =
            serde_json::from_str(&ok(root, &["inspect", &name])).expect("inspect prints JSON");
        views[0]["Metadata"]["LastTagTime"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(last_tag_time(root.path()), "0001-01-01T00:00:00Z");
    let now = |format: &str| {
        let out = Command::new("date")
            .args(["-u", format])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let before = now("+%Y-%m-%dT%H:%M:%S");
    ok(root.path(), &["tag", &name, "base:tagged"]);
    let after = now("+%Y-%m-%dT%H:%M:%S");
    let tagged = last_tag_time(root.path());
    // RFC 3339 in UTC with nanoseconds: compares as text to the second.
    assert!(tagged.ends_with('Z'), "{tagged}");
    assert!(
        tagged[..19] >= *before && tagged[..19] <= *after,
        "{before} <= {tagged} <= {after}"
    );
}

#[test]
fn inspect_of_an_unknown_image_fails_after_printing_the_others() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let output = imgstore(
        root.path(),
        &["inspect", "nothing", &format!("{REPO}/quirk:v1")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "Error: No such image: nothing\n");
    let views: Value = serde_json::from_str(&stdout(&output)).expect("JSON");
    assert_eq!(views[0]["Id"], image(&corpus, "quirk")["image_id"]);
    assert_eq!(views.as_array().map(Vec::len), Some(1));
}

/// Real Docker's figures for an image (expected/docker-view.json).
fn docker_view(corpus: &Path, name: &str) -> Value {
    let view = expected(corpus, "docker-view.json");
    let tag = format!("{REPO}/{name}:v1");
    view["images"]
        .as_array()
        .and_then(|images| {
            images
                .iter()
                .find(|i| i["repo_tags"][0].as_str() == Some(tag.as_str()))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{name} in docker-view.json"))
}

#[test]
fn history_is_newest_first_with_dockers_layer_sizes() {
    let corpus = corpus();
    let root = loaded(&corpus);
    for name in MAIN_AND_QUIRK {
        let want = image(&corpus, name);
        let lines = json_lines(&ok(
            root.path(),
            &[
                "history",
                "--no-trunc",
                "--format",
                "json",
                &format!("{REPO}/{name}:v1"),
            ],
        ));
        let mut history = want["history"].as_array().expect("history").clone();
        history.reverse();
        assert_eq!(lines.len(), history.len(), "{name}");
        for (i, (line, step)) in lines.iter().zip(&history).enumerate() {
            assert_eq!(line["CreatedBy"], step["created_by"], "{name} entry {i}");
            assert_eq!(line["Created"], step["created"], "{name} entry {i}");
            assert_eq!(line["EmptyLayer"], step["empty_layer"], "{name} entry {i}");
            if step["empty_layer"] == true {
                assert_eq!(line["SizeBytes"], 0, "{name} entry {i}");
            }
            let id = if i == 0 {
                want["image_id"].clone()
            } else {
                Value::Null
            };
            assert_eq!(line["Id"], id, "{name} entry {i}");
        }
        // The layer sizes add up to real Docker's image SIZE.
        let total: u64 = lines
            .iter()
            .map(|l| l["SizeBytes"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(
            Some(total),
            docker_view(&corpus, name)["size"].as_u64(),
            "{name}"
        );
    }

    // SIZE padded before the empty COMMENT, as Docker's tabwriter does.
    let table = ok(root.path(), &["history", &format!("{REPO}/base:v1")]);
    let created = years_ago("2023-11-21T22:16:20Z");
    assert_eq!(
        table,
        format!(
            "IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n\
             ccb28a06ca54   {created}   /bin/sh -c rm -rf /etc/motd /usr/share/doc &…   6B        \n\
             <missing>      {created}   /bin/sh -c #(nop) COPY app /                    33B       \n\
             <missing>      {created}   /bin/sh -c #(nop) ADD rootfs.tar /              43B       \n"
        )
    );
}

#[test]
fn layers_json_counts_the_images_using_each_layer() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let main = corpus.join("oci/main");
    ok(root.path(), &["load", "-i", main.to_str().expect("UTF-8")]);
    let sharing = expected(&corpus, "sharing.json");
    let lines = json_lines(&ok(root.path(), &["layers", "--format", "json"]));
    let chains = sharing["chain_ids"].as_array().expect("chain_ids");
    assert_eq!(lines.len(), chains.len());
    // Both sorted by chain ID.
    for (line, chain) in lines.iter().zip(chains) {
        assert_eq!(line["chain_id"], chain["chain_id"]);
        assert_eq!(line["used_by"], chain["ref_count"], "{}", chain["chain_id"]);
        assert_eq!(line["parent"].is_null(), chain["level"] == 0);
    }
    // Each layer's diff ID, parent and size, as base's expected file says.
    let base = image(&corpus, "base");
    for (i, layer) in base["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .enumerate()
    {
        let line = lines
            .iter()
            .find(|l| l["chain_id"] == layer["chain_id"])
            .expect("base's layers are listed");
        assert_eq!(line["diff_id"], layer["diff_id"]);
        assert_eq!(line["size"], layer["uncompressed_size"]);
        assert!(
            line["files_size"].as_u64().is_some_and(|f| f < 100),
            "{line}"
        );
        let parent = if i == 0 {
            Value::Null
        } else {
            base["chain_ids"][i - 1].clone()
        };
        assert_eq!(line["parent"], parent);
    }
}

#[test]
fn tag_and_rmi_print_and_exit_as_docker() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let base = image(&corpus, "base");
    let short = base["image_id_short"].as_str().unwrap_or("?");
    let id = base["image_id"].as_str().unwrap_or("?");

    assert_eq!(
        ok(
            root.path(),
            &["tag", &format!("{REPO}/base:v1"), "base:extra"]
        ),
        ""
    );
    let refs = json_lines(&ok(
        root.path(),
        &[
            "images",
            "--format",
            "json",
            "-f",
            "reference=base",
            "-f",
            "reference=*/*/base",
        ],
    ));
    assert_eq!(
        refs[0]["References"],
        serde_json::json!(["docker.io/library/base:extra", format!("{REPO}/base:v1")])
    );

    // Two names: removing by short ID is a conflict, exit 1, nothing removed.
    let output = imgstore(root.path(), &["rmi", short]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        format!(
            "Error: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories\n"
        )
    );

    // By name: only the name goes.
    assert_eq!(
        ok(root.path(), &["rmi", "base:extra"]),
        "Untagged: base:extra\n"
    );

    // An unknown name fails, the others are still removed; exit 1.
    let output = imgstore(root.path(), &["rmi", "nothing", &format!("{REPO}/base:v1")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "Error: No such image: nothing\n\
         Note: 2 blobs nothing uses any more (manifests, configs) stay until `imgstore gc`\n"
    );
    assert_eq!(
        stdout(&output),
        format!("Untagged: {REPO}/base:v1\nDeleted: {id}\n")
    );
    let left = ok(root.path(), &["images", "-q"]);
    assert!(!left.contains(short), "{left}");
    assert_eq!(left.lines().count(), 4);
}

#[test]
fn rmi_force_removes_every_name_of_the_image() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let quirk = image(&corpus, "quirk");
    let short = quirk["image_id_short"].as_str().unwrap_or("?");
    ok(root.path(), &["tag", short, "localhost/q:1"]);
    let out = ok(root.path(), &["rmi", "-f", short]);
    assert_eq!(
        out,
        format!(
            "Untagged: localhost/q:1\nUntagged: {REPO}/quirk:v1\nDeleted: {}\n\
             Deleted: sha256:d649c80e9e107b658523568b499638c19e5cef626d9567791f3a92c1b4105449\n",
            quirk["image_id"].as_str().unwrap_or("?")
        )
    );
    // Its layer is gone with it; its manifest and config are left to gc.
    let layers = json_lines(&ok(root.path(), &["layers", "--format", "json"]));
    assert_eq!(layers.len(), 6);
    // Its manifest and config blobs: the content size less the layer's.
    let freed =
        quirk["manifest_size"].as_u64().unwrap_or(0) + quirk["config_size"].as_u64().unwrap_or(0);
    assert_eq!(
        ok(root.path(), &["gc"]),
        format!(
            "Removed 0 layer(s), 2 blob(s), 0 leftover file(s)\nTotal reclaimed space: {freed}B\n"
        )
    );
    assert_eq!(
        ok(root.path(), &["gc"]),
        "Removed 0 layer(s), 0 blob(s), 0 leftover file(s)\nTotal reclaimed space: 0B\n"
    );
}

#[test]
fn the_fs_backend_and_a_namespace_are_chosen_by_flags() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let quirk = corpus.join("oci/quirk-unterminated");
    let path = quirk.to_str().expect("UTF-8");
    ok(
        root.path(),
        &["--backend", "fs", "--namespace", "team", "load", "-i", path],
    );
    assert!(root.path().join("imagedb").is_dir());
    let id = image(&corpus, "quirk")["image_id"].clone();
    let team = json_lines(&ok(
        root.path(),
        &[
            "images",
            "--backend",
            "fs",
            "--namespace",
            "team",
            "--format",
            "json",
        ],
    ));
    assert_eq!(team[0]["Id"], id);
    assert_eq!(team[0]["References"][0], format!("{REPO}/quirk:v1"));
    // The names belong to the namespace: default sees neither them nor the
    // image they reach (it is not dangling, team names it).
    let default = ok(
        root.path(),
        &["--backend", "fs", "images", "--format", "json"],
    );
    assert_eq!(default, "");
}

#[test]
fn the_default_root_comes_from_the_environment() {
    let corpus = corpus();
    let data = tempfile::tempdir().expect("temp dir");
    let quirk = corpus.join("oci/quirk-unterminated");
    let run = |args: &[&str], env: (&str, &Path)| {
        Command::new(env!("CARGO_BIN_EXE_imgstore"))
            .args(args)
            .env_remove("IMGSTORE_ROOT")
            .env(env.0, env.1)
            .output()
            .expect("run imgstore")
    };
    let output = run(
        &["load", "-i", quirk.to_str().expect("UTF-8")],
        ("XDG_DATA_HOME", data.path()),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(data.path().join("imgstore/content.db").is_file());
    let output = run(
        &["images", "-q"],
        ("IMGSTORE_ROOT", &data.path().join("imgstore")),
    );
    assert_eq!(stdout(&output), "00d2746c8cfa\n");
}

#[test]
fn usage_errors_exit_2() {
    let root = tempfile::tempdir().expect("temp dir");
    for args in [
        &["frobnicate"][..],
        &["rmi"],
        &["save"],
        &["images", "--format"],
        &["inspect", "-f"],
        &["--backend", "tape", "images"],
    ] {
        let output = imgstore(root.path(), args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(stderr(&output).starts_with("error: "), "{args:?}");
    }
}

#[test]
fn pin_keeps_an_image_from_prune_and_rmi() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let quirk = image(&corpus, "quirk");
    let short = quirk["image_id_short"].as_str().unwrap_or("?");
    let name = format!("{REPO}/quirk:v1");
    assert_eq!(
        ok(root.path(), &["pin", short]),
        format!("Pinned: {name}\n")
    );
    assert_eq!(ok(root.path(), &["pin", &name]), "", "already pinned");
    let listed = json_lines(&ok(root.path(), &["images", "--format", "json"]));
    let pinned: Vec<bool> = listed.iter().map(|l| l["Pinned"] == true).collect();
    assert_eq!(pinned, [true, false, false, false, false]);

    let output = imgstore(root.path(), &["rmi", &name]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("Error: conflict: unable to delete {short} (must be forced) - image is pinned\n")
    );

    // prune -a asks first; no answer is no.
    let output = imgstore(root.path(), &["prune", "-a"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("WARNING! This will remove all images"));
    assert_eq!(ok(root.path(), &["images", "-q"]).lines().count(), 5);

    let out = ok(root.path(), &["prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Images:\nuntagged: "), "{out}");
    // Four images and the six layers they freed (Docker's lines); the
    // space as Docker counts it, the files in those layers.
    assert_eq!(out.matches("\ndeleted: sha256:").count(), 10, "{out}");
    assert!(out.ends_with("\n\nTotal reclaimed space: 138B\n"), "{out}");
    assert_eq!(ok(root.path(), &["images", "-q"]), format!("{short}\n"));

    assert_eq!(
        ok(root.path(), &["unpin", &name]),
        format!("Unpinned: {name}\n")
    );
    assert_eq!(
        ok(root.path(), &["prune", "--force"]),
        "Total reclaimed space: 0B\n",
        "a named image is not dangling"
    );
}

#[test]
fn fsck_reports_a_clean_store_and_a_corrupt_one() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let quirk = corpus.join("oci/quirk-unterminated");
    let fs = ["--backend", "fs"];
    ok(
        root.path(),
        &[&fs[..], &["load", "-i", quirk.to_str().expect("UTF-8")]].concat(),
    );
    let out = ok(root.path(), &[&fs[..], &["fsck"]].concat());
    assert!(
        out.ends_with(": clean\n") && out.starts_with("checked "),
        "{out}"
    );

    // Damage the layer blob (fs backend: <root>/content/content/sha256/<hex>).
    let layer = image(&corpus, "quirk")["layers"][0]["digest"]
        .as_str()
        .unwrap_or("?")
        .trim_start_matches("sha256:")
        .to_owned();
    let blob = root.path().join("content/content/sha256").join(&layer);
    let mut bytes = std::fs::read(&blob).expect("the layer blob is a file");
    bytes[0] ^= 0xff;
    std::fs::write(&blob, bytes).expect("damage the blob");

    let output = imgstore(root.path(), &[&fs[..], &["fsck"]].concat());
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(out.contains(&layer), "names the blob: {out}");
    assert!(out.contains("problem: "), "{out}");
}

#[test]
fn df_json_equals_real_dockers_figures() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let object = json_lines(&ok(root.path(), &["df", "-v", "--format", "json"]));
    let mut lines = object[0]["Images"].as_array().expect("Images").clone();
    lines.sort_by_key(|line| line["ID"].as_str().unwrap_or_default().to_owned());
    let view = expected(&corpus, "docker-view.json");
    let docker = view["images"].as_array().expect("images");
    assert_eq!(lines.len(), docker.len());
    // Both sorted by image ID.
    for (line, want) in lines.iter().zip(docker) {
        assert_eq!(line["ID"], want["id"]);
        assert_eq!(line["References"], want["repo_tags"], "{}", want["id"]);
        for (ours, field) in [
            ("SizeBytes", "size"),
            ("SharedSizeBytes", "shared_size"),
            ("UniqueSizeBytes", "unique_size"),
        ] {
            assert_eq!(line[ours], want[field], "{field} of {}", want["id"]);
        }
    }
    assert_eq!(
        ok(root.path(), &["df"]),
        "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
         Images          5         0         194B      194B (100%)\n\
         Containers      0         0         0B        0B\n\
         Local Volumes   0         0         0B        0B\n\
         Build Cache     0         0         0B        0B\n"
    );
    let verbose = ok(root.path(), &["df", "-v"]);
    let base = verbose
        .lines()
        .find(|l| l.starts_with(&format!("{REPO}/base ")))
        .unwrap_or_default();
    let columns: Vec<&str> = base
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(columns[4..], ["82B", "82B", "0B", "0"], "{verbose}");
}

#[test]
fn save_then_load_gives_the_same_images_in_every_format() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let out = tempfile::tempdir().expect("temp dir");
    let quirk = image(&corpus, "quirk");
    let quirk_short = quirk["image_id_short"].as_str().unwrap_or("?");
    let base = format!("{REPO}/base:v1");
    let child = format!("{REPO}/child:v1");
    let want_ids: Vec<Value> = ["base", "child", "quirk"]
        .iter()
        .map(|n| image(&corpus, n)["image_id"].clone())
        .collect();
    for (format, file) in [
        ("docker", "save.tar"),
        ("oci", "save.oci.tar"),
        ("oci-layout", "layout"),
    ] {
        let dest = out.path().join(file);
        let dest = dest.to_str().expect("UTF-8");
        assert_eq!(
            ok(
                root.path(),
                &[
                    "save",
                    "--format",
                    format,
                    "-o",
                    dest,
                    &base,
                    &child,
                    quirk_short
                ]
            ),
            ""
        );
        let fresh = tempfile::tempdir().expect("temp dir");
        let loaded = ok(fresh.path(), &["load", "-i", dest]);
        assert!(
            loaded.contains(&format!("Loaded image: {base}\n")),
            "{format}: {loaded}"
        );
        assert!(
            loaded.contains(&format!("Loaded image: {child}\n")),
            "{format}: {loaded}"
        );
        let listed = json_lines(&ok(fresh.path(), &["images", "--format", "json"]));
        let mut ids: Vec<Value> = listed.iter().map(|l| l["Id"].clone()).collect();
        ids.sort_by_key(ToString::to_string);
        let mut want = want_ids.clone();
        want.sort_by_key(ToString::to_string);
        assert_eq!(ids, want, "{format}");
        for line in &listed {
            let name = if line["Id"] == quirk["image_id"] {
                "quirk"
            } else if line["References"][0] == base.as_str() {
                "base"
            } else {
                "child"
            };
            assert_eq!(
                line["SizeBytes"],
                docker_view(&corpus, name)["size"],
                "{format} {name}"
            );
        }
        // The quirk image was saved by ID: loaded without a name.
        let unnamed = listed
            .iter()
            .find(|l| l["Id"] == quirk["image_id"])
            .expect("quirk loaded");
        assert_eq!(unnamed["References"], serde_json::json!([]), "{format}");
    }

    // As `docker save -o`: an existing file is replaced (whole, by a
    // rename), here by a tar of base alone.
    let dest = out.path().join("save.tar");
    let dest_str = dest.to_str().expect("UTF-8");
    assert_eq!(ok(root.path(), &["save", "-o", dest_str, &base]), "");
    let fresh = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        ok(fresh.path(), &["load", "-i", dest_str]),
        format!("Loaded image: {base}\n")
    );
    // A failed save leaves the old file as it was.
    let before = std::fs::read(&dest).expect("saved tar");
    let output = imgstore(root.path(), &["save", "-o", dest_str, "no-such-image"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read(&dest).expect("saved tar"), before);
    // A directory is never replaced.
    let layout = out.path().join("layout");
    let output = imgstore(
        root.path(),
        &["save", "-o", layout.to_str().expect("UTF-8"), &base],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("already exists"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn load_takes_a_platform_choice() {
    let corpus = corpus();
    let root = tempfile::tempdir().expect("temp dir");
    let quirk = corpus.join("oci/quirk-unterminated");
    let quirk = quirk.to_str().expect("UTF-8");
    assert_eq!(
        ok(root.path(), &["load", "--platform", "all", "-i", quirk]),
        format!("Loaded image: {REPO}/quirk:v1\n")
    );
    let output = imgstore(root.path(), &["load", "--platform", "linux", "-i", quirk]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).starts_with("Error: --platform \"linux\": "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn images_hides_nameless_parents_unless_all() {
    let corpus = corpus();
    let root = loaded(&corpus);
    let base = image(&corpus, "base");
    let child = image(&corpus, "child");
    let base_id = base["image_id"].as_str().unwrap_or("?");
    let child_id = child["image_id"].as_str().unwrap_or("?");
    // A parent link as a local build records it (the library's call)
    // reaches the next listing.
    ok(root.path(), &["images"]);
    imgstore::Store::open(root.path())
        .and_then(|store| store.set_parent(child_id, base_id))
        .expect("set parent");
    let listed = json_lines(&ok(root.path(), &["images", "--format", "json"]));
    let child_line = listed
        .iter()
        .find(|l| l["Id"] == child_id)
        .expect("child listed");
    assert_eq!(child_line["Parent"], base_id);
    let inspect: Value =
        serde_json::from_str(&ok(root.path(), &["inspect", child_id])).expect("JSON");
    assert_eq!(inspect[0]["Parent"], base_id);

    // Its name removed, base stays (it has a child) as an intermediate image.
    assert_eq!(
        ok(root.path(), &["--quiet", "rmi", &format!("{REPO}/base:v1")]),
        format!("Untagged: {REPO}/base:v1\n")
    );
    let short = base["image_id_short"].as_str().unwrap_or("?");
    let hidden = ok(root.path(), &["images", "-q"]);
    assert!(!hidden.contains(short), "{hidden}");
    assert_eq!(hidden.lines().count(), 4);
    let all = ok(root.path(), &["images", "-a"]);
    let row = all.lines().find(|l| l.contains(short)).unwrap_or_default();
    assert!(
        row.starts_with("<none>                            <none>    "),
        "{all}"
    );
    // By ID it cannot go while it has a child, even forced.
    let output = imgstore(root.path(), &["rmi", short]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "Error: conflict: unable to delete {short} (cannot be forced) - image has dependent child images\n"
        )
    );
}
