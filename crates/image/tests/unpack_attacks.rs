//! Layers that try to write outside their directory. Each fails clearly or is neutralized,
//! and nothing appears outside the store: a canary directory next to it stays empty.

mod unpack_support;

use std::path::{Path, PathBuf};

use berth_image::{Digest, Store};
use unpack_support::{Tar, gzip, root_or_skip};

struct Setup {
    _tmp: tempfile::TempDir,
    store: Store,
    store_dir: PathBuf,
    /// Outside the store: nothing may appear here.
    canary: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let canary = tmp.path().join("canary");
    std::fs::create_dir(&canary).unwrap();
    std::fs::write(canary.join("victim"), b"original").unwrap();
    let store = Store::open(&store_dir).unwrap();
    Setup {
        store,
        store_dir,
        canary,
        _tmp: tmp,
    }
}

impl Setup {
    fn canary_untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.canary)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "something was written outside the store");
        assert_eq!(
            std::fs::read(self.canary.join("victim")).unwrap(),
            b"original"
        );
    }

    /// A failed put leaves no layer, no blob and no staging file.
    fn nothing_stored(&self) {
        let count = |d: &str| std::fs::read_dir(self.store_dir.join(d)).unwrap().count();
        assert_eq!(count("blobs/sha256"), 0, "blobs");
        assert_eq!(count("layers"), 1, "layers (only by-blob/)");
        assert_eq!(count("layers/by-blob"), 0, "layer records");
        assert_eq!(count("tmp"), 0, "staging");
    }

    fn rel(&self, p: &Path) -> String {
        p.to_str().unwrap().trim_start_matches('/').to_string()
    }
}

#[test]
fn dot_dot_names_are_refused() {
    let s = setup();
    let climb = format!("{}/victim", "../".repeat(12));
    for name in ["../victim", "a/../../victim", climb.as_str()] {
        let tar = Tar::new().file("ok", b"x").file(name, b"pwned").finish();
        let err = s
            .store
            .put_layer_stream(&mut &tar[..], &|_| {})
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name) && msg.contains(".."), "{msg}");
        s.nothing_stored();
    }
    s.canary_untouched();
}

#[test]
fn absolute_names_land_inside_the_layer() {
    if !root_or_skip("unpack") {
        return;
    }
    let s = setup();
    let target = s.canary.join("victim");
    let tar = Tar::new().file(target.to_str().unwrap(), b"pwned").finish();
    let layer = s.store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    let inside = s.store.layer_dir(&layer.diff_id).join(s.rel(&target));
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    s.canary_untouched();
}

#[test]
fn no_write_through_a_symlink_planted_earlier() {
    if !root_or_skip("unpack") {
        return;
    }
    let s = setup();
    let canary = s.canary.to_str().unwrap();
    // An absolute symlink out: resolved inside the layer, where its target does not exist.
    let tar = Tar::new()
        .symlink("evil", canary)
        .file("evil/victim", b"pwned")
        .finish();
    let err = s
        .store
        .put_layer_stream(&mut &tar[..], &|_| {})
        .unwrap_err();
    assert!(err.to_string().contains("evil/victim"), "{err}");
    s.nothing_stored();

    // A relative one climbing out: clamped at the layer root, the write stays inside.
    let tar = Tar::new()
        .symlink("up", &"../".repeat(20))
        .file(&format!("up/{}/new", s.rel(&s.canary)), b"pwned")
        .finish();
    let layer = s.store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    let dir = s.store.layer_dir(&layer.diff_id);
    assert_eq!(
        std::fs::read(dir.join(s.rel(&s.canary)).join("new")).unwrap(),
        b"pwned"
    );

    // A symlink replaced by a file of the same name: the symlink goes, nothing is followed.
    let tar = Tar::new()
        .symlink("f", s.canary.join("victim").to_str().unwrap())
        .file("f", b"pwned")
        .finish();
    let layer = s.store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    let f = s.store.layer_dir(&layer.diff_id).join("f");
    assert!(std::fs::symlink_metadata(&f).unwrap().is_file());

    // A symlink, then a directory over it, then a file in it: the directory replaced the
    // symlink (a swap within the stream).
    let tar = Tar::new()
        .symlink("d", canary)
        .dir("d")
        .file("d/victim", b"pwned")
        .finish();
    let layer = s.store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    let d = s.store.layer_dir(&layer.diff_id).join("d");
    assert!(std::fs::symlink_metadata(&d).unwrap().is_dir());
    assert_eq!(std::fs::read(d.join("victim")).unwrap(), b"pwned");
    s.canary_untouched();
}

#[test]
fn a_symlink_from_a_lower_layer_is_not_followed_by_an_upper_one() {
    if !root_or_skip("unpack") {
        return;
    }
    let s = setup();
    let lower = Tar::new()
        .symlink("link", s.canary.to_str().unwrap())
        .finish();
    let upper = Tar::new().file("link/victim", b"pwned").finish();
    s.store.put_layer_stream(&mut &lower[..], &|_| {}).unwrap();
    let top = s.store.put_layer_stream(&mut &upper[..], &|_| {}).unwrap();
    // Each layer has its own directory: the upper's `link/` is a real directory.
    let dir = s.store.layer_dir(&top.diff_id).join("link");
    assert!(std::fs::symlink_metadata(&dir).unwrap().is_dir());
    s.canary_untouched();
}

