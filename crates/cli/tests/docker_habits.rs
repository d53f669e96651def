//! Docker's habits (issue 16): pipes for `load` and `save`, the options
//! Docker users type (`images --no-trunc REPO`, `--filter until=`,
//! `history --no-trunc -H=false -q`, `rmi --no-prune`), Docker's command
//! tree (`image ls`, `system df`) and shell completions. Expected outputs
//! are those a real Docker 20.10 printed for the same corpus images.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use imgstore::digest::Algorithm;

mod common;
use common::{
    command, expected_image, fixture, imgstore, ok, path_str, succeeded, text, years_ago,
};

const REPO: &str = "registry.demo.test/demo";

/// Runs with `input` written to its stdin through a pipe.
fn imgstore_piped(root: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = command(root, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imgstore");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait for imgstore");
    writer
        .join()
        .expect("writer thread")
        .expect("write to imgstore's stdin");
    output
}

/// A failure: exit code 1, nothing on stdout; returns stderr.
fn failed(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "");
    text(&output.stderr)
}

/// A store loaded from the three-image docker-save archive of the corpus.
fn loaded() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let archive = fixture("docker/docker-save-multi.docker.tar");
    ok(root.path(), &["load", "-q", "-i", path_str(&archive)]);
    root
}

const LOADED_MULTI: &str = "Loaded image: registry.demo.test/demo/base:v1\n\
                            Loaded image: registry.demo.test/demo/child:v1\n\
                            Loaded image: registry.demo.test/demo/sibling:v1\n";

/// `images` of the three-image store, as `docker images` printed it.
fn images_table() -> String {
    let created = years_ago("2023-11-21T22:21:20Z");
    format!(
        "REPOSITORY                        TAG       IMAGE ID       CREATED       SIZE\n\
         registry.demo.test/demo/child     v1        d96e5dc19265   {created}   90B\n\
         registry.demo.test/demo/sibling   v1        96b315356805   {created}   111B\n\
         registry.demo.test/demo/base      v1        ccb28a06ca54   {created}   82B\n"
    )
}

// 1. Pipes.

#[test]
fn load_reads_a_tar_redirected_to_stdin() {
    let root = tempfile::tempdir().expect("temp dir");
    let archive = File::open(fixture("docker/docker-save-multi.docker.tar")).expect("fixture");
    let output = command(root.path(), &["load"])
        .stdin(Stdio::from(archive))
        .output()
        .expect("run imgstore");
    assert_eq!(succeeded(output, &["load"]), LOADED_MULTI);
    assert_eq!(ok(root.path(), &["images"]), images_table());
}

#[test]
fn load_reads_a_pipe_with_or_without_dash_and_quiet_in_any_place() {
    let bytes =
        std::fs::read(fixture("docker/docker-save-multi.docker.tar")).expect("read fixture");
    for args in [
        &["load"][..],
        &["load", "-i", "-"],
        &["load", "--input", "-", "--quiet"],
        &["load", "-q"],
        &["--quiet", "load"],
        &["image", "load", "-q"],
        &["load", "-i", "/dev/stdin"],
    ] {
        let root = tempfile::tempdir().expect("temp dir");
        let output = imgstore_piped(root.path(), args, &bytes);
        assert_eq!(succeeded(output, args), LOADED_MULTI, "{args:?}");
        assert_eq!(ok(root.path(), &["images"]), images_table(), "{args:?}");
        // The spooled copy is gone.
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("tmp"))
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{args:?}: {leftovers:?}");
    }
}

#[test]
fn load_reads_gzip_and_oci_archives_from_a_pipe() {
    let root = tempfile::tempdir().expect("temp dir");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(&std::fs::read(fixture("docker/base.docker.tar")).expect("read fixture"))
        .expect("compress");
    let gzipped = encoder.finish().expect("compress");
    assert_eq!(gzipped[..2], [0x1f, 0x8b]);
    let output = imgstore_piped(root.path(), &["load"], &gzipped);
    assert_eq!(
        succeeded(output, &["load"]),
        "Loaded image: registry.demo.test/demo/base:v1\n"
    );
    let oci = std::fs::read(fixture("oci-archive/sibling.oci.tar")).expect("read fixture");
    let output = imgstore_piped(root.path(), &["load", "-i", "-"], &oci);
    assert_eq!(
        succeeded(output, &["load"]),
        "Loaded image: registry.demo.test/demo/sibling:v1\n"
    );
}

