//! The inputs fuzzing found (crates/container/fuzz/regressions), replayed on stable Rust so
//! that CI keeps them fixed: each is a config.json the planner must refuse, naming the NUL
//! byte, instead of handing the init a string it cannot turn into a C string.

use std::path::{Path, PathBuf};

use berth_container::spec::{parse, plan};
use oci_spec::runtime::Spec;

fn regressions() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_finding_is_refused_by_the_planner() {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
    let files = regressions();
    assert!(files.len() >= 3, "regressions missing: {files:?}");
    for file in files {
        let data = std::fs::read(&file).unwrap();
        let spec: Spec = match parse(&file, &data) {
            Ok(spec) => spec,
            Err(e) => panic!(
                "{}: no longer parses ({e}); keep it a planner case",
                file.display()
            ),
        };
        match plan("regression", bundle.path(), &spec) {
            Ok(_) => panic!("{}: the planner accepts it", file.display()),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains("NUL"),
                    "{}: refused, but the error does not name the NUL byte: {message}",
                    file.display()
                );
            }
        }
    }
}
