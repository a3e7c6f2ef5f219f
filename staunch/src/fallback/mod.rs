//! Fallbacks: a substitute answer when a call fails in a way the caller chose to absorb.
//!
//! A fallback sits outermost: it sees the error only after retries, the breaker and the
//! timeouts have all had their say, so it never masks a failure that retrying would have fixed.
//! It runs for the failure classes you name, [`FallbackOn::DEFAULT`] being an open circuit, a
//! timeout (of an attempt, or of the whole call: the deadline) and exhausted retries; never for
//! a success, and, unless you ask, not for a permanent error (a bad request deserves an error,
//! not a cached price).
//!
//! A fallback is a value ([`Fallback::value`]), an async function of the error
//! ([`Fallback::from_fn`]), or an async function that can fail too ([`Fallback::try_from_fn`]):
//! a failed fallback is reported as [`StopReason::FallbackFailed`](crate::StopReason) with the
//! call's own error kept as [`Error::original`](crate::Error::original).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::fallback::{Fallback, FallbackOn};
//! use staunch::{Retry, RetryConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), staunch::ConfigError> {
//! let retry = Retry::new(RetryConfig::new().with_max_attempts(2))?;
//! let cached_price = Fallback::value(9.99);
//! let price = cached_price
//!     .call(retry.call(|| async { Err::<f64, _>("pricing is down") }))
//!     .await;
//! assert_eq!(price.unwrap(), 9.99);
//! # Ok(())
//! # }
//! ```

mod on;
mod source;

pub use on::FallbackOn;
pub use source::{Fallback, FallbackFn, FromFn, OkFuture, TryFromFn, Value};