#[test]
fn load_of_an_empty_or_bad_stream_names_stdin() {
    let root = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        failed(imgstore(root.path(), &["load"])),
        "Error: stdin: invalid archive: neither an oci-archive (no oci-layout) nor a docker \
         save archive (no manifest.json)\n"
    );
    let truncated = std::fs::read(fixture("bad/truncated.docker.tar")).expect("read fixture");
    let output = imgstore_piped(root.path(), &["load"], &truncated);
    let message = failed(output);
    assert!(
        message.starts_with("Error: stdin: invalid archive: "),
        "{message}"
    );
}

#[test]
fn load_and_save_refuse_a_terminal_as_docker_does() {
    let root = loaded();
    let (terminal, _controller) = pseudo_terminal();
    let output = command(root.path(), &["load"])
        .stdin(Stdio::from(terminal.try_clone().expect("dup")))
        .output()
        .expect("run imgstore");
    assert_eq!(
        failed(output),
        "Error: requested load from stdin, but stdin is empty\n"
    );
    for args in [
        &["save", &format!("{REPO}/base:v1")][..],
        &["save", "-o", "-", &format!("{REPO}/base:v1")],
    ] {
        let output = command(root.path(), args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(terminal.try_clone().expect("dup")))
            .stderr(Stdio::piped())
            .output()
            .expect("run imgstore");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&output.stderr),
            "Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n"
        );
    }
}

/// A pseudo-terminal: (the terminal side, the controlling side kept open).
fn pseudo_terminal() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two new descriptors into the integers given;
    // the null pointers ask for no name, settings or window size.
    let status = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nothing else.
    unsafe {
        (
            OwnedFd::from_raw_fd(terminal),
            OwnedFd::from_raw_fd(controller),
        )
    }
}

#[test]
fn save_writes_the_tar_to_stdout_that_load_reads_back() {
    let root = loaded();
    let dir = tempfile::tempdir().expect("temp dir");
    let names = [
        format!("{REPO}/child:v1"),
        format!("{REPO}/sibling:v1"),
        format!("{REPO}/base:v1"),
    ];
    for format in ["docker", "oci"] {
        let file = dir.path().join(format!("{format}.tar"));
        let mut to_file = vec!["save", "--format", format, "-o", path_str(&file)];
        to_file.extend(names.iter().map(String::as_str));
        assert_eq!(ok(root.path(), &to_file), "");
        let from_file = std::fs::read(&file).expect("saved file");
        // The same bytes without -o, with -o -, and through `image save -q`.
        for prefix in [
            &["save", "--format", format][..],
            &["save", "--format", format, "-o", "-"],
            &["image", "save", "-q", "--format", format],
        ] {
            let mut args = prefix.to_vec();
            args.extend(names.iter().map(String::as_str));
            let output = imgstore(root.path(), &args);
            assert_eq!(output.status.code(), Some(0), "{args:?}");
            assert_eq!(text(&output.stderr), "", "{args:?}");
            assert!(
                output.stdout == from_file,
                "{args:?}: not the bytes of -o FILE"
            );
        }
        assert!(!root.path().join("-").exists());
        assert!(!Path::new("-").exists());

        let other = tempfile::tempdir().expect("temp dir");
        let output = imgstore_piped(other.path(), &["load"], &from_file);
        let loaded = succeeded(output, &["load"]);
        let mut lines: Vec<&str> = loaded.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, {
            let mut want: Vec<&str> = LOADED_MULTI.lines().collect();
            want.sort_unstable();
            want
        });
        assert_eq!(ok(other.path(), &["images"]), images_table(), "{format}");
    }
}

#[test]
fn save_to_stdout_refuses_a_layout_and_unknown_images_before_writing() {
    let root = loaded();
    let output = imgstore(
        root.path(),
        &["save", "--format", "oci-layout", &format!("{REPO}/base:v1")],
    );
    assert_eq!(
        failed(output),
        "Error: stdout: format oci-layout: an OCI layout is a directory and cannot be written \
         to a stream; write an oci-archive (a tar) or give a directory\n"
    );
    let output = imgstore(
        root.path(),
        &["save", &format!("{REPO}/base:v1"), "nope:v1"],
    );
    assert_eq!(failed(output), "Error: No such image: nope:v1\n");
}

