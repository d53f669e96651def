//! `--format` templates on the commands (issue 16 item 2): `images`,
//! `history`, `df`, `inspect -f`. Every expected output here is what
//! Docker 20.10.24 (its client and daemon) printed for the same commands
//! on the same corpus archive, `docker-save-multi.docker.tar`; values of
//! one image come from `examples/images/expected/*.json`.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{expected_image, fixture, imgstore, ok, path_str, text};

/// A store with the corpus's three-image `docker save` archive loaded:
/// child, sibling and base (newest first).
fn loaded() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let archive = fixture("docker/docker-save-multi.docker.tar");
    ok(root.path(), &["load", "-q", "-i", path_str(&archive)]);
    root
}

/// Exit code, stdout and stderr of one run.
fn run(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = imgstore(root, args);
    (status.code(), text(&stdout), text(&stderr))
}

#[test]
fn images_fields_print_per_row() {
    let root = loaded();
    assert_eq!(
        ok(
            root.path(),
            &["images", "--format", "{{.Repository}}:{{.Tag}}"]
        ),
        "registry.demo.test/demo/child:v1\nregistry.demo.test/demo/sibling:v1\nregistry.demo.test/demo/base:v1\n"
    );
    // Docker's `image ls` is the same command.
    assert_eq!(
        ok(root.path(), &["image", "ls", "--format", "{{.ID}}"]),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &["images", "--no-trunc", "--format", "{{.ID}}", "*/*/base"]
        ),
        format!(
            "{}\n",
            expected_image("base")["image_id"].as_str().expect("id")
        )
    );
}

#[test]
fn images_table_format_prints_dockers_titles_and_alignment() {
    let root = loaded();
    assert_eq!(
        ok(
            root.path(),
            &["images", "--format", "table {{.ID}}\\t{{.Size}}"]
        ),
        "IMAGE ID       SIZE\nd96e5dc19265   90B\n96b315356805   111B\nccb28a06ca54   82B\n"
    );
    // A bare `table` is the default table.
    assert_eq!(
        ok(root.path(), &["images", "--format", "table"]),
        ok(root.path(), &["images"])
    );
}

