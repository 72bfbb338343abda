//! nsq-protocol's raw deflate stream decoder, fed arbitrary bytes cut into chunks the input
//! chooses: when decoding succeeds, the output must not depend on how the bytes arrived. Also
//! checks that what the encoder writes decodes back to the input.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nsq_protocol::compress::{Deflate, StreamCodec};

fuzz_target!(|data: &[u8]| {
    // `n` (1..=8) chunk sizes come first, then the stream.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Some((sizes, stream)) = rest.split_at_checked(usize::from(n % 8) + 1) else {
        return;
    };
    let level = u32::from(n >> 4) % 10;

    let mut whole = BytesMut::new();
    let whole_ok = Deflate::new(level).decode(stream, &mut whole).is_ok();

    let mut dec = Deflate::new(level);
    let mut pieces = BytesMut::new();
    let mut pieces_ok = true;
    for chunk in nsq_fuzz::chunks(stream, sizes) {
        if dec.decode(chunk, &mut pieces).is_err() {
            pieces_ok = false;
            break;
        }
    }
    if whole_ok && pieces_ok {
        assert_eq!(whole, pieces);
    }

    let mut enc = Deflate::new(level);
    let mut wire = Vec::new();
    // Two batches, as two flushes of a connection's writes.
    let (a, b) = stream.split_at(stream.len() / 2);
    enc.encode(a, &mut wire).unwrap();
    enc.encode(b, &mut wire).unwrap();
    let mut back = BytesMut::new();
    let mut dec = Deflate::new(level);
    for chunk in nsq_fuzz::chunks(&wire, sizes) {
        dec.decode(chunk, &mut back).unwrap();
    }
    assert_eq!(&back[..], stream);
});
