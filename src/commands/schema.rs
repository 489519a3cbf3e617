//! `fabrik schema`: the spec's JSON Schema, for editors (built in `crate::schema`).

use crate::error::Error;
use crate::registry::Registry;

pub fn run() -> Result<i32, Error> {
    let schema = crate::schema::spec_schema(&Registry::builtin());
    let text = serde_json::to_string_pretty(&schema).expect("a JSON value serializes");
    out!("{text}\n");
    Ok(0)
}
