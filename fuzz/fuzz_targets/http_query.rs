//! nsq-http's handling of request text from outside: query strings (`Query::parse`),
//! percent-decoding, path cleaning and re-escaping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsq_http::path::{clean_path, escape_path, percent_decode};
use nsq_http::query::Query;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(q) = Query::parse(Some(&text)) {
        let _ = q.get("topic");
        let _ = q.get_bool("binary", false);
        let _ = q.get_all("channel").count();
        assert_eq!(q.is_empty(), q.iter().next().is_none());
    }
    for plus_as_space in [false, true] {
        if let Ok(raw) = percent_decode(&text, plus_as_space) {
            assert!(raw.len() <= text.len());
        }
    }
    let clean = clean_path(&text);
    assert!(clean.starts_with('/'));
    assert_eq!(clean_path(&clean), clean);
    let escaped = escape_path(&text);
    assert_eq!(percent_decode(&escaped, false).unwrap(), text.as_bytes());
});
