//! Topic and channel name rules, shared by every NSQ component.

const EPHEMERAL: &[u8] = b"#ephemeral";

/// `^[.a-zA-Z0-9_-]+(#ephemeral)?$`, 1..=64 bytes including the suffix.
pub fn is_valid_name(name: &[u8]) -> bool {
    if name.is_empty() || name.len() > 64 {
        return false;
    }
    let base = name.strip_suffix(EPHEMERAL).unwrap_or(name);
    !base.is_empty()
        && base
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

pub fn is_valid_topic_name(name: &[u8]) -> bool {
    is_valid_name(name)
}

pub fn is_valid_channel_name(name: &[u8]) -> bool {
    is_valid_name(name)
}

/// Ephemeral topics and channels live in memory only and disappear when unused.
pub fn is_ephemeral(name: &str) -> bool {
    name.as_bytes().ends_with(EPHEMERAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(is_valid_name(b"a"));
        assert!(is_valid_name(b"a.b_c-D9"));
        assert!(is_valid_name(b"t#ephemeral"));
        assert!(!is_valid_name(b"#ephemeral"));
        assert!(!is_valid_name(b""));
        assert!(!is_valid_name(b"a b"));
        assert!(!is_valid_name(b"a#b"));
        assert!(!is_valid_name(b"a#ephemeral#ephemeral"));
        assert!(is_valid_name(&[b'a'; 64]));
        assert!(!is_valid_name(&[b'a'; 65]));
        let mut long = vec![b'a'; 54];
        long.extend_from_slice(b"#ephemeral");
        assert!(is_valid_name(&long));
        long.insert(0, b'a');
        assert!(!is_valid_name(&long));
        assert!(is_ephemeral("x#ephemeral"));
        assert!(!is_ephemeral("x"));
    }
}