#[test]
fn images_quiet_gives_way_to_a_template_but_not_to_table() {
    let root = loaded();
    assert_eq!(
        ok(root.path(), &["images", "-q", "--format", "{{.Tag}}"]),
        "v1\nv1\nv1\n"
    );
    assert_eq!(
        ok(root.path(), &["images", "-q", "--format", "table"]),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
}

#[test]
fn images_json_template_is_the_docker_part_of_the_json_row() {
    let root = loaded();
    let templated = ok(root.path(), &["images", "--format", "{{json .}}"]);
    let rows = ok(root.path(), &["images", "--format", "json"]);
    assert_eq!(templated.lines().count(), 3);
    for (templated, row) in templated.lines().zip(rows.lines()) {
        // `{..."VirtualSize":"90B"}` is `{..."VirtualSize":"90B",` and
        // imgstore's own keys after it.
        let docker_part = templated.strip_suffix('}').expect("an object");
        assert!(
            row.starts_with(docker_part) && row[docker_part.len()..].starts_with(",\"Pinned\":"),
            "{templated}\n{row}"
        );
        let value: Value = serde_json::from_str(templated).expect("JSON");
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "Containers",
                "CreatedAt",
                "CreatedSince",
                "Digest",
                "ID",
                "Repository",
                "SharedSize",
                "Size",
                "Tag",
                "UniqueSize",
                "VirtualSize"
            ]
        );
    }
    // As Docker's rows marshal themselves: `<` escaped.
    assert!(templated.contains(r#""Digest":"\u003cnone\u003e""#));
    assert_eq!(
        ok(root.path(), &["images", "--format", "{{json .Digest}}"]),
        "\"<none>\"\n\"<none>\"\n\"<none>\"\n"
    );
}

#[test]
fn inspect_format_runs_on_each_images_json() {
    let root = loaded();
    let base = expected_image("base");
    let env: Vec<&str> = base["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|v| v.as_str().expect("text"))
        .collect();
    assert_eq!(
        ok(
            root.path(),
            &[
                "inspect",
                "-f",
                "{{.Config.Env}}",
                "registry.demo.test/demo/base:v1"
            ]
        ),
        format!("[{}]\n", env.join(" "))
    );
    assert_eq!(env, ["PATH=/usr/bin:/bin", "DEMO=1"]);
    // Go's field order of types.RootFS, not sorted keys.
    let diff_ids: Vec<String> = base["diff_ids"]
        .as_array()
        .expect("diff IDs")
        .iter()
        .map(|v| format!("{v}"))
        .collect();
    assert_eq!(
        ok(
            root.path(),
            &[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS}}",
                "registry.demo.test/demo/base:v1"
            ]
        ),
        format!(
            "{{\"Type\":\"layers\",\"Layers\":[{}]}}\n",
            diff_ids.join(",")
        )
    );
    assert_eq!(
        ok(
            root.path(),
            &["inspect", "-f", "{{index .RepoTags 0}}", "ccb28a06ca54"]
        ),
        format!("{}\n", base["repo_tags"][0].as_str().expect("tag"))
    );
    // A line per image, in the order asked.
    assert_eq!(
        ok(
            root.path(),
            &[
                "inspect",
                "-f",
                "{{.Id}} {{.Size}} {{.Config.Labels}}",
                "registry.demo.test/demo/child:v1",
                "registry.demo.test/demo/base:v1"
            ]
        ),
        format!(
            "{} 90 map[org.opencontainers.image.title:child org.opencontainers.image.version:1.0]\n{} 82 map[org.opencontainers.image.title:base org.opencontainers.image.version:1.0]\n",
            expected_image("child")["image_id"].as_str().expect("id"),
            base["image_id"].as_str().expect("id"),
        )
    );
    // Go's field order of container.Config; `<` not escaped outside rows.
    assert_eq!(
        ok(
            root.path(),
            &[
                "inspect",
                "-f",
                "{{json .Config}} {{json .Author}}",
                "registry.demo.test/demo/child:v1"
            ]
        ),
        "{\"Hostname\":\"\",\"Domainname\":\"\",\"User\":\"1000:1000\",\"AttachStdin\":false,\"AttachStdout\":false,\"AttachStderr\":false,\"ExposedPorts\":{\"8080/tcp\":{}},\"Tty\":false,\"OpenStdin\":false,\"StdinOnce\":false,\"Env\":[\"PATH=/usr/bin:/bin\",\"DEMO=1\"],\"Cmd\":[\"exec hello\"],\"Image\":\"\",\"Volumes\":null,\"WorkingDir\":\"/\",\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"OnBuild\":null,\"Labels\":{\"org.opencontainers.image.title\":\"child\",\"org.opencontainers.image.version\":\"1.0\"}} \"Demo Maker <maker@demo.test>\"\n"
    );
}

#[test]
fn history_format() {
    let root = loaded();
    let child = "registry.demo.test/demo/child:v1";
    assert_eq!(
        ok(
            root.path(),
            &["history", "--format", "{{.ID}} {{.Size}}", child]
        ),
        "d96e5dc19265 8B\n<missing> 6B\n<missing> 33B\n<missing> 43B\n"
    );
    // --human=false: CreatedSince is the RFC 3339 time, Size bytes.
    assert_eq!(
        ok(
            root.path(),
            &[
                "history",
                "-H=false",
                "--format",
                "{{.CreatedSince}}|{{.Size}}",
                child
            ]
        ),
        "2023-11-21T22:20:20Z|8\n2023-11-21T22:16:20Z|6\n2023-11-21T22:15:20Z|33\n2023-11-21T22:14:20Z|43\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &["history", "--format", "{{json .CreatedBy}}", child]
        )
        .lines()
        .nth(1),
        Some("\"/bin/sh -c rm -rf /etc/motd /usr/share/doc &…\"")
    );
}

#[test]
fn df_format() {
    let root = loaded();
    assert_eq!(
        ok(root.path(), &["df", "--format", "{{.Type}}"]),
        "Images\nContainers\nLocal Volumes\nBuild Cache\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &[
                "system",
                "df",
                "--format",
                "table {{.Type}}\\t{{.Reclaimable}}"
            ]
        ),
        "TYPE            RECLAIMABLE\nImages          125B (100%)\nContainers      0B\nLocal Volumes   0B\nBuild Cache     0B\n"
    );
    // -v: one run on the whole usage, full IDs, no newline after it.
    assert_eq!(
        ok(
            root.path(),
            &[
                "df",
                "-v",
                "--format",
                "{{range .Images}}{{.ID}} {{.UniqueSize}}\\n{{end}}"
            ]
        ),
        "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4 8B\n\
         sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408 35B\n\
         sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb 0B\n"
    );
    let whole = ok(root.path(), &["df", "-v", "--format", "{{json .}}"]);
    assert!(
        whole.starts_with("{\"Images\":[{\"Containers\":\"0\","),
        "{whole}"
    );
    assert!(
        whole.ends_with("}],\"Containers\":[],\"Volumes\":[],\"BuildCache\":[]}"),
        "{whole}"
    );
}

