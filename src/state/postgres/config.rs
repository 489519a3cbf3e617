//! How to reach the state database: the URL with fabrik's own parameters (`sslmode`,
//! `sslrootcert`, `schema`) taken out, timeouts that stop a run soon when the database does
//! not answer, and TLS verified against [`crate::tls_trust`]'s roots.

use std::sync::Arc;
use std::time::Duration;

use postgres::{Client, Config as PgConfig, NoTls};

use crate::backend_url::{is_url, percent_decode, valid_schema};
use crate::error::Error;

/// How to reach the database. The connection string holds a password: it is kept here and
/// never printed; messages use [`Config::describe`].
#[derive(Clone)]
pub struct Config {
    pg: PgConfig,
    pub(super) tls: Tls,
    pub schema: String,
    /// Where a run that lost the database mid-way keeps the state it could not write, until
    /// the next run pushes it (`None`: nowhere, the run only reports).
    pub(super) local_dir: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tls {
    /// `sslmode=disable`, `allow` or `prefer`, or none: a plain connection (for loopback or a
    /// private network). libpq's `prefer` would take TLS without checking the certificate;
    /// fabrik offers no unverified channel that looks secure.
    Off,
    /// `sslmode=require`, `verify-ca` or `verify-full`: encrypted and verified against the
    /// system roots, or the CA in `sslrootcert`.
    Verified { ca_file: Option<std::path::PathBuf> },
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "fabrik";

impl Config {
    /// Parses `postgres://user:password@host:port/db?sslmode=…&sslrootcert=…&schema=…`.
    /// `schema` in the URL wins over `schema`; errors never quote the URL.
    pub fn parse(url: &str, schema: Option<&str>) -> Result<Config, Error> {
        let bad = |why: String| Error::Usage(format!("the PostgreSQL state URL is invalid: {why}"));
        if !is_url(url) {
            return Err(bad("it must start with postgres:// or postgresql://".into()));
        }
        // The password is a secret: mask it in anything printed from here on, whatever the
        // path it takes (a driver error quoting the URL, a panic message).
        crate::redact::register([url]);
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut tls = Tls::Off;
        let mut ca_file = None;
        let mut schema = schema.map(str::to_string);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key {
                // tokio-postgres knows only disable/prefer/require; fabrik checks certificates
                // itself and asks the driver to require TLS.
                "sslmode" => {
                    tls = match value.as_str() {
                        "disable" | "allow" | "prefer" => Tls::Off,
                        "require" | "verify-ca" | "verify-full" => Tls::Verified { ca_file: None },
                        other => {
                            return Err(bad(format!(
                                "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
                            )));
                        }
                    }
                }
                "sslrootcert" => ca_file = Some(std::path::PathBuf::from(value)),
                "schema" => schema = Some(value),
                _ => kept.push(pair),
            }
        }
        if let (Tls::Verified { ca_file: slot }, Some(path)) = (&mut tls, ca_file.clone()) {
            *slot = Some(path);
        } else if ca_file.is_some() {
            return Err(bad(
                "sslrootcert is given but sslmode does not ask for TLS (use sslmode=verify-full)"
                    .into(),
            ));
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut pg: PgConfig = rest
            .parse()
            .map_err(|e: postgres::Error| bad(e.to_string()))?;
        if let Some(password) = pg.get_password() {
            crate::redact::register([String::from_utf8_lossy(password).as_ref()]);
        }
        // A database that does not answer must stop the run soon, not hang it: the connection
        // attempt is bounded, and a connection whose peer vanished without closing it (a
        // network partition, a host that died) fails within about half a minute.
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        let named = |key: &str| kept.iter().any(|p| p.split('=').next() == Some(key));
        if !named("keepalives_idle") && !named("keepalives_interval") {
            pg.keepalives_idle(Duration::from_secs(15));
            pg.keepalives_interval(Duration::from_secs(5));
            pg.keepalives_retries(3);
        }
        if !named("tcp_user_timeout") {
            pg.tcp_user_timeout(Duration::from_secs(30));
        }
        pg.application_name("fabrik");
        pg.ssl_mode(match tls {
            Tls::Off => postgres::config::SslMode::Disable,
            Tls::Verified { .. } => postgres::config::SslMode::Require,
        });
        let schema = schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
        if !valid_schema(&schema) {
            return Err(bad(format!(
                "schema `{schema}` must be a lower-case identifier (letters, digits, `_`)"
            )));
        }
        Ok(Config {
            pg,
            tls,
            schema,
            local_dir: None,
        })
    }

    /// Keeps the emergency state of runs that lose the database in `dir` (the spec's `.fabrik/`).
    pub fn with_local_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.local_dir = Some(dir);
        self
    }

    /// `postgres://user@host:port/db (schema s)`: where the state is, without the password.
    pub fn describe(&self) -> String {
        let host = self.pg.get_hosts().first().map_or_else(
            || "localhost".into(),
            |h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            },
        );
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let user = self.pg.get_user().unwrap_or("");
        let at = if user.is_empty() { "" } else { "@" };
        let db = self.pg.get_dbname().unwrap_or(user);
        format!(
            "postgres://{user}{at}{host}:{port}/{db} (schema {})",
            self.schema
        )
    }

