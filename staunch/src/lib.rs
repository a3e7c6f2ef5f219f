//! staunch stops failures from spreading between services.
//!
//! (The crate manual is being written; see the module docs.)

pub mod backoff;
mod cancel;
pub mod classify;
mod clock;
pub mod deadline;
mod error;
pub(crate) mod loom;
pub mod retry;
mod telemetry;

pub use cancel::CancellationToken;
pub use clock::{Clock, ManualClock};
pub use deadline::Deadline;
pub use error::{ConfigError, Error, StopReason};
pub use retry::{Retry, RetryConfig};
