//! nsq-protocol's IDENTIFY body decoding and negotiation, with the response it leads to.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nsq_protocol::identify::{negotiate, response_json, IdentifyPolicy, IdentifyRequest};

fn policy(features: bool) -> IdentifyPolicy {
    IdentifyPolicy {
        version: "1.3.0".into(),
        default_heartbeat: Duration::from_secs(30),
        max_heartbeat_interval: Duration::from_secs(60),
        default_output_buffer_size: 16384,
        max_output_buffer_size: 65536,
        default_output_buffer_timeout: Duration::from_millis(250),
        min_output_buffer_timeout: Duration::from_millis(25),
        max_output_buffer_timeout: Duration::from_secs(30),
        default_msg_timeout: Duration::from_secs(60),
        max_msg_timeout: Duration::from_secs(900),
        max_rdy_count: 2500,
        max_deflate_level: 6,
        tls_available: features,
        snappy_enabled: features,
        deflate_enabled: features,
        auth_required: features,
        topology_region: "r".into(),
        topology_zone: "z".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = IdentifyRequest::from_json(data) else {
        return;
    };
    for features in [false, true] {
        let p = policy(features);
        let Ok(n) = negotiate(&req, &p) else {
            continue;
        };
        assert!(!(n.snappy && n.deflate));
        assert!(features || !(n.tls || n.snappy || n.deflate));
        assert!((0..=99).contains(&n.sample_rate));
        assert!(n.deflate_level <= p.max_deflate_level);
        assert!(n.msg_timeout <= p.max_msg_timeout);
        if let Some(hb) = n.heartbeat {
            assert!(hb <= p.max_heartbeat_interval.max(p.default_heartbeat));
        }
        let resp: serde_json::Value = serde_json::from_slice(&response_json(&n, &p)).unwrap();
        assert!(resp.is_object());
    }
});
