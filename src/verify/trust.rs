//! How a certificate problem is told: a user whose gate fails on a certificate needs to know
//! whether it expired, names another host or comes from an issuer nobody trusts, because each
//! has a different fix. Which roots are trusted is [`crate::tls_trust`]'s.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as TlsError};

use crate::tls_trust::Roots;

/// What a message needs from a leaf certificate.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses from the subjectAltName extension.
    pub names: Vec<String>,
    pub not_after: i64,
}

pub(crate) fn leaf(der: &CertificateDer<'_>) -> Result<Leaf, String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the server's certificate cannot be parsed: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push((*n).to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok(Leaf {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_after: cert.validity().not_after.timestamp(),
    })
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Explains a TLS failure. `leaf` is the certificate the server presented, when it got that far.
pub(crate) fn explain(err: &TlsError, host: &str, roots: &Roots, leaf: Option<&Leaf>) -> String {
    let TlsError::InvalidCertificate(cert_err) = err else {
        return match err {
            TlsError::AlertReceived(alert) => {
                format!("TLS handshake failed: the server sent the alert {alert:?}")
            }
            other => format!("TLS handshake failed: {other}"),
        };
    };
    let now = now_unix();
    match cert_err {
        CertificateError::Expired => match leaf {
            Some(l) if l.not_after < now => expired(l.not_after, now),
            _ => "the certificate (or one in its chain) has expired".to_string(),
        },
        CertificateError::ExpiredContext { time, not_after } => {
            expired(not_after.as_secs() as i64, time.as_secs() as i64)
        }
        CertificateError::NotValidYet => "the certificate is not valid yet".to_string(),
        CertificateError::NotValidYetContext { not_before, .. } => format!(
            "the certificate is not valid yet: it is valid from {}",
            date(not_before.as_secs() as i64)
        ),
        CertificateError::NotValidForName => mismatch(host, leaf, &[]),
        CertificateError::NotValidForNameContext { presented, .. } => {
            mismatch(host, leaf, presented)
        }
        CertificateError::UnknownIssuer => {
            let issuer = leaf
                .map(|l| format!(" (issued by `{}`)", l.issuer))
                .unwrap_or_default();
            format!(
                "the certificate is not trusted (unknown issuer): its chain{issuer} does not lead to {}",
                roots.source
            )
        }
        CertificateError::BadSignature => format!(
            "the certificate is not trusted: a signature in its chain does not verify against {}",
            roots.source
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not meant for TLS servers (its extended key usage lacks server authentication)"
                .to_string()
        }
        CertificateError::Revoked => "the certificate has been revoked".to_string(),
        other => format!("the certificate is rejected: {other}"),
    }
}

fn expired(not_after: i64, now: i64) -> String {
    let days = (now - not_after) / 86_400;
    let ago = match days {
        0 => "less than a day ago".to_string(),
        1 => "1 day ago".to_string(),
        n => format!("{n} days ago"),
    };
    format!("the certificate expired on {} ({ago})", date(not_after))
}

fn mismatch(host: &str, leaf: Option<&Leaf>, presented: &[String]) -> String {
    let names = match leaf {
        Some(l) if !l.names.is_empty() => l.names.join(", "),
        Some(l) => format!("no name (subject `{}`)", l.subject),
        None if !presented.is_empty() => presented
            .iter()
            .map(|p| presented_name(p))
            .collect::<Vec<_>>()
            .join(", "),
        None => "other names".to_string(),
    };
    format!(
        "the certificate does not match the hostname {host} (hostname mismatch): it is for {names}"
    )
}

/// rustls writes presented names in their Debug form, `DnsName("x.example")`: keep the name.
fn presented_name(presented: &str) -> &str {
    match (presented.find('"'), presented.rfind('"')) {
        (Some(start), Some(end)) if end > start => &presented[start + 1..end],
        _ => presented,
    }
}

/// A Unix time as YYYY-MM-DD (UTC).
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's civil-from-days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A relative `ca_file` is relative to the spec's directory.
pub(crate) fn resolve_path(base_dir: &Path, ca_file: &str) -> PathBuf {
    let path = Path::new(ca_file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_767_225_599), "2025-12-31");
    }
}
