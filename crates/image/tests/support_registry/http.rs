//! A tiny HTTP server for fronts that rewrite or redirect a real registry's answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A tiny threaded HTTP/1.1 server: one request per connection (`Connection: close`).
pub struct Server {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(
        handler: impl Fn(&str, &[(String, String)], TcpStream) + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let handler = handler.clone();
                        std::thread::spawn(move || {
                            let mut reader = BufReader::new(stream.try_clone().unwrap());
                            let mut head = String::new();
                            let mut headers = Vec::new();
                            if reader.read_line(&mut head).unwrap_or(0) == 0 {
                                return;
                            }
                            loop {
                                let mut line = String::new();
                                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                                    break;
                                }
                                if let Some((k, v)) = line.split_once(':') {
                                    headers.push((
                                        k.trim().to_ascii_lowercase(),
                                        v.trim().to_string(),
                                    ));
                                }
                            }
                            handler(head.trim_end(), &headers, stream);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { addr, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends one bodiless request to `upstream` and returns the whole raw response.
pub fn exchange(upstream: &str, head: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut up = TcpStream::connect(upstream).unwrap();
    let mut req = format!("{head}\r\n");
    for (k, v) in headers {
        if k != "connection" {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    resp
}

/// Forwards one bodiless request to `upstream` and its response back, closing both.
pub fn forward(upstream: &str, head: &str, headers: &[(String, String)], mut client: TcpStream) {
    let resp = exchange(upstream, head, headers);
    let _ = client.write_all(&resp);
}
