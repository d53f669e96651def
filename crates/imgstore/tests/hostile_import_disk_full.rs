//! A gzip load that cannot write its decompressed copy (the disk is full)
//! reports an I/O error naming the user's file, not an invalid archive
//! (issue 12, item 17). The full disk is a file size limit
//! (`RLIMIT_FSIZE`, writes past it fail with `EFBIG`), set for the whole
//! process: this file holds this one test alone for that reason.

use std::io::Write;

use imgstore::Error;
use imgstore::backend::ErrorKind;

mod common;
use common::{BACKENDS, open, snapshot};

fn set_file_size_limit(limit: libc::rlim_t) {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write and read the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut current), 0);
        current.rlim_cur = limit.min(current.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &current), 0);
    }
}

#[test]
fn a_full_disk_during_a_gzip_load_is_an_io_error_naming_the_users_file() {
    // SAFETY: ignoring SIGXFSZ makes writes past the limit fail with EFBIG
    // instead of killing the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let store = open(&root, backend);
        // 8 MiB of tar (a file of zeros), a few KiB gzip-compressed.
        let mut builder = tar::Builder::new(Vec::new());
        let data = vec![0u8; 8 << 20];
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, "manifest.json", &data[..])
            .expect("tar");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder
            .write_all(&builder.into_inner().expect("tar"))
            .expect("gzip");
        let gz = dir.path().join("image.tar.gz");
        std::fs::write(&gz, encoder.finish().expect("gzip")).expect("write");

        let before = snapshot(&store);
        set_file_size_limit(1 << 20);
        let result = store.import(&gz);
        set_file_size_limit(libc::RLIM_INFINITY);
        match result {
            Err(err @ Error::Io { .. }) => {
                assert_eq!(err.kind(), ErrorKind::Io);
                let Error::Io { path, source, .. } = err else {
                    unreachable!()
                };
                assert_eq!(path, gz);
                assert_eq!(source.raw_os_error(), Some(libc::EFBIG));
            }
            other => panic!("{backend:?}: expected Error::Io, got {other:?}"),
        }
        assert_eq!(snapshot(&store), before);
        let left: Vec<_> = std::fs::read_dir(root.join("tmp")).expect("tmp").collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
