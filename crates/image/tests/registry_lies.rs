//! A registry that lies, through a front on 127.0.0.1 that rewrites a real registry's
//! answers: a manifest served with an index's Content-Type (CVE-2021-41190), and blobs cut
//! short, another manifest than the digest asked for, and a registry that answers 503 to
//! everything. Each pull fails naming what was wrong, and stores no image.

mod support_registry;

use std::io::Write;

use berth_image::progress::Silent;
use berth_image::registry::pull::{PullOptions, pull};
use berth_image::{Reference, Store};
use support_registry::{Auth, Images, Registry, Server, exchange, forward, registry_tools};

#[test]
fn lies_truncations_and_outages_fail_cleanly() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    reg.push(&images.src("bb"), "t/bb:v2s2", &["--format", "v2s2"]);
    let upstream = reg.addr.clone();
    let front = Server::start(move |head, headers, mut stream| {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let lie = path.contains("/lie/");
        if path.contains("/swap/") {
            // Asked by digest, answers with another manifest.
            let head = head.replace("/swap/", "/");
            let head = match head.find("/manifests/sha256:") {
                Some(i) => format!("{}/manifests/v2s2 HTTP/1.1", &head[..i]),
                None => head,
            };
            forward(&upstream, &head, headers, stream);
            return;
        }
        if path.contains("/down/") {
            // A registry that keeps failing: bounded retries, then an error.
            let _ = stream.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
        let head = head.replace("/lie/", "/");
        if lie && path.contains("/manifests/") {
            let resp = String::from_utf8(exchange(&upstream, &head, headers)).unwrap();
            let resp = resp.replace(
                "Content-Type: application/vnd.oci.image.manifest.v1+json",
                "Content-Type: application/vnd.oci.image.index.v1+json",
            );
            let _ = stream.write_all(resp.as_bytes());
        } else if lie && path.contains("/blobs/") && head.starts_with("GET") {
            let resp = exchange(&upstream, &head, headers);
            let _ = stream.write_all(&resp[..resp.len() - 100]);
        } else {
            forward(&upstream, &head, headers, stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // The front passes the truth through.
    let honest = Reference::parse(&format!("{}/t/bb:oci", front.addr)).unwrap();
    let r = Reference::parse(&format!("{}/lie/t/bb:oci", front.addr)).unwrap();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&r.to_string())
            && e.contains(
                "served as application/vnd.oci.image.index.v1+json but is an image manifest"
            ),
        "{e}"
    );
    assert!(store.list().unwrap().is_empty());
    let image = pull(&store, &honest, &PullOptions::default(), &Silent).unwrap();
    store.remove(&image, true).unwrap();

    // Truncated blobs: the manifest is honest (the lie is only in /blobs/ here).
    let front2_upstream = front.addr.clone();
    let front2 = Server::start(move |head, headers, stream| {
        let head = if head.contains("/manifests/") {
            head.replace("/lie/", "/")
        } else {
            head.to_string()
        };
        forward(&front2_upstream, &head, headers, stream);
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{}/lie/t/bb:oci", front2.addr)).unwrap();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&r.to_string()) && e.contains("sha256:"), "{e}");
    assert!(store.list().unwrap().is_empty());

    // A manifest asked by digest whose bytes hash to something else.
    let oci = format!(
        "sha256:{}",
        support_registry::sha256_hex(&reg.manifest("t/bb:oci"))
    );
    let r = Reference::parse(&format!("{}/swap/t/bb@{oci}", front.addr)).unwrap();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("manifest {oci}: digest mismatch")),
        "{e}"
    );
    assert!(store.list().unwrap().is_empty());

    // 503 on every manifest request: a few quick retries, then the status, naming the reference.
    let r = Reference::parse(&format!("{}/down/t/bb:oci", front.addr)).unwrap();
    let t0 = std::time::Instant::now();
    let e = pull(&store, &r, &PullOptions::default(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&r.to_string()) && e.contains("503"), "{e}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t0.elapsed()
    );
}

/// 403 is final: the pull fails at once naming the reference and the status. 429 is a
/// registry asking to slow down: one such answer is retried and the pull succeeds; a
/// registry that keeps answering 429 fails after the bounded retries, naming it.
#[test]
fn forbidden_fails_and_too_many_requests_is_retried() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    let upstream = reg.addr.clone();
    let busy_once = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let front = Server::start(move |head, headers, mut stream| {
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let answer = |status: &str| {
            format!(
                "HTTP/1.1 {status}\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        };
        if path.contains("/forbidden/") {
            let _ = stream.write_all(answer("403 Forbidden").as_bytes());
        } else if path.contains("/toomany/")
            || (path.contains("/busy/")
                && path.contains("/manifests/")
                && busy_once.swap(false, std::sync::atomic::Ordering::SeqCst))
        {
            let _ = stream.write_all(answer("429 Too Many Requests").as_bytes());
        } else {
            let head = head.replace("/busy/", "/");
            forward(&upstream, &head, headers, stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (prefix, status) in [("forbidden", "403"), ("toomany", "429")] {
        let r = Reference::parse(&format!("{}/{prefix}/t/bb:oci", front.addr)).unwrap();
        let t0 = std::time::Instant::now();
        let e = pull(&store, &r, &PullOptions::default(), &Silent)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&r.to_string()) && e.contains(status), "{e}");
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t0.elapsed()
        );
        assert!(store.list().unwrap().is_empty());
    }
    let r = Reference::parse(&format!("{}/busy/t/bb:oci", front.addr)).unwrap();
    pull(&store, &r, &PullOptions::default(), &Silent).expect("one 429 is retried");
    assert_eq!(store.list().unwrap().len(), 1);
}

/// Layers come down at the same time: a front that holds each blob answer for a moment sees
/// both of the image's layers requested before either is answered.
#[test]
fn layers_are_fetched_in_parallel() {
    if !registry_tools() {
        return;
    }
    use std::sync::atomic::{AtomicUsize, Ordering};
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    let upstream = reg.addr.clone();
    let in_flight = std::sync::Arc::new(AtomicUsize::new(0));
    let most = std::sync::Arc::new(AtomicUsize::new(0));
    let (now, max) = (in_flight.clone(), most.clone());
    let front = Server::start(move |head, headers, stream| {
        let blob = head.starts_with("GET") && head.contains("/blobs/");
        if blob {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        forward(&upstream, head, headers, stream);
        if blob {
            now.fetch_sub(1, Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{}/t/bb:oci", front.addr)).unwrap();
    pull(&store, &r, &PullOptions::default(), &Silent).unwrap();
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "at most {} blob requests were in flight at once",
        most.load(Ordering::SeqCst)
    );
}

/// A layer is unpacked while it streams in: a front that sends the first part of a large
/// layer and then waits finds the layer's files appearing in the store meanwhile.
#[test]
fn a_layer_is_unpacked_while_it_downloads() {
    if !registry_tools() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    let images = Images::build();
    let reg = Registry::start(Auth::None);
    reg.push(&images.src("bb"), "t/bb:oci", &["--format", "oci"]);
    let upstream = reg.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let seen = std::sync::Arc::new(AtomicBool::new(false));
    let saw = seen.clone();
    let front = Server::start(move |head, headers, mut stream| {
        let resp = exchange(&upstream, head, headers);
        if !(head.starts_with("GET") && head.contains("/blobs/") && resp.len() > 256 << 10) {
            let _ = stream.write_all(&resp);
            return;
        }
        let half = resp.len() * 6 / 10;
        let _ = stream.write_all(&resp[..half]);
        let _ = stream.flush();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline && !saw.load(Ordering::SeqCst) {
            // a file of the layer (its bin/), not the blob being downloaded
            if files_below(&root.join("tmp"))
                .iter()
                .any(|p| p.contains("/bin/"))
            {
                saw.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = stream.write_all(&resp[half..]);
    });
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{}/t/bb:oci", front.addr)).unwrap();
    pull(&store, &r, &PullOptions::default(), &Silent).unwrap();
    assert!(
        seen.load(Ordering::SeqCst),
        "no file of the layer was written while it was still downloading"
    );
}

/// The paths of everything anywhere below `dir`.
fn files_below(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        out.push(e.path().to_string_lossy().into_owned());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(files_below(&e.path()));
        }
    }
    out
}
