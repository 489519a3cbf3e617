//! `fabrik-testkit`: what provider tests need to stand in for a remote API.
//!
//! - [`contract`]: checks requests against a published OpenAPI document (3.0 or 3.1), so a
//!   fake refuses whatever the real API's contract does not allow.
//! - [`http`]: a threaded HTTP/1.1 server on 127.0.0.1 with injectable faults (errors before or
//!   after the change is made, slow answers, 429 with `Retry-After`, connection refused).
//! - [`cloudflare`]: a stateful fake of the Cloudflare DNS API on top of both.
//! - [`coolify`]: a stateful fake of the Coolify API v4.
//! - [`uptimekuma`]: a stateful fake of Uptime Kuma's Socket.IO API over a real websocket.
//!
//! Only ever a dev-dependency: nothing here ships in the binary.

pub mod cloudflare;
pub mod contract;
pub mod coolify;
pub mod http;
pub mod uptimekuma;
