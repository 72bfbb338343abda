//! nsq-protocol's V2 command parser over an arbitrary read buffer, parsed command after command
//! as a connection would, with the FIN fast path checked against the general parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsq_protocol::command::{parse_general, parse_plain_fin};
use nsq_protocol::{parse_command, Command, ConnState, Limits, ParseCtx, Parsed};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the connection state and limits, so every state's checks are reached.
    let Some((&knobs, buf)) = data.split_first() else {
        return;
    };
    let mut ctx = ParseCtx {
        state: match knobs & 3 {
            0 => ConnState::Init,
            1 => ConnState::Subscribed,
            _ => ConnState::Closing,
        },
        tls_gate: knobs & 4 != 0,
        heartbeats_disabled: knobs & 8 != 0,
        identified: knobs & 16 != 0,
        eof: knobs & 32 != 0,
    };
    let limits = if knobs & 64 != 0 {
        Limits {
            max_msg_size: 16,
            max_body_size: 64,
            max_rdy_count: 10,
            max_req_timeout_ms: 1000,
        }
    } else {
        Limits {
            max_msg_size: 1024 * 1024,
            max_body_size: 5 * 1024 * 1024,
            max_rdy_count: 2500,
            max_req_timeout_ms: 3_600_000,
        }
    };

    let mut rest = buf;
    loop {
        let fast = parse_plain_fin(rest, &ctx);
        let parsed = parse_command(rest, &ctx, &limits);
        if let Some(fin) = fast {
            assert_eq!(parse_general(rest, &ctx, &limits), Ok(fin.clone()));
            assert_eq!(parsed, Ok(fin));
        }
        let Ok(Parsed::Complete { cmd, consumed }) = parsed else {
            return;
        };
        assert!(consumed > 0 && consumed <= rest.len());
        let cmd = cmd.map(|r| {
            assert!(r.start <= r.end && r.end <= consumed);
            &rest[r]
        });
        // Follow the state changes a connection makes, so later commands meet other checks.
        match cmd {
            Command::Identify { .. } => ctx.identified = true,
            Command::Sub { .. } => ctx.state = ConnState::Subscribed,
            Command::Cls => ctx.state = ConnState::Closing,
            _ => {}
        }
        rest = &rest[consumed..];
    }
});
