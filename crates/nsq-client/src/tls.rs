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
            // Go tells a key of another type (RSA for an EC certificate) from another key.
            let key_spki = certified.key.public_key();
            let same_type = key_spki
                .as_ref()
                .and_then(|spki| algorithm_oid(spki.as_ref()))
                .zip(certified.cert.first())
                .is_some_and(|(oid, leaf)| contains(leaf.as_ref(), oid));
            return Err(tls_err(if same_type {
                "private key does not match public key"
            } else {
                "private key type does not match public key type"
            }));
        }
        Err(rustls::Error::InvalidCertificate(_)) => {
            return Err(ConfigError::Tls("x509: malformed certificate".to_string()));
        }
        Err(e) => return Err(tls_err(&e.to_string())),
    }
    Ok(Arc::new(certified))
}

/// The encoded algorithm OID (tag, length and value) at the start of a DER
/// SubjectPublicKeyInfo: `SEQUENCE { SEQUENCE { OID, ... }, BIT STRING }`.
fn algorithm_oid(spki: &[u8]) -> Option<&[u8]> {
    let (spki_body, _) = der_element(spki, 0x30)?;
    let (alg_body, _) = der_element(spki_body, 0x30)?;
    let (_, oid) = der_element(alg_body, 0x06)?;
    Some(oid)
}

