//! The address of a resource instance, as `moved:`, `fabrik state mv` (and the instances of a
//! repeated resource, `NAME[key]`) write it: one reader, so every place accepts the same shapes.

use std::fmt;

use super::valid_name;

/// `NAME` or `NAME[key]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub name: String,
    /// The instance key of a repeated resource.
    pub key: Option<String>,
}

impl Address {
    /// Reads an address, or says what is wrong with it (a sentence for a diagnostic).
    ///
    /// A name is a resource name ([`valid_name`]); a key is a `for_each` key
    /// (`template::valid_key`).
    ///
    /// # Errors
    /// The reason the text is not an address.
    pub fn parse(text: &str) -> Result<Address, String> {
        let (name, key) = match text.split_once('[') {
            None => (text, None),
            Some((name, rest)) => {
                let Some(key) = rest.strip_suffix(']') else {
                    return Err(format!(
                        "`{text}` is not an address: `[` without a closing `]` at the end"
                    ));
                };
                (name, Some(key))
            }
        };
        if !valid_name(name) {
            return Err(format!(
                "`{text}` is not an address: a resource name starts with a letter or digit and holds letters, digits, `_` and `-`"
            ));
        }
        if let Some(key) = key.filter(|k| !crate::template::valid_key(k)) {
            return Err(format!(
                "`{text}` is not an address: the key `{key}` in `NAME[key]` is 1 to 128 ASCII letters, digits, `_`, `-` and `.`, as `for_each` keys are"
            ));
        }
        Ok(Address {
            name: name.to_string(),
            key: key.map(str::to_string),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}[{key}]", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Address;

    #[test]
    fn names_and_keyed_instances_are_addresses() {
        assert_eq!(Address::parse("web").unwrap().to_string(), "web");
        let keyed = Address::parse("web[eu-1]").unwrap();
        assert_eq!(keyed.name, "web");
        assert_eq!(keyed.key.as_deref(), Some("eu-1"));
        assert_eq!(keyed.to_string(), "web[eu-1]");
        assert_eq!(
            Address::parse("dns[www.example.org]")
                .unwrap()
                .key
                .as_deref(),
            Some("www.example.org")
        );
    }

    #[test]
    fn malformed_addresses_say_why() {
        for bad in [
            "",
            "-web",
            "web.pid",
            "web[",
            "web[]",
            "web[a]b",
            "web[ a]",
            "web[\"a\"]",
            "web[a[b]]",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
