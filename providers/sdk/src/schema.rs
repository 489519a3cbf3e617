//! Resource type schemas: what the engine validates, diffs and shows for each type.

/// The kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Integer,
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
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Never shown or stored in plain text.
    pub sensitive: bool,
    /// A change to this field cannot be made in place: the object is replaced.
    pub force_new: bool,
    pub description: &'static str,
}

impl Field {
    pub const fn required(name: &'static str, kind: FieldKind, description: &'static str) -> Self {
        Field {
            name,
            kind,
            required: true,
            sensitive: false,
            force_new: false,
            description,
        }
    }

    pub const fn optional(name: &'static str, kind: FieldKind, description: &'static str) -> Self {
        Field {
            name,
            kind,
            required: false,
            sensitive: false,
            force_new: false,
            description,
        }
    }

    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

/// An attribute a resource reports after it is created.
#[derive(Debug, Clone)]
pub struct OutputField {
    pub name: &'static str,
    pub description: &'static str,
    /// The input fields whose values this output is computed from (a hash or the length of a
    /// file's content). When one of them holds a secret, the output could tell it, so the engine
    /// treats the output as a secret too: never shown, stored only as a keyed hash.
    pub derived_from: &'static [&'static str],
}

impl OutputField {
    pub const fn new(name: &'static str, description: &'static str) -> Self {
        OutputField {
            name,
            description,
            derived_from: &[],
        }
    }

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
    pub name: &'static str,
    pub description: &'static str,
    pub fields: Vec<Field>,
    pub outputs: Vec<OutputField>,
    pub replace: ReplaceStrategy,
}

impl ResourceType {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&OutputField> {
        self.outputs.iter().find(|o| o.name == name)
    }
}
