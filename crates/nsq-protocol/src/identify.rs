//! IDENTIFY: decoding the client's JSON the way NSQ's decoder does, validating each setting
//! against the server's bounds, and the negotiated response.
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{ErrorCode, WireError};

/// The client's request. Identity fields are overwritten unconditionally by IDENTIFY, so absent
/// strings become empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifyRequest {
    pub client_id: String,
    pub hostname: String,
    pub user_agent: String,
    pub feature_negotiation: bool,
    pub heartbeat_interval: i64,
    pub output_buffer_size: i64,
    pub output_buffer_timeout: i64,
    pub tls_v1: bool,
    pub snappy: bool,
    pub deflate: bool,
    pub deflate_level: i64,
    pub sample_rate: i64,
    pub msg_timeout: i64,
    pub topology_region: String,
    pub topology_zone: String,
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    // NSQ's JSON decoder matches keys case-insensitively and treats null as absent.
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .next_back()
        .filter(|v| !v.is_null())
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<String, ()> {
    match field(obj, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(()),
    }
}

fn bool_field(obj: &Map<String, Value>, key: &str) -> Result<bool, ()> {
    match field(obj, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(()),
    }
}

fn int_field(obj: &Map<String, Value>, key: &str, min: i64, max: i64) -> Result<i64, ()> {
    match field(obj, key) {
        None => Ok(0),
        // Only integral literals: NSQ rejects `1.0` or `1e3` for integer fields.
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v >= min && v <= max => Ok(v),
            _ => Err(()),
        },
        Some(_) => Err(()),
    }
}

impl IdentifyRequest {
    /// Decodes the body; `Err` maps to `E_BAD_BODY IDENTIFY failed to decode JSON body`.
    pub fn from_json(body: &[u8]) -> Result<IdentifyRequest, WireError> {
        let err = || WireError::new(ErrorCode::BadBody, "IDENTIFY failed to decode JSON body");
        let value: Value = serde_json::from_slice(body).map_err(|_| err())?;
        let obj = match value {
            Value::Object(o) => o,
            // Decoding null into a struct leaves it untouched.
            Value::Null => Map::new(),
            _ => return Err(err()),
        };
        let decode = || -> Result<IdentifyRequest, ()> {
            Ok(IdentifyRequest {
                client_id: string_field(&obj, "client_id")?,
                hostname: string_field(&obj, "hostname")?,
                user_agent: string_field(&obj, "user_agent")?,
                feature_negotiation: bool_field(&obj, "feature_negotiation")?,
                heartbeat_interval: int_field(&obj, "heartbeat_interval", i64::MIN, i64::MAX)?,
                output_buffer_size: int_field(&obj, "output_buffer_size", i64::MIN, i64::MAX)?,
                output_buffer_timeout: int_field(
                    &obj,
                    "output_buffer_timeout",
                    i64::MIN,
                    i64::MAX,
                )?,
                tls_v1: bool_field(&obj, "tls_v1")?,
                snappy: bool_field(&obj, "snappy")?,
                deflate: bool_field(&obj, "deflate")?,
                deflate_level: int_field(&obj, "deflate_level", i64::MIN, i64::MAX)?,
                sample_rate: int_field(&obj, "sample_rate", i32::MIN as i64, i32::MAX as i64)?,
                msg_timeout: int_field(&obj, "msg_timeout", i64::MIN, i64::MAX)?,
                topology_region: string_field(&obj, "topology_region")?,
                topology_zone: string_field(&obj, "topology_zone")?,
            })
        };
        decode().map_err(|_| err())
    }
}

/// The server side of the negotiation: its bounds, defaults and features.
#[derive(Debug, Clone)]
pub struct IdentifyPolicy {
    pub version: String,
    pub default_heartbeat: Duration,
    pub max_heartbeat_interval: Duration,
    pub default_output_buffer_size: i64,
    pub max_output_buffer_size: i64,
    pub default_output_buffer_timeout: Duration,
    pub min_output_buffer_timeout: Duration,
    pub max_output_buffer_timeout: Duration,
    pub default_msg_timeout: Duration,
    pub max_msg_timeout: Duration,
    pub max_rdy_count: i64,
    pub max_deflate_level: i64,
    pub tls_available: bool,
    pub snappy_enabled: bool,
    pub deflate_enabled: bool,
    pub auth_required: bool,
    pub topology_region: String,
    pub topology_zone: String,
}

/// The settings a connection runs with after IDENTIFY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `None`: heartbeats (and read/write deadlines) disabled.
    pub heartbeat: Option<Duration>,
    pub output_buffer_size: i64,
    /// `None`: no flush timer.
    pub output_buffer_timeout: Option<Duration>,
    pub msg_timeout: Duration,
    pub sample_rate: i64,
    pub tls: bool,
    pub snappy: bool,
    pub deflate: bool,
    pub deflate_level: i64,
}

