//! A registry that sends blobs from elsewhere, as registries on S3/GCS do: a front on
//! 127.0.0.1 passes every request to a real (htpasswd) registry except blob GETs, which it
//! redirects to a "blob storage" server on `localhost` (another origin). That server
//! records every Authorization header it gets (there must be none), answers each blob's
//! first request with 503 and breaks the second midway: the pull must retry through both.

mod support_registry;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_image::progress::Silent;
use berth_image::registry::pull::{PullOptions, pull};
use berth_image::registry::{Credentials, Options};
use berth_image::{Reference, Store};
use support_registry::{Auth, Images, PASSWORD, Registry, Server, USER, forward, registry_tools};

#[test]
fn redirected_blobs_get_no_credentials_and_failures_are_retried() {
    if !registry_tools() {
        return;
    }
    let images = Images::build();
    let reg = Registry::start(Auth::Htpasswd);
    reg.push(&images.src("bb"), "t/bb:oci", &[]);
    let blobs_dir: PathBuf = reg
        .dir
        .path()
        .join("storage/docker/registry/v2/blobs/sha256");

    let leaked: Arc<Mutex<Vec<String>>> = Arc::default();
    let tries: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (leaked2, tries2) = (leaked.clone(), tries.clone());
    let storage = Server::start(move |head, headers, mut stream| {
        if let Some((_, v)) = headers.iter().find(|(k, _)| k == "authorization") {
            leaked2.lock().unwrap().push(v.clone());
        }
        let hex = head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_start_matches("/blob/")
            .to_string();
        let n = {
            let mut t = tries2.lock().unwrap();
            let n = t.entry(hex.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let data = std::fs::read(blobs_dir.join(&hex[..2]).join(&hex).join("data")).unwrap();
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            data.len()
        );
        match n {
            1 => {
                let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
            2 => {
                // Half the blob, then the connection drops.
                let _ = stream.write_all(header.as_bytes());
                let _ = stream.write_all(&data[..data.len() / 2]);
            }
            _ => {
                let _ = stream.write_all(header.as_bytes());
                let _ = stream.write_all(&data);
            }
        }
    });
    let storage_port = storage.addr.rsplit(':').next().unwrap().to_string();
    let upstream = reg.addr.clone();
    let front = Server::start(move |head, headers, mut stream| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        if head.starts_with("GET ") && path.contains("/blobs/sha256:") {
            // Like a registry on S3: the blob is somewhere else, reached without credentials.
            if !headers.iter().any(|(k, _)| k == "authorization") {
                let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return;
            }
            let hex = path.rsplit("sha256:").next().unwrap();
            let location = format!("http://localhost:{storage_port}/blob/{hex}");
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        forward(&upstream, head, headers, stream);
    });

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = Reference::parse(&format!("{}/t/bb:oci", front.addr)).unwrap();
    let options = PullOptions {
        registry: Options {
            creds: Some(Credentials {
                username: USER.into(),
                password: PASSWORD.into(),
            }),
            ..Options::default()
        },
        ..PullOptions::default()
    };
    let image = pull(&store, &r, &options, &Silent).unwrap();
    assert_eq!(image.id.to_string(), images.config_digest("bb"));
    assert!(
        leaked.lock().unwrap().is_empty(),
        "credentials went to blob storage: {:?}",
        leaked.lock().unwrap()
    );
    // Two layers and the config, each: a 503, a broken stream, then the whole blob.
    let tries = tries.lock().unwrap();
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(tries.values().all(|n| *n == 3), "{tries:?}");
}
