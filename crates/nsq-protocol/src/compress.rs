//! The stream compressions a client can negotiate in IDENTIFY: snappy's framing format and raw
//! deflate. Each codec turns whole write batches into bytes the peer can decode at once (every
//! encode ends on a flush point) and decodes whatever bytes arrive, keeping partial input.
use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("flate: {0}")]
    Deflate(String),
}

pub trait StreamCodec: Send {
    /// Encodes `plain` and appends it to `out`, flushed so the peer can decode all of it.
    fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes what it can of `input` (appended to any partial input kept from before) into
    /// `plain`.
    fn decode(&mut self, input: &[u8], plain: &mut BytesMut) -> Result<(), CodecError>;
}

const STREAM_ID: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const MAX_CHUNK: usize = 65536;

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Snappy framing format (as written by Go's snappy writer and python-snappy's stream classes).
pub struct Snappy {
    enc: snap::raw::Encoder,
    dec: snap::raw::Decoder,
    sent_id: bool,
    pending: Vec<u8>,
    scratch: Vec<u8>,
}

impl Default for Snappy {
    fn default() -> Self {
        Snappy {
            enc: snap::raw::Encoder::new(),
            dec: snap::raw::Decoder::new(),
            sent_id: false,
            pending: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

fn put_chunk_header(out: &mut Vec<u8>, kind: u8, len: usize) {
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
}

impl StreamCodec for Snappy {
    fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if !self.sent_id {
            out.extend_from_slice(STREAM_ID);
            self.sent_id = true;
        }
        for chunk in plain.chunks(MAX_CHUNK) {
            let crc = masked_crc(chunk);
            self.scratch
                .resize(snap::raw::max_compress_len(chunk.len()), 0);
            let n = self
                .enc
                .compress(chunk, &mut self.scratch)
                .map_err(|e| CodecError::Snappy(e.to_string()))?;
            // Incompressible data goes as is, as the reference writers do.
            let packed = self.scratch.get(..n);
            match packed.filter(|p| p.len() < chunk.len() - chunk.len() / 8) {
                Some(packed) => {
                    put_chunk_header(out, 0x00, 4 + packed.len());
                    out.extend_from_slice(&crc.to_le_bytes());
                    out.extend_from_slice(packed);
                }
                None => {
                    put_chunk_header(out, 0x01, 4 + chunk.len());
                    out.extend_from_slice(&crc.to_le_bytes());
                    out.extend_from_slice(chunk);
                }
            }
        }
        Ok(())
    }

    fn decode(&mut self, input: &[u8], plain: &mut BytesMut) -> Result<(), CodecError> {
        self.pending.extend_from_slice(input);
        let mut pos = 0;
        let mut rest: &[u8] = &self.pending;
        while let Some((&[kind, l0, l1, l2], after)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes([l0, l1, l2, 0]) as usize;
            let Some((body, next)) = after.split_at_checked(len) else {
                break;
            };
            match kind {
                0xff => {
                    if body != b"sNaPpY" {
                        return Err(CodecError::Snappy("bad stream identifier".into()));
                    }
                }
                0x00 | 0x01 => {
                    let Some((crc, data)) = body.split_first_chunk::<4>() else {
                        return Err(CodecError::Snappy("chunk too short".into()));
                    };
                    let crc = u32::from_le_bytes(*crc);
                    let start = plain.len();
                    if kind == 0x00 {
                        let n = snap::raw::decompress_len(data)
                            .map_err(|e| CodecError::Snappy(e.to_string()))?;
                        if n > MAX_CHUNK {
                            return Err(CodecError::Snappy("chunk too large".into()));
                        }
                        plain.resize(start + n, 0);
                        self.dec
                            .decompress(data, plain.get_mut(start..).unwrap_or_default())
                            .map_err(|e| CodecError::Snappy(e.to_string()))?;
                    } else {
                        plain.extend_from_slice(data);
                    }
                    if masked_crc(plain.get(start..).unwrap_or_default()) != crc {
                        return Err(CodecError::Snappy(
                            "corrupt input (checksum mismatch)".into(),
                        ));
                    }
                }
                0x80..=0xfe => {}
                _ => {
                    return Err(CodecError::Snappy(format!(
                        "unsupported chunk type {kind:#x}"
                    )))
                }
            }
            pos += 4 + len;
            rest = next;
        }
        self.pending.drain(..pos);
        Ok(())
    }
}

/// Raw deflate (no zlib header), flushed with a sync flush after every batch, as Go's `flate`
/// writer is flushed after every frame.
pub struct Deflate {
    comp: Compress,
    decomp: Decompress,
    /// Reused between reads so decoding allocates nothing per read.
    scratch: Vec<u8>,
}

impl Deflate {
    pub fn new(level: u32) -> Deflate {
        Deflate {
            comp: Compress::new(Compression::new(level.min(9)), false),
            decomp: Decompress::new(false),
            scratch: vec![0u8; 64 * 1024],
        }
    }
}

impl StreamCodec for Deflate {
    fn encode(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut input = plain;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before_in = self.comp.total_in();
            let before_out = self.comp.total_out();
            self.comp
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(|e| CodecError::Deflate(e.to_string()))?;
            let consumed = (self.comp.total_in() - before_in) as usize;
            input = input
                .get(consumed..)
                .ok_or_else(|| CodecError::Deflate("consumed more than given".into()))?;
            let produced = self.comp.total_out() - before_out;
            // Done when all input is taken and the flush fitted in the space given.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }

    fn decode(&mut self, input: &[u8], plain: &mut BytesMut) -> Result<(), CodecError> {
        let mut input = input;
        let buf = &mut self.scratch;
        loop {
            let before_in = self.decomp.total_in();
            let before_out = self.decomp.total_out();
            let status = self
                .decomp
                .decompress(input, buf, FlushDecompress::None)
                .map_err(|e| CodecError::Deflate(e.to_string()))?;
            let consumed = (self.decomp.total_in() - before_in) as usize;
            let produced = (self.decomp.total_out() - before_out) as usize;
            let out = buf
                .get(..produced)
                .ok_or_else(|| CodecError::Deflate("produced more than room".into()))?;
            plain.extend_from_slice(out);
            input = input
                .get(consumed..)
                .ok_or_else(|| CodecError::Deflate("consumed more than given".into()))?;
            if status == Status::StreamEnd {
                return Ok(());
            }
            // Output short of the room given does not mean it is all out: the decompressor can
            // stop where its window wraps with bytes still held back. Only a call that moves
            // nothing says so, and stopping earlier would hold those bytes until the next read.
            if consumed == 0 && produced == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(a: &mut dyn StreamCodec, b: &mut dyn StreamCodec, msgs: &[Vec<u8>]) {
        for m in msgs {
            let mut wire = Vec::new();
            a.encode(m, &mut wire).unwrap();
            // Decoded even when the bytes arrive one at a time.
            let mut plain = BytesMut::new();
            for byte in wire.chunks(7) {
                b.decode(byte, &mut plain).unwrap();
            }
            assert_eq!(&plain[..], &m[..]);
        }
    }

    fn samples() -> Vec<Vec<u8>> {
        vec![
            b"OK".to_vec(),
            vec![b'a'; 200_000],
            (0..70_000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
                .collect(),
            b"PUB t\n\x00\x00\x00\x05hello".to_vec(),
        ]
    }

    /// A stream (found by fuzzing) whose last read leaves output inside the decompressor with
    /// room to spare in the buffer: it must still come out in that read, so the result is the
    /// same however the bytes arrive.
    #[test]
    fn deflate_output_does_not_wait_for_the_next_read() {
        let wire = include_bytes!("../testdata/deflate-output-held-back.bin");
        let mut whole = BytesMut::new();
        Deflate::new(6).decode(wire, &mut whole).unwrap();
        let mut dec = Deflate::new(6);
        let mut pieces = BytesMut::new();
        for chunk in wire.chunks(195) {
            dec.decode(chunk, &mut pieces).unwrap();
        }
        assert_eq!(whole.len(), 65_723);
        assert_eq!(pieces.len(), whole.len());
        assert!(pieces == whole);
    }

    #[test]
    fn snappy_round_trip_and_stream_identifier_first() {
        let mut a = Snappy::default();
        let mut b = Snappy::default();
        let mut wire = Vec::new();
        a.encode(b"x", &mut wire).unwrap();
        assert!(wire.starts_with(STREAM_ID));
        let mut plain = BytesMut::new();
        b.decode(&wire, &mut plain).unwrap();
        round_trip(&mut a, &mut b, &samples());
    }

    #[test]
    fn snappy_rejects_corruption() {
        let mut a = Snappy::default();
        let mut wire = Vec::new();
        a.encode(&[b'z'; 1000], &mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 0xff;
        assert!(Snappy::default()
            .decode(&wire, &mut BytesMut::new())
            .is_err());
        assert!(Snappy::default()
            .decode(b"\x05\x01\x00\x00x", &mut BytesMut::new())
            .is_err());
    }

    #[test]
    fn deflate_round_trip_at_every_level() {
        for level in [1, 6, 9] {
            round_trip(
                &mut Deflate::new(level),
                &mut Deflate::new(level),
                &samples(),
            );
        }
    }

    #[test]
    fn deflate_interoperates_with_a_reference_raw_stream() {
        // A stream made by flate2's own writer (sync-flushed) decodes here.
        use std::io::Write;
        let mut w = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
        w.write_all(b"hello hello hello").unwrap();
        w.flush().unwrap();
        let wire = w.get_ref().clone();
        let mut plain = BytesMut::new();
        Deflate::new(6).decode(&wire, &mut plain).unwrap();
        assert_eq!(&plain[..], b"hello hello hello");
        assert!(Deflate::new(6)
            .decode(b"\xff\xff\xff\xff", &mut BytesMut::new())
            .is_err());
    }
}
