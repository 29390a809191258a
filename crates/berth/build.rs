//! berth links at a fixed address (not position-independent), as berth-runtime and the Go
//! engines (runc, podman, dockerd as Debian builds them) do. Every monitor is this program
//! forked and lives as long as its container: a position-independent berth has its ~300 KiB
//! of relocated read-only data (RELRO) copied into every process, which a fixed address
//! leaves as clean pages of the file, shared, and dropped by an idle monitor
//! (bench/front.sh, "monitor memory": 750 -> 450 KiB private dirty per monitor). The code
//! is still compiled position-independent; only the link fixes it, so no crate's build
//! changes and the linker resolves the relocations once.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
