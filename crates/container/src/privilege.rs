//! Whether the runtime has the host's root: run by an unprivileged user (runc's "rootless")
//! or as root of a user namespace (berth's rootless mode), it has none, and what only the
//! host's root may do (make cgroups in the host's hierarchies, mknod devices) is done
//! another way or not at all.

/// The runtime runs without the host's root: its effective uid is not 0, or it is 0 only
/// inside a user namespace (its uid_map is not the initial namespace's identity map).
/// Read once per process (create asks before the fork, so the init inherits the answer and
/// pays no syscall for it).
pub fn unprivileged() -> bool {
    static UNPRIVILEGED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNPRIVILEGED.get_or_init(|| {
        if rustix::process::geteuid().as_raw() != 0 {
            return true;
        }
        match std::fs::read_to_string("/proc/self/uid_map") {
            Ok(map) => !is_initial_map(&map),
            // no /proc: assume the host's root, as before this check existed
            Err(_) => false,
        }
    })
}

/// The initial user namespace maps every id to itself: "0 0 4294967295".
fn is_initial_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    matches!(lines.as_slice(), [f] if f.as_slice() == ["0", "0", "4294967295"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_full_identity_map_is_the_hosts() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map(
            "         0       1000          1\n         1     100000      65536\n"
        ));
        assert!(!is_initial_map("         0          0      65536\n"));
        assert!(!is_initial_map(""));
    }
}
