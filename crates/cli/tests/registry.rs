//! `imgstore pull` and `imgstore push` against a real registry (Debian's
//! `docker-registry`, started by each test): Docker's lines, exactly.

mod common;
#[path = "../../imgstore/tests/common/registry.rs"]
mod registry;

use std::path::Path;
use std::process::Output;

use common::{command, corpus, expected_image, path_str, succeeded, text};
use registry::{RealRegistry, tls_certificates};

/// Docker's credentials directory for the tests: an empty one of their own,
/// so that no login of the machine's user is read or written.
fn docker_config() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// `imgstore --root ROOT ARGS` with `DOCKER_CONFIG=config`.
fn imgstore_with(root: &Path, config: &Path, args: &[&str]) -> Output {
    command(root, args)
        .env("DOCKER_CONFIG", config)
        .output()
        .expect("run imgstore")
}

/// [`imgstore_with`] with an empty credentials directory.
fn imgstore(root: &Path, args: &[&str]) -> Output {
    let config = docker_config();
    imgstore_with(root, config.path(), args)
}

/// Runs and checks exit code 0; returns stdout.
fn ok(root: &Path, args: &[&str]) -> String {
    succeeded(imgstore(root, args), args)
}

/// The short (12 hex digits) form of a digest string.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    &hex[..12]
}

fn strings(value: &serde_json::Value, field: &str) -> Vec<String> {
    value[field]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

fn layer_digests(image: &serde_json::Value) -> Vec<String> {
    image["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// What `push` prints for an image whose layers (diff IDs, bottom first)
/// the registry lacks or has; `one_at_a_time` (`--max-concurrent-uploads
/// 1`): all but the top layer wait.
fn push_lines(
    repository: &str,
    tag: &str,
    image: &serde_json::Value,
    status: &str,
    one_at_a_time: bool,
) -> String {
    let mut diff_ids = strings(image, "diff_ids");
    diff_ids.reverse();
    let mut out = format!("The push refers to repository [{repository}]\n");
    for diff_id in &diff_ids {
        out.push_str(&format!("{}: Preparing\n", short(diff_id)));
    }
    if one_at_a_time {
        for diff_id in &diff_ids[1..] {
            out.push_str(&format!("{}: Waiting\n", short(diff_id)));
        }
    }
    for diff_id in &diff_ids {
        out.push_str(&format!("{}: {status}\n", short(diff_id)));
    }
    out.push_str(&format!(
        "{tag}: digest: {} size: {}\n",
        image["manifest_digest"].as_str().expect("digest"),
        image["manifest_size"]
    ));
    out
}

#[test]
fn push_prints_dockers_lines_and_finds_layers_already_there() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let main = corpus().join("oci/main");
    ok(&root, &["load", "-q", "-i", path_str(&main)]);
    let base = expected_image("base");
    let repository = format!("{}/demo/base", registry.host);

    // Up to 5 layers at once (Docker's default): each layer's lines come
    // in its order, the layers' in the order they finish.
    let out = ok(
        &root,
        &[
            "push",
            "registry.demo.test/demo/base:v1",
            &format!("{repository}:v1"),
        ],
    );
    let expected = push_lines(&repository, "v1", &base, "Pushed", false);
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&out), sorted(&expected));
    assert_eq!(out.lines().last(), expected.lines().last());

    // One at a time: Docker's lines in one order.
    let out = ok(
        &root,
        &[
            "push",
            "--max-concurrent-uploads",
            "1",
            "registry.demo.test/demo/base:v1",
            &format!("{repository}:v1"),
        ],
    );
    assert_eq!(
        out,
        push_lines(&repository, "v1", &base, "Layer already exists", true)
    );

    // Docker 20.10 pushes the latest tag when none is given.
    ok(
        &root,
        &["tag", "registry.demo.test/demo/base:v1", &repository],
    );
    let out = ok(
        &root,
        &["push", "--max-concurrent-uploads", "1", &repository],
    );
    assert_eq!(
        out,
        format!(
            "Using default tag: latest\n{}",
            push_lines(&repository, "latest", &base, "Layer already exists", true)
        )
    );

    let out = ok(&root, &["push", "-q", &repository]);
    assert_eq!(out, format!("{repository}:latest\n"));

    // Another repository of the registry: mounted from the one that has them.
    let copies = format!("{}/copies/base", registry.host);
    let out = ok(
        &root,
        &[
            "push",
            "--max-concurrent-uploads",
            "1",
            &repository,
            &format!("{copies}:v1"),
        ],
    );
    assert_eq!(
        out,
        push_lines(&copies, "v1", &base, "Mounted from demo/base", true)
    );
}

