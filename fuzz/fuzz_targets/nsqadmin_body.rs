//! nsqadmin's request bodies (`{"action":...}`, `{"topic":...,"channel":...}`), read the way Go's
//! JSON decoder reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match nsqadmin::api::decode_body(data, &["topic", "channel"]) {
        Ok(fields) => assert_eq!(fields.len(), 2),
        Err(message) => assert!(!message.is_empty()),
    }
});
