//! One connection to nsqd: magic, IDENTIFY and the upgrades it negotiates (TLS, snappy or
//! deflate), AUTH, then frames in and commands out.
