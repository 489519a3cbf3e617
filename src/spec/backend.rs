//! The `backend:` block: where the stack's state is kept, checked before anything else can
//! use it (the state is opened before any resource exists).

use super::load::Loader;
use super::{BackendBlock, Expr, ExprKind};
use crate::backend_url::{has_password, is_url, valid_schema};
use crate::source::{Diagnostic, Loc};
use crate::template::{self, Part};
use crate::yaml::{Node, Value};

const BACKEND_KINDS: [&str; 1] = ["postgres"];
const POSTGRES_KEYS: [&str; 2] = ["url", "schema"];

impl Loader {
    pub(super) fn backend(&mut self, key_loc: Loc, node: Node) -> Option<BackendBlock> {
        let entries = self.map(node, "`backend`");
        let entries = self.unique(entries, "backend");
        if entries.is_empty() {
            self.problem(
                Diagnostic::new(key_loc, "`backend` names no backend")
                    .help("write `backend: { postgres: { url: \"${secret.STATE_DB_URL}\" } }`, or remove it to keep the state in `.fabrik/`"),
            );
            return None;
        }
        let mut found = None;
        for (kind, node) in entries {
            if kind.name != "postgres" {
                self.problem(
                    Diagnostic::new(kind.loc, format!("unknown backend `{}`", kind.name))
                        .suggest(&kind.name, BACKEND_KINDS)
                        .help_if_none("the backends are `postgres` (and, without a `backend:` block, the local directory)"),
                );
                continue;
            }
            let fields = self.map(node, "the configuration of backend `postgres`");
            let fields = self.unique(fields, "field");
            let mut url = None;
            let mut url_written = false;
            let mut schema = None;
            for (field, value) in fields {
                match field.name.as_str() {
                    "url" => {
                        url_written = true;
                        url = self.backend_url(value);
                    }
                    "schema" => match value.value {
                        Value::Str(name) if valid_schema(&name) => {
                            schema = Some(name);
                        }
                        Value::Str(name) => self.problem(
                            Diagnostic::new(value.loc, format!("invalid schema name `{name}`"))
                                .help("a schema is a lower-case identifier: letters, digits and `_`, at most 63"),
                        ),
                        other => self.problem(Diagnostic::new(
                            value.loc,
                            format!("`schema` must be a string, not {}", other.kind()),
                        )),
                    },
                    other => self.problem(
                        Diagnostic::new(
                            field.loc,
                            format!("unknown key `{other}` in backend `postgres`"),
                        )
                        .suggest(other, POSTGRES_KEYS),
                    ),
                }
            }
            match url {
                Some(url) => {
                    found = Some(BackendBlock {
                        loc: kind.loc,
                        url,
                        schema,
                    });
                }
                None if !url_written => {
                    self.problem(
                        Diagnostic::new(kind.loc, "backend `postgres` has no `url`")
                            .help("add `url: \"${secret.STATE_DB_URL}\"` and put the connection string in that secret"),
                    );
                }
                None => {}
            }
        }
        found
    }

    /// The connection string: a string whose references are secrets or environment variables
    /// only (the state is opened before any resource exists).
    fn backend_url(&mut self, node: Node) -> Option<Expr> {
        let expr = self.expr(node);
        let ExprKind::Str(parts) = &expr.kind else {
            self.problem(Diagnostic::new(
                expr.loc,
                format!(
                    "`url` must be a string, not {}",
                    expr.literal_kind().unwrap_or("that")
                ),
            ));
            return None;
        };
        let mut ok = true;
        for part in parts {
            match part {
                Part::Ref(template::Reference::Secret(_) | template::Reference::Env(_))
                | Part::Text(_) => {}
                Part::Ref(other) => {
                    self.problem(
                        Diagnostic::new(expr.loc, format!("`url` cannot use {}", other.written()))
                            .help(
                                "the state's URL may use `${secret.NAME}` and `${env.NAME}` only",
                            ),
                    );
                    ok = false;
                }
            }
        }
        let literal = parts.iter().all(|p| matches!(p, Part::Text(_)));
        if ok && literal {
            let text: String = parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.as_str(),
                    Part::Ref(_) => "",
                })
                .collect();
            if !is_url(&text) {
                self.problem(
                    Diagnostic::new(expr.loc, "`url` must start with postgres:// or postgresql://")
                        .help("for example `url: \"${secret.STATE_DB_URL}\"` with STATE_DB_URL=postgres://fabrik:…@db.example/fabrik?sslmode=verify-full"),
                );
                ok = false;
            } else if has_password(&text) {
                self.problem(
                    Diagnostic::new(expr.loc, "`url` holds a password in the spec")
                        .help("put the connection string in a secret and write `url: \"${secret.STATE_DB_URL}\"`"),
                );
                ok = false;
            }
        }
        // A default of `${env.X:-…}` is written in the spec too: no password there either.
        let with_defaults: Option<String> = parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Ref(template::Reference::Env(template::EnvVar {
                    default: Some(d), ..
                })) => Some(d.as_str()),
                Part::Ref(_) => None,
            })
            .collect();
        if ok
            && !literal
            && let Some(text) = with_defaults
            && is_url(&text)
            && has_password(&text)
        {
            self.problem(
                Diagnostic::new(expr.loc, "`url` holds a password in the spec (in a default)")
                    .help("put the connection string in a secret and write `url: \"${secret.STATE_DB_URL}\"`"),
            );
            ok = false;
        }
        ok.then_some(expr)
    }
}