/// A docker-save tar of one image whose layer holds `size` zero bytes,
/// written to `dir/big.tar`.
fn big_archive(dir: &Path, size: u64) -> PathBuf {
    let layer_path = dir.join("layer.tar");
    {
        let mut layer = tar::Builder::new(File::create(&layer_path).expect("create layer"));
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        layer
            .append_data(&mut header, "zeros", std::io::repeat(0).take(size))
            .expect("write layer");
        layer.finish().expect("finish layer");
    }
    let diff_id = Algorithm::Sha256
        .from_reader(File::open(&layer_path).expect("open layer"))
        .expect("hash layer");
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .expect("config JSON");
    let config_name = format!("{}.json", Algorithm::Sha256.from_bytes(&config).encoded());
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["big:v1"],
        "Layers": ["layer/layer.tar"],
    }]))
    .expect("manifest JSON");
    let archive_path = dir.join("big.tar");
    let mut archive = tar::Builder::new(File::create(&archive_path).expect("create archive"));
    for (name, bytes) in [
        (config_name.as_str(), &config),
        ("manifest.json", &manifest),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        archive
            .append_data(&mut header, name, bytes.as_slice())
            .expect("write member");
    }
    archive
        .append_path_with_name(&layer_path, "layer/layer.tar")
        .expect("write layer member");
    archive.finish().expect("finish archive");
    std::fs::remove_file(&layer_path).expect("remove layer");
    archive_path
}

/// The largest resident set of the children this process has waited for,
/// in bytes (Linux reports kilobytes).
fn children_max_rss() -> u64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    usage.ru_maxrss as u64 * 1024
}

