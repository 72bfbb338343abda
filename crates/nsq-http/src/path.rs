//! Request-path text handling: percent-decoding, httprouter-style cleaning, and Go-style
//! re-escaping for redirect targets.

/// A `%` not followed by two hex digits. Go's URL parser rejects these in paths and queries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL escape {0:?}")]
pub struct InvalidEscape(pub String);

/// Decodes `%XX` escapes into raw bytes. `plus_as_space` is the query-component rule; in paths a
/// `+` is literal.
pub fn percent_decode(raw: &str, plus_as_space: bool) -> Result<Vec<u8>, InvalidEscape> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(bytes.len());
                        let shown = String::from_utf8_lossy(&bytes[i..end]).into_owned();
                        return Err(InvalidEscape(shown));
                    }
                }
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Resolves `.`/`..` elements and collapses repeated slashes; the result is rooted. Returns the
/// kept elements and whether the last element processed was a lone `.`.
fn resolve_elements(p: &str) -> (Vec<&str>, bool) {
    let mut kept: Vec<&str> = Vec::new();
    let mut ends_with_dot = false;
    for element in p.split('/') {
        ends_with_dot = false;
        match element {
            "" => {}
            "." => ends_with_dot = true,
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    (kept, ends_with_dot)
}

fn join_rooted(elements: &[&str], trailing: bool) -> String {
    let mut out = String::with_capacity(elements.iter().map(|e| e.len() + 1).sum::<usize>() + 1);
    for element in elements {
        out.push('/');
        out.push_str(element);
    }
    // The root keeps its single slash; any other path gets one back only when it had it.
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// The canonical form httprouter redirects to: rooted, no empty/`.`/`..` elements, and a trailing
/// slash kept when the input had one or ended in a `.` element (`/abc/.` becomes `/abc/`).
pub fn clean_path(p: &str) -> String {
    let (elements, ends_with_dot) = resolve_elements(p);
    let trailing = (p.len() > 1 && p.ends_with('/')) || ends_with_dot;
    join_rooted(&elements, trailing)
}

/// Go's `path.Clean` with the trailing-slash preservation `http.Redirect` applies to a local
/// redirect target. Differs from [`clean_path`] only for a final `.` element.
pub(crate) fn redirect_clean(p: &str) -> String {
    let (elements, _) = resolve_elements(p);
    join_rooted(&elements, p.ends_with('/'))
}

/// Escapes a decoded path the way Go's `URL.EscapedPath` does for a path it has to re-encode:
/// unreserved characters and `$&+,/:;=@` stay literal, everything else becomes `%XX`.
pub fn escape_path(p: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(p.len());
    for &b in p.as_bytes() {
        let literal = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'@'
            );
        if literal {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_matches_httprouter_table() {
        let cases = [
            ("/", "/"),
            ("/abc", "/abc"),
            ("/a/b/c", "/a/b/c"),
            ("/abc/", "/abc/"),
            ("/a/b/c/", "/a/b/c/"),
            ("", "/"),
            ("a/", "/a/"),
            ("abc", "/abc"),
            ("abc/def", "/abc/def"),
            ("//", "/"),
            ("/abc//", "/abc/"),
            ("/abc/def//", "/abc/def/"),
            ("/abc//def//ghi", "/abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc/"),
            (".", "/"),
            ("./", "/"),
            ("/abc/./def", "/abc/def"),
            ("/./abc/def", "/abc/def"),
            ("/abc/.", "/abc/"),
            ("..", "/"),
            ("../", "/"),
            ("../../", "/"),
            ("../..", "/"),
            ("../../abc", "/abc"),
            ("/abc/def/ghi/../jkl", "/abc/def/jkl"),
            ("/abc/def/../ghi/../jkl", "/abc/jkl"),
            ("/abc/def/..", "/abc"),
            ("/abc/def/../..", "/"),
            ("/abc/def/../../..", "/"),
            ("/abc/def/../../../ghi/jkl/../../../mno", "/mno"),
            ("abc/./../def", "/def"),
            ("abc//./../def", "/def"),
            ("abc/../../././../def", "/def"),
            ("/a/.../b", "/a/.../b"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_path(input), want, "clean_path({input:?})");
            assert_eq!(clean_path(want), want, "clean_path({want:?}) idempotent");
        }
    }

    #[test]
    fn redirect_clean_drops_final_dot_slash() {
        assert_eq!(redirect_clean("/abc/."), "/abc");
        assert_eq!(redirect_clean("/abc/"), "/abc/");
        assert_eq!(redirect_clean("/config/.."), "/");
    }

    #[test]
    fn percent_decode_rules() {
        assert_eq!(percent_decode("/a%2Fb", false).unwrap(), b"/a/b");
        assert_eq!(percent_decode("a+b", false).unwrap(), b"a+b");
        assert_eq!(percent_decode("a+b", true).unwrap(), b"a b");
        assert_eq!(percent_decode("%e2%82%ac", false).unwrap(), "€".as_bytes());
        assert_eq!(
            percent_decode("%zz", false),
            Err(InvalidEscape("%zz".into()))
        );
        assert_eq!(
            percent_decode("ab%4", false),
            Err(InvalidEscape("%4".into()))
        );
        assert_eq!(percent_decode("%", false), Err(InvalidEscape("%".into())));
    }

    #[test]
    fn escape_path_keeps_path_safe_characters() {
        assert_eq!(escape_path("/config/a b"), "/config/a%20b");
        assert_eq!(escape_path("/x/$&+,:;=@-_.~"), "/x/$&+,:;=@-_.~");
        assert_eq!(escape_path("/q?#%"), "/q%3F%23%25");
        assert_eq!(escape_path("/€"), "/%E2%82%AC");
    }
}
