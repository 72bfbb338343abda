//! nsqd's handling of AUTH: the secret's trip into the auth server query, and the decoding,
//! validation and pattern compilation of the auth server's answer.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use nsqd::auth::{go_query_escape, parse_state};

fuzz_target!(|data: &[u8]| {
    // Input: `secret \0 topic \0 channel \0 answer`; missing parts are empty.
    let mut parts = data.splitn(4, |&b| b == 0);
    let secret = parts.next().unwrap_or_default();
    let topic = parts.next().unwrap_or_default();
    let channel = parts.next().unwrap_or_default();
    let answer = parts.next().unwrap_or(data);

    let mut query = String::new();
    go_query_escape(secret, &mut query);
    assert!(query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.~+%".contains(&b)));
    let query = format!("secret={query}");
    let (_, back) = form_urlencoded::parse(query.as_bytes()).next().unwrap();
    // The decoder gives text; a secret that is not UTF-8 comes back lossily, like any server's.
    assert_eq!(back, String::from_utf8_lossy(secret));

    if let Ok(state) = parse_state(answer, Instant::now()) {
        state.allows(topic, channel);
        state.allows(topic, b"");
    }
});
