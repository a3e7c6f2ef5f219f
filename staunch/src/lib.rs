//! staunch stops failures from spreading between services.
//!
//! (The crate manual is being written; see the module docs.)

pub mod backoff;
pub mod breaker;
mod cancel;
pub mod classify;
mod clock;
pub mod deadline;
mod error;
pub(crate) mod loom;

pub use breaker::{BreakerConfig, CircuitBreaker, CircuitOpen};
pub use cancel::CancellationToken;
pub use clock::{Clock, ManualClock};
pub use deadline::Deadline;
pub use error::{ConfigError, Error, StopReason};
