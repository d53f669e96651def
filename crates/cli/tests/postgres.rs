//! The `imgstore` binary on a postgres store prints exactly what it prints
//! on an SQLite one, command for command (load, images, inspect, history,
//! tag, rmi, pin, prune, df, fsck, gc), against a PostgreSQL server the test
//! starts; the root keeps only `store.json`; two "nodes" (separate roots,
//! one database) change the store at once and leave it fsck-clean.

use std::path::Path;
use std::process::Output;

mod common;
use common::{command, corpus, text};

const REPO: &str = "registry.demo.test/demo";

/// One store under test: its root and the flags that select its backend.
struct Node {
    root: tempfile::TempDir,
    flags: Vec<String>,
}

impl Node {
    fn sqlite() -> Node {
        Node {
            root: tempfile::tempdir().expect("temp dir"),
            flags: vec!["--backend".into(), "sqlite".into()],
        }
    }

    fn postgres(url: &str) -> Node {
        Node {
            root: tempfile::tempdir().expect("temp dir"),
            flags: vec![
                "--backend".into(),
                "postgres".into(),
                "--database-url".into(),
                url.into(),
            ],
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        command(self.root.path(), &all)
            .output()
            .expect("run imgstore")
    }

    /// Exit code, stdout and stderr, with the root's path and the backend's
    /// name (inspect's GraphDriver) written the same for every backend.
    fn transcript(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let root = self.root.path().to_str().expect("UTF-8 root");
        format!(
            "$ imgstore {}\nexit {:?}\n{}{}",
            args.join(" "),
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr)
        )
        .replace(root, "<root>")
        .replace("\"Name\": \"postgres\"", "\"Name\": \"<backend>\"")
        .replace("\"Name\": \"sqlite\"", "\"Name\": \"<backend>\"")
    }
}

fn path(relative: &str) -> String {
    corpus()
        .join(relative)
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

#[test]
fn every_command_prints_on_postgres_what_it_prints_on_sqlite() {
    let url = imgstore_postgres::testserver::TestServer::shared().create_database();
    let (sqlite, postgres) = (Node::sqlite(), Node::postgres(&url));
    let main = path("oci/main");
    let quirk = path("oci/quirk-unterminated");
    let multi = path("docker/docker-save-multi.docker.tar");
    let base = format!("{REPO}/base:v1");
    let script: Vec<Vec<&str>> = vec![
        vec!["load", "-i", &main, "--input", &quirk],
        vec!["load", "-i", &multi],
        vec!["images"],
        vec!["images", "-a", "--digests"],
        vec!["images", "--format", "json"],
        vec!["inspect", &base, "base:latest", "nothing"],
        vec!["history", &base],
        vec!["layers", "--format", "json"],
        vec!["tag", &base, "base:extra"],
        vec!["images", "-f", "reference=base"],
        vec!["rmi", "base:extra", "nothing"],
        vec!["pin", &base],
        vec!["rmi", &base],
        vec!["prune", "-a", "-f"],
        vec!["unpin", &base],
        vec!["images"],
        vec!["df"],
        vec!["df", "-v"],
        vec!["fsck"],
        vec!["rmi", "-f", &base],
        vec!["gc"],
        vec!["fsck"],
        vec!["images", "-a"],
    ];
    for args in &script {
        assert_eq!(postgres.transcript(args), sqlite.transcript(args));
    }
    // The root holds the record of the store and nothing of its state.
    let mut entries: Vec<String> = std::fs::read_dir(postgres.root.path())
        .expect("read the root")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "tmp")
        .collect();
    entries.sort();
    assert_eq!(entries, ["store.json"]);
    let record = std::fs::read_to_string(postgres.root.path().join("store.json")).expect("read");
    assert_eq!(
        record,
        format!(r#"{{"backend":"postgres","database_url":"{url}"}}"#)
    );
}

#[test]
fn a_postgres_root_reopens_with_its_recorded_database_and_refuses_another() {
    let server = imgstore_postgres::testserver::TestServer::shared();
    let url = server.create_database();
    let node = Node::postgres(&url);
    let quirk = path("oci/quirk-unterminated");
    assert_eq!(
        node.run(&["load", "-q", "-i", &quirk]).status.code(),
        Some(0)
    );
    // No flags: the root says which backend and which database.
    let plain = command(node.root.path(), &["images", "-q"])
        .output()
        .expect("run");
    assert_eq!(
        text(&plain.stdout).lines().count(),
        1,
        "{}",
        text(&plain.stderr)
    );

    let other = server.create_database();
    let output = command(node.root.path(), &["--database-url", &other, "images"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let root = node.root.path().display();
    assert_eq!(
        text(&output.stderr),
        format!(
            "Error: cannot open the store at {root}: {root}: not a usable store root: its store \
             is in the database {url}, not {other}\n"
        )
    );

    let fresh = tempfile::tempdir().expect("temp dir");
    let output = command(
        fresh.path(),
        &["--backend", "postgres", "load", "-i", &quirk],
    )
    .output()
    .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(
            "a postgres store needs the URL of its database (--database-url or \
             IMGSTORE_DATABASE_URL, postgres://user@host/db)"
        ),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn two_nodes_sharing_one_database_change_it_at_once_and_stay_consistent() {
    let url = imgstore_postgres::testserver::TestServer::shared().create_database();
    let nodes = [Node::postgres(&url), Node::postgres(&url)];
    let main = path("oci/main");
    let multi = path("docker/docker-save-multi.docker.tar");
    let quirk = path("oci/quirk-unterminated");
    std::thread::scope(|scope| {
        for (n, node) in nodes.iter().enumerate() {
            let (main, multi, quirk) = (&main, &multi, &quirk);
            scope.spawn(move || {
                for round in 0..4 {
                    let name = format!("node{n}/round:{round}");
                    let steps: [Vec<&str>; 6] = [
                        vec!["load", "-q", "-i", main, "--input", quirk],
                        vec!["load", "-q", "-i", multi],
                        vec!["tag", "registry.demo.test/demo/base:v1", &name],
                        vec!["rmi", &name],
                        vec!["rmi", "registry.demo.test/demo/quirk:v1"],
                        vec!["images", "-q"],
                    ];
                    for args in &steps {
                        let output = node.run(args);
                        let stderr = text(&output.stderr);
                        // Removing what the other node removed first is
                        // Docker's "No such image"; anything else must succeed.
                        assert!(
                            output.status.success() || stderr.starts_with("Error: No such image"),
                            "node {n} round {round} {args:?}: {stderr}"
                        );
                    }
                }
            });
        }
    });
    for node in &nodes {
        let output = node.run(&["fsck"]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
        let out = text(&output.stdout);
        assert!(out.ends_with(": clean\n"), "{out}");
    }
    // Both nodes see one catalogue.
    let listed: Vec<String> = nodes
        .iter()
        .map(|node| text(&node.run(&["images", "-a"]).stdout))
        .collect();
    assert_eq!(listed[0], listed[1]);
    assert!(Path::new(&nodes[0].root.path().join("store.json")).exists());
}
