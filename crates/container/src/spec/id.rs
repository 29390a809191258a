//! Container ids: the same alphabet runc accepts, so that an id is always a safe single path
//! component under the state root.

use crate::error::{Error, Result};

/// Checks that `id` is a non-empty name of `[A-Za-z0-9_+.-]` that is not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return invalid("it is empty");
    }
    if id.len() > 1024 {
        return invalid("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return invalid("it is a relative path component");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return invalid("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x.y_z+w", "0123456789abcdef"] {
            validate_id(id).unwrap();
        }
    }

    #[test]
    fn rejects_paths_and_odd_characters() {
        for id in ["", ".", "..", "a/b", "../x", "a b", "a\nb", "é"] {
            assert!(validate_id(id).is_err(), "{id:?} accepted");
        }
    }
}
