//! staunch stops failures from spreading between services.
//!
//! Wrap every call to a database, another service or a queue in staunch, and a failing
//! dependency costs you what you budgeted for it, no more: bounded, jittered retries that stop
//! at the caller's deadline and within a retry budget shared by every call to that dependency.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use staunch::backoff::Backoff;
//! use staunch::{Deadline, Retry, RetryConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), staunch::ConfigError> {
//! let retry = Retry::new(
//!     RetryConfig::new()
//!         .with_max_attempts(3)
//!         .with_backoff(Backoff::exponential(Duration::from_millis(100))),
//! )?;
//! let answer = Deadline::after(Duration::from_secs(2))
//!     .scope(retry.call(|| async { Ok::<_, std::io::Error>(42) }))
//!     .await;
//! assert_eq!(answer.unwrap(), 42);
//! # Ok(())
//! # }
//! ```
//!
//! # The policies
//!
//! | module | what it does |
//! |---|---|
//! | [`backoff`] | delays between attempts: constant, linear, exponential; five jitter kinds |
//! | [`retry`] | bounded retries with classification, Retry-After, deadlines, cancellation, budgets |
//! | [`deadline`] | an absolute deadline in scope for everything a request does |
//! | [`classify`] | the one classification of outcomes that every policy shares |
//!
//! ## Backoff
//!
//! ```
//! use std::time::Duration;
//! use staunch::backoff::{Backoff, Jitter};
//!
//! let backoff = Backoff::exponential(Duration::from_millis(100))
//!     .with_max_delay(Duration::from_secs(10))
//!     .with_jitter(Jitter::Full);
//! let first_three: Vec<Duration> = backoff.delays()?.take(3).collect();
//! assert!(first_three[2] <= Duration::from_millis(400));
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! ## Retry, async and blocking
//!
//! ```
//! use staunch::{ManualClock, Retry, RetryConfig, StopReason};
//!
//! let retry = Retry::new(RetryConfig::new().with_max_attempts(3))?
//!     .retry_if(|e: &std::io::Error| e.kind() == std::io::ErrorKind::TimedOut)
//!     .with_clock(ManualClock::new().into()); // virtual sleeps, for this example
//! let err = retry
//!     .call_blocking(|| Err::<(), _>(std::io::Error::from(std::io::ErrorKind::TimedOut)))
//!     .unwrap_err();
//! assert_eq!(err.reason(), StopReason::Exhausted);
//! assert_eq!(err.attempts(), 3);
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! ## Retry budgets
//!
//! ```
//! use staunch::retry::{BudgetConfig, RetryBudget};
//! use staunch::{Retry, RetryConfig};
//!
//! // gRPC's token bucket, shared by every policy calling the same dependency.
//! let budget = RetryBudget::new(BudgetConfig::token_bucket(10, 0.1))?;
//! let reads = Retry::new(RetryConfig::new())?.with_budget(budget.clone());
//! let writes = Retry::new(RetryConfig::new().with_max_attempts(2))?.with_budget(budget);
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! ## Deadlines
//!
//! ```
//! use std::time::Duration;
//! use staunch::Deadline;
//!
//! let request = Deadline::after(Duration::from_secs(5));
//! request.scope_sync(|| {
//!     // Anything called from here, however deep, sees the request's deadline.
//!     let left = Deadline::current().map(|d| d.remaining());
//!     assert!(left.unwrap() <= Duration::from_secs(5));
//! });
//! ```
//!
//! # Time
//!
//! No decision reads the clock itself: the pure cores take `now` as an argument, and the shells
//! read a [`Clock`]. With the `tokio` feature the system clock is tokio's, so
//! `#[tokio::test(start_paused = true)]` controls every timer in the library; a [`ManualClock`]
//! drives blocking code in tests. There is no wall-clock (`SystemTime`) reading anywhere.
//!
//! # Cancel safety
//!
//! Every future in staunch can be dropped at any await point: a dropped retry stops at once,
//! mid-attempt or mid-sleep, and holds nothing that outlives it. A [`CancellationToken`] does the
//! same for code that cannot drop a future, including a thread blocked in
//! [`Retry::call_blocking_with`], which wakes as soon as the token fires.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | async runners; time from `tokio::time` |
//! | `tower` | no | a `Layer`/`Service` per policy ([`retry::RetryLayer`]) |
//! | `http` | no | HTTP classification, `Retry-After` parsing, the deadline header |
//! | `tracing` | no | events for each retry and each stop |
//! | `metrics` | no | counters for attempts, retries, suppressed retries and outcomes |
//!
//! Every feature is additive and zero-cost when off.

pub mod backoff;
pub mod breaker;
mod cancel;
pub mod classify;
mod clock;
pub mod deadline;
mod error;
pub mod fallback;
pub(crate) mod loom;
#[cfg(feature = "tokio")]
pub mod pipeline;
pub mod retry;
mod telemetry;

pub use breaker::{BreakerConfig, CircuitBreaker, CircuitOpen};
pub use cancel::CancellationToken;
pub use clock::{Clock, ManualClock};
pub use deadline::Deadline;
pub use error::{ConfigError, Error, Failure, StopReason};
#[cfg(feature = "tokio")]
pub use pipeline::Pipeline;
pub use retry::{Retry, RetryConfig};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