#[test]
fn a_template_that_does_not_parse_is_dockers_error() {
    let root = loaded();
    for command in ["images", "history registry.demo.test/demo/base:v1", "df"] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend(["--format", "{{.ID"]);
        assert_eq!(
            run(root.path(), &args),
            (
                Some(1),
                String::new(),
                "template parsing error: template: :1: unclosed action\n".to_owned()
            ),
            "{args:?}"
        );
    }
    // inspect checks its template first, and exits 64 as Docker.
    assert_eq!(
        run(root.path(), &["inspect", "-f", "{{.Foo", "no-such-image"]),
        (
            Some(64),
            String::new(),
            "template parsing error: template: :1: unclosed action\n".to_owned()
        )
    );
    assert_eq!(
        run(root.path(), &["images", "--format", "{{nope .ID}}"]),
        (
            Some(1),
            String::new(),
            "template parsing error: template: :1: function \"nope\" not defined\n".to_owned()
        )
    );
}

#[test]
fn a_missing_field_is_dockers_error() {
    let root = loaded();
    assert_eq!(
        run(root.path(), &["images", "--format", "{{.ID}}{{.Foo}}"]),
        (
            Some(1),
            String::new(),
            "template parsing error: template: :1:9: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.imageContext\n".to_owned()
        )
    );
    assert_eq!(
        run(root.path(), &["images", "--format", "{{.ID.Foo}}"]).2,
        "template parsing error: template: :1:5: executing \"\" at <.ID.Foo>: can't evaluate field Foo in type string\n"
    );
    assert_eq!(
        run(
            root.path(),
            &["history", "--format", "{{.Foo}}", "registry.demo.test/demo/child:v1"]
        ),
        (
            Some(1),
            String::new(),
            "template parsing error: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *image.historyContext\n".to_owned()
        )
    );
    assert_eq!(
        run(root.path(), &["df", "--format", "{{.Foo}}"]).2,
        "template parsing error: template: :1:2: executing \"\" at <.Foo>: can't evaluate field Foo in type *formatter.diskUsageImagesContext\n"
    );
    // inspect: each image's failure after the output; an empty line when
    // no image printed.
    let failure = "template parsing error: template: :1:2: executing \"\" at <.Foo>: map has no entry for key \"Foo\"\n";
    assert_eq!(
        run(
            root.path(),
            &[
                "inspect",
                "-f",
                "{{.Foo}}",
                "registry.demo.test/demo/base:v1",
                "registry.demo.test/demo/child:v1"
            ]
        ),
        (Some(1), "\n".to_owned(), failure.repeat(2))
    );
}

#[test]
fn inspect_format_prints_the_images_it_found() {
    let root = loaded();
    let (code, stdout, stderr) = run(
        root.path(),
        &["inspect", "-f", "{{.Os}}", "no-such-image", "ccb28a06ca54"],
    );
    assert_eq!((code, stdout.as_str()), (Some(1), "linux\n"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: ") && stderr.contains("no-such-image"),
        "{stderr}"
    );
}

#[test]
fn the_default_images_formats_print_what_their_templates_print() {
    // `images` prints Docker's default formats directly; the same
    // templates spelt differently (`\t` written out, spaces in the action)
    // run through the template engine and must print the same bytes.
    let root = loaded();
    // An image with two names.
    ok(root.path(), &["tag", "ccb28a06ca54", "base:latest"]);
    ok(root.path(), &["rmi", "registry.demo.test/demo/child:v1"]);
    let table = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}";
    let with_digest = "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\\t{{.Size}}";
    for (default, template) in [
        (&["images"][..], &["images", "--format", table][..]),
        (&["images", "-a"], &["images", "-a", "--format", table]),
        (
            &["images", "--digests"],
            &["images", "--digests", "--format", with_digest],
        ),
        (&["images", "-q"], &["images", "--format", "{{ .ID }}"]),
        (
            &["images", "-q", "--no-trunc"],
            &["images", "--no-trunc", "--format", "{{ .ID }}"],
        ),
    ] {
        let printed = ok(root.path(), default);
        assert!(printed.lines().count() >= 3, "{printed}");
        assert_eq!(printed, ok(root.path(), template), "{default:?}");
    }
}
