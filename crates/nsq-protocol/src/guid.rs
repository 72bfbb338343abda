//! NSQ's message ID generator: 42 bits of time (units of 2^20 ns since NSQ's epoch), 10 bits of
//! node ID and a 12-bit sequence, giving IDs unique per (node, topic) and increasing.
//!
//! NSQ makes a publisher wait when 4096 IDs were issued within one time unit, or when the clock
//! steps back. Here the generator borrows the next time unit instead: IDs keep NSQ's layout and
//! stay unique and increasing, their time part runs at most briefly ahead of the clock during
//! a burst, and publishing never stalls (clients treat IDs as opaque tokens).

const EPOCH_UNITS: i64 = 1288834974288;
const NODE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const SEQUENCE_MASK: i64 = (1 << SEQUENCE_BITS) - 1;

/// One generator per topic, as in NSQ.
#[derive(Debug, Clone)]
pub struct GuidFactory {
    node_id: i64,
    last_ts: i64,
    sequence: i64,
}

impl GuidFactory {
    pub fn new(node_id: i64) -> GuidFactory {
        GuidFactory {
            node_id: node_id & ((1 << NODE_BITS) - 1),
            last_ts: 0,
            sequence: 0,
        }
    }

    /// Next ID for a clock reading in Unix nanoseconds.
    pub fn next(&mut self, unix_nanos: i64) -> u64 {
        let ts = unix_nanos >> 20;
        if ts > self.last_ts {
            self.last_ts = ts;
            self.sequence = 0;
        } else {
            self.sequence = (self.sequence + 1) & SEQUENCE_MASK;
            if self.sequence == 0 {
                self.last_ts += 1;
            }
        }
        let id = ((self.last_ts - EPOCH_UNITS) << (NODE_BITS + SEQUENCE_BITS))
            | (self.node_id << SEQUENCE_BITS)
            | self.sequence;
        id as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_and_encodes_node() {
        let mut g = GuidFactory::new(5);
        let t = 1_700_000_000_000_000_000i64;
        let a = g.next(t);
        let b = g.next(t);
        assert!(b > a);
        assert_eq!((a >> 12) & 0x3ff, 5);
        assert_eq!(b & 0xfff, 1);
        let c = g.next(t + (1 << 20));
        assert_eq!(c & 0xfff, 0);
        assert!(c > b);
        // The clock stepping back does not make IDs go back.
        assert!(g.next(t) > c);
    }

    #[test]
    fn a_burst_borrows_the_next_time_unit() {
        let mut g = GuidFactory::new(0);
        let t = 1_700_000_000_000_000_000i64;
        let mut last = 0;
        for _ in 0..10_000 {
            let id = g.next(t);
            assert!(id > last);
            last = id;
        }
        // 10000 IDs in one unit: two units borrowed, then the clock catches up.
        let caught_up = g.next(t + (3 << 20));
        assert!(caught_up > last);
        assert_eq!(caught_up & 0xfff, 0);
    }
}
