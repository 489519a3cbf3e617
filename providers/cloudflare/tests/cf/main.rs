//! The `cloudflare` provider against the stateful Cloudflare fake of `fabrik-testkit`, whose
//! every request is checked against the published API contract.

mod batch;
mod faults;
mod harness;
mod records;
