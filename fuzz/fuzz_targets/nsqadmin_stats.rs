//! nsqadmin's reading of upstream answers: nsqd `/stats` JSON merged across nodes (node rows,
//! channel aggregates, the topic aggregate) and nsqlookupd producer lists, then encoded again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsqadmin::stats::{aggregate_topic, merge_nodes, Producer, RawProducer, RawStats};

fn json_ok(bytes: Vec<u8>) {
    assert!(serde_json::from_slice::<serde_json::Value>(&bytes).is_ok());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(producers) = serde_json::from_slice::<Vec<RawProducer>>(data) {
        let list: Vec<Producer> = producers.into_iter().map(Producer::from_raw).collect();
        for p in &list {
            let _ = p.http_address();
        }
        json_ok(nsq_http::json::to_vec(&list).unwrap());
    }
    let (Ok(a), Ok(b)) = (
        serde_json::from_slice::<RawStats>(data),
        serde_json::from_slice::<RawStats>(data),
    ) else {
        return;
    };
    let first = a
        .topics
        .as_ref()
        .and_then(|t| t.first())
        .map(|t| t.topic_name.clone())
        .unwrap_or_default();
    let answers = vec![
        ("127.0.0.1:4151".to_string(), "b-host".to_string(), a),
        ("[::1]:4151".to_string(), "a-host".to_string(), b),
    ];
    let mut merged = merge_nodes(answers, &first, 1_700_000_000);
    let all = aggregate_topic(&mut merged, &first);
    json_ok(nsq_http::json::to_vec(&merged.arena.topic_json(all)).unwrap());
    for id in merged.channels.values() {
        json_ok(nsq_http::json::to_vec(&merged.arena.channel_json(*id)).unwrap());
    }
});
