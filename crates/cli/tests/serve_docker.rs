//! `imgstore serve` judged by the real docker CLI (Debian's docker.io
//! 20.10, `/usr/bin/docker`; `.ci/run` installs it): each test starts a
//! server on a temporary socket over a store loaded from the corpus, runs
//! `docker` with `DOCKER_HOST=unix://…`, and compares what it prints with
//! what the `imgstore` command prints for the same store, and with exact
//! values. No dockerd runs: only the CLI is needed.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, imgstore};

const BASE: &str = "registry.demo.test/demo/base:v1";
const CHILD: &str = "registry.demo.test/demo/child:v1";
const SIBLING: &str = "registry.demo.test/demo/sibling:v1";

/// The docker CLI: `IMGSTORE_TEST_DOCKER`, or Debian's at /usr/bin/docker
/// (a newer one elsewhere on PATH speaks another API version first).
fn docker_binary() -> PathBuf {
    let path = std::env::var_os("IMGSTORE_TEST_DOCKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker"));
    assert!(
        path.exists(),
        "the docker CLI is missing at {}: apt-get install docker.io (only the CLI is used)",
        path.display()
    );
    path
}

/// A running `imgstore serve` over its own store, stopped (SIGTERM) when
/// dropped.
struct Server {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// A store loaded from the corpus files `inputs` and a server on it.
    fn start(inputs: &[&str]) -> Server {
        Server::start_with(inputs, &[])
    }