impl Negotiated {
    /// What a connection uses before (or without) IDENTIFY.
    pub fn defaults(policy: &IdentifyPolicy) -> Negotiated {
        Negotiated {
            heartbeat: Some(policy.default_heartbeat),
            output_buffer_size: policy.default_output_buffer_size,
            output_buffer_timeout: Some(policy.default_output_buffer_timeout)
                .filter(|d| !d.is_zero()),
            msg_timeout: policy.default_msg_timeout,
            sample_rate: 0,
            tls: false,
            snappy: false,
            deflate: false,
            deflate_level: 6,
        }
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

fn bad_body(reason: String) -> WireError {
    WireError::new(ErrorCode::BadBody, format!("IDENTIFY {reason}"))
}

/// Validates `req` against `policy` in NSQ's order (heartbeat, output buffer timeout, output
/// buffer size, sample rate, msg timeout) and returns the connection's settings.
pub fn negotiate(req: &IdentifyRequest, policy: &IdentifyPolicy) -> Result<Negotiated, WireError> {
    let mut n = Negotiated::defaults(policy);

    match req.heartbeat_interval {
        -1 => n.heartbeat = None,
        0 => {}
        v if v >= 1000 && v <= millis(policy.max_heartbeat_interval) => {
            n.heartbeat = Some(Duration::from_millis(v as u64))
        }
        v => return Err(bad_body(format!("heartbeat interval ({v}) is invalid"))),
    }

    match req.output_buffer_timeout {
        -1 => n.output_buffer_timeout = None,
        0 => {}
        v if v >= millis(policy.min_output_buffer_timeout)
            && v <= millis(policy.max_output_buffer_timeout) =>
        {
            n.output_buffer_timeout = Some(Duration::from_millis(v as u64))
        }
        v => return Err(bad_body(format!("output buffer timeout ({v}) is invalid"))),
    }

    match req.output_buffer_size {
        -1 => {
            n.output_buffer_size = 1;
            n.output_buffer_timeout = None;
        }
        0 => {}
        v if v >= 64 && v <= policy.max_output_buffer_size => n.output_buffer_size = v,
        v => return Err(bad_body(format!("output buffer size ({v}) is invalid"))),
    }

    if !(0..=99).contains(&req.sample_rate) {
        return Err(bad_body(format!(
            "sample rate ({}) is invalid",
            req.sample_rate
        )));
    }
    n.sample_rate = req.sample_rate;

    match req.msg_timeout {
        0 => {}
        v if v >= 1000 && v <= millis(policy.max_msg_timeout) => {
            n.msg_timeout = Duration::from_millis(v as u64)
        }
        v => return Err(bad_body(format!("msg timeout ({v}) is invalid"))),
    }

    if !req.feature_negotiation {
        // NSQ answers plain OK and upgrades nothing without feature negotiation.
        return Ok(n);
    }
    n.tls = req.tls_v1 && policy.tls_available;
    n.deflate = req.deflate && policy.deflate_enabled;
    n.snappy = req.snappy && policy.snappy_enabled;
    // The requested level only counts when deflate is actually negotiated.
    let level = if n.deflate && req.deflate_level > 0 {
        req.deflate_level
    } else {
        6
    };
    n.deflate_level = level.min(policy.max_deflate_level);

    if n.deflate && n.snappy {
        return Err(WireError::new(
            ErrorCode::IdentifyFailed,
            "cannot enable both deflate and snappy compression",
        ));
    }
    Ok(n)
}

/// The JSON object sent when the client set `feature_negotiation` (key order as NSQ sends it).
#[derive(Debug, Serialize)]
pub struct IdentifyResponse<'a> {
    pub max_rdy_count: i64,
    pub version: &'a str,
    pub max_msg_timeout: i64,
    pub msg_timeout: i64,
    pub tls_v1: bool,
    pub deflate: bool,
    pub deflate_level: i64,
    pub max_deflate_level: i64,
    pub snappy: bool,
    pub sample_rate: i64,
    pub auth_required: bool,
    pub output_buffer_size: i64,
    pub output_buffer_timeout: i64,
    pub topology_region: &'a str,
    pub topology_zone: &'a str,
}

pub fn response_json(n: &Negotiated, policy: &IdentifyPolicy) -> Vec<u8> {
    let r = IdentifyResponse {
        max_rdy_count: policy.max_rdy_count,
        version: &policy.version,
        max_msg_timeout: millis(policy.max_msg_timeout),
        msg_timeout: millis(n.msg_timeout),
        tls_v1: n.tls,
        deflate: n.deflate,
        deflate_level: n.deflate_level,
        max_deflate_level: policy.max_deflate_level,
        snappy: n.snappy,
        sample_rate: n.sample_rate,
        auth_required: policy.auth_required,
        output_buffer_size: n.output_buffer_size,
        output_buffer_timeout: n.output_buffer_timeout.map(millis).unwrap_or(0),
        topology_region: &policy.topology_region,
        topology_zone: &policy.topology_zone,
    };
    // Serializing plain integers, bools and strings cannot fail.
    serde_json::to_vec(&r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn policy() -> IdentifyPolicy {
        IdentifyPolicy {
            version: "1.3.0".into(),
            default_heartbeat: Duration::from_secs(30),
            max_heartbeat_interval: Duration::from_secs(60),
            default_output_buffer_size: 16384,
            max_output_buffer_size: 65536,
            default_output_buffer_timeout: Duration::from_millis(250),
            min_output_buffer_timeout: Duration::from_millis(25),
            max_output_buffer_timeout: Duration::from_secs(30),
            default_msg_timeout: Duration::from_secs(60),
            max_msg_timeout: Duration::from_secs(900),
            max_rdy_count: 2500,
            max_deflate_level: 6,
            tls_available: false,
            snappy_enabled: false,
            deflate_enabled: false,
            auth_required: false,
            topology_region: String::new(),
            topology_zone: String::new(),
        }
    }

    fn req(json: &str) -> IdentifyRequest {
        IdentifyRequest::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn decodes_case_insensitively_and_null_as_absent() {
        let r = req(r#"{"Client_ID":"a","heartbeat_interval":null,"short_id":"x","extra":[1]}"#);
        assert_eq!(r.client_id, "a");
        assert_eq!(r.heartbeat_interval, 0);
        assert_eq!(req("null"), IdentifyRequest::default());
    }

    #[test]
    fn rejects_wrong_types() {
        for bad in [
            r#"{"heartbeat_interval":"1000"}"#,
            r#"{"heartbeat_interval":1.5}"#,
            r#"{"heartbeat_interval":1.0}"#,
            r#"{"client_id":5}"#,
            r#"{"tls_v1":1}"#,
            r#"{"sample_rate":4294967296}"#,
            "[]",
            "{",
        ] {
            let e = IdentifyRequest::from_json(bad.as_bytes()).unwrap_err();
            assert_eq!(
                e.frame_text(),
                "E_BAD_BODY IDENTIFY failed to decode JSON body",
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_messages_and_order() {
        let p = policy();
        let cases = [
            (
                r#"{"heartbeat_interval":999}"#,
                "E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid",
            ),
            (
                r#"{"heartbeat_interval":60001}"#,
                "E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid",
            ),
            (
                r#"{"heartbeat_interval":-2}"#,
                "E_BAD_BODY IDENTIFY heartbeat interval (-2) is invalid",
            ),
            (
                r#"{"output_buffer_timeout":24}"#,
                "E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid",
            ),
            (
                r#"{"output_buffer_size":63}"#,
                "E_BAD_BODY IDENTIFY output buffer size (63) is invalid",
            ),
            (
                r#"{"output_buffer_size":65537}"#,
                "E_BAD_BODY IDENTIFY output buffer size (65537) is invalid",
            ),
            (
                r#"{"sample_rate":100}"#,
                "E_BAD_BODY IDENTIFY sample rate (100) is invalid",
            ),
            (
                r#"{"sample_rate":-1}"#,
                "E_BAD_BODY IDENTIFY sample rate (-1) is invalid",
            ),
            (
                r#"{"msg_timeout":999}"#,
                "E_BAD_BODY IDENTIFY msg timeout (999) is invalid",
            ),
            (
                r#"{"msg_timeout":900001}"#,
                "E_BAD_BODY IDENTIFY msg timeout (900001) is invalid",
            ),
            (
                r#"{"heartbeat_interval":1,"sample_rate":100}"#,
                "E_BAD_BODY IDENTIFY heartbeat interval (1) is invalid",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(negotiate(&req(json), &p).unwrap_err().frame_text(), want);
        }
    }

    #[test]
    fn negotiates_values() {
        let p = policy();
        let n = negotiate(
            &req(r#"{"feature_negotiation":true,"heartbeat_interval":-1,"output_buffer_size":-1,"output_buffer_timeout":100,"msg_timeout":1000,"deflate_level":9,"sample_rate":50}"#),
            &p,
        )
        .unwrap();
        assert_eq!(n.heartbeat, None);
        assert_eq!(n.output_buffer_size, 1);
        assert_eq!(n.output_buffer_timeout, None);
        assert_eq!(n.msg_timeout, Duration::from_secs(1));
        assert_eq!(n.deflate_level, 6);
        assert_eq!(n.sample_rate, 50);
    }

    #[test]
    fn response_matches_reference_shape() {
        let p = policy();
        let n = negotiate(
            &req(r#"{"feature_negotiation":true,"tls_v1":true,"snappy":true}"#),
            &p,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(response_json(&n, &p)).unwrap(),
            r#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250,"topology_region":"","topology_zone":""}"#
        );
    }

    #[test]
    fn both_compressions_conflict() {
        let mut p = policy();
        p.snappy_enabled = true;
        p.deflate_enabled = true;
        let e = negotiate(
            &req(r#"{"feature_negotiation":true,"snappy":true,"deflate":true}"#),
            &p,
        )
        .unwrap_err();
        assert!(negotiate(&req(r#"{"snappy":true,"deflate":true}"#), &p).is_ok());
        assert_eq!(
            e.frame_text(),
            "E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"
        );
    }
}
