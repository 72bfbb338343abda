//! Certificates made at test time (nothing secret is kept in the repository) and a blocking
//! HTTPS client. Include next to `mod common;` with
//! `#[path = "common/tls.rs"] mod tls_pki;` so test binaries that do not use TLS skip it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::common::{parse_http_response, HttpResponse, Nsqd, WAIT};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test PKI written into a directory:
/// * `ca.pem`: the CA nsqd trusts (`--tls-root-ca-file`);
/// * `server.pem`/`server.key`: signed by it, SANs `localhost` and `127.0.0.1`;
/// * `client.pem`/`client.key`: a client certificate signed by it, CN [`CLIENT_CN`];
/// * `other-ca.pem`, `other-client.pem`/`other-client.key`: a second CA and a client certificate
///   it signed (CN [`OTHER_CLIENT_CN`]), which nsqd must not trust.
pub struct TestPki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server: CertFiles,
    pub client: CertFiles,
    pub other_ca: PathBuf,
    pub other_client: CertFiles,
}

pub const CLIENT_CN: &str = "nsq test client";
pub const OTHER_CLIENT_CN: &str = "untrusted client";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn make_ca(cn: &str, path: &Path) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = name(cn);
    let key = KeyPair::generate().expect("ca key");
    let cert = params.self_signed(&key).expect("ca cert");
    write(path, &cert.pem());
    Ca { cert, key }
}

fn issue(
    ca: &Ca,
    cn: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    dir: &Path,
    file: &str,
) -> CertFiles {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = name(cn);
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.cert, &ca.key).expect("sign");
    let files = CertFiles {
        cert: dir.join(format!("{file}.pem")),
        key: dir.join(format!("{file}.key")),
    };
    write(&files.cert, &cert.pem());
    write(&files.key, &key.serialize_pem());
    files
}

impl TestPki {
    pub fn new(dir: &Path) -> TestPki {
        let ca_path = dir.join("ca.pem");
        let ca = make_ca("nsq test ca", &ca_path);
        let server = issue(
            &ca,
            "nsqd test server",
            vec![
                SanType::DnsName("localhost".try_into().expect("dns name")),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
            dir,
            "server",
        );
        let client = issue(
            &ca,
            CLIENT_CN,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            dir,
            "client",
        );
        let other_ca_path = dir.join("other-ca.pem");
        let other_ca = make_ca("another ca", &other_ca_path);
        let other_client = issue(
            &other_ca,
            OTHER_CLIENT_CN,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            dir,
            "other-client",
        );
        TestPki {
            dir: dir.to_path_buf(),
            ca: ca_path,
            server,
            client,
            other_ca: other_ca_path,
            other_client,
        }
    }

    /// `--tls-cert` and `--tls-key` for the server certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            format!("--tls-cert={}", self.server.cert.display()),
            format!("--tls-key={}", self.server.key.display()),
        ]
    }

    /// A client configuration trusting this PKI's CA, presenting `client_cert` if given.
    pub fn client_config(&self, client_cert: Option<&CertFiles>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("read ca") {
            roots.add(cert.expect("ca pem")).expect("add root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match client_cert {
            Some(files) => {
                let chain = CertificateDer::pem_file_iter(&files.cert)
                    .expect("read cert")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert pem");
                let key = PrivateKeyDer::from_pem_file(&files.key).expect("key pem");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }

    /// One HTTPS request (`Connection: close`) to `addr` as server name `localhost`. `Err` when
    /// the handshake or the exchange fails, e.g. because the server refused the client.
    pub fn https_request(
        &self,
        addr: SocketAddr,
        client_cert: Option<&CertFiles>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<HttpResponse, String> {
        let server_name = ServerName::try_from("localhost").expect("server name");
        let conn = rustls::ClientConnection::new(self.client_config(client_cert), server_name)
            .map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        tcp.set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        tls.write_all(&request).map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A peer that closes without close_notify after a complete response is still a
            // complete response; the parse below checks that something arrived.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            return Err(format!(
                "incomplete response: {:?}",
                String::from_utf8_lossy(&raw)
            ));
        }
        Ok(parse_http_response(&raw))
    }
}

/// The HTTPS listen address nsqd logged (`HTTPS: listening on <addr>`).
pub fn https_addr(n: &Nsqd) -> SocketAddr {
    let marker = "HTTPS: listening on ";
    let line = n.wait_for_log(marker);
    let at = line.find(marker).expect("marker") + marker.len();
    line[at..].trim().parse().expect("https listen address")
}