#[test]
fn pull_prints_dockers_lines_then_up_to_date_and_quiet() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source");
    ok(
        &source,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let base = expected_image("base");
    let child = expected_image("child");
    let remote_base = format!("{}/demo/base:v1", registry.host);
    let remote_child = format!("{}/demo/child", registry.host);
    ok(
        &source,
        &[
            "push",
            "-q",
            "registry.demo.test/demo/base:v1",
            &remote_base,
        ],
    );
    ok(
        &source,
        &[
            "push",
            "-q",
            "registry.demo.test/demo/child:v1",
            &remote_child,
        ],
    );

    let root = dir.path().join("target");
    // One download at a time, so that the lines come in one order; all
    // are downloaded before they are registered, in order.
    let out = ok(
        &root,
        &["pull", "--max-concurrent-downloads", "1", &remote_base],
    );
    let layers = layer_digests(&base);
    let mut expected = "v1: Pulling from demo/base\n".to_owned();
    for layer in &layers {
        expected.push_str(&format!("{}: Pulling fs layer\n", short(layer)));
    }
    for (i, layer) in layers.iter().enumerate() {
        if i > 0 {
            expected.push_str(&format!("{}: Waiting\n", short(layer)));
        }
    }
    for layer in &layers {
        for status in ["Verifying Checksum", "Download complete"] {
            expected.push_str(&format!("{}: {status}\n", short(layer)));
        }
    }
    for layer in &layers {
        expected.push_str(&format!("{}: Pull complete\n", short(layer)));
    }
    expected.push_str(&format!(
        "Digest: {}\nStatus: Downloaded newer image for {remote_base}\n{remote_base}\n",
        base["manifest_digest"].as_str().expect("digest")
    ));
    assert_eq!(out, expected);

    // child shares base's three layers.
    let out = ok(&root, &["image", "pull", &remote_child]);
    let child_layers = layer_digests(&child);
    let own = child_layers.last().expect("a layer");
    let mut expected = "Using default tag: latest\nlatest: Pulling from demo/child\n".to_owned();
    for layer in &layers {
        expected.push_str(&format!("{}: Already exists\n", short(layer)));
    }
    expected.push_str(&format!("{}: Pulling fs layer\n", short(own)));
    for status in ["Verifying Checksum", "Download complete", "Pull complete"] {
        expected.push_str(&format!("{}: {status}\n", short(own)));
    }
    let child_digest = child["manifest_digest"].as_str().expect("digest");
    expected.push_str(&format!(
        "Digest: {child_digest}\nStatus: Downloaded newer image for {remote_child}:latest\n{remote_child}:latest\n"
    ));
    assert_eq!(out, expected);

    let out = ok(&root, &["pull", &remote_child]);
    assert_eq!(
        out,
        format!(
            "Using default tag: latest\nlatest: Pulling from demo/child\nDigest: {child_digest}\n\
             Status: Image is up to date for {remote_child}:latest\n{remote_child}:latest\n"
        )
    );
    let out = ok(&root, &["pull", "-q", &remote_child]);
    assert_eq!(out, format!("{remote_child}:latest\n"));

    let images = ok(&root, &["images", "--format", "json"]);
    assert!(
        images.contains(base["image_id"].as_str().expect("id")),
        "{images}"
    );
    assert!(
        images.contains(child["image_id"].as_str().expect("id")),
        "{images}"
    );
}

#[test]
fn pull_of_a_missing_tag_fails_with_the_registrys_message() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = format!("{}/demo/absent:v1", registry.host);
    let output = imgstore(dir.path(), &["pull", &reference]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "Error: GET http://{}/v2/demo/absent/manifests/v1: 404: MANIFEST_UNKNOWN: manifest unknown\n",
            registry.host
        )
    );
    assert_eq!(text(&output.stdout), "v1: Pulling from demo/absent\n");
}

