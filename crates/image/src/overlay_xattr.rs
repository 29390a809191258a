//! Where overlay keeps its own metadata (opaque directories, redirects): `trusted.overlay.*`
//! xattrs, which only the host's root may write. Rootless, in a user namespace, overlay is
//! mounted with `userxattr` and uses `user.overlay.*` instead, so layers unpacked there mark
//! opaque directories with that name. Both prefixes are overlay's and never an image's.

use std::sync::OnceLock;

/// Whether this process runs in a user namespace other than the host's (its uid_map is not
/// the initial identity map of every id).
pub fn in_user_namespace() -> bool {
    static IN: OnceLock<bool> = OnceLock::new();
    *IN.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|map| map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
    })
}

/// The opaque-directory xattr that overlay reads where this process mounts it.
pub fn opaque() -> &'static str {
    if in_user_namespace() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Whether `name` is overlay's own metadata (of either namespace): never taken from an image.
pub fn is_overlays(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_prefixes_are_overlays() {
        assert!(is_overlays(b"trusted.overlay.opaque"));
        assert!(is_overlays(b"user.overlay.redirect"));
        assert!(!is_overlays(b"user.mime_type"));
        assert!(!is_overlays(b"security.capability"));
    }
}
