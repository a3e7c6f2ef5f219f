//! Retry with backoff, jitter, deadlines and budgets.
//!
//! A [`Retry`] runs an operation until it succeeds or retrying stops, and says why it stopped.
//! The rules it keeps (each is a test):
//!
//! - **Bounded.** [`RetryConfig::with_max_attempts`] counts the first call (gRPC's convention);
//!   zero is a configuration error. [`RetryConfig::with_max_duration`] bounds the time spent
//!   retrying as well, independent of any deadline.
//! - **Spread out.** Delays come from a [`Backoff`](crate::backoff::Backoff), jittered by
//!   default, so that clients that failed together do not retry together.
//! - **Only what can succeed.** A [`Classify`](crate::classify::Classify) decides: permanent
//!   failures stop at once, transient ones are retried, and a Retry-After hint sets the least
//!   wait (up to [`RetryConfig::with_max_retry_after`]). After a wait the server set, the backoff
//!   starts again from its initial delay, as gRPC's retry design (A6) specifies: the server has
//!   paced the client, so the delays grown before its hint no longer measure anything.
//! - **Deadline-aware.** With a [`Deadline`](crate::Deadline) in scope or passed in
//!   [`CallOptions`], a call never sleeps past it and never starts an attempt with no time left;
//!   it stops with [`StopReason::Deadline`](crate::StopReason::Deadline) and the last error.
//! - **Cancellable.** Dropping the future ends the call at once; a
//!   [`CancellationToken`](crate::CancellationToken) ends an async or a blocking call (a thread
//!   asleep between attempts wakes at once), reported as
//!   [`StopReason::Cancelled`](crate::StopReason::Cancelled).
//! - **Budgeted.** A [`RetryBudget`] shared by every call to a dependency caps the share of
//!   retries in its traffic.
//!
//! # Why budgets and not only max attempts?
//!
//! Attempts bound the work of one call; they do nothing for the dependency. When it is down,
//! every call makes all its attempts, and a 3-attempt policy triples the load on a service that
//! is already failing. A budget bounds retries across calls: with
//! [`BudgetConfig::ratio`]`(0.1)`, an outage costs the dependency at most 10% more traffic (plus
//! a small floor so that a quiet client can still retry).
//!
//! # What a call reports
//!
//! A call that fails returns an [`Error`](crate::Error): why it stopped, the attempts made, the
//! last failure, and [the log of its attempts](crate::Error::attempt_log), each with its
//! duration and class. While it runs, [`Retry::on_retry`] tells your code of each retry (a
//! [`RetryEvent`]), with or without `tracing`. A [`RetryBudget`]'s state is one
//! [`snapshot`](RetryBudget::snapshot) away, for a health endpoint. The
//! [`telemetry`](crate::telemetry) module lists every metric and event.
//!
//! The first attempt's duration is measured only when its start was read, and reported as
//! unknown otherwise, never as a guess: staunch reads the clock at a call's start only when it
//! needs the time (a deadline, a ratio budget, [`RetryConfig::with_max_duration`]), when
//! [`RetryConfig::with_first_attempt_timed`] asks, or with the `metrics` feature, whose
//! histograms want every attempt. Reading it in case the call fails would cost every call that
//! succeeds (most of them) a clock read for a number only failures show. Every later attempt is
//! timed: it follows a failure, which reads the clock anyway.
//!
//! # Cost
//!
//! A call whose first attempt succeeds reads no clock (unless one of the settings above needs
//! the time), allocates nothing, and touches shared state only through its budget: a single
//! atomic load for a token bucket, one atomic update of the current time slot (and a clock
//! read) for a ratio budget. A call that retries and then succeeds allocates nothing either: its
//! log of attempts lives in a buffer each thread keeps for the next such call (one allocation
//! per thread; a call that fails hands its buffer to its error, which allocates anyway). The
//! tower service copies the request and clones the inner service per call, as `tower::retry`
//! does.

mod budget;
mod config;
#[cfg(feature = "tower")]
mod error;
pub(crate) mod event;
#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
mod log;
mod policy;
pub(crate) mod run;
#[cfg(feature = "tower")]
mod service;
pub(crate) mod state;

pub use budget::{BudgetConfig, BudgetSnapshot, RetryBudget};
pub use config::RetryConfig;
#[cfg(feature = "tower")]
pub use error::{BoxError, Stopped};
pub use event::{OnRetry, RetryEvent};
#[cfg(feature = "tower")]
pub use layer::{CloneRequest, MakeRetryRequest, Reclassify, RetryLayer};
pub use policy::{CallOptions, Retry};
#[cfg(feature = "tower")]
pub use service::RetryService;
