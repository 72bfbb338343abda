//! nsq-protocol's snappy framing decoder, fed arbitrary bytes cut into chunks the input chooses:
//! however the bytes arrive, the result must be the same as decoding them in one piece. Also
//! checks that what the encoder writes decodes back to the input.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use nsq_protocol::compress::{Snappy, StreamCodec};

fuzz_target!(|data: &[u8]| {
    // `n` (1..=8) chunk sizes come first, then the stream.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let Some((sizes, stream)) = rest.split_at_checked(usize::from(n % 8) + 1) else {
        return;
    };

    let mut whole = BytesMut::new();
    let whole_ok = Snappy::default().decode(stream, &mut whole).is_ok();

    let mut dec = Snappy::default();
    let mut pieces = BytesMut::new();
    let mut pieces_ok = true;
    for chunk in nsq_fuzz::chunks(stream, sizes) {
        if dec.decode(chunk, &mut pieces).is_err() {
            pieces_ok = false;
            break;
        }
    }
    assert_eq!(whole_ok, pieces_ok);
    if whole_ok {
        assert_eq!(whole, pieces);
    }

    let mut enc = Snappy::default();
    let mut wire = Vec::new();
    enc.encode(stream, &mut wire).unwrap();
    let mut back = BytesMut::new();
    let mut dec = Snappy::default();
    for chunk in nsq_fuzz::chunks(&wire, sizes) {
        dec.decode(chunk, &mut back).unwrap();
    }
    assert_eq!(&back[..], stream);
});
