//! nsqd's TLS server side: the `rustls` configuration built from the `--tls-*` flags (shared by
//! the IDENTIFY upgrade and the HTTPS listener), and the per-connection strings `/stats` and
//! AUTH report.
//!
//! Differences from Go's `crypto/tls` that an operator can see:
//! * rustls speaks TLS 1.2 and 1.3 only. `--tls-min-version=tls1.0`/`tls1.1`/`tls1.2` therefore
//!   all allow TLS 1.2 and 1.3; `tls1.3` allows TLS 1.3 only. A client that can only speak TLS 1.0
//!   or 1.1 fails the handshake.
//! * Cipher suites are rustls' (AEAD only: no RC4, 3DES or CBC suites).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, ServerConnection,
    SignatureScheme, SupportedProtocolVersion,
};

use crate::options::{Options, TLS_VERSION_1_3};

/// `--tls-client-auth-policy` values with a meaning; any other non-empty value requests no
/// client certificate (as Go's nsqd) but still forces `--tls-required`.
const POLICY_REQUIRE: &str = "require";
const POLICY_REQUIRE_VERIFY: &str = "require-verify";

/// Where Go looks for the system's CA bundle on Linux, in its order. Used only for
/// `require-verify` without `--tls-root-ca-file`, where Go verifies client certificates against
/// the system roots.
const SYSTEM_CA_FILES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The server configuration for `opts`, or `None` when neither `--tls-cert` nor `--tls-key` is
/// set (TLS disabled). The error text is what follows `failed to build TLS config - `.
///
/// As in Go's nsqd, setting only one of cert/key is an error (the other file cannot be opened),
/// and `--tls-root-ca-file` is loaded (and must contain a certificate) whenever it is set, even
/// when no policy asks for client certificates.
pub fn server_config(opts: &Options) -> Result<Option<Arc<ServerConfig>>, String> {
    if opts.tls_cert.is_empty() && opts.tls_key.is_empty() {
        return Ok(None);
    }
    let certs = load_certs(&opts.tls_cert)?;
    let key = load_key(&opts.tls_key)?;
    let roots = if opts.tls_root_ca_file.is_empty() {
        None
    } else {
        Some(load_roots(&opts.tls_root_ca_file)?)
    };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(protocol_versions(opts.tls_min_version))
        .map_err(|e| e.to_string())?;
    let builder = match opts.tls_client_auth_policy.as_str() {
        POLICY_REQUIRE => builder.with_client_cert_verifier(Arc::new(AnyClientCert {
            algorithms: provider.signature_verification_algorithms,
        })),
        POLICY_REQUIRE_VERIFY => {
            let roots = match roots {
                Some(r) => r,
                None => system_roots()?,
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            "tls: private key does not match public key".to_string()
        }
        other => other.to_string(),
    })?;
    // No ALPN: Go's nsqd sets no NextProtos on either listener, so clients negotiate nothing.
    Ok(Some(Arc::new(config)))
}

/// The protocol versions allowed for a `--tls-min-version` value (see the module comment).
fn protocol_versions(min_version: u16) -> &'static [&'static SupportedProtocolVersion] {
    static TLS13_ONLY: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    if min_version >= TLS_VERSION_1_3 {
        &TLS13_ONLY
    } else {
        rustls::ALL_VERSIONS
    }
}

/// Go's wording for a file that cannot be read: `open <path>: no such file or directory`.
fn open_error(path: &str, e: &std::io::Error) -> String {
    let text = e.to_string();
    // Rust appends ` (os error N)` and capitalises strerror; Go does neither.
    let text = match text.find(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    format!("open {path}: {text}")
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|e| open_error(path, &e))
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls: failed to parse certificate PEM data: {e}"))?;
    if certs.is_empty() {
        return Err("tls: failed to find any PEM data in certificate input".into());
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "tls: failed to find any PEM data in key input".to_string()
        }
        other => format!("tls: failed to parse private key: {other}"),
    })
}

/// A CA bundle as Go's `AppendCertsFromPEM` reads it: every parseable certificate counts, and
/// the file must contribute at least one.
fn load_roots(path: &str) -> Result<RootCertStore, String> {
    let pem = read_file(path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        // A certificate webpki cannot use as a trust anchor is skipped, as Go skips ones it
        // cannot parse.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("failed to append certificate to pool".into());
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let candidates = from_env
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_CA_FILES.iter().copied());
    for path in candidates {
        if Path::new(path).is_file() {
            return load_roots(path);
        }
    }
    Err(
        "no system root certificates found to verify client certificates; set --tls-root-ca-file"
            .into(),
    )
}

