//! The example images shipped in `examples/images` load with the IDs and
//! names `examples/images/PROVENANCE.md` lists (the README's first command).

use std::path::PathBuf;

use imgstore::Store;

fn shipped(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/images")
        .join(path)
}

#[test]
fn shipped_examples_load_with_their_ids_and_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .import_oci_layout(shipped("oci/main"))
        .expect("oci/main");
    store
        .import_oci_layout(shipped("oci/quirk-unterminated"))
        .expect("quirk");
    store
        .import_archive(shipped("docker/docker-save-multi.docker.tar"))
        .expect("docker save");
    let listed: Vec<(String, Vec<String>)> = store
        .images()
        .expect("list images")
        .into_iter()
        .map(|image| (image.id.to_string(), image.references))
        .collect();
    let demo = |name: &str| vec![format!("registry.demo.test/demo/{name}:v1")];
    assert_eq!(
        listed,
        vec![
            (
                "sha256:00d2746c8cfa8a740eb4bba4621751346827a3f314e47eff94b541d9e2fbb0e5"
                    .to_owned(),
                demo("quirk")
            ),
            (
                "sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408"
                    .to_owned(),
                demo("sibling")
            ),
            (
                "sha256:b8397c21f66803af9335b22192d812d80a71c83841b3aaf6e7716b558dd86d2d"
                    .to_owned(),
                demo("withenv")
            ),
            (
                "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb"
                    .to_owned(),
                demo("base")
            ),
            (
                "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4"
                    .to_owned(),
                demo("child")
            ),
        ]
    );
}
