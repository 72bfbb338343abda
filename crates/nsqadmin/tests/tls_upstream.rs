//! HTTPS upstreams: an nsqd that requires TLS answers plain HTTP with 403 and its HTTPS port;
//! nsqadmin retries there, verifying the certificate against `--http-client-tls-root-ca-file`
//! (or not at all with `--http-client-tls-insecure-skip-verify`).
mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};

struct Pki {
    _dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
    let p = Pki {
        ca: dir.path().join("ca.pem"),
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        _dir: dir,
    };
    std::fs::write(&p.ca, ca.pem()).expect("write");
    std::fs::write(&p.cert, cert.pem()).expect("write");
    std::fs::write(&p.key, key.serialize_pem()).expect("write");
    p
}

#[test]
fn an_nsqd_that_requires_tls_is_reached_over_https() {
    let pki = pki();
    let data = tempfile::tempdir().expect("tempdir");
    let nsqd = start_nsqd(
        data.path(),
        None,
        &[
            &format!("--tls-cert={}", pki.cert.display()),
            &format!("--tls-key={}", pki.key.display()),
            "--tls-required=true",
            "--https-address=127.0.0.1:0",
        ],
    );
    nsqd.log.wait_for("HTTPS: listening on ");
    nsq_testkit::eventually(|| {
        let r = nsq_testkit::http_request_with(nsqd.http, "GET", "/ping", "", b"");
        (r.status == 403).then_some(())
    });
    let verified = start_admin(&[
        format!("--nsqd-http-address={}", nsqd.http),
        format!("--http-client-tls-root-ca-file={}", pki.ca.display()),
    ]);
    let empty = get_json(verified.http, "/api/topics");
    assert_eq!(empty["message"], "", "{empty}");

    let insecure = start_admin(&[
        format!("--nsqd-http-address={}", nsqd.http),
        "--http-client-tls-insecure-skip-verify".into(),
    ]);
    assert_eq!(
        get_json(insecure.http, "/api/nodes")["nodes"][0]["broadcast_address"],
        "127.0.0.1"
    );

    // Without the CA the certificate is refused: the only node fails, so the answer is a 502.
    let unverified = start_admin(&[format!("--nsqd-http-address={}", nsqd.http)]);
    let r = get(unverified.http, "/api/topics");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("https://127.0.0.1:"), "{}", r.text());
}
