//! nsqlookupd's V1 protocol: command lines, the IDENTIFY body size and JSON body, read from a
//! byte stream the way a connection reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsqlookupd::protocol::{
    decode_identify, encode_response, identify_body_size, parse_line, trim_space, Command,
};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut identified = false;
    while !rest.is_empty() {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => rest.split_at(i + 1),
            None => (rest, &[][..]),
        };
        rest = after;
        let trimmed = trim_space(line);
        assert!(trimmed.len() <= line.len());
        match parse_line(line, identified) {
            Ok(Command::Identify) => {
                let Some((size, body)) = rest.split_first_chunk::<4>() else {
                    return;
                };
                let Ok(size) = identify_body_size(*size) else {
                    return;
                };
                let Some(body) = body.get(..size) else {
                    return;
                };
                rest = &after[4 + size..];
                if decode_identify(body).is_err() {
                    return;
                }
                identified = true;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = encode_response(&e.data());
                let _ = e.code();
            }
        }
    }
});
