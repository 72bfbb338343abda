//! A CA, a server certificate for 127.0.0.1 and a client certificate, made with rcgen at test
//! time and written as PEM files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

fn leaf(
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
    cn: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    dir: &Path,
    name: &str,
) -> (PathBuf, PathBuf) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn(cn);
    p.subject_alt_names = sans;
    p.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca, ca_key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name = dn("client test ca");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = p.self_signed(&ca_key).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).unwrap();
        let (server_cert, server_key) = leaf(
            &ca_cert,
            &ca_key,
            "nsqd",
            vec![
                SanType::DnsName("localhost".try_into().unwrap()),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
            ExtendedKeyUsagePurpose::ServerAuth,
            dir.path(),
            "server",
        );
        let (client_cert, client_key) = leaf(
            &ca_cert,
            &ca_key,
            "client",
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            dir.path(),
            "client",
        );
        Pki {
            dir,
            ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
        }
    }

    pub fn nsqd_args(&self) -> Vec<String> {
        vec![
            format!("--tls-cert={}", self.server_cert.display()),
            format!("--tls-key={}", self.server_key.display()),
        ]
    }
}
