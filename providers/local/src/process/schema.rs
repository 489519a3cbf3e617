//! The fields of `local.process` and the checks on them, apart from starting and stopping
//! processes in `mod.rs`: planning needs them, and they never look at a running process.

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Value,
};

pub const PROCESS_TYPE: &str = "local.process";

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: PROCESS_TYPE,
        description: "A long-running local process, started detached and stopped with SIGTERM.",
        fields: vec![
            Field::required(
                "command",
                FieldKind::String,
                "The program to run (looked up in PATH).",
            ),
            Field::optional("args", FieldKind::List, "Its arguments."),
            Field::optional("env", FieldKind::Map, "Extra environment variables."),
            Field::optional(
                "dir",
                FieldKind::String,
                "Working directory; relative to the spec's directory (default: the spec's directory).",
            ),
            Field::optional(
                "stop_timeout",
                FieldKind::Integer,
                "Seconds between SIGTERM and SIGKILL when stopping (default 10).",
            ),
        ],
        outputs: vec![
            OutputField::new("pid", "The process id."),
            OutputField::new("log", "The file that receives its stdout and stderr."),
        ],
        // A restart with the new configuration is the update; nothing forces a replacement.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

pub fn validate(inputs: &Attributes) -> Result<()> {
    if let Some(Value::Array(args)) = inputs.get("args")
        && args
            .iter()
            .any(|a| !a.is_string() && !a.is_number() && !a.is_boolean())
    {
        return Err(invalid("`args` must be a list of strings"));
    }
    if let Some(Value::Object(env)) = inputs.get("env")
        && env
            .values()
            .any(|v| v.is_object() || v.is_array() || v.is_null())
    {
        return Err(invalid("`env` values must be strings"));
    }
    if let Some(Value::String(command)) = inputs.get("command")
        && command.trim().is_empty()
    {
        return Err(invalid("`command` must not be empty"));
    }
    if let Some(timeout) = inputs.get("stop_timeout")
        && timeout.as_u64().is_none()
    {
        return Err(invalid("`stop_timeout` must be a whole number of seconds"));
    }
    Ok(())
}

pub(super) fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}
