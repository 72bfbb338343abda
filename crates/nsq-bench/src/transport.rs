//! The optional connection upgrades a client can negotiate in IDENTIFY: TLS, then snappy or
//! deflate compression. With none of them the tools send NSQ's bench tools' plain IDENTIFY.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use nsq_protocol::compress::{Deflate, Snappy, StreamCodec};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Stream compression after IDENTIFY (and after TLS, when both are asked for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Snappy,
    /// Raw deflate at this level (1–9).
    Deflate(u32),
}

/// What a connection negotiates. The default is a plain connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transport {
    pub tls: bool,
    /// CA certificates (PEM) the server's certificate must chain to. `None` with `tls`: any
    /// certificate is accepted (see [`AcceptAnyCert`]).
    pub tls_ca_file: Option<PathBuf>,
    pub compression: Compression,
}

impl Transport {
    /// Whether IDENTIFY must negotiate anything (otherwise the plain IDENTIFY is sent).
    pub fn negotiates(&self) -> bool {
        self.tls || self.compression != Compression::None
    }

    /// A fresh codec for the negotiated compression, if any.
    pub fn codec(&self) -> Option<Box<dyn StreamCodec>> {
        match self.compression {
            Compression::None => None,
            Compression::Snappy => Some(Box::new(Snappy::default())),
            Compression::Deflate(level) => Some(Box::new(Deflate::new(level))),
        }
    }

    /// The TLS client configuration: verifying against `tls_ca_file`, or accepting anything.
    pub fn tls_config(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let config = match &self.tls_ca_file {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("cannot read --tls-ca-file {}", path.display()))?
                {
                    let cert = cert.with_context(|| {
                        format!("bad PEM certificate in --tls-ca-file {}", path.display())
                    })?;
                    roots
                        .add(cert)
                        .with_context(|| format!("unusable CA in {}", path.display()))?;
                }
                if roots.is_empty() {
                    bail!("--tls-ca-file {} holds no certificate", path.display());
                }
                builder.with_root_certificates(roots)
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider))),
        };
        Ok(Arc::new(config.with_no_client_auth()))
    }
}

/// The TLS server name for `addr` (`host:port`, `[v6]:port`): an IP address or a DNS name.
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .with_context(|| format!("{host:?} is not a valid TLS server name"))
}

/// BENCHMARK USE ONLY: accepts whatever certificate the server presents, for any name, so
/// `--tls` works against a throwaway self-signed certificate without `--tls-ca-file`. This gives
/// encryption without authentication and must never be copied into a real client. Handshake
/// signatures are still checked against the presented certificate, so the TLS work measured is
/// the same as with verification (bar the chain check itself).
#[derive(Debug)]
pub struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
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

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1:4150").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:4150").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("localhost:4150").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn plain_negotiates_nothing() {
        assert!(!Transport::default().negotiates());
        assert!(Transport::default().codec().is_none());
        let t = Transport {
            compression: Compression::Deflate(6),
            ..Transport::default()
        };
        assert!(t.negotiates() && t.codec().is_some());
    }
}
