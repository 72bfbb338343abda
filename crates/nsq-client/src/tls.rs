//! The rustls client configuration behind `tls_v1`: roots from `tls_root_ca_file` or the
//! system, an optional client certificate, and go-nsq's `tls_insecure_skip_verify`.
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{split_host_port, ConfigError, TlsOptions, TLS_MIN_VERSIONS};

impl TlsOptions {
    /// The rustls configuration for these options, with the *ring* provider and TLS 1.2 and
    /// 1.3 (every `min_version` go-nsq knows is 1.2 or older).
    ///
    /// Files are read on every call, so a certificate renewed on disk is picked up by the next
    /// connection.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, ConfigError> {
        if let Some(version) = &self.min_version {
            if !TLS_MIN_VERSIONS.contains(&version.as_str()) {
                return Err(ConfigError::Tls(format!(
                    "ERROR: {version} is not a tls version"
                )));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Tls(format!("tls: {e}")))?;
        let builder = if self.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
        } else {
            let roots = match &self.root_ca_file {
                Some(path) => load_roots(path)?,
                None => system_roots().clone(),
            };
            builder.with_root_certificates(roots)
        };
        let config = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let certified = load_key_pair(cert, key)?;
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
            }
            // go-nsq loads a client certificate only once it has both halves.
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// The TLS server name for a connection to `addr` (`host:port` or `[v6]:port`): its host,
/// as go-nsq sets `ServerName`. An IP host is matched against the certificate's IP addresses.
#[allow(dead_code)]
pub fn server_name(addr: &str) -> Result<ServerName<'static>, ConfigError> {
    let (host, _port) = split_host_port(addr).map_err(ConfigError::Tls)?;
    // A zone (`fe80::1%eth0`) only picks the interface; certificates name the bare address.
    if let Some((ip, _zone)) = host.split_once('%') {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            return Ok(ServerName::from(ip));
        }
    }
    ServerName::try_from(host.to_string())
        .map_err(|_| ConfigError::Tls(format!("tls: {host:?} is not a valid server name")))
}

/// The CA certificates in a PEM file, as go-nsq's `tls_root_ca_file` reads them: blocks that
/// are not certificates, or do not parse, are skipped; a file with none left is an error.
pub(crate) fn load_roots(path: &Path) -> Result<RootCertStore, ConfigError> {
    let pem = read_file(path).map_err(|e| {
        ConfigError::Tls(format!(
            "ERROR: failed to read custom Certificate Authority file {e}"
        ))
    })?;
    let mut roots = RootCertStore::empty();
    let certs = pem_sections(&pem)
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der));
    roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(ConfigError::Tls(
            "ERROR: failed to append certificates from Certificate Authority file".to_string(),
        ));
    }
    Ok(roots)
}

/// A client certificate chain and its key from PEM files (the key PKCS#8, PKCS#1 RSA or SEC1
/// EC), checked to belong together, with the errors Go's `tls.LoadX509KeyPair` gives.
pub(crate) fn load_key_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, ConfigError> {
    let cert_pem = read_file(cert).map_err(ConfigError::Tls)?;
    let key_pem = read_file(key).map_err(ConfigError::Tls)?;
    let tls_err = |why: &str| ConfigError::Tls(format!("tls: {why}"));

    let cert_sections = pem_sections(&cert_pem);
    let chain: Vec<CertificateDer<'static>> = cert_sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if chain.is_empty() {
        if cert_sections.iter().any(|(kind, _)| is_private_key(*kind)) {
            return Err(tls_err(
                "failed to find certificate PEM data in certificate input, but did find a \
                 private key; PEM inputs may have been switched",
            ));
        }
        return Err(tls_err("failed to find any PEM data in certificate input"));
    }

    let key_sections = pem_sections(&key_pem);
    let Some(private_key) = key_sections
        .iter()
        .find(|(kind, _)| is_private_key(*kind))
        .and_then(|(kind, der)| PrivateKeyDer::from_pem(*kind, der.clone()))
    else {
        if key_sections
            .iter()
            .any(|(kind, _)| *kind == SectionKind::Certificate)
        {
            return Err(tls_err(
                "found a certificate rather than a key in the PEM for the private key",
            ));
        }
        return Err(tls_err("failed to find any PEM data in key input"));
    };

    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(private_key)
        .map_err(|_| tls_err("failed to parse private key"))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Keys whose public half rustls cannot derive are taken on trust, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(tls_err("private key does not match public key"));
        }
        Err(rustls::Error::InvalidCertificate(_)) => {
            return Err(ConfigError::Tls("x509: malformed certificate".to_string()));
        }
        Err(e) => return Err(tls_err(&e.to_string())),
    }
    Ok(Arc::new(certified))
}

fn is_private_key(kind: SectionKind) -> bool {
    matches!(
        kind,
        SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey
    )
}

/// The PEM blocks rustls recognises, in order. Like Go's decoder, which skips what it cannot
/// read, a malformed block ends the list instead of failing it.
fn pem_sections(pem: &[u8]) -> Vec<(SectionKind, Vec<u8>)> {
    <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem)
        .map_while(Result::ok)
        .collect()
}

/// Reads a whole file, failing with Go's `os` error text (`open /x: no such file or
/// directory`), which is what go-nsq users see for a wrong path.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| format!("open {shown}: {}", go_errno(&e)))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .map_err(|e| format!("read {shown}: {}", go_errno(&e)))?;
    Ok(buf)
}

/// An OS error as Go prints it: the C library's text, lower-cased, without Rust's
/// `(os error N)` suffix.
fn go_errno(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) if e.raw_os_error().is_some() => text.get(..at).unwrap_or(&text).to_string(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// The system's trust anchors, loaded once: reading and parsing the bundle for every
/// connection would cost more than the handshake.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Unreadable stores just leave fewer roots; verification then fails with an unknown
        // issuer, which names the real problem at connect time.
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// `tls_insecure_skip_verify`: the operator asked for no certificate checks, so any chain and
/// name are accepted. Handshake signatures are still verified against the presented
/// certificate, so the peer must hold its private key.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
