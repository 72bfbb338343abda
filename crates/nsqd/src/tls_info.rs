//! What `/stats` reports about a client's TLS session, in NSQ's wording.
use rustls::ServerConnection;

use crate::client::ClientShared;

/// NSQ's names for protocol versions.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_0) => "TLS1.0".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_1) => "TLS1.1".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS1.2".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS1.3".to_string(),
        Some(other) => format!("Unknown {}", u16::from(other)),
        None => String::new(),
    }
}

/// NSQ names only a fixed list of TLS 1.2 suites and reports anything else (every TLS 1.3 suite
/// included) as `Unknown <decimal id>`.
pub fn cipher_suite_name(s: Option<rustls::SupportedCipherSuite>) -> String {
    use rustls::CipherSuite as C;
    let Some(s) = s else {
        return String::new();
    };
    let id = s.suite();
    let name = match id {
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        _ => return format!("Unknown {}", u16::from(id)),
    };
    name.to_string()
}

/// Records the established session's details on the client.
pub fn record(client: &ClientShared, conn: &ServerConnection) {
    let mut id = client.identity.lock();
    id.tls = true;
    id.tls_version = version_name(conn.protocol_version());
    id.tls_cipher_suite = cipher_suite_name(conn.negotiated_cipher_suite());
    id.tls_negotiated_protocol = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    id.tls_negotiated_protocol_is_mutual = conn.alpn_protocol().is_some();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            version_name(Some(rustls::ProtocolVersion::TLSv1_2)),
            "TLS1.2"
        );
        assert_eq!(
            version_name(Some(rustls::ProtocolVersion::TLSv1_3)),
            "TLS1.3"
        );
        assert_eq!(version_name(None), "");
    }
}