/// The first DER element of `input`, if it has the expected tag: (contents, whole element).
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first_len = *input.get(1)?;
    let (len, header) = if first_len < 0x80 {
        (usize::from(first_len), 2)
    } else {
        let count = usize::from(first_len & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = header.checked_add(len)?;
    Some((input.get(header..end)?, input.get(..end)?))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
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
///
/// Public so that other HTTPS and TLS clients of the workspace (nsqadmin's upstream client)
/// share this one verifier.
#[derive(Debug)]
pub struct SkipVerify(Arc<CryptoProvider>);

impl SkipVerify {
    /// A verifier checking handshake signatures with `provider`'s algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> SkipVerify {
        SkipVerify(provider)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::server::WebPkiClientVerifier;
    use rustls::ServerConfig;
    use std::path::PathBuf;
    use tempfile::TempDir;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Fixed keys in each PEM form go-nsq reads; certificates for them are made per test.
    const FX_RSA1: &str = "\
-----BEGIN RSA PRIVATE KEY-----\n\
MIIEpAIBAAKCAQEA6kURVNR5JAMbUlWe/7uItznc9qKggsDtFfgEl++MAlorWvqn\n\
TUPjQi1uQYoO5dGNU0PiqNKjGbaMH6wBkqKkwuo6SViPPP6bBorEyeEScOZeTsA+\n\
GycK90EiOm/RTXN+y4NcHpH4hXRZT+JPFroSne20YN2PBeqY+5GXDGMwBQsJ+7G9\n\
uqsOz2EwirD+tOZbZJk0n+o6SDEjb1kLI0fyIfGOYOLV3OPYaCPYshvG0EgScjTs\n\
lDykIxBu7PtMirPwAoPWjwKTXofp6lFTi2ajzboyW5u3Qbks/hSkzAOynXXvAtwy\n\
WOOHPoFJq1zYV/+nUxkZ8SCz7X4vDNEfAO6XkQIDAQABAoIBAAhee8pFReeescrs\n\
8p9trmpnR4jLEgNhy4Z5pAZegSizWnGnWzM0Len3EAWI3lPg+tTC69W+oqOARTy7\n\
axn3M/4fmoH0xzc1XEntSq7wmrVMUYmsLfvP1wEywzuFs5s5+UlhcbjI27E+0RL8\n\
wXkNIC2iqIs+VwXt1dXE43nGkFhZtViiAQU4WK6OonbOa5PIW44qcKDM2yFMJtvu\n\
4ZMNS9xrYWTw7ZnnL2Xwg+TR6h+dKROVfdjQ/nCoksqHFaZWEc+kqLjJOFUnYpyv\n\
VgVYPzthU2yLBFust3SNVWK3eNuVvaYfhHD8n9RSsNeB0UbrJ2Gbs8WxLpB+55kI\n\
BAH9Mk0CgYEA/ozq+zJvxzUfP6uRfOY0oWhEeU8ihM4+dC8umWhkn6pgnFLrpsHL\n\
RRVzVDJfAyPjSoaPRAd1UvT8sB8WRZbUrfnLw/tuPrbVfvIWYc3Pp2dW44M4M0j0\n\
AO6q2eugifNDEU5uSdgx66Y43fNPGLrA48PMeYDcEW1uJoSDZoNFkp0CgYEA65qV\n\
s+ILV+e/U/hr3mYkTwSdP7Q6xeNu9qR9RV8NwcFDtwBYKrkl0+dn544AEkLDq4vo\n\
239fxK88yCtekfbF5sqIheKPGLitDuwZTHnLhFq8jbRk1qREWft7L1SGhfStlAy0\n\
s3GD5SJMnMre5CLsxz+wMmVkue9Zo3OZFM2tXIUCgYBRfuBEaBNtXc6RXeaIbFNx\n\
UaaKiBFvH3DTVb+/kbKVg8DGi62yh90CUynHTREqOjUsyQPZLeIcGx9Da9B/mxig\n\
UpcwObFEFtkneW49Bd1zpRwmXv6BPNwR6Fd+yXducxmH0upwbe0dmuwd8yXhrvjO\n\
cwNl6yGJ2tUnM8m16lU96QKBgQCJnK4J9mLXwmXPXw9qRFC60qAiYFvfz9q1Nxhw\n\
V3fKjt7FWe8lbSU6IzReXGOQRuzRGxQ0eK5wTEZ9SE+hg/jNt8iMIuuf7eYvDBou\n\
wAjuUq1FO3OWpzXBNREbcQxt258zFUTKdugqAqGrBxevOvL/4iRBG1X9AF9kCBYG\n\
v6ednQKBgQDMpp4VqtB8DL+qccQvuHTU2S6lQnEYQLXinNPF9bjxXzpj+o9nwIL6\n\
5s2vxwfHHp9W6DVi7+F4iriHN5ec1//Du175at2QNaSwIKmKDJHPnJ+nivOIbtES\n\
I47tDxE+amefhdaf5+mYZTmDfmGJ+2l21PlrtTejjRQRPVRNedDKWw==\n\
-----END RSA PRIVATE KEY-----\n\
";
    const FX_RSA8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDqRRFU1HkkAxtS\n\
VZ7/u4i3Odz2oqCCwO0V+ASX74wCWita+qdNQ+NCLW5Big7l0Y1TQ+Ko0qMZtowf\n\
rAGSoqTC6jpJWI88/psGisTJ4RJw5l5OwD4bJwr3QSI6b9FNc37Lg1wekfiFdFlP\n\
4k8WuhKd7bRg3Y8F6pj7kZcMYzAFCwn7sb26qw7PYTCKsP605ltkmTSf6jpIMSNv\n\
WQsjR/Ih8Y5g4tXc49hoI9iyG8bQSBJyNOyUPKQjEG7s+0yKs/ACg9aPApNeh+nq\n\
UVOLZqPNujJbm7dBuSz+FKTMA7Kdde8C3DJY44c+gUmrXNhX/6dTGRnxILPtfi8M\n\
0R8A7peRAgMBAAECggEACF57ykVF556xyuzyn22uamdHiMsSA2HLhnmkBl6BKLNa\n\
cadbMzQt6fcQBYjeU+D61MLr1b6io4BFPLtrGfcz/h+agfTHNzVcSe1KrvCatUxR\n\
iawt+8/XATLDO4Wzmzn5SWFxuMjbsT7REvzBeQ0gLaKoiz5XBe3V1cTjecaQWFm1\n\
WKIBBThYro6ids5rk8hbjipwoMzbIUwm2+7hkw1L3GthZPDtmecvZfCD5NHqH50p\n\
E5V92ND+cKiSyocVplYRz6SouMk4VSdinK9WBVg/O2FTbIsEW6y3dI1VYrd425W9\n\
ph+EcPyf1FKw14HRRusnYZuzxbEukH7nmQgEAf0yTQKBgQD+jOr7Mm/HNR8/q5F8\n\
5jShaER5TyKEzj50Ly6ZaGSfqmCcUuumwctFFXNUMl8DI+NKho9EB3VS9PywHxZF\n\
ltSt+cvD+24+ttV+8hZhzc+nZ1bjgzgzSPQA7qrZ66CJ80MRTm5J2DHrpjjd808Y\n\
usDjw8x5gNwRbW4mhINmg0WSnQKBgQDrmpWz4gtX579T+GveZiRPBJ0/tDrF4272\n\
pH1FXw3BwUO3AFgquSXT52fnjgASQsOri+jbf1/ErzzIK16R9sXmyoiF4o8YuK0O\n\
7BlMecuEWryNtGTWpERZ+3svVIaF9K2UDLSzcYPlIkycyt7kIuzHP7AyZWS571mj\n\
c5kUza1chQKBgFF+4ERoE21dzpFd5ohsU3FRpoqIEW8fcNNVv7+RspWDwMaLrbKH\n\
3QJTKcdNESo6NSzJA9kt4hwbH0Nr0H+bGKBSlzA5sUQW2Sd5bj0F3XOlHCZe/oE8\n\
3BHoV37Jd25zGYfS6nBt7R2a7B3zJeGu+M5zA2XrIYna1SczybXqVT3pAoGBAImc\n\
rgn2YtfCZc9fD2pEULrSoCJgW9/P2rU3GHBXd8qO3sVZ7yVtJTojNF5cY5BG7NEb\n\
FDR4rnBMRn1IT6GD+M23yIwi65/t5i8MGi7ACO5SrUU7c5anNcE1ERtxDG3bnzMV\n\
RMp26CoCoasHF6868v/iJEEbVf0AX2QIFga/p52dAoGBAMymnhWq0HwMv6pxxC+4\n\
dNTZLqVCcRhAteKc08X1uPFfOmP6j2fAgvrmza/HB8cen1boNWLv4XiKuIc3l5zX\n\
/8O7Xvlq3ZA1pLAgqYoMkc+cn6eK84hu0RIjju0PET5qZ5+F1p/n6ZhlOYN+YYn7\n\
aXbU+Wu1N6ONFBE9VE150Mpb\n\
-----END PRIVATE KEY-----\n\
";
    const FX_EC1: &str = "\
-----BEGIN EC PRIVATE KEY-----\n\
MHcCAQEEIJqfw/s7zXV4dAVzW0dvo7kplc6IXY5O/5xgTdNQU3kgoAoGCCqGSM49\n\
AwEHoUQDQgAEu7ZHV8EXR2X/h1KBEYMvWCL2f2HgpL1bEaNzysg3jn08mg3wPsam\n\
DJ6jrQv2DQVvE9fRohFc7izwjYJUjYDiGQ==\n\
-----END EC PRIVATE KEY-----\n\
";
    const FX_EC8: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmp/D+zvNdXh0BXNb\n\
R2+juSmVzohdjk7/nGBN01BTeSChRANCAAS7tkdXwRdHZf+HUoERgy9YIvZ/YeCk\n\
vVsRo3PKyDeOfTyaDfA+xqYMnqOtC/YNBW8T19GiEVzuLPCNglSNgOIZ\n\
-----END PRIVATE KEY-----\n\
";

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl Ca {
        fn new() -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            // Distinct names, or a chain could be tried against the wrong CA.
            let name = format!("test CA {}", rand::random::<u64>());
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let cert = params.self_signed(&key).unwrap();
            Ca { cert, key }
        }

        /// A certificate for `key` naming `names`, issued by this CA.
        fn issue(&self, key: &KeyPair, names: &[&str]) -> rcgen::Certificate {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            CertificateParams::new(names)
                .unwrap()
                .signed_by(key, &self.cert, &self.key)
                .unwrap()
        }
    }

    fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn server_config(
        cert: &rcgen::Certificate,
        key: &KeyPair,
        client_ca: Option<&Ca>,
    ) -> Arc<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca.cert.der().clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let key = PrivatePkcs8KeyDer::from(key.serialize_der()).into();
        Arc::new(
            builder
                .with_single_cert(vec![cert.der().clone()], key)
                .unwrap(),
        )
    }

    /// A TLS session over an in-memory pipe; each side's handshake result, then one byte each
    /// way so a server-side refusal of the client certificate reaches both ends.
    async fn session(
        client: Arc<ClientConfig>,
        server: Arc<ServerConfig>,
        addr: &str,
    ) -> (Result<(), String>, Result<(), String>) {
        let (c, s) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(async move {
            let mut tls = tokio_rustls::TlsAcceptor::from(server)
                .accept(s)
                .await
                .map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            tls.write_all(&byte).await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())
        });
        let name = server_name(addr).unwrap();
        let client = async {
            let mut tls = tokio_rustls::TlsConnector::from(client)
                .connect(name, c)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        let server = server.await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn verifies_against_a_root_file_holding_several_certificates() {
        let dir = TempDir::new().unwrap();
        let (ca1, ca2) = (Ca::new(), Ca::new());
        let server_key = KeyPair::generate().unwrap();
        let server_cert = ca2.issue(&server_key, &["127.0.0.1", "nsqd.test"]);
        let server = server_config(&server_cert, &server_key, None);

        let both = write(
            &dir,
            "both.pem",
            &format!("{}{}", ca1.cert.pem(), ca2.cert.pem()),
        );
        let tls = TlsOptions {
            root_ca_file: Some(both),
            ..TlsOptions::default()
        };
        let client = tls.client_config().unwrap();
        for addr in ["127.0.0.1:4150", "nsqd.test:4150"] {
            let (c, s) = session(Arc::clone(&client), Arc::clone(&server), addr).await;
            assert_eq!(c, Ok(()), "{addr}");
            assert_eq!(s, Ok(()), "{addr}");
        }
        let (c, _) = session(Arc::clone(&client), Arc::clone(&server), "other.test:1").await;
        let e = c.unwrap_err();
        assert!(e.contains("not valid for name"), "{e}");

        let only_other = write(&dir, "ca1.pem", &ca1.cert.pem());
        let tls = TlsOptions {
            root_ca_file: Some(only_other),
            ..TlsOptions::default()
        };
        let (c, _) = session(tls.client_config().unwrap(), server, "nsqd.test:4150").await;
        assert!(c.unwrap_err().contains("UnknownIssuer"));
    }

    #[tokio::test]
    async fn the_system_roots_do_not_trust_a_private_ca() {
        let ca = Ca::new();
        let key = KeyPair::generate().unwrap();
        let server = server_config(&ca.issue(&key, &["nsqd.test"]), &key, None);
        let client = TlsOptions::default().client_config().unwrap();
        let (c, _) = session(client, server, "nsqd.test:4150").await;
        assert!(c.unwrap_err().contains("UnknownIssuer"));
    }

    #[tokio::test]
    async fn skip_verify_accepts_any_certificate_but_still_checks_signatures() {
        let dir = TempDir::new().unwrap();
        let ca = Ca::new();
        let key = KeyPair::generate().unwrap();
        let cert = ca.issue(&key, &["elsewhere.test"]);
        let server = server_config(&cert, &key, None);
        let unrelated_ca = write(&dir, "ca.pem", &Ca::new().cert.pem());
        let tls = TlsOptions {
            insecure_skip_verify: true,
            // Ignored when verification is off, as in Go.
            root_ca_file: Some(unrelated_ca),
            ..TlsOptions::default()
        };
        let client = tls.client_config().unwrap();
        let (c, s) = session(Arc::clone(&client), server, "10.0.0.1:4150").await;
        assert_eq!((c, s), (Ok(()), Ok(())));

        // A server that presents a certificate without holding its key must still fail.
        let impostor_key = KeyPair::generate().unwrap();
        let signer = provider()
            .key_provider
            .load_private_key(PrivatePkcs8KeyDer::from(impostor_key.serialize_der()).into())
            .unwrap();
        let stolen = CertifiedKey::new(vec![cert.der().clone()], signer);
        let impostor = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(stolen)));
        let (c, _) = session(client, Arc::new(impostor), "10.0.0.1:4150").await;
        let e = c.unwrap_err();
        assert!(e.contains("BadSignature"), "{e}");
    }

    #[tokio::test]
    async fn presents_the_client_certificate_only_with_both_halves() {
        let dir = TempDir::new().unwrap();
        let ca = Ca::new();
        let server_key = KeyPair::generate().unwrap();
        let server = server_config(
            &ca.issue(&server_key, &["nsqd.test"]),
            &server_key,
            Some(&ca),
        );
        let client_key = KeyPair::generate().unwrap();
        let client_cert = ca.issue(&client_key, &["client.test"]);
        let tls = TlsOptions {
            root_ca_file: Some(write(&dir, "ca.pem", &ca.cert.pem())),
            cert_file: Some(write(&dir, "client.pem", &client_cert.pem())),
            key_file: Some(write(&dir, "client.key", &client_key.serialize_pem())),
            ..TlsOptions::default()
        };
        let (c, s) = session(
            tls.client_config().unwrap(),
            Arc::clone(&server),
            "nsqd.test:1",
        )
        .await;
        assert_eq!((c, s), (Ok(()), Ok(())));

        let lone_cert = TlsOptions {
            key_file: None,
            ..tls
        };
        let (_, s) = session(lone_cert.client_config().unwrap(), server, "nsqd.test:1").await;
        assert!(s.unwrap_err().contains("peer sent no certificates"));
    }

    #[test]
    fn loads_every_key_format_go_does() {
        let dir = TempDir::new().unwrap();
        let ca = Ca::new();
        let rsa = KeyPair::from_pem_and_sign_algo(FX_RSA8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let ec = KeyPair::from_pem(FX_EC8).unwrap();
        let rsa_cert = write(&dir, "rsa.pem", &ca.issue(&rsa, &["a.test"]).pem());
        let ec_cert = write(&dir, "ec.pem", &ca.issue(&ec, &["b.test"]).pem());
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed_cert = write(&dir, "ed.pem", &ca.issue(&ed, &["c.test"]).pem());
        let cases = [
            (&rsa_cert, FX_RSA1),
            (&rsa_cert, FX_RSA8),
            (&ec_cert, FX_EC1),
            (&ec_cert, FX_EC8),
            (&ed_cert, &ed.serialize_pem()),
        ];
        for (i, (cert, key)) in cases.into_iter().enumerate() {
            let key = write(&dir, &format!("{i}.key"), key);
            load_key_pair(cert, &key).unwrap_or_else(|e| panic!("case {i}: {e}"));
            let mut config = Config::new();
            config.set("tls_cert", cert.to_str().unwrap()).unwrap();
            config.set("tls_key", key.to_str().unwrap()).unwrap();
            assert_eq!(config.tls.key_file.as_ref(), Some(&key));
            config.tls.client_config().unwrap();
        }
    }

    #[test]
    fn key_pair_errors_read_as_go_reports_them() {
        let dir = TempDir::new().unwrap();
        let ca = Ca::new();
        let rsa = KeyPair::from_pem_and_sign_algo(FX_RSA8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let other_rsa = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let rsa_cert = write(&dir, "rsa.pem", &ca.issue(&rsa, &["a.test"]).pem());
        let p384_cert = write(&dir, "p384.pem", &ca.issue(&other_rsa, &["a.test"]).pem());
        let rsa_key = write(&dir, "rsa.key", FX_RSA1);
        let ec_key = write(&dir, "ec.key", FX_EC1);
        let other_ec_key = write(
            &dir,
            "ec2.key",
            &KeyPair::generate().unwrap().serialize_pem(),
        );
        let junk = write(&dir, "junk.txt", "not pem\n");
        let broken_cert = write(
            &dir,
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let missing = dir.path().join("missing.pem");
        let cases = [
            (
                &missing,
                &rsa_key,
                format!("open {}: no such file or directory", missing.display()),
            ),
            (
                &rsa_cert,
                &missing,
                format!("open {}: no such file or directory", missing.display()),
            ),
            (
                &dir.path().to_path_buf(),
                &rsa_key,
                format!("read {}: is a directory", dir.path().display()),
            ),
            (
                &junk,
                &rsa_key,
                "tls: failed to find any PEM data in certificate input".to_string(),
            ),
            (
                &rsa_key,
                &rsa_key,
                "tls: failed to find certificate PEM data in certificate input, but did find a \
                 private key; PEM inputs may have been switched"
                    .to_string(),
            ),
            (
                &rsa_cert,
                &rsa_cert,
                "tls: found a certificate rather than a key in the PEM for the private key"
                    .to_string(),
            ),
            (
                &rsa_cert,
                &junk,
                "tls: failed to find any PEM data in key input".to_string(),
            ),
            (
                &rsa_cert,
                &ec_key,
                "tls: private key type does not match public key type".to_string(),
            ),
            (
                &p384_cert,
                &other_ec_key,
                "tls: private key does not match public key".to_string(),
            ),
            (
                &broken_cert,
                &rsa_key,
                "x509: malformed certificate".to_string(),
            ),
        ];
        for (cert, key, want) in cases {
            let got = load_key_pair(cert, key).unwrap_err().to_string();
            assert_eq!(got, want, "{} + {}", cert.display(), key.display());
            // Set reports the same once it holds both halves; the first half alone is fine.
            let mut config = Config::new();
            config.set("tls_cert", cert.to_str().unwrap()).unwrap();
            let got = config.set("tls_key", key.to_str().unwrap()).unwrap_err();
            assert_eq!(got.to_string(), want);
            let tls = TlsOptions {
                cert_file: Some(cert.clone()),
                key_file: Some(key.clone()),
                ..TlsOptions::default()
            };
            assert_eq!(tls.client_config().unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn root_file_errors_read_as_go_reports_them() {
        let dir = TempDir::new().unwrap();
        let missing = dir.path().join("missing.pem");
        let cases = [
            (
                missing.clone(),
                format!(
                    "ERROR: failed to read custom Certificate Authority file open {}: no such \
                     file or directory",
                    missing.display()
                ),
            ),
            (
                dir.path().to_path_buf(),
                format!(
                    "ERROR: failed to read custom Certificate Authority file read {}: is a \
                     directory",
                    dir.path().display()
                ),
            ),
            (
                write(&dir, "junk.txt", "junk"),
                "ERROR: failed to append certificates from Certificate Authority file".to_string(),
            ),
            (
                write(&dir, "key.pem", FX_EC8),
                "ERROR: failed to append certificates from Certificate Authority file".to_string(),
            ),
            (
                write(
                    &dir,
                    "broken.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
                "ERROR: failed to append certificates from Certificate Authority file".to_string(),
            ),
        ];
        for (path, want) in cases {
            let mut config = Config::new();
            let got = config.set("tls_root_ca_file", path.to_str().unwrap());
            assert_eq!(got.unwrap_err().to_string(), want);
            assert_eq!(config.tls.root_ca_file, None);
            let tls = TlsOptions {
                root_ca_file: Some(path),
                ..TlsOptions::default()
            };
            assert_eq!(tls.client_config().unwrap_err().to_string(), want);
        }
        // Non-certificate blocks and broken certificates around a good one are skipped.
        let good = Ca::new().cert.pem();
        let mixed = write(&dir, "mixed.pem", &format!("{FX_EC8}junk\n{good}"));
        let mut config = Config::new();
        config
            .set("tls_root_ca_file", mixed.to_str().unwrap())
            .unwrap();
        assert_eq!(config.tls.root_ca_file, Some(mixed));
        config.tls.client_config().unwrap();
    }

    #[tokio::test]
    async fn every_min_version_speaks_tls_1_2_and_1_3() {
        let dir = TempDir::new().unwrap();
        let ca = Ca::new();
        let key = KeyPair::generate().unwrap();
        let cert = ca.issue(&key, &["nsqd.test"]);
        let root = write(&dir, "ca.pem", &ca.cert.pem());
        for version in TLS_MIN_VERSIONS {
            let tls = TlsOptions {
                root_ca_file: Some(root.clone()),
                min_version: Some(version.to_string()),
                ..TlsOptions::default()
            };
            let client = tls.client_config().unwrap();
            for only in [&rustls::version::TLS12, &rustls::version::TLS13] {
                let server = ServerConfig::builder_with_provider(provider())
                    .with_protocol_versions(&[only])
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![cert.der().clone()],
                        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
                    )
                    .unwrap();
                let (c, s) = session(Arc::clone(&client), Arc::new(server), "nsqd.test:1").await;
                assert_eq!((c, s), (Ok(()), Ok(())), "{version} against {only:?}");
            }
        }
        let tls = TlsOptions {
            min_version: Some("tls1.3".to_string()),
            ..TlsOptions::default()
        };
        assert_eq!(
            tls.client_config().unwrap_err().to_string(),
            "ERROR: tls1.3 is not a tls version"
        );
    }

    #[test]
    fn server_names_come_from_the_host() {
        let ip = |s: &str| ServerName::from(s.parse::<IpAddr>().unwrap());
        assert_eq!(server_name("127.0.0.1:4150").unwrap(), ip("127.0.0.1"));
        assert_eq!(server_name("[::1]:4150").unwrap(), ip("::1"));
        assert_eq!(server_name("[fe80::1%eth0]:4150").unwrap(), ip("fe80::1"));
        assert_eq!(
            server_name("nsqd.example.com:4150").unwrap(),
            ServerName::try_from("nsqd.example.com").unwrap()
        );
        assert_eq!(
            server_name("nsqd").unwrap_err().to_string(),
            "address nsqd: missing port in address"
        );
        assert_eq!(
            server_name("[::1]").unwrap_err().to_string(),
            "address [::1]: missing port in address"
        );
        assert!(server_name("bad_name!:4150").is_err());
        assert!(server_name(":4150").is_err());
    }

    #[test]
    fn der_walking_survives_garbage() {
        assert_eq!(algorithm_oid(&[]), None);
        assert_eq!(algorithm_oid(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(algorithm_oid(&[0x30, 0x03, 0x30, 0x01, 0x06]), None);
        assert_eq!(
            algorithm_oid(&[0x30, 0x05, 0x30, 0x03, 0x06, 0x01, 0x2a]),
            Some(&[0x06, 0x01, 0x2a][..])
        );
    }
}
