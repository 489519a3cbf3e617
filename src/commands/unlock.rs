//! `fabrik unlock --force`: break a lock whose holder is gone or hung.

use super::Globals;
use crate::cli::UnlockArgs;
use crate::error::Error;
use crate::state::Broken;

pub fn run(globals: &Globals, args: UnlockArgs) -> Result<i32, Error> {
    if !args.force {
        return Err(Error::Usage(
            "breaking a lock can let two runs write one state; pass --force if the holder is really gone".into(),
        ));
    }
    let stack = args.stack.into_stack();
    let store = globals
        .backend
        .store_for(&stack.spec(), stack.stack.as_deref())?;
    match store.force_unlock()? {
        Broken::NotLocked => outln!("The stack is not locked."),
        Broken::Broken(holder) => {
            outln!("Broke the lock of the stack.");
            if let Some(holder) = holder {
                outln!("It was held by:\n{holder}");
            }
        }
    }
    Ok(0)
}