    pub(super) fn error(&self, doing: &str, e: postgres::Error) -> Error {
        Error::Backend {
            backend: self.describe(),
            message: format!("{doing}: {}", describe_pg_error(&e)),
        }
    }

    /// A new connection, with the schema ready.
    pub(super) fn connect(&self) -> Result<Client, Error> {
        let mut client = match &self.tls {
            Tls::Off => self.pg.connect(NoTls),
            Tls::Verified { ca_file } => {
                let roots =
                    crate::tls_trust::load(ca_file.as_deref()).map_err(|why| Error::Backend {
                        backend: self.describe(),
                        message: why,
                    })?;
                let mut store = rustls::RootCertStore::empty();
                store.add_parsable_certificates(roots.certs.iter().cloned());
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(store)
                .with_no_client_auth();
                self.pg
                    .connect(tokio_postgres_rustls::MakeRustlsConnect::new(config))
            }
        }
        .map_err(|e| self.error("connecting", e))?;
        self.migrate(&mut client)?;
        Ok(client)
    }
}

/// A driver error in one line: the server's message when there is one (its `Display` says only
/// "db error").
fn describe_pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_described_without_its_password_and_keeps_fabriks_own_parameters() {
        let config = Config::parse(
            "postgres://team:s3cr%40t@db.example:6432/infra?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&schema=ops&application_name=x",
            None,
        )
        .unwrap();
        assert_eq!(
            config.describe(),
            "postgres://team@db.example:6432/infra (schema ops)"
        );
        assert!(!format!("{config:?}").contains("s3cr"));
        assert_eq!(
            config.tls,
            Tls::Verified {
                ca_file: Some("/etc/ca.pem".into())
            }
        );
        // The spec's schema gives way to the URL's.
        let config =
            Config::parse("postgresql://u:p@h/db?sslmode=disable", Some("fabrik_x")).unwrap();
        assert_eq!(config.schema, "fabrik_x");
        assert_eq!(config.tls, Tls::Off);
        assert_eq!(
            config.describe(),
            "postgres://u@h:5432/db (schema fabrik_x)"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for (url, why) in [
            ("mysql://u:hunter2@h/db", "must start with postgres://"),
            (
                "postgres://u:hunter2@h/db?sslmode=sometimes",
                "sslmode `sometimes`",
            ),
            (
                "postgres://u:hunter2@h/db?schema=Bad-Name",
                "schema `Bad-Name`",
            ),
            (
                "postgres://u:hunter2@h/db?sslrootcert=/ca.pem",
                "sslrootcert is given but sslmode",
            ),
        ] {
            let err = Config::parse(url, None).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
}
