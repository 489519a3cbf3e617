//! The `tls` gate: a TLS handshake with the host whose certificate chain must validate against
//! the trusted roots, match the hostname, and stay valid for `min_valid_days` more days.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::tcp::{connect, explain_io, host_port};
use super::trust;
use super::{Probe, remaining};
use crate::tls_trust::{self, Roots};

#[derive(Debug, Clone)]
pub(crate) struct TlsCheck {
    pub host: String,
    pub port: u16,
    pub ca_file: Option<PathBuf>,
    pub min_valid_days: u32,
}

impl TlsCheck {
    pub fn describe(&self) -> String {
        let mut s = format!("tls {}", host_port(&self.host, self.port));
        if self.min_valid_days > 0 {
            s.push_str(&format!(" (valid {}+ days)", self.min_valid_days));
        }
        s
    }

    pub fn prepare(&self) -> Result<Probe, String> {
        let roots = tls_trust::load(self.ca_file.as_deref())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(roots.certs.iter().cloned());
        if added == 0 {
            return Err(format!("{} holds no usable CA certificate", roots.source));
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| format!("cannot use {}: {e}", roots.source))?;
        let server_name = ServerName::try_from(self.host.clone())
            .map_err(|_| format!("`{}` is not a valid TLS server name", self.host))?;
        let check = self.clone();
        Ok(Arc::new(move |deadline| {
            check.attempt(&roots, &verifier, &provider, &server_name, deadline)
        }))
    }

    fn attempt(
        &self,
        roots: &Roots,
        verifier: &Arc<WebPkiServerVerifier>,
        provider: &Arc<CryptoProvider>,
        server_name: &ServerName<'static>,
        deadline: Instant,
    ) -> Result<(), String> {
        let recorder = Arc::new(Recorder {
            inner: verifier.clone(),
            leaf: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let mut conn = ClientConnection::new(Arc::new(config), server_name.clone())
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let mut sock = connect(&self.host, self.port, deadline)?;
        while conn.is_handshaking() {
            let Some(left) = remaining(deadline) else {
                return Err("timed out during the TLS handshake".to_string());
            };
            let _ = sock.set_read_timeout(Some(left));
            let _ = sock.set_write_timeout(Some(left));
            if let Err(e) = conn.complete_io(&mut sock) {
                let tls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
                return Err(match tls_error {
                    Some(tls_error) => {
                        let leaf = recorder.leaf().and_then(|der| trust::leaf(&der).ok());
                        trust::explain(tls_error, &self.host, roots, leaf.as_ref())
                    }
                    None => format!("TLS handshake failed: {}", explain_io(&e)),
                });
            }
        }
        let leaf_der = conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or("the server presented no certificate")?;
        let leaf = trust::leaf(leaf_der)?;
        // Polite close; the verdict is already in.
        conn.send_close_notify();
        let _ = conn.complete_io(&mut sock);

        let min = i64::from(self.min_valid_days) * 86_400;
        let left = leaf.not_after - trust::now_unix();
        if left < min {
            let days = left.div_euclid(86_400);
            let when = match days {
                0 => "in less than a day".to_string(),
                1 => "in 1 day".to_string(),
                n => format!("in {n} days"),
            };
            return Err(format!(
                "the certificate expires {when} (on {}), but min_valid_days is {}",
                trust::date(leaf.not_after),
                self.min_valid_days
            ));
        }
        Ok(())
    }
}

/// The standard verifier, remembering the leaf it was shown so that a failure can say what the
/// certificate was for and who issued it.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    leaf: Mutex<Option<CertificateDer<'static>>>,
}

impl Recorder {
    fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.leaf
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(end_entity.clone().into_owned());
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
