//! The `secrets:` block: the names a spec declares and how a missing value may be generated.
//! Their values are resolved later, by the `secrets` module.

use super::load::Loader;
use super::{Alphabet, Generate, SECRET_LENGTHS, SecretDecl};
use crate::source::Diagnostic;
use crate::yaml::{Key, Node, Value};

impl Loader {
    pub(super) fn secrets(&mut self, node: Node) -> Vec<SecretDecl> {
        let entries = self.map(node, "`secrets`");
        let entries = self.unique(entries, "secret");
        entries
            .into_iter()
            .filter_map(|(key, node)| self.secret(key, node))
            .collect()
    }

    fn secret(&mut self, key: Key, node: Node) -> Option<SecretDecl> {
        let mut name_chars = key.name.chars();
        let valid = name_chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name_chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid secret name `{}`", key.name))
                    .help("a secret is named like an environment variable: letters, digits and `_`, not starting with a digit"),
            );
            return None;
        }
        let entries = self.map(node, &format!("secret `{}`", key.name));
        let mut generate = None;
        for (k, v) in entries {
            match k.name.as_str() {
                "generate" => generate = self.generate(v, &key.name),
                other => {
                    self.problem(
                        Diagnostic::new(
                            k.loc,
                            format!("unknown key `{other}` in secret `{}`", key.name),
                        )
                        .suggest(other, ["generate"])
                        .help(
                            "write `{}` for a required secret, or `{ generate: { length: 32 } }`",
                        ),
                    );
                }
            }
        }
        Some(SecretDecl {
            name: key.name,
            loc: key.loc,
            generate,
        })
    }

    /// `None` when the block is bad (every problem in it reported).
    fn generate(&mut self, node: Node, secret: &str) -> Option<Generate> {
        let entries = self.map(node, "`generate`");
        let mut bad = false;
        let mut length = 32usize;
        let mut alphabet = Alphabet::Alnum;
        for (k, v) in entries {
            match (k.name.as_str(), v.value) {
                ("length", Value::Int(n)) if SECRET_LENGTHS.contains(&n) => length = n as usize,
                ("length", Value::Int(n)) => {
                    self.problem(
                        Diagnostic::new(
                            v.loc,
                            format!("secret `{secret}`: a generated length of {n} is out of range"),
                        )
                        .help(format!(
                            "use {} to {} characters",
                            SECRET_LENGTHS.start(),
                            SECRET_LENGTHS.end()
                        )),
                    );
                    bad = true;
                }
                ("alphabet", Value::Str(s)) => match s.as_str() {
                    "alnum" => alphabet = Alphabet::Alnum,
                    "hex" => alphabet = Alphabet::Hex,
                    "base64url" => alphabet = Alphabet::Base64Url,
                    other => {
                        self.problem(
                            Diagnostic::new(v.loc, format!("unknown alphabet `{other}`"))
                                .suggest(other, ["alnum", "hex", "base64url"])
                                .help_if_none("the alphabets are `alnum`, `hex` and `base64url`"),
                        );
                        bad = true;
                    }
                },
                ("length" | "alphabet", other) => {
                    self.problem(Diagnostic::new(
                        v.loc,
                        format!(
                            "`{}` must be {}, not {}",
                            k.name,
                            if k.name == "length" {
                                "a whole number"
                            } else {
                                "a string"
                            },
                            other.kind()
                        ),
                    ));
                    bad = true;
                }
                (other, _) => {
                    self.problem(
                        Diagnostic::new(k.loc, format!("unknown key `{other}` in `generate`"))
                            .suggest(other, ["length", "alphabet"]),
                    );
                    bad = true;
                }
            }
        }
        (!bad).then_some(Generate { length, alphabet })
    }
}
