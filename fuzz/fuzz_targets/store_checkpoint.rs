//! nsq-store's channel checkpoint decoder (`journal::ChannelSnapshot::decode`) on arbitrary
//! bytes, and the encode/decode round trip of whatever it decoded.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use nsq_store::journal::ChannelSnapshot;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = Vec::new();
    // Random bytes almost never start with the magic and a matching checksum; supplying both
    // reaches the entry decoding.
    if mode & 1 != 0 {
        bytes.extend_from_slice(b"NSQRSCK1");
        bytes.extend_from_slice(&crc32c::crc32c(rest).to_be_bytes());
    }
    bytes.extend_from_slice(rest);
    let Ok(snap) = ChannelSnapshot::decode(&Bytes::from(bytes)) else {
        return;
    };
    let again = ChannelSnapshot::decode(&Bytes::from(snap.encode()));
    assert_eq!(again, Ok(snap));
});
