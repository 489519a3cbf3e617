//! The `local` provider: files and processes on this machine, with no account and no server. It is the
//! embedded default that lets a newcomer run fabrik end to end.

mod file;
mod process;

use fabrik_provider::{Attributes, Client, Context, Field, Provider, ResourceType, Result};

pub use file::FILE_TYPE;
pub use process::PROCESS_TYPE;

/// The `local` provider.
#[derive(Debug, Default)]
pub struct Local;

impl Provider for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn config_fields(&self) -> Vec<Field> {
        Vec::new()
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![file::resource_type(), process::resource_type()]
    }

    fn configure(&self, _config: &Attributes, context: &Context) -> Result<Box<dyn Client>> {
        Ok(Box::new(LocalClient {
            files: file::Files::new(context.base_dir.clone()),
            processes: process::Processes::new(context.base_dir.clone(), context.state_dir.clone()),
        }))
    }

    fn validate(&self, type_name: &str, inputs: &Attributes) -> Result<()> {
        match type_name {
            FILE_TYPE => file::validate(inputs),
            PROCESS_TYPE => process::validate(inputs),
            _ => Ok(()),
        }
    }
}

struct LocalClient {
    files: file::Files,
    processes: process::Processes,
}

/// Dispatches each call to the module of its resource type.
impl Client for LocalClient {
    fn read(
        &self,
        target: fabrik_provider::Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<Option<fabrik_provider::Observed>> {
        match target.type_name {
            FILE_TYPE => self.files.read(id, inputs),
            PROCESS_TYPE => self.processes.read(target, id, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn find(
        &self,
        target: fabrik_provider::Target<'_>,
        inputs: &Attributes,
    ) -> Result<Option<fabrik_provider::Found>> {
        match target.type_name {
            FILE_TYPE => self.files.find(inputs),
            PROCESS_TYPE => self.processes.find(target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn create(
        &self,
        target: fabrik_provider::Target<'_>,
        inputs: &Attributes,
    ) -> Result<fabrik_provider::Applied> {
        match target.type_name {
            FILE_TYPE => self.files.create(inputs),
            PROCESS_TYPE => self.processes.start(target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn update(
        &self,
        target: fabrik_provider::Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<fabrik_provider::Applied> {
        match target.type_name {
            FILE_TYPE => self.files.update(id, inputs),
            PROCESS_TYPE => self.processes.restart(target, id, prior, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn delete(
        &self,
        target: fabrik_provider::Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<()> {
        match target.type_name {
            FILE_TYPE => self.files.delete(id),
            PROCESS_TYPE => self.processes.stop(target, id, inputs),
            other => Err(unknown_type(other)),
        }
    }
}

fn unknown_type(name: &str) -> fabrik_provider::Error {
    fabrik_provider::Error::new(
        fabrik_provider::ErrorKind::InvalidInput,
        format!("the local provider has no resource type `{name}`"),
    )
}
