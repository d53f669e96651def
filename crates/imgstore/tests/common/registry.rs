//! Registries for tests: Debian's `docker-registry` (the CNCF distribution
//! registry, `.ci/run` installs it) started on 127.0.0.1 with a throwaway
//! config and storage, killed on drop; and a tiny fake registry for the
//! hostile cases a real one never produces.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REGISTRY: &str = "/usr/bin/docker-registry";

/// A running `docker-registry serve`, killed (and its storage removed) on drop.
pub struct RealRegistry {
    child: Child,
    /// `127.0.0.1:PORT`, as references name it.
    pub host: String,
    _dir: tempfile::TempDir,
}

impl RealRegistry {
    /// Starts a registry with filesystem storage in a temporary directory
    /// on a free port, and waits until it answers `/v2/`.
    pub fn start() -> RealRegistry {
        RealRegistry::start_with_config(|_| String::new())
    }

    /// A registry that wants Basic auth: `user` with `password`, in an
    /// htpasswd file (bcrypt, written by apache2-utils' `htpasswd`, which
    /// `.ci/run` installs).
    pub fn start_htpasswd(user: &str, password: &str) -> RealRegistry {
        RealRegistry::start_with_config(|dir| {
            let file = dir.join("htpasswd");
            let status = Command::new("htpasswd")
                .arg("-Bbc")
                .arg(&file)
                .args([user, password])
                .stderr(Stdio::null())
                .status()
                .unwrap_or_else(|e| {
                    panic!("run htpasswd (apache2-utils, .ci/run installs it): {e}")
                });
            assert!(status.success(), "htpasswd: {status}");
            format!(
                "auth:\n  htpasswd:\n    realm: imgstore-test\n    path: {}\n",
                file.display()
            )
        })
    }

    /// A registry serving HTTPS with `cert` and `key` (see [`tls_certificates`]).
    pub fn start_tls(cert: &Path, key: &Path) -> RealRegistry {
        RealRegistry::start_with_config(|_| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        })
    }

    /// Starts a registry with more configuration, which `extra` writes
    /// given the registry's directory: YAML appended right after the `http:`
    /// section's `addr:` line (so `  tls:` nests under `http:`, and `auth:`
    /// starts a section).
    pub fn start_with_config(extra: impl FnOnce(&Path) -> String) -> RealRegistry {
        assert!(
            Path::new(REGISTRY).is_file(),
            "{REGISTRY} is missing: install Debian's docker-registry (.ci/run does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let extra = extra(dir.path());
        // A port found free may be taken by another test before the
        // registry binds it: then the registry exits, and another is tried.
        for _ in 0..5 {
            let port = free_port();
            let mut child = RealRegistry::spawn(dir.path(), port, &extra);
            if RealRegistry::wait_ready(&mut child, port) {
                return RealRegistry {
                    child,
                    host: format!("127.0.0.1:{port}"),
                    _dir: dir,
                };
            }
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("the registry did not start: {log}");
    }

    /// Starts `docker-registry serve` on `port` with its config in `dir`.
    fn spawn(dir: &Path, port: u16, extra: &str) -> Child {
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join("data").display()
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("log file");
        Command::new(REGISTRY)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {REGISTRY}: {e}"))
    }

    /// Waits until `child` answers on `port`: false when it exited (the
    /// port was taken) or never answered (then it is killed).
    fn wait_ready(child: &mut Child, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return false;
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                // Any answer means something is up (401 wants credentials,
                // a TLS registry answers 400 to plain HTTP); it is ours if
                // our process still runs a moment later.
                if answer.starts_with("HTTP/1.") {
                    std::thread::sleep(Duration::from_millis(50));
                    return matches!(child.try_wait(), Ok(None));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// One request the fake registry received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response of the fake registry.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// An HTTP/1.1 server answering each request with `handler` (one
/// connection at a time, `Connection: close`); it records every request.
pub struct FakeRegistry {
    pub host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicU64>,
}

impl FakeRegistry {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().expect("address").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen_in, stop_in) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_in.load(Ordering::Relaxed) != 0 {
                    return;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &*handler, &seen_in);
            }
        });
        FakeRegistry { host, seen, stop }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(1, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.host);
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let path = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.trim_end().split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let request = Seen {
        method,
        path,
        headers,
    };
    seen.lock().expect("seen").push(request.clone());
    let reply = handler(&request);
    let mut out = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
    if !reply
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut stream = reader.into_inner();
    let _ = stream.write_all(out.as_bytes());
    if request.method != "HEAD" {
        let _ = stream.write_all(&reply.body);
    }
    let _ = stream.flush();
}

/// A handler serving an OCI layout directory as a registry would (any
/// repository): `/v2/`, manifests by digest or by the tag of a `ref.name`
/// annotation's last `:` part, blobs by digest.
pub fn serve_layout(dir: &Path) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let dir = dir.to_path_buf();
    move |request: &Seen| {
        if request.path == "/v2/" {
            return Reply::new(200, "{}");
        }
        let Some((_, rest)) = request.path.split_once("/manifests/") else {
            if let Some((_, digest)) = request.path.split_once("/blobs/") {
                return blob_reply(&dir, digest, None);
            }
            return Reply::new(404, "not found");
        };
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
                .expect("index.json parses");
        for entry in index["manifests"].as_array().into_iter().flatten() {
            let digest = entry["digest"].as_str().unwrap_or("");
            let name = entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or("");
            let tag = name.rsplit_once(':').map_or("", |(_, tag)| tag);
            if rest == digest || rest == tag {
                let media_type = entry["mediaType"].as_str().unwrap_or("");
                return blob_reply(&dir, digest, Some(media_type));
            }
        }
        Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    }
}

fn blob_reply(dir: &Path, digest: &str, media_type: Option<&str>) -> Reply {
    let path = dir.join("blobs").join(digest.replacen(':', "/", 1));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let reply = Reply::new(200, bytes).header("Docker-Content-Digest", digest);
            match media_type {
                Some(media_type) => reply.header("Content-Type", media_type),
                None => reply.header("Content-Type", "application/octet-stream"),
            }
        }
        Err(_) => Reply::new(
            404,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        ),
    }
}

/// Runs `openssl ARGS`; its stdout.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run openssl {args:?}: {e}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A CA and a server certificate it signs for `localhost` and 127.0.0.1,
/// made by openssl in `dir`: (CA certificate, server certificate, key).
pub fn tls_certificates(dir: &std::path::Path, name: &str) -> [std::path::PathBuf; 3] {
    let path = |file: &str| dir.join(format!("{name}-{file}"));
    let s = |p: &std::path::Path| p.to_str().expect("path").to_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        path("ca.key"),
        path("ca.crt"),
        path("server.key"),
        path("server.csr"),
        path("server.crt"),
        path("ext.cnf"),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name} test CA"),
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write ext.cnf");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&cert),
    ]);
    [ca, cert, key]
}
