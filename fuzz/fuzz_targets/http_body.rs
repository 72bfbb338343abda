//! The request bodies nsqd's HTTP handlers parse: `/mpub` as text lines (`split_mpub_lines`) or
//! binary (`parse_mpub_messages`), and the `/config` PUT values.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_daemon::LogLevel;
use nsq_protocol::command::parse_mpub_messages;
use nsq_protocol::Limits;
use nsqd::http_api::split_mpub_lines;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(rest);
    let max_msg = usize::from(knob) + 1;

    if let Some(msgs) = split_mpub_lines(&body, max_msg) {
        for m in &msgs {
            assert!(!m.is_empty() && m.len() <= max_msg && !m.contains(&b'\n'));
        }
        let total: usize = msgs.iter().map(|m| m.len()).sum();
        assert!(total <= body.len());
    } else {
        assert!(body.split(|&b| b == b'\n').any(|l| l.len() > max_msg));
    }

    let limits = Limits {
        max_msg_size: max_msg as i64,
        max_body_size: 4096,
        max_rdy_count: 2500,
        max_req_timeout_ms: 3_600_000,
    };
    if let Ok(Some((ranges, end))) = parse_mpub_messages(&body, 0, &limits, true) {
        assert!(!ranges.is_empty() && end <= body.len());
        for r in ranges {
            assert!(r.start < r.end && r.end <= end && r.len() <= max_msg);
            let _ = body.slice(r);
        }
    }

    let _ = serde_json::from_slice::<Vec<String>>(&body);
    if let Ok(text) = std::str::from_utf8(&body) {
        let _ = text.parse::<LogLevel>();
        let _ = text.parse::<i64>();
    }
});
