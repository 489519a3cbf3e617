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
            files: file::Files::new(context.base_dir.clone(), &context.state_dir),
            processes: process::Processes::new(context.base_dir.clone(), context.state_dir.clone()),
        }))
    }

    fn validate(&self, target: fabrik_provider::Target<'_>, inputs: &Attributes) -> Result<()> {
        match target.type_name {
            FILE_TYPE => file::validate(inputs),
            PROCESS_TYPE => process::validate(inputs),
            _ => Ok(()),
        }
    }

    fn normalize(&self, type_name: &str, inputs: &Attributes) -> Result<Attributes> {
        match type_name {
            FILE_TYPE => file::normalise(inputs),
            _ => Ok(inputs.clone()),
        }
    }

    /// A file's place is its path; processes have none (their marker tells them apart).
    fn place(
        &self,
        type_name: &str,
        inputs: &Attributes,
        context: &Context,
    ) -> Result<Option<String>> {
        match type_name {
            FILE_TYPE => file::place(inputs, context),
            _ => Ok(None),
        }
    }

    /// A file carries no marker: whoever writes it last holds it.
    fn hands_over(&self, type_name: &str) -> bool {
        type_name == FILE_TYPE
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

    /// A file already at the path is overwritten (its old content kept by
    /// [`Client::keep_copy`] first); a process is taken over as a create would.
    fn adopt(
        &self,
        target: fabrik_provider::Target<'_>,
        inputs: &Attributes,
    ) -> Result<fabrik_provider::Applied> {
        match target.type_name {
            FILE_TYPE => self.files.adopt(inputs),
            PROCESS_TYPE => self.processes.start(target, inputs),
            other => Err(unknown_type(other)),
        }
    }

    fn obstacles(
        &self,
        creations: &[fabrik_provider::Creation<'_>],
    ) -> Vec<Result<Option<String>>> {
        creations
            .iter()
            .map(|c| match c.target.type_name {
                FILE_TYPE => self.files.obstacle(c.target.name, c.inputs),
                _ => Ok(None),
            })
            .collect()
    }

    fn import(
        &self,
        target: fabrik_provider::Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<fabrik_provider::Found> {
        match target.type_name {
            FILE_TYPE => self.files.import(id, inputs),
            other => Err(fabrik_provider::Error::new(
                fabrik_provider::ErrorKind::InvalidInput,
                format!("`{other}` objects cannot be imported"),
            )),
        }
    }

    fn keep_copy(
        &self,
        target: fabrik_provider::Target<'_>,
        inputs: &Attributes,
    ) -> Result<Option<String>> {
        match target.type_name {
            FILE_TYPE => self.files.keep_copy(inputs),
            _ => Ok(None),
        }
    }

    fn restore(&self, target: fabrik_provider::Target<'_>, copy: &str) -> Result<()> {
        match target.type_name {
            FILE_TYPE => self.files.restore(copy),
            other => Err(unknown_type(other)),
        }
    }

    fn drop_copy(&self, copy: &str) {
        self.files.drop_copy(copy);
    }

    fn clean_up(&self, target: fabrik_provider::Target<'_>, inputs: &Attributes) {
        if target.type_name == FILE_TYPE {
            self.files.clean_up(inputs);
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
