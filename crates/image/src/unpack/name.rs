//! Entry names from a tar, turned into components inside the layer root.
//!
//! A name is data from the image: `/etc/passwd` means the layer's `etc/passwd` (GNU tar and
//! docker strip the leading slash), `.` and empty components vanish, and `..` may only climb
//! back inside the layer: a name that would climb out of it is refused.

/// The components of `name` below the layer root (empty: the root itself).
pub(crate) fn components(name: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out: Vec<&[u8]> = Vec::new();
    for component in name.split(|b| *b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err("the name climbs out of the layer with `..`");
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `a/b/c` of the components (what openat2 resolves inside the root).
pub(crate) fn join(components: &[&[u8]]) -> Vec<u8> {
    let mut path = Vec::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(c);
    }
    if path.is_empty() {
        path.push(b'.');
    }
    path
}

/// What a whiteout entry asks for, in the overlay terms the unpack writes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout<'a> {
    /// `.wh..wh..opq`: the directory hides everything below it.
    Opaque,
    /// `.wh.NAME`: NAME from the layers below is deleted.
    Remove(&'a [u8]),
    /// Other `.wh..wh.*` names: aufs bookkeeping, dropped (docker drops them too).
    Ignore,
}

pub(crate) fn whiteout(base: &[u8]) -> Option<Whiteout<'_>> {
    let rest = base.strip_prefix(b".wh.")?;
    Some(match rest {
        b".wh..opq" => Whiteout::Opaque,
        _ if rest.starts_with(b".wh.") => Whiteout::Ignore,
        b"" | b"." | b".." => Whiteout::Ignore,
        name => Whiteout::Remove(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside() {
        assert_eq!(
            components(b"./etc/passwd").unwrap(),
            [&b"etc"[..], &b"passwd"[..]]
        );
        assert_eq!(
            components(b"/etc//passwd/").unwrap(),
            [&b"etc"[..], &b"passwd"[..]]
        );
        assert_eq!(components(b"a/../b").unwrap(), [&b"b"[..]]);
        assert!(components(b"./").unwrap().is_empty());
        assert!(components(b"../x").is_err());
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"/../x").is_err());
        assert_eq!(join(&components(b"/a/b").unwrap()), b"a/b");
        assert_eq!(join(&[]), b".");
    }

    #[test]
    fn whiteouts_are_recognized() {
        assert_eq!(whiteout(b".wh..wh..opq"), Some(Whiteout::Opaque));
        assert_eq!(whiteout(b".wh.foo"), Some(Whiteout::Remove(b"foo")));
        assert_eq!(whiteout(b".wh..wh.plnk"), Some(Whiteout::Ignore));
        assert_eq!(whiteout(b".wh.."), Some(Whiteout::Ignore));
        assert_eq!(whiteout(b"foo"), None);
    }
}