/// `--tls-client-auth-policy=require`: a client must present a certificate (and prove it holds
/// its key), but the certificate is not checked against any CA — Go's `RequireAnyClientCert`.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: the client may send whatever certificate it has.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Go still parses the certificate; refuse garbage rather than accept it unread.
        x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What `/stats` and AUTH report about an established TLS connection, captured once after the
/// handshake (none of it changes afterwards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `tls_version`: `TLS1.2`, `TLS1.3`, …
    pub version: String,
    /// `tls_cipher_suite`: an IANA-style name or `Unknown <id>`.
    pub cipher_suite: String,
    /// `tls_negotiated_protocol`: the ALPN protocol, or "".
    pub negotiated_protocol: String,
    /// `tls_negotiated_protocol_is_mutual`.
    pub negotiated_protocol_is_mutual: bool,
    /// The Subject CN of the client's certificate, or "" (AUTH's `common_name`).
    pub common_name: String,
}

impl TlsInfo {
    /// Reads the negotiated parameters of a connection whose handshake has completed.
    pub fn from_connection(conn: &ServerConnection) -> TlsInfo {
        TlsInfo {
            version: version_name(conn.protocol_version().map_or(0, u16::from)),
            cipher_suite: cipher_suite_name(
                conn.negotiated_cipher_suite()
                    .map_or(0, |s| u16::from(s.suite())),
            ),
            negotiated_protocol: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
            // Go has reported `true` for every TLS connection since it dropped NPN (the field
            // is deprecated and always true), whether or not ALPN was used.
            negotiated_protocol_is_mutual: true,
            common_name: conn
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|c| common_name(c.as_ref()))
                .unwrap_or_default(),
        }
    }
}

impl fmt::Display for TlsInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.cipher_suite)
    }
}

/// nsqd's name for a TLS protocol version number.
pub fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSL30".into(),
        0x0301 => "TLS1.0".into(),
        0x0302 => "TLS1.1".into(),
        0x0303 => "TLS1.2".into(),
        0x0304 => "TLS1.3".into(),
        n => format!("Unknown {n}"),
    }
}

/// The cipher suites nsqd names in `/stats`; every other suite (all of TLS 1.3's, and the
/// AES-256/ChaCha20 TLS 1.2 suites) is reported as `Unknown <decimal id>`, as nsqd does.
const CIPHER_SUITE_NAMES: [(u16, &str); 13] = [
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
];

/// nsqd's name for a cipher suite ID.
pub fn cipher_suite_name(id: u16) -> String {
    CIPHER_SUITE_NAMES
        .iter()
        .find(|(n, _)| *n == id)
        .map_or_else(|| format!("Unknown {id}"), |(_, name)| (*name).to_string())
}