    fn start_with(inputs: &[&str], extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        load_store(&dir.path().join("store"), inputs);
        let socket = dir.path().join("docker.sock");
        let child = common::command(
            &dir.path().join("store"),
            &[
                &["serve", "--docker-socket", socket.to_str().expect("utf-8")],
                extra,
            ]
            .concat(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start imgstore serve");
        let server = Server {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(server.socket()).is_err() {
            assert!(Instant::now() < deadline, "imgstore serve did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `docker ARGS…` against this server, stdin empty.
    fn docker(&self, args: &[&str]) -> Output {
        self.docker_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    fn docker_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(docker_binary());
        command
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env("TZ", "UTC")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH");
        command
    }

    /// `imgstore ARGS…` on the same store (the server keeps it open; the
    /// command opens it beside it, as any second process may).
    fn imgstore(&self, args: &[&str]) -> Output {
        common::command(&self.store(), args)
            .env("TZ", "UTC")
            .output()
            .expect("run imgstore")
    }

    /// SIGTERM, then the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        child.wait().expect("wait for imgstore serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

/// `imgstore load` of the corpus files into `root`.
fn load_store(root: &Path, inputs: &[&str]) {
    for input in inputs {
        let path = fixture(input);
        let loaded = imgstore(root, &["load", "-i", path.to_str().expect("utf-8")]);
        assert!(
            loaded.status.success(),
            "load {input}: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The corpus: three images, one (sibling) from an oci-archive with its
/// manifest digest.
const CORPUS: [&str; 2] = [
    "docker/docker-save-multi.docker.tar",
    "oci-archive/sibling.oci.tar",
];

/// The same command through docker and through imgstore prints the same
/// bytes.
fn assert_same(server: &Server, args: &[&str]) -> String {
    let through_docker = stdout(&server.docker(args));
    let direct = stdout(&server.imgstore(args));
    assert_eq!(
        through_docker, direct,
        "docker {args:?} differs from imgstore"
    );
    through_docker
}

#[test]
fn images_list_as_imgstore_lists_them() {
    let server = Server::start(&CORPUS);
    for args in [
        &["images"][..],
        &["images", "-q"],
        &["images", "--digests"],
        &["images", "-a"],
        &["images", "--no-trunc"],
        &["images", "-q", "--no-trunc"],
        &["images", "registry.demo.test/demo/sibling"],
        &["images", "--filter", "reference=*/demo/b*"],
        &["images", "--filter", "dangling=true"],
        &[
            "image",
            "ls",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}",
        ],
    ] {
        assert_same(&server, args);
    }
    assert_eq!(
        stdout(&server.docker(&["images", "-q"])),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
    assert_eq!(
        stdout(&server.docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}"
        ])),
        "registry.demo.test/demo/child:v1 d96e5dc19265 90B <none>\n\
         registry.demo.test/demo/sibling:v1 96b315356805 111B \
         sha256:8cac23fedec23ee1e96e7d7562154fbea90a91a19cee93288377f00ac8d49dcd\n\
         registry.demo.test/demo/base:v1 ccb28a06ca54 82B <none>\n"
    );
    // A filter the store does not know: dockerd's 400, the docker CLI's
    // `Error response from daemon: …`, exit 1.
    let unknown = server.docker(&["images", "--filter", "colour=blue"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "Error response from daemon: filter \"colour=blue\": unknown filter \
         (dangling, reference, before, since, until, label)\n"
    );
}

#[test]
fn inspect_and_history_match_imgstore() {
    let server = Server::start(&CORPUS);
    for name in [BASE, CHILD, SIBLING, "ccb28a06ca54"] {
        assert_same(&server, &["inspect", name]);
        assert_same(&server, &["history", name]);
        assert_same(&server, &["history", "--no-trunc", name]);
        assert_same(&server, &["history", "--human=false", name]);
        assert_same(&server, &["history", "-q", name]);
    }
    assert_same(&server, &["inspect", BASE, SIBLING]);
    assert_eq!(
        stdout(&server.docker(&[
            "inspect",
            "-f",
            "{{.Id}} {{.RepoTags}} {{.RepoDigests}} {{.Size}} {{.Os}}/{{.Architecture}}",
            SIBLING
        ])),
        "sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408 \
         [registry.demo.test/demo/sibling:v1] \
         [registry.demo.test/demo/sibling@sha256:8cac23fedec23ee1e96e7d7562154fbea90a91a19cee93288377f00ac8d49dcd] \
         111 linux/amd64\n"
    );
    assert_eq!(
        stdout(&server.docker(&["history", "--format", "{{.ID}} {{.Size}}", CHILD])),
        "d96e5dc19265 8B\n<missing> 6B\n<missing> 33B\n<missing> 43B\n"
    );
    let missing = server.docker(&["inspect", "--type", "image", "nope:1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), "Error: No such image: nope:1\n");
    let missing = server.docker(&["history", "nope:1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        stderr(&missing),
        "Error response from daemon: No such image: nope:1\n"
    );
}

#[test]
fn tag_and_rmi_change_the_store() {
    let server = Server::start(&CORPUS);
    let tagged = server.docker(&["tag", BASE, "mine/base:2"]);
    assert_eq!(stdout(&tagged), "");
    assert_eq!(
        stdout(&server.imgstore(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
            "mine/base"
        ])),
        "mine/base:2 ccb28a06ca54\n"
    );
    // Named twice: a conflict without -f.
    let conflict = server.docker(&["rmi", "ccb28a06ca54"]);
    assert_eq!(conflict.status.code(), Some(1));
    assert!(
        stderr(&conflict).starts_with(
            "Error response from daemon: conflict: unable to delete ccb28a06ca54 (must be forced)"
        ),
        "{}",
        stderr(&conflict)
    );
    assert_eq!(
        stdout(&server.docker(&["rmi", "mine/base:2"])),
        "Untagged: mine/base:2\n"
    );
    // The same removal through imgstore on an identical store prints the
    // same lines.
    let twin = tempfile::tempdir().expect("tempdir");
    load_store(twin.path(), &CORPUS);
    let through_docker = stdout(&server.docker(&["rmi", SIBLING]));
    let direct = stdout(&imgstore(twin.path(), &["rmi", SIBLING]));
    assert_eq!(through_docker, direct);
    assert_eq!(
        through_docker,
        "Untagged: registry.demo.test/demo/sibling:v1\n\
         Deleted: sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408\n\
         Deleted: sha256:569cf944096d7893709fc5350ea142fb57efdb54d299cbd7eb3f9d29e1f0a3a0\n"
    );
    let missing = server.docker(&["rmi", "nope:1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stderr(&missing), "Error: No such image: nope:1\n");
    let bad = server.docker(&["tag", BASE, "Not/Valid"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        stdout(&server.docker(&["images", "-q"])),
        "d96e5dc19265\nccb28a06ca54\n"
    );
}

#[test]
fn load_and_save_stream_tars() {
    let server = Server::start(&[]);
    let tar = fixture("docker/base.docker.tar");
    let loaded = server
        .docker_command(&["load"])
        .stdin(std::fs::File::open(&tar).expect("open tar"))
        .output()
        .expect("docker load");
    assert_eq!(stdout(&loaded), format!("Loaded image: {BASE}\n"));
    let loaded = server.docker(&[
        "load",
        "-i",
        fixture("oci-archive/sibling.oci.tar")
            .to_str()
            .expect("utf-8"),
    ]);
    assert_eq!(stdout(&loaded), format!("Loaded image: {SIBLING}\n"));
    assert_eq!(
        stdout(&server.docker(&["images", "-q"])),
        "96b315356805\nccb28a06ca54\n"
    );
    // `docker save` streams what `imgstore save` writes, byte for byte.
    let saved = server.docker(&["save", BASE, SIBLING]);
    assert!(saved.status.success(), "{}", stderr(&saved));
    let direct = server.imgstore(&["save", BASE, SIBLING]);
    assert!(direct.status.success());
    assert!(saved.stdout.len() > 10_000);
    assert!(
        saved.stdout == direct.stdout,
        "docker save differs from imgstore save"
    );
    let file = server.dir.path().join("saved.tar");
    let to_file = server.docker(&["save", "-o", file.to_str().expect("utf-8"), BASE]);
    assert_eq!(stdout(&to_file), "");
    let direct = server.imgstore(&["save", BASE]);
    assert!(std::fs::read(&file).expect("saved tar") == direct.stdout);
    // What docker saved loads back into a fresh store.
    let fresh = tempfile::tempdir().expect("tempdir");
    let back = imgstore(fresh.path(), &["load", "-i", file.to_str().expect("utf-8")]);
    assert_eq!(stdout(&back), format!("Loaded image: {BASE}\n"));

    let unknown = server.docker(&["save", "nope:1"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "Error response from daemon: No such image: nope:1\n"
    );
    // A truncated tar: dockerd's in-stream error, exit 1, nothing stored.
    let truncated = server
        .docker_command(&["load"])
        .stdin(std::fs::File::open(fixture("bad/truncated.docker.tar")).expect("open"))
        .output()
        .expect("docker load");
    assert_eq!(truncated.status.code(), Some(1));
    assert!(
        stderr(&truncated).contains("invalid archive: truncated"),
        "{}",
        stderr(&truncated)
    );
    assert_eq!(
        stdout(&server.docker(&["images", "-q"])),
        "96b315356805\nccb28a06ca54\n"
    );
}

#[test]
fn prune_and_df_print_as_imgstore() {
    let server = Server::start(&CORPUS);
    assert_same(&server, &["system", "df"]);
    assert_same(&server, &["system", "df", "-v"]);
    assert_eq!(
        stdout(&server.docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Size}} {{.Reclaimable}}"
        ])),
        "Images 3 125B 125B (100%)\nContainers 0 0B 0B\nLocal Volumes 0 0B 0B\nBuild Cache 0 0B 0B\n"
    );
    let twin = tempfile::tempdir().expect("tempdir");
    load_store(twin.path(), &CORPUS);
    // Nothing dangling: nothing pruned.
    assert_eq!(
        stdout(&server.docker(&["image", "prune", "-f"])),
        "Total reclaimed space: 0B\n"
    );
    let through_docker = stdout(&server.docker(&["image", "prune", "-a", "-f"]));
    let direct = stdout(&imgstore(twin.path(), &["image", "prune", "-a", "-f"]));
    assert_eq!(through_docker, direct);
    assert!(
        through_docker.starts_with("Deleted Images:\nuntagged: "),
        "{through_docker}"
    );
    assert!(
        through_docker.ends_with("\nTotal reclaimed space: 125B\n"),
        "{through_docker}"
    );
    assert_eq!(stdout(&server.docker(&["images", "-q"])), "");
    assert_same(&server, &["system", "df", "-v"]);
}

/// One raw HTTP/1.1 request on the socket: (status, body).
fn http(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(socket: &Path, path: &str) -> (u16, String) {
    http(
        socket,
        format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn bad_requests_get_docker_errors_and_the_server_stays_up() {
    let server = Server::start(&CORPUS);
    let socket = server.socket();
    assert_eq!(get(&socket, "/_ping"), (200, "OK".to_owned()));
    assert_eq!(
        get(&socket, "/v1.41/containers/json"),
        (404, "{\"message\":\"page not found\"}\n".to_owned())
    );
    assert_eq!(
        get(&socket, "/v1.41/images/json?filters=%7Bnot-json"),
        (
            400,
            "{\"message\":\"invalid filter: key must be a string at line 1 column 2\"}\n"
                .to_owned()
        )
    );
    assert_eq!(
        get(&socket, "/v1.45/images/json"),
        (
            400,
            "{\"message\":\"client version 1.45 is too new. Maximum supported API version is 1.41\"}\n"
                .to_owned()
        )
    );
    let (status, body) = get(&socket, "/v1.41/images/Not%20A%20Name/json");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with("{\"message\":\"invalid reference format"),
        "{body}"
    );
    let (status, body) = get(&socket, "/v1.41/images/nope:1/json");
    assert_eq!(
        (status, body.as_str()),
        (404, "{\"message\":\"No such image: nope:1\"}\n")
    );
    let (status, body) = http(
        &socket,
        b"POST /v1.41/images/nope:1/tag?repo=UPPER HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    // A body too large for an endpoint that takes none: refused from its
    // declared length, unread.
    let (status, body) = http(
        &socket,
        b"POST /v1.41/images/prune HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: 104857600\r\n\r\n",
    );
    assert_eq!(
        (status, body.as_str()),
        (
            413,
            "{\"message\":\"request body larger than 1048576 bytes\"}\n"
        )
    );
    // And one that only says so as it comes, chunked.
    let mut chunked = b"POST /v1.41/images/prune HTTP/1.1\r\nHost: d\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b'x', 0x10000));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(http(&socket, &chunked).0, 413);
    // Garbage instead of HTTP.
    let mut stream = UnixStream::connect(&socket).expect("connect");
    let _ = stream.write_all(b"\x00\x01 not http at all\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"));
    // Slow clients that never finish their headers (slowloris) hold a
    // connection each, until the header timeout; others are still served.
    let mut slow: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut stream = UnixStream::connect(&socket).expect("connect");
            let _ = stream.write_all(b"GET /v1.41/images/json HTTP/1.1\r\nHost: d\r\nX-Slow: ");
            stream
        })
        .collect();
    // Still serving.
    assert_eq!(
        stdout(&server.docker(&["images", "-q"])),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
    let (status, body) = get(&socket, "/v1.41/version");
    assert_eq!(status, 200);
    assert!(body.contains("\"ApiVersion\":\"1.41\""), "{body}");
    let (status, body) = get(&socket, "/info");
    assert_eq!(status, 200);
    assert!(body.contains("\"Images\":3"), "{body}");
    for stream in &mut slow {
        let _ = stream.write_all(b"1\r\n");
    }
}

#[test]
fn socket_is_private_and_sigterm_lets_requests_finish() {
    let mut server = Server::start(&[]);
    let mode = std::fs::metadata(server.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A load in flight: half the tar sent, then SIGTERM, then the rest;
    // the load completes and is answered before the server exits.
    let tar = std::fs::read(fixture("docker/base.docker.tar")).expect("tar");
    let mut stream = UnixStream::connect(server.socket()).expect("connect");
    let head = format!(
        "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    let half = tar.len() / 2;
    stream.write_all(&tar[..half]).expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let pid = i32::try_from(server.child.as_ref().expect("running").id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(200));
    // No new connections once it is stopping...
    assert!(UnixStream::connect(server.socket()).is_err());
    // ...but the one in flight finishes.
    stream.write_all(&tar[half..]).expect("write the rest");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.ends_with("{\"stream\":\"Loaded image: registry.demo.test/demo/base:v1\\n\"}\n"),
        "{response}"
    );
    let status = server.child.take().expect("running").wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(!server.socket().exists(), "the socket is removed on exit");
    assert_eq!(
        stdout(&server.imgstore(&["images", "-q"])),
        "ccb28a06ca54\n"
    );
}

#[test]
fn socket_group_opens_it_to_the_group() {
    let gid = std::fs::metadata("/")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
        .expect("stat /");
    let server = Server::start_with(&[], &["--socket-group", &gid.to_string()]);
    let meta = std::fs::metadata(server.socket()).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), gid);
    let unknown = imgstore(
        &server.store(),
        &["serve", "--socket-group", "no-such-group-here"],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        stderr(&unknown),
        "Error: unknown group \"no-such-group-here\"\n"
    );
    // A second server on a live socket is refused.
    let twice = imgstore(
        &server.store(),
        &[
            "serve",
            "--docker-socket",
            server.socket().to_str().expect("utf-8"),
        ],
    );
    assert_eq!(twice.status.code(), Some(1));
    assert!(
        stderr(&twice).ends_with("another server is listening on this socket\n"),
        "{}",
        stderr(&twice)
    );
}

/// `--cri-socket`: a second socket, as private as the first, removed with
/// it on SIGTERM (the CRI calls themselves: crates/serve/tests/cri.rs).
#[cfg(feature = "cri")]
#[test]
fn cri_socket_is_served_beside_the_docker_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cri = dir.path().join("cri.sock");
    let mut server = Server::start_with(&[], &["--cri-socket", cri.to_str().expect("utf-8")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&cri).is_err() {
        assert!(Instant::now() < deadline, "no CRI socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&cri)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(server.stop().success());
    assert!(!cri.exists() && !server.socket().exists());
}

/// Without the feature, `--cri-socket` says what the build lacks.
#[cfg(not(feature = "cri"))]
#[test]
fn cri_socket_needs_the_cri_feature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cri = dir.path().join("cri.sock");
    let refused = imgstore(
        &dir.path().join("store"),
        &[
            "serve",
            "--docker-socket",
            dir.path().join("d.sock").to_str().expect("utf-8"),
            "--cri-socket",
            cri.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).ends_with(
            "Error: this imgstore was built without the CRI ImageService (feature `cri`)\n"
        ),
        "{}",
        stderr(&refused)
    );
}
