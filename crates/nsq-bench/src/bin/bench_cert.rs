//! `bench_cert CERT_PATH KEY_PATH`: writes a throwaway self-signed certificate and its key (PEM)
//! for `localhost` and `127.0.0.1`, for `scripts/bench.sh` on machines without `openssl`. The
//! certificate is for loopback benchmarks only.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Context;
use rcgen::{CertificateParams, KeyPair};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cert, key] = args.as_slice() else {
        eprintln!("usage: bench_cert CERT_PATH KEY_PATH");
        return ExitCode::from(2);
    };
    nsq_bench::cli::finish("bench_cert", write(cert, key))
}

fn write(cert_path: &str, key_path: &str) -> anyhow::Result<()> {
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .context("certificate parameters")?;
    let key = KeyPair::generate().context("generating a key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    std::fs::write(cert_path, cert.pem()).with_context(|| format!("writing {cert_path}"))?;
    std::fs::write(key_path, key.serialize_pem()).with_context(|| format!("writing {key_path}"))?;
    Ok(())
}
