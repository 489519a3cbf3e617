//! PostgreSQL state URLs as text: recognising one, finding and masking its password, decoding
//! its parameters, checking a schema name. The spec checks its `backend:` block with these, the
//! command line masks `--backend` with them, and the PostgreSQL backend parses its
//! configuration with them; a leaf, so that none of them depends on another for it.

/// Whether `url` names a PostgreSQL database (rather than a state directory).
pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Whether a URL written in a spec carries a password (`user:password@host`).
pub fn has_password(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, rest)| {
        rest.split(['/', '?']).next().is_some_and(|auth| {
            auth.split_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
        })
    })
}

/// `text` with the password of every PostgreSQL URL in it masked: for command lines, which
/// are stored as a lock's holder and shown to others.
pub fn mask_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["postgres://", "postgresql://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme).map(|i| (i, scheme.len())))
        .min()
    {
        let (start, scheme_len) = at;
        let authority_start = start + scheme_len;
        out.push_str(&rest[..authority_start]);
        let tail = &rest[authority_start..];
        let authority_end = tail.find(['/', '?', ' ']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                out.push_str(&format!("{user}:(sensitive)@{host}"));
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Whether `name` can be a schema: a plain lower-case SQL identifier, so it needs no quoting.
pub fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// A URL parameter's value with its `%XX` escapes decoded; a stray `%` is kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_command_lines_are_masked() {
        assert_eq!(
            mask_passwords(
                "fabrik --backend postgres://ci:pa:ss@db:5432/x?schema=s apply --backend=postgresql://u:p@h"
            ),
            "fabrik --backend postgres://ci:(sensitive)@db:5432/x?schema=s apply --backend=postgresql://u:(sensitive)@h"
        );
        assert_eq!(
            mask_passwords("fabrik apply postgres://nopass@h/db"),
            "fabrik apply postgres://nopass@h/db"
        );
    }

    #[test]
    fn passwords_written_in_a_url_are_found() {
        assert!(has_password("postgres://u:p@h/db"));
        assert!(!has_password("postgres://u@h/db?password=x"));
        assert!(!has_password("postgres://h/db"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(valid_schema("fabrik_2") && !valid_schema("2fabrik") && !valid_schema("a-b"));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decode("%2Fetc%2Fca.pem"), "/etc/ca.pem");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
