//! Which root certificates a TLS connection trusts: the CA in a file the user names, or the
//! system's roots. The `http` and `tls` gates and the PostgreSQL state backend all connect
//! through rustls with these roots; a leaf, so that the state backend needs nothing of the
//! gates. The wording of its errors names `ca_file`, as the gates' option is called.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Root certificates, with where they came from for messages.
#[derive(Debug)]
pub struct Roots {
    pub certs: Vec<CertificateDer<'static>>,
    /// "the system roots" or "the CA in certs/ca.pem".
    pub source: String,
}

/// The CA certificates in `ca_file`, or the system's roots when there is none.
pub fn load(ca_file: Option<&Path>) -> Result<Arc<Roots>, String> {
    match ca_file {
        Some(path) => load_ca_file(path).map(Arc::new),
        None => system_roots(),
    }
}

fn load_ca_file(path: &Path) -> Result<Roots, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ca_file {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "ca_file {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(Roots {
        certs,
        source: format!("the CA in ca_file {}", path.display()),
    })
}

/// The system's roots, loaded once per process: reading /etc/ssl/certs for every attempt would
/// cost more than the attempt.
fn system_roots() -> Result<Arc<Roots>, String> {
    static ROOTS: OnceLock<Result<Arc<Roots>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(format!(
                    "no system root certificates found{}; install ca-certificates, set SSL_CERT_FILE, or give the gate a ca_file",
                    if why.is_empty() { String::new() } else { format!(" ({why})") }
                ));
            }
            Ok(Arc::new(Roots {
                certs: found.certs,
                source: "the system roots".to_string(),
            }))
        })
        .clone()
}
