//! NSQ's message ID generator: 42 bits of time (units of 2^20 ns since NSQ's epoch), 10 bits of
//! node ID and a 12-bit sequence, giving IDs unique per (node, topic) and increasing.

const EPOCH_UNITS: i64 = 1288834974288;
const NODE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const SEQUENCE_MASK: i64 = (1 << SEQUENCE_BITS) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GuidError {
    #[error("sequence expired")]
    SequenceExpired,
    #[error("time has gone backwards")]
    TimeBackwards,
    #[error("ID went backward")]
    IdBackward,
}

/// One generator per topic, as in NSQ.
#[derive(Debug, Clone)]
pub struct GuidFactory {
    node_id: i64,
    last_ts: i64,
    sequence: i64,
    last_id: i64,
}

impl GuidFactory {
    pub fn new(node_id: i64) -> GuidFactory {
        GuidFactory {
            node_id: node_id & ((1 << NODE_BITS) - 1),
            last_ts: 0,
            sequence: 0,
            last_id: 0,
        }
    }

    /// Next ID for a clock reading in Unix nanoseconds. On error the caller waits for the clock
    /// to move (NSQ sleeps 1 ms) and retries.
    pub fn next(&mut self, unix_nanos: i64) -> Result<u64, GuidError> {
        let ts = unix_nanos >> 20;
        if ts < self.last_ts {
            return Err(GuidError::TimeBackwards);
        }
        if self.last_ts == ts {
            self.sequence = (self.sequence + 1) & SEQUENCE_MASK;
            if self.sequence == 0 {
                return Err(GuidError::SequenceExpired);
            }
        } else {
            self.sequence = 0;
        }
        self.last_ts = ts;
        let id = ((ts - EPOCH_UNITS) << (NODE_BITS + SEQUENCE_BITS))
            | (self.node_id << SEQUENCE_BITS)
            | self.sequence;
        if id <= self.last_id {
            return Err(GuidError::IdBackward);
        }
        self.last_id = id;
        Ok(id as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_and_encodes_node() {
        let mut g = GuidFactory::new(5);
        let t = 1_700_000_000_000_000_000i64;
        let a = g.next(t).unwrap();
        let b = g.next(t).unwrap();
        assert!(b > a);
        assert_eq!((a >> 12) & 0x3ff, 5);
        assert_eq!(b & 0xfff, 1);
        let c = g.next(t + (1 << 20)).unwrap();
        assert_eq!(c & 0xfff, 0);
        assert!(c > b);
        assert_eq!(g.next(t), Err(GuidError::TimeBackwards));
    }

    #[test]
    fn sequence_expires() {
        let mut g = GuidFactory::new(0);
        let t = 1_700_000_000_000_000_000i64;
        for _ in 0..4096 {
            g.next(t).unwrap();
        }
        assert_eq!(g.next(t), Err(GuidError::SequenceExpired));
        assert!(g.next(t + (1 << 20)).is_ok());
    }
}