#[test]
fn loading_and_saving_through_pipes_keep_memory_bounded() {
    const SIZE: u64 = 256 << 20;
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = big_archive(dir.path(), SIZE);
    let root = tempfile::tempdir().expect("temp dir");
    // Fed through a pipe by a thread copying the file, as `cat x | load`.
    let mut child = command(root.path(), &["load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run imgstore");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut file = File::open(&archive).expect("open archive");
    let feeder = std::thread::spawn(move || std::io::copy(&mut file, &mut stdin));
    let output = child.wait_with_output().expect("wait");
    assert_eq!(
        feeder.join().expect("feeder").expect("copy to stdin"),
        std::fs::metadata(&archive).expect("stat").len()
    );
    assert_eq!(succeeded(output, &["load"]), "Loaded image: big:v1\n");
    // Saved to a pipe read and counted as it comes.
    let mut child = command(root.path(), &["save", "big:v1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run imgstore");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let saved = std::io::copy(&mut stdout, &mut std::io::sink()).expect("read stdout");
    assert!(child.wait().expect("wait").success());
    assert!(saved > SIZE, "{saved}");
    // Every child of this test binary so far (the other tests' too) stayed
    // far below the size of the layer that went through.
    let max_rss = children_max_rss();
    assert!(
        max_rss < 64 << 20,
        "a child used {max_rss} bytes for a {SIZE}-byte layer"
    );
}

// 5. Missing options.

#[test]
fn images_no_trunc_and_a_positional_reference_as_docker() {
    let root = loaded();
    let created = years_ago("2023-11-21T22:21:20Z");
    // docker images --no-trunc registry.demo.test/demo/base
    let want = format!(
        "REPOSITORY                     TAG       IMAGE ID                                                                  CREATED       SIZE\n\
         registry.demo.test/demo/base   v1        sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb   {created}   82B\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &["images", "--no-trunc", &format!("{REPO}/base")]
        ),
        want
    );
    assert_eq!(
        ok(
            root.path(),
            &["image", "ls", &format!("{REPO}/base:v1"), "--no-trunc"]
        ),
        want
    );
    // docker images -q --no-trunc
    assert_eq!(
        ok(root.path(), &["images", "-q", "--no-trunc"]),
        "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4\n\
         sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408\n\
         sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb\n"
    );
    // docker images 'registry.demo.test/demo/*:v1' -q
    assert_eq!(
        ok(root.path(), &["images", &format!("{REPO}/*:v1"), "-q"]),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
    assert_eq!(
        ok(root.path(), &["images", "nothing/like/it"]),
        "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
    );
}

#[test]
fn images_until_keeps_images_created_at_or_before_it() {
    let root = loaded();
    for name in ["base", "child", "sibling"] {
        // The corpus's three images were created within minutes.
        let created = expected_image(name)["created"]
            .as_str()
            .expect("created")
            .to_owned();
        let short = expected_image(name)["image_id_short"]
            .as_str()
            .expect("short ID")
            .to_owned();
        let listed = ok(
            root.path(),
            &["images", "-q", "--filter", &format!("until={created}")],
        );
        assert!(listed.lines().any(|l| l == short), "{name}: {listed}");
    }
    let base = expected_image("base");
    let base_created = base["created"].as_str().expect("created");
    assert_eq!(base_created, "2023-11-21T22:17:20Z");
    assert_eq!(
        ok(
            root.path(),
            &["images", "-q", "-f", "until=2023-11-21T22:17:20"]
        ),
        "ccb28a06ca54\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &["images", "-q", "-f", "until=2023-11-21T22:17:19Z"]
        ),
        ""
    );
    assert_eq!(
        ok(root.path(), &["images", "-q", "-f", "until=2023-11-21"]),
        ""
    );
    // A duration counts back from now: the corpus is years old.
    assert_eq!(
        ok(root.path(), &["images", "-q", "-f", "until=24h"]),
        "d96e5dc19265\n96b315356805\nccb28a06ca54\n"
    );
    assert_eq!(
        ok(root.path(), &["images", "-q", "-f", "until=1700000000"]),
        ""
    );
    assert_eq!(
        failed(imgstore(root.path(), &["images", "-f", "until=yesterday"])),
        "Error: filter \"until=yesterday\": failed to parse value as time or duration\n"
    );
}

#[test]
fn history_options_print_what_docker_prints() {
    let root = loaded();
    let child = format!("{REPO}/child:v1");
    let created = years_ago("2023-11-21T22:20:20Z");
    // docker history (the empty COMMENT leaves SIZE padded, as tabwriter).
    assert_eq!(
        ok(root.path(), &["history", &child]),
        format!(
            "IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n\
             d96e5dc19265   {created}   /bin/sh -c #(nop) COPY plugins /app/plugins     8B        \n\
             <missing>      {created}   /bin/sh -c rm -rf /etc/motd /usr/share/doc &…   6B        \n\
             <missing>      {created}   /bin/sh -c #(nop) COPY app /                    33B       \n\
             <missing>      {created}   /bin/sh -c #(nop) ADD rootfs.tar /              43B       \n"
        )
    );
    // docker history --no-trunc
    assert_eq!(
        ok(root.path(), &["image", "history", "--no-trunc", &child]),
        format!(
            "IMAGE                                                                     CREATED       CREATED BY                                                           SIZE      COMMENT\n\
             sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4   {created}   /bin/sh -c #(nop) COPY plugins /app/plugins                          8B        \n\
             <missing>                                                                 {created}   /bin/sh -c rm -rf /etc/motd /usr/share/doc && echo 1.0.0 > VERSION   6B        \n\
             <missing>                                                                 {created}   /bin/sh -c #(nop) COPY app /                                         33B       \n\
             <missing>                                                                 {created}   /bin/sh -c #(nop) ADD rootfs.tar /                                   43B       \n"
        )
    );
    // docker history --human=false (and -H=false)
    let not_human = "IMAGE          CREATED AT             CREATED BY                                      SIZE      COMMENT\n\
                     d96e5dc19265   2023-11-21T22:20:20Z   /bin/sh -c #(nop) COPY plugins /app/plugins     8         \n\
                     <missing>      2023-11-21T22:16:20Z   /bin/sh -c rm -rf /etc/motd /usr/share/doc &…   6         \n\
                     <missing>      2023-11-21T22:15:20Z   /bin/sh -c #(nop) COPY app /                    33        \n\
                     <missing>      2023-11-21T22:14:20Z   /bin/sh -c #(nop) ADD rootfs.tar /              43        \n";
    assert_eq!(
        ok(root.path(), &["history", "--human=false", &child]),
        not_human
    );
    assert_eq!(ok(root.path(), &["history", "-H=false", &child]), not_human);
    assert_eq!(
        ok(root.path(), &["history", "-H", &child]),
        ok(root.path(), &["history", &child])
    );
    // docker history -q, -q --no-trunc
    assert_eq!(
        ok(root.path(), &["history", "-q", &child]),
        "d96e5dc19265\n<missing>\n<missing>\n<missing>\n"
    );
    assert_eq!(
        ok(
            root.path(),
            &["history", "-q", "--no-trunc", "-H=false", &child]
        ),
        "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4\n\
         <missing>\n<missing>\n<missing>\n"
    );
    // As pflag reads it, `--human false` leaves `false` a second argument.
    let output = imgstore(root.path(), &["history", "--human", "false", &child]);
    assert_eq!(output.status.code(), Some(2));
}

/// A store where base is the parent of child and has no name left: an
/// intermediate image, as a local build leaves one.
fn with_intermediate_parent() -> tempfile::TempDir {
    let root = loaded();
    let base = expected_image("base");
    let child = expected_image("child");
    imgstore::Store::open(root.path())
        .and_then(|store| {
            store.set_parent(
                child["image_id"].as_str().unwrap_or("?"),
                base["image_id"].as_str().unwrap_or("?"),
            )
        })
        .expect("set parent");
    assert_eq!(
        ok(root.path(), &["rmi", &format!("{REPO}/base:v1")]),
        format!("Untagged: {REPO}/base:v1\n")
    );
    root
}

#[test]
fn rmi_prunes_an_untagged_parent_unless_no_prune() {
    let child = format!("{REPO}/child:v1");
    let root = with_intermediate_parent();
    assert_eq!(
        ok(root.path(), &["rmi", &child]),
        format!(
            "Untagged: {child}\n\
             Deleted: sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4\n\
             Deleted: sha256:381c7400999e9fee7aab180750d5eb8a243d6898400009c7b1b121f7e4734f95\n\
             Deleted: sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb\n\
             Deleted: sha256:8016075873266f5250310088b59f29b5cc73261e2707b06198527df87ff09f9f\n"
        )
    );
    assert_eq!(ok(root.path(), &["images", "-a", "-q"]), "96b315356805\n");

    let root = with_intermediate_parent();
    assert_eq!(
        ok(root.path(), &["image", "rm", "--no-prune", &child]),
        format!(
            "Untagged: {child}\n\
             Deleted: sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4\n\
             Deleted: sha256:381c7400999e9fee7aab180750d5eb8a243d6898400009c7b1b121f7e4734f95\n"
        )
    );
    // The parent stays, now a dangling image.
    assert_eq!(
        ok(root.path(), &["images", "-q", "-f", "dangling=true"]),
        "ccb28a06ca54\n"
    );
}

// 6. Docker's command tree.

#[test]
fn image_and_system_commands_are_the_short_ones() {
    let root = loaded();
    let base = format!("{REPO}/base:v1");
    for (long, short) in [
        (&["image", "ls"][..], &["images"][..]),
        (&["image", "list", "-a"], &["images", "-a"]),
        (&["image", "inspect", &base], &["inspect", &base]),
        (&["image", "history", &base], &["history", &base]),
        (&["system", "df"], &["df"]),
        (&["system", "df", "-v"], &["df", "-v"]),
    ] {
        assert_eq!(ok(root.path(), long), ok(root.path(), short), "{long:?}");
    }
    assert_eq!(ok(root.path(), &["image", "tag", &base, "renamed:v2"]), "");
    assert_eq!(
        ok(root.path(), &["image", "remove", "renamed:v2"]),
        "Untagged: renamed:v2\n"
    );
    assert_eq!(
        ok(root.path(), &["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = dir.path().join("base.tar");
    assert_eq!(
        ok(
            root.path(),
            &["image", "save", "-o", path_str(&saved), &base]
        ),
        ""
    );
    assert_eq!(
        ok(root.path(), &["image", "rm", &base]).lines().next(),
        Some(format!("Untagged: {base}").as_str())
    );
    assert_eq!(
        ok(root.path(), &["image", "load", "-i", path_str(&saved)]),
        format!("Loaded image: {base}\n")
    );
}

// 8. Shell completions.

#[test]
fn completion_scripts_cover_the_command_tree() {
    let root = tempfile::tempdir().expect("temp dir");
    let bash = ok(root.path(), &["completion", "bash"]);
    assert!(bash.starts_with("_imgstore() {\n"), "{bash}");
    assert!(bash.contains("complete -F _imgstore"), "{bash}");
    for word in [
        "imgstore__subcmd__image__subcmd__ls",
        "imgstore__subcmd__system__subcmd__df",
        "--no-prune",
        "--no-trunc",
    ] {
        assert!(bash.contains(word), "bash: {word}");
    }
    // What bash offers after `imgstore image l`.
    let script = format!(
        "{bash}\nCOMP_WORDS=(imgstore image l); COMP_CWORD=2; _imgstore imgstore l image; \
         echo \"${{COMPREPLY[@]}}\""
    );
    let offered = Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash runs");
    assert_eq!(
        text(&offered.stdout),
        "ls list load\n",
        "{}",
        text(&offered.stderr)
    );
    let zsh = ok(root.path(), &["completion", "zsh"]);
    assert!(zsh.starts_with("#compdef imgstore\n"), "{zsh}");
    let fish = ok(root.path(), &["completion", "fish"]);
    assert!(fish.contains("complete -c imgstore"), "{fish}");
    assert!(fish.contains("-a \"image\""), "{fish}");
    // No store is needed, and none is made.
    assert_eq!(std::fs::read_dir(root.path()).expect("read").count(), 0);
    let output = imgstore(root.path(), &["completion", "tcsh"]);
    assert_eq!(output.status.code(), Some(2));
}
