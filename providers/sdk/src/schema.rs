//! Resource type schemas: what the engine validates, diffs and shows for each type.

/// The kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list of any values.
    List,
    /// A map from strings to any values.
    Map,
    /// A string holding a duration, `90s` or `5m` (see [`crate::parse_duration`]).
    Duration,
    /// Anything (the provider checks it).
    Any,
}

impl FieldKind {
    /// The kind in words, for messages ("must be a string").
    pub fn describe(self) -> &'static str {
        match self {
            FieldKind::String => "a string",
            FieldKind::Integer => "an integer",
            FieldKind::Boolean => "a boolean",
            FieldKind::List => "a list",
            FieldKind::Map => "a map",
            FieldKind::Duration => "a duration",
            FieldKind::Any => "any value",
        }
    }
}

/// One input field of a resource type or of a provider's configuration.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its key in the spec's `with:` (or the provider's block).
    pub name: &'static str,
    /// The kind of value it holds.
    pub kind: FieldKind,
    /// A spec must give it.
    pub required: bool,
    /// Never shown or stored in plain text.
    pub sensitive: bool,
    /// A change to this field cannot be made in place: the object is replaced.
    pub force_new: bool,
    /// One sentence for people (the JSON Schema, `fabrik types`).
    pub description: &'static str,
    /// The values it may take, as the provider spells them (empty: any). The engine refuses
    /// a known value that is none of them, compared ignoring ASCII case and surrounding
    /// blanks ([`Field::allows`]), and the JSON Schema lists them as its `enum`.
    pub one_of: &'static [&'static str],
}

impl Field {
    /// A field a spec must give.
    pub const fn required(name: &'static str, kind: FieldKind, description: &'static str) -> Self {
        Field {
            name,
            kind,
            required: true,
            sensitive: false,
            force_new: false,
            description,
            one_of: &[],
        }
    }

    /// A field a spec may leave out.
    pub const fn optional(name: &'static str, kind: FieldKind, description: &'static str) -> Self {
        Field {
            name,
            kind,
            required: false,
            sensitive: false,
            force_new: false,
            description,
            one_of: &[],
        }
    }

    /// Marks a change to the field as one that replaces the object.
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    /// Marks the field as a secret: never shown, stored only as a keyed hash.
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// The values the field may take, every spelling the provider accepts (see
    /// [`Field::one_of`](Field#structfield.one_of)).
    pub const fn one_of(mut self, values: &'static [&'static str]) -> Self {
        self.one_of = values;
        self
    }

    /// Whether `value` is one the field may take: any, without a list; otherwise one of the
    /// list, ignoring ASCII case and surrounding blanks.
    pub fn allows(&self, value: &str) -> bool {
        let value = value.trim();
        self.one_of.is_empty() || self.one_of.iter().any(|v| v.eq_ignore_ascii_case(value))
    }
}

/// An attribute a resource reports after it is created.
#[derive(Debug, Clone)]
pub struct OutputField {
    /// Its name, as references write it (`${resources.web.outputs.NAME}`).
    pub name: &'static str,
    /// One sentence for people.
    pub description: &'static str,
    /// The input fields whose values this output is computed from (a hash or the length of a
    /// file's content). When one of them holds a secret, the output could tell it, so the engine
    /// treats the output as a secret too: never shown, stored only as a keyed hash.
    pub derived_from: &'static [&'static str],
    /// The output holds a secret whatever the inputs (a token the provider made): never shown,
    /// stored only as a keyed hash.
    pub sensitive: bool,
}

impl OutputField {
    /// An output computed from no input field.
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        OutputField {
            name,
            description,
            derived_from: &[],
            sensitive: false,
        }
    }

    /// Marks the output as a secret whatever the inputs are.
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Says which input fields the output is computed from.
    pub const fn derived_from(mut self, fields: &'static [&'static str]) -> Self {
        self.derived_from = fields;
        self
    }
}

/// How an object is replaced when a force-new field changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplaceStrategy {
    /// The new object can exist beside the old one: create it first, delete the old one last,
    /// after every gate has passed.
    CreateBeforeDestroy,
    /// The identity does not allow two at once: delete, then create.
    DestroyBeforeCreate,
}

/// A resource type: `local.file`, `powerdns.record`, …
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// `<provider>.<type>`, as a spec's `type:` writes it.
    pub name: &'static str,
    /// One sentence for people.
    pub description: &'static str,
    /// Its input fields.
    pub fields: Vec<Field>,
    /// What it reports after a create or an update.
    pub outputs: Vec<OutputField>,
    /// How a change to a force-new field is made.
    pub replace: ReplaceStrategy,
}

impl ResourceType {
    /// The input field `name`, if it has one.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The output `name`, if it has one.
    pub fn output(&self, name: &str) -> Option<&OutputField> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::{Field, FieldKind};

    #[test]
    fn a_list_of_values_is_matched_in_any_case_and_without_blanks() {
        let free = Field::optional("name", FieldKind::String, "");
        assert!(free.allows("anything"));
        let kind = Field::optional("kind", FieldKind::String, "").one_of(&["Native", "Master"]);
        assert!(kind.allows("Native"));
        assert!(kind.allows(" master "));
        assert!(!kind.allows("Slave"));
        assert!(!kind.allows(""));
    }
}