#[test]
fn push_of_an_unknown_image_fails_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    ok(
        &root,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let output = imgstore(&root, &["push", "127.0.0.1:1/nothing:here"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1/nothing:here"), "{stderr}");
}

#[test]
fn login_stores_credentials_push_and_pull_use_them_and_logout_forgets() {
    let registry = RealRegistry::start_htpasswd("alice", "s3cret");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = docker_config();
    let root = dir.path().join("store");
    ok(
        &root,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let remote = format!("{}/private/base:v1", registry.host);
    let run = |args: &[&str]| imgstore_with(&root, config.path(), args);

    let refused = run(&["push", "-q", "registry.demo.test/demo/base:v1", &remote]);
    assert_eq!(refused.status.code(), Some(1));

    let wrong = run(&["login", "-u", "alice", "-p", "nope", &registry.host]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        !config.path().join("config.json").exists(),
        "nothing stored"
    );

    let mut login = command(
        &root,
        &["login", "-u", "alice", "--password-stdin", &registry.host],
    );
    login
        .env("DOCKER_CONFIG", config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().expect("run imgstore login");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"s3cret\n")
        .expect("write the password");
    let output = child.wait_with_output().expect("login");
    let file = config.path().join("config.json");
    assert_eq!(succeeded(output.clone(), &["login"]), "Login Succeeded\n");
    assert_eq!(
        text(&output.stderr),
        format!(
            "WARNING! Your password will be stored unencrypted in {}.\n\
             Configure a credential helper to remove this warning. See\n\
             https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n\n",
            file.display()
        )
    );
    // docker login's format: base64 of user:password under the host.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("config.json")).expect("JSON");
    assert_eq!(json["auths"][&registry.host]["auth"], "YWxpY2U6czNjcmV0");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let pushed = succeeded(
        run(&["push", "-q", "registry.demo.test/demo/base:v1", &remote]),
        &["push"],
    );
    assert_eq!(pushed, format!("{remote}\n"));
    let other = dir.path().join("other");
    let pulled = succeeded(
        imgstore_with(&other, config.path(), &["pull", "-q", &remote]),
        &["pull"],
    );
    assert_eq!(pulled, format!("{remote}\n"));

    let out = succeeded(run(&["logout", &registry.host]), &["logout"]);
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", registry.host)
    );
    let out = succeeded(run(&["logout", &registry.host]), &["logout"]);
    assert_eq!(out, format!("Not logged in to {}\n", registry.host));
    let refused = imgstore_with(&dir.path().join("third"), config.path(), &["pull", &remote]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains(": 401: UNAUTHORIZED"),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn login_without_a_password_on_a_non_terminal_is_refused_as_docker_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = imgstore(dir.path(), &["login", "-u", "alice", "127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "Error: Cannot perform an interactive login from a non TTY device\n"
    );
}

#[test]
fn a_credentials_helper_named_by_creds_store_supplies_the_login() {
    use std::os::unix::fs::PermissionsExt;
    let registry = RealRegistry::start_htpasswd("alice", "s3cret");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = docker_config();
    std::fs::write(
        config.path().join("config.json"),
        r#"{"auths":{},"credsStore":"imgstore-test"}"#,
    )
    .expect("write config.json");
    // docker-credential-<name> get: the server on stdin, JSON on stdout.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let helper = bin.join("docker-credential-imgstore-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = {} ] || exit 1\n\
             echo '{{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n",
            registry.host
        ),
    )
    .expect("write the helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let root = dir.path().join("store");
    ok(
        &root,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let remote = format!("{}/helped/base:v1", registry.host);
    let output = command(
        &root,
        &["push", "-q", "registry.demo.test/demo/base:v1", &remote],
    )
    .env("DOCKER_CONFIG", config.path())
    .env("PATH", path)
    .output()
    .expect("run imgstore push");
    assert_eq!(succeeded(output, &["push"]), format!("{remote}\n"));
}

#[test]
fn pull_takes_one_platform_or_all_not_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = imgstore(
        dir.path(),
        &[
            "pull",
            "--platform",
            "linux/amd64",
            "--all-platforms",
            "127.0.0.1:1/x",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("'--platform <PLATFORM>' cannot be used with '--all-platforms'"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn an_untrusted_registry_certificate_is_refused_unless_tls_verify_is_false_or_its_ca_is_a_system_root()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let [ca, cert, key] = tls_certificates(dir.path(), "cli");
    let registry = RealRegistry::start_tls(&cert, &key);
    let port = registry.host.rsplit_once(':').expect("port").1;
    let host = format!("localhost:{port}");
    let remote = format!("{host}/secure/base:v1");
    let source = dir.path().join("source");
    ok(
        &source,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let push = ["push", "-q", "registry.demo.test/demo/base:v1", &remote];

    // The test's CA is no root of the system's: refused, naming why.
    let refused = imgstore(&source, &push);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with(&format!(
            "Error: HEAD https://{host}/v2/secure/base/blobs/sha256:"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "the registry's certificate is not trusted (invalid peer certificate: UnknownIssuer)"
        ),
        "{stderr}"
    );

    // --tls-verify=false: pushed over HTTPS, unverified.
    let mut unverified = push.to_vec();
    unverified.insert(1, "--tls-verify=false");
    assert_eq!(ok(&source, &unverified), format!("{remote}\n"));
    let login = ["login", "-u", "alice", "-p", "s3cret", &host];
    let refused = imgstore(&source, &login);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("the registry's certificate is not trusted"),
        "{}",
        text(&refused.stderr)
    );
    let mut unverified = login.to_vec();
    unverified.insert(1, "--tls-verify=false");
    assert_eq!(ok(&source, &unverified), "Login Succeeded\n");

    // The CA as the system's roots (SSL_CERT_FILE, or a file of
    // SSL_CERT_DIR): trusted, verified.
    let certs = dir.path().join("system-certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(&ca, certs.join("test-ca.pem")).expect("copy the CA");
    let config = docker_config();
    for (variable, value) in [("SSL_CERT_FILE", ca.as_path()), ("SSL_CERT_DIR", &certs)] {
        let root = dir.path().join(variable);
        let pulled = command(&root, &["pull", "-q", &remote])
            .env("DOCKER_CONFIG", config.path())
            .env(variable, value)
            .output()
            .expect("run imgstore");
        assert_eq!(
            succeeded(pulled, &["pull", "-q", &remote]),
            format!("{remote}\n"),
            "{variable}"
        );
    }
}

/// The lines the README shows after `$ COMMAND` (up to the next `$ ` line
/// or the end of its block).
fn readme_output(command: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let mut lines = readme
        .lines()
        .skip_while(|line| *line != format!("$ {command}"));
    assert!(lines.next().is_some(), "the README shows no `$ {command}`");
    lines
        .take_while(|line| !line.starts_with("$ ") && !line.starts_with("```"))
        .map(str::to_owned)
        .collect()
}

/// True when `actual` is `shown` where each `...` line of `shown` stands
/// for any lines.
fn matches_with_elisions(shown: &[String], actual: &[&str]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches_with_elisions(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first() == Some(&first.as_str()) && matches_with_elisions(rest, &actual[1..])
        }
    }
}

#[test]
fn the_readme_tours_push_and_pull_print_what_it_shows() {
    let registry = RealRegistry::start();
    let port = registry.host.rsplit_once(':').expect("port").1;
    let here = format!("localhost:{port}");
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    ok(
        &root,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let other = dir.path().join("other");
    for (command, root) in [
        (
            "imgstore push registry.demo.test/demo/base:v1 localhost:5000/demo/base:v1",
            &root,
        ),
        (
            "imgstore --root /tmp/other pull localhost:5000/demo/base:v1",
            &other,
        ),
    ] {
        let shown: Vec<String> = readme_output(command)
            .iter()
            .map(|line| line.replace("localhost:5000", &here))
            .collect();
        let args: Vec<String> = command
            .replace("localhost:5000", &here)
            .split(' ')
            .skip(1)
            .filter(|word| !matches!(*word, "--root" | "/tmp/other"))
            .map(str::to_owned)
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let printed = ok(root, &args);
        let actual: Vec<&str> = printed.lines().collect();
        assert!(
            matches_with_elisions(&shown, &actual),
            "README shows:\n{}\nimgstore printed:\n{printed}",
            shown.join("\n")
        );
    }
}