#[test]
fn hard_links_must_point_inside_the_layer() {
    if !root_or_skip("unpack") {
        return;
    }
    let s = setup();
    let host = s.canary.join("victim");
    let host = host.to_str().unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // A host path: taken as inside the layer, where it does not exist.
        (Tar::new().hardlink("h", host).finish(), "not in the layer"),
        // Climbing out.
        (
            Tar::new().hardlink("h", "../../canary/victim").finish(),
            "climbs out",
        ),
        // Through a symlink planted first.
        (
            Tar::new()
                .symlink("s", s.canary.to_str().unwrap())
                .hardlink("h", "s/victim")
                .finish(),
            "not in the layer",
        ),
    ];
    for (tar, why) in cases {
        let err = s
            .store
            .put_layer_stream(&mut &tar[..], &|_| {})
            .unwrap_err();
        assert!(err.to_string().contains(why), "{err}");
        s.nothing_stored();
    }
    // A hard link to a symlink links the symlink itself, and writing the name later
    // replaces the link instead of writing through it.
    let tar = Tar::new()
        .symlink("s", host)
        .hardlink("h", "s")
        .file("h", b"pwned")
        .finish();
    let layer = s.store.put_layer_stream(&mut &tar[..], &|_| {}).unwrap();
    let dir = s.store.layer_dir(&layer.diff_id);
    assert!(
        std::fs::symlink_metadata(dir.join("s"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::symlink_metadata(dir.join("h")).unwrap().is_file());
    s.canary_untouched();
}

#[test]
fn a_whiteout_cannot_climb_out() {
    let s = setup();
    let tar = Tar::new().file("../.wh.victim", b"").finish();
    assert!(s.store.put_layer_stream(&mut &tar[..], &|_| {}).is_err());
    s.nothing_stored();
    s.canary_untouched();
}

#[test]
fn a_blob_whose_digest_does_not_match_is_not_stored() {
    let s = setup();
    let tar = Tar::new().file("a", b"1").finish();
    let wrong = Digest::of(b"something else");
    let err = s
        .store
        .put_layer(&wrong, &mut &gzip(&tar)[..], &|_| {})
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&wrong.to_string()) && msg.contains(&Digest::of(&gzip(&tar)).to_string()),
        "{msg}"
    );
    s.nothing_stored();
    let err = s
        .store
        .put_blob(Some(&wrong), &mut &b"config"[..])
        .unwrap_err();
    assert!(err.to_string().contains(&wrong.to_string()), "{err}");
    s.nothing_stored();
    assert!(!s.store.has_blob(&wrong));
}

#[test]
fn a_truncated_stream_is_refused() {
    let s = setup();
    let tar = Tar::new()
        .file("a", &vec![7u8; 100_000])
        .file("b", b"2")
        .finish();
    let gz = gzip(&tar);
    let blob = Digest::of(&gz);
    for cut in [gz.len() / 2, gz.len() - 4] {
        let err = s
            .store
            .put_layer(&blob, &mut &gz[..cut], &|_| {})
            .unwrap_err();
        assert!(err.to_string().contains(&blob.to_string()), "{err}");
        s.nothing_stored();
    }
    let err = s
        .store
        .put_layer_stream(&mut &tar[..tar.len() - 1500], &|_| {})
        .unwrap_err();
    assert!(err.to_string().contains("layer"), "{err}");
    s.nothing_stored();
    s.canary_untouched();
}

#[test]
fn a_directory_swapped_for_a_symlink_during_unpack_sends_nothing_outside() {
    if !root_or_skip("unpack") {
        return;
    }
    let s = setup();
    // Many entries under `d/`, so the race has time to hit.
    let mut tar = Tar::new();
    tar.dir("d");
    for i in 0..3000 {
        tar.file(&format!("d/f{i}"), b"pwned");
    }
    let tar = tar.finish();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let tmp = s.store_dir.join("tmp");
        let canary = s.canary.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(staging) = std::fs::read_dir(&tmp)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("layer-")
                            && p.is_dir()
                    })
                else {
                    continue;
                };
                let d = staging.join("diff/d");
                let aside = staging.join("diff/aside");
                // Swap the directory for a symlink out of the layer, then back.
                if std::fs::rename(&d, &aside).is_ok() {
                    let _ = std::os::unix::fs::symlink(&canary, &d);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&d);
                    let _ = std::fs::rename(&aside, &d);
                    swaps += 1;
                }
            }
            swaps
        })
    };
    let result = s.store.put_layer_stream(&mut &tar[..], &|_| {});
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    eprintln!(
        "{swaps} swaps during the unpack; unpack: {:?}",
        result.as_ref().map(|l| l.diff_id)
    );
    // Whatever the unpack made of it (an error, or files where the swap left them), nothing
    // went through the symlink.
    s.canary_untouched();
}