/// The Subject CN of a DER certificate, or "" when it has none or cannot be parsed. When the
/// subject has several CNs the last wins, as in Go's `pkix.Name`.
pub fn common_name(der: &[u8]) -> String {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return String::new();
    };
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .last()
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName as Dn, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };

    struct Pki {
        dir: tempfile::TempDir,
        ca: rcgen::Certificate,
        ca_key: KeyPair,
    }

    impl Pki {
        fn new() -> Pki {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name = dn("test ca");
            let ca_key = KeyPair::generate().expect("key");
            let ca = params.self_signed(&ca_key).expect("ca");
            let pki = Pki { dir, ca, ca_key };
            pki.write("ca.pem", &pki.ca.pem());
            pki
        }

        fn path(&self, name: &str) -> String {
            self.dir.path().join(name).display().to_string()
        }

        fn write(&self, name: &str, content: &str) -> String {
            let p = self.path(name);
            std::fs::write(&p, content).expect("write");
            p
        }

        /// Writes `<name>.pem` and `<name>.key`, signed by the CA; returns the DER.
        fn issue(&self, name: &str, cn: &str, client: bool) -> Vec<u8> {
            let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
            params.distinguished_name = dn(cn);
            params.extended_key_usages = vec![if client {
                ExtendedKeyUsagePurpose::ClientAuth
            } else {
                ExtendedKeyUsagePurpose::ServerAuth
            }];
            let key = KeyPair::generate().expect("key");
            let cert = params
                .signed_by(&key, &self.ca, &self.ca_key)
                .expect("sign");
            self.write(&format!("{name}.pem"), &cert.pem());
            self.write(&format!("{name}.key"), &key.serialize_pem());
            cert.der().to_vec()
        }
    }

    fn dn(cn: &str) -> Dn {
        let mut d = Dn::new();
        d.push(DnType::CommonName, cn);
        d
    }

    fn opts(pki: &Pki, extra: &[&str]) -> Options {
        let mut args = vec![
            format!("--tls-cert={}", pki.path("server.pem")),
            format!("--tls-key={}", pki.path("server.key")),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        match crate::options::parse(args).expect("options") {
            crate::options::Outcome::Run(o) => *o,
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn disabled_without_cert_and_key() {
        let o = match crate::options::parse(Vec::new()).expect("options") {
            crate::options::Outcome::Run(o) => *o,
            _ => panic!("not a run"),
        };
        assert!(server_config(&o).expect("config").is_none());
    }

    #[test]
    fn builds_with_each_policy() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        let ca = format!("--tls-root-ca-file={}", pki.path("ca.pem"));
        for extra in [
            vec![],
            vec!["--tls-client-auth-policy=require"],
            vec!["--tls-client-auth-policy=require-verify", ca.as_str()],
            vec![ca.as_str()],
            vec!["--tls-min-version=tls1.3"],
        ] {
            let cfg = server_config(&opts(&pki, &extra));
            assert!(matches!(cfg, Ok(Some(_))), "{extra:?}: {cfg:?}");
        }
    }

    #[test]
    fn min_version_maps_onto_what_rustls_speaks() {
        assert_eq!(protocol_versions(0x0301).len(), 2);
        assert_eq!(protocol_versions(0x0303).len(), 2);
        let only13 = protocol_versions(0x0304);
        assert_eq!(only13.len(), 1);
        assert_eq!(only13[0].version, rustls::ProtocolVersion::TLSv1_3);
    }

    #[test]
    fn errors_read_like_go() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        let mut o = opts(&pki, &[]);
        o.tls_cert = pki.path("missing.pem");
        assert_eq!(
            server_config(&o).unwrap_err(),
            format!(
                "open {}: no such file or directory",
                pki.path("missing.pem")
            )
        );

        let mut o = opts(&pki, &[]);
        o.tls_key = String::new();
        assert_eq!(
            server_config(&o).unwrap_err(),
            "open : no such file or directory"
        );

        let mut o = opts(&pki, &[]);
        o.tls_cert = pki.write("empty.pem", "nothing here\n");
        assert_eq!(
            server_config(&o).unwrap_err(),
            "tls: failed to find any PEM data in certificate input"
        );

        let mut o = opts(&pki, &[]);
        o.tls_key = pki.path("empty.pem");
        assert_eq!(
            server_config(&o).unwrap_err(),
            "tls: failed to find any PEM data in key input"
        );

        pki.issue("other", "other", false);
        let mut o = opts(&pki, &[]);
        o.tls_key = pki.path("other.key");
        assert_eq!(
            server_config(&o).unwrap_err(),
            "tls: private key does not match public key"
        );

        let mut o = opts(&pki, &[]);
        o.tls_root_ca_file = pki.path("empty.pem");
        assert_eq!(
            server_config(&o).unwrap_err(),
            "failed to append certificate to pool"
        );
    }

    #[test]
    fn version_and_suite_names() {
        assert_eq!(version_name(0x0303), "TLS1.2");
        assert_eq!(version_name(0x0304), "TLS1.3");
        assert_eq!(version_name(0x0301), "TLS1.0");
        assert_eq!(version_name(0x7f1c), "Unknown 32540");
        assert_eq!(
            cipher_suite_name(0xc02f),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(
            cipher_suite_name(0xc02b),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(cipher_suite_name(0x002f), "TLS_RSA_WITH_AES_128_CBC_SHA");
        // TLS_AES_128_GCM_SHA256 (TLS 1.3) and TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384.
        assert_eq!(cipher_suite_name(0x1301), "Unknown 4865");
        assert_eq!(cipher_suite_name(0xc030), "Unknown 49200");
    }

    #[test]
    fn common_name_of_certificate() {
        let pki = Pki::new();
        let der = pki.issue("client", "client one", true);
        assert_eq!(common_name(&der), "client one");
        assert_eq!(common_name(b"not a certificate"), "");

        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = Dn::new();
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        assert_eq!(common_name(cert.der()), "");
    }

    /// Runs a handshake in memory between the server config and a client config and returns
    /// the server side's view, or the first error.
    fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> Result<TlsInfo, rustls::Error> {
        let mut s = ServerConnection::new(server)?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut c = rustls::ClientConnection::new(client, name)?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).expect("client write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).expect("server read");
                s.process_new_packets()?;
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).expect("server write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
                c.process_new_packets()?;
            }
            if !s.is_handshaking() && !c.is_handshaking() {
                // TLS 1.3 verifies the client's certificate in its last flight; give the server
                // one more round so a refusal shows.
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).expect("client write");
                }
                let mut rd = &buf[..];
                while !rd.is_empty() {
                    s.read_tls(&mut rd).expect("server read");
                    s.process_new_packets()?;
                }
                return Ok(TlsInfo::from_connection(&s));
            }
        }
        panic!("handshake did not finish");
    }

    fn client_config(
        pki: &Pki,
        client_cert: Option<&str>,
        versions: &[&'static SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.der().clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots);
        let cfg = match client_cert {
            Some(name) => b
                .with_client_auth_cert(
                    load_certs(&pki.path(&format!("{name}.pem"))).expect("certs"),
                    load_key(&pki.path(&format!("{name}.key"))).expect("key"),
                )
                .expect("client auth"),
            None => b.with_no_client_auth(),
        };
        Arc::new(cfg)
    }

    #[test]
    fn reports_tls12_and_tls13_connections() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        let server = server_config(&opts(&pki, &[])).expect("ok").expect("some");

        let info = handshake(
            server.clone(),
            client_config(&pki, None, &[&rustls::version::TLS12]),
        )
        .expect("tls1.2");
        assert_eq!(info.version, "TLS1.2");
        // rcgen's default key is ECDSA P-256, so the preferred ECDSA AES-128 suite is named.
        assert!(
            info.cipher_suite == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
                || info.cipher_suite.starts_with("Unknown "),
            "{info:?}"
        );
        assert_eq!(info.negotiated_protocol, "");
        assert!(info.negotiated_protocol_is_mutual);
        assert_eq!(info.common_name, "");

        let info = handshake(
            server,
            client_config(&pki, None, &[&rustls::version::TLS13]),
        )
        .expect("tls1.3");
        assert_eq!(info.version, "TLS1.3");
        assert!(info.cipher_suite.starts_with("Unknown 48"), "{info:?}");
    }

    #[test]
    fn min_version_tls13_refuses_tls12_clients() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        let server = server_config(&opts(&pki, &["--tls-min-version=tls1.3"]))
            .expect("ok")
            .expect("some");
        assert!(handshake(
            server,
            client_config(&pki, None, &[&rustls::version::TLS12])
        )
        .is_err());
    }

    #[test]
    fn require_policy_wants_any_certificate() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        let server = server_config(&opts(&pki, &["--tls-client-auth-policy=require"]))
            .expect("ok")
            .expect("some");
        assert!(handshake(
            server.clone(),
            client_config(&pki, None, rustls::ALL_VERSIONS)
        )
        .is_err());

        // A self-signed certificate no CA vouches for is fine under `require`.
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn("stranger");
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        pki.write("stranger.pem", &cert.pem());
        pki.write("stranger.key", &key.serialize_pem());
        for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let info = handshake(server.clone(), client_config(&pki, Some("stranger"), &[v]))
                .expect("accepted");
            assert_eq!(info.common_name, "stranger");
        }
    }

    #[test]
    fn require_verify_checks_the_ca() {
        let pki = Pki::new();
        pki.issue("server", "server", false);
        pki.issue("client", "good client", true);
        let ca = format!("--tls-root-ca-file={}", pki.path("ca.pem"));
        let server = server_config(&opts(
            &pki,
            &["--tls-client-auth-policy=require-verify", &ca],
        ))
        .expect("ok")
        .expect("some");

        assert!(handshake(
            server.clone(),
            client_config(&pki, None, rustls::ALL_VERSIONS)
        )
        .is_err());
        let info = handshake(
            server.clone(),
            client_config(&pki, Some("client"), rustls::ALL_VERSIONS),
        )
        .expect("accepted");
        assert_eq!(info.common_name, "good client");

        // A client certificate from another CA is refused.
        let other = Pki::new();
        other.issue("client", "other client", true);
        std::fs::copy(other.path("client.pem"), pki.path("foreign.pem")).expect("copy");
        std::fs::copy(other.path("client.key"), pki.path("foreign.key")).expect("copy");
        assert!(handshake(
            server,
            client_config(&pki, Some("foreign"), rustls::ALL_VERSIONS)
        )
        .is_err());
    }
}
