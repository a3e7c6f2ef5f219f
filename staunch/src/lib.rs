//! staunch stops failures from spreading between services.
//!
//! Wrap every call to a database, another service or a queue in staunch, and a failing
//! dependency costs you what you budgeted for it, no more: bounded, jittered retries that stop
//! at the caller's deadline and within a retry budget shared by every call to that dependency; a
//! circuit breaker that fails fast while the dependency is down and probes it carefully; a
//! timeout per attempt cut from the time the caller has left; and a fallback for what is left.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//! use staunch::backoff::Backoff;
//! use staunch::breaker::{BreakerConfig, CircuitBreaker};
//! use staunch::deadline::AttemptTimeout;
//! use staunch::retry::{BudgetConfig, RetryBudget};
//! use staunch::{Deadline, Pipeline, Retry, RetryConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), staunch::ConfigError> {
//! // Once per dependency, shared by every call to it.
//! let pricing = Pipeline::new()
//!     .retry(
//!         Retry::new(
//!             RetryConfig::new()
//!                 .with_max_attempts(3)
//!                 .with_backoff(Backoff::exponential(Duration::from_millis(50))),
//!         )?
//!         .with_budget(RetryBudget::new(BudgetConfig::ratio(0.1))?),
//!     )
//!     .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
//!     .attempt_timeout(AttemptTimeout::fraction(0.25).with_max(Duration::from_millis(500)))?
//!     .fallback(|_err| async { 9.99 });
//!
//! // Per request: the caller's deadline bounds everything below it.
//! let price = Deadline::after(Duration::from_secs(5))
//!     .scope(pricing.call(|| async { Ok::<f64, std::io::Error>(12.50) }))
//!     .await;
//! assert_eq!(price.unwrap(), 12.50);
//! # Ok(())
//! # }
//! ```
//!
//! # The policies
//!
//! | module | what it does |
//! |---|---|
//! | [`backoff`] | delays between attempts: constant, linear, exponential; six jitter kinds |
//! | [`retry`] | bounded retries with classification, Retry-After, deadlines, cancellation, budgets |
//! | [`breaker`] | a circuit breaker with five trip rules, bounded half-open probes, lock-free when closed |
//! | [`deadline`] | an absolute deadline in scope for a whole request; per-attempt timeouts cut from it |
//! | [`fallback`] | a substitute answer for the failures you choose |
//! | [`hedge`] | a second attempt when the first is slow, the first answer winning: budgeted, deadline-aware, never for a request that must be sent once (feature `tokio`) |
//! | [`limit`] | overload protection: concurrency limits (fixed, AIMD, Vegas, Gradient2) with a bounded FIFO queue, client-side adaptive throttling, rate limits (feature `rate-limit`) |
//! | [`pipeline`] | all of the above in the one correct order, for closures and tower services |
//! | [`classify`] | the one classification of outcomes that every policy shares |
//! | [`telemetry`] | policy names, and the table of every metric, event and hook staunch reports |
//! | `http` | HTTP classification, `Retry-After`, the idempotency gate, deadline headers (feature `http`), the reqwest middleware (feature `reqwest`) |
//! | `chaos` | fault injection: errors, delays and substitute results on purpose, switchable at run time (feature `chaos`) |
//!
//! Each policy works alone, and each has a tower layer (feature `tower`).
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
//! An attempt that needs state of its own, reused from one attempt to the next (a connection,
//! borrowed mutably), takes it as a context: [`Retry::call_with_context`].
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
//! ## Circuit breaker
//!
//! ```
//! use std::time::Duration;
//! use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
//!
//! let breaker = CircuitBreaker::new(
//!     BreakerConfig::consecutive_failures(2).with_open_duration(Duration::from_secs(30)),
//! )?;
//! for _ in 0..2 {
//!     let _ = breaker.call_blocking(|| Err::<(), _>("connection refused"));
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected = breaker.call_blocking(|| Ok::<_, &str>(())).unwrap_err();
//! assert!(rejected.is_open()); // at once, without calling
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! ## Deadlines and attempt timeouts
//!
//! ```
//! use std::time::Duration;
//! use staunch::Deadline;
//! use staunch::deadline::AttemptTimeout;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let request = Deadline::after(Duration::from_secs(5));
//! let slow = request
//!     .scope(AttemptTimeout::fraction(0.1).run(tokio::time::sleep(Duration::from_secs(2))))
//!     .await;
//! assert_eq!(slow.unwrap_err().timeout(), Duration::from_millis(500)); // 10% of what was left
//! # }
//! ```
//!
//! ## Hedging
//!
//! ```
//! use std::time::Duration;
//! use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
//! // A second copy after the p95 of recent latencies (within 2–100 ms); the first answer wins.
//! let hedge = Hedge::new(HedgeConfig::new(
//!     HedgeDelay::percentile(95.0).with_min(Duration::from_millis(2)).with_max(Duration::from_millis(100)),
//! ))?;
//! let mut replicas = ["stuck", "fast"].into_iter();
//! let answer = hedge
//!     .call(|| {
//!         let replica = replicas.next().unwrap_or("fast");
//!         async move {
//!             let latency = if replica == "stuck" { 5_000 } else { 3 };
//!             tokio::time::sleep(Duration::from_millis(latency)).await;
//!             Ok::<_, std::io::Error>(replica)
//!         }
//!     })
//!     .await;
//! assert_eq!(answer.unwrap(), "fast"); // sent after 100 ms (the ceiling, before any samples)
//! # Ok(()) }
//! ```
//!
//! ## Concurrency limits and throttling
//!
//! ```
//! use std::time::Duration;
//! use staunch::limit::{AdaptiveThrottle, Aimd, ConcurrencyLimit, LimitConfig, ThrottleConfig};
//! use staunch::{Pipeline, StopReason};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
//! // At most 1 call in flight (AIMD would move it between 1 and 50), 2 more may wait 20 ms.
//! let limit = ConcurrencyLimit::new(
//!     LimitConfig::aimd(Aimd::new().with_initial_limit(1).with_min_limit(1).with_max_limit(50))
//!         .with_max_queue(2)
//!         .with_max_wait(Duration::from_millis(20)),
//! )?;
//! let search = Pipeline::new()
//!     .throttle(AdaptiveThrottle::new(ThrottleConfig::new())?)
//!     .limit(limit.clone());
//! let _busy = limit.try_acquire().unwrap(); // someone else's call
//! let err = search.call(|| async { Ok::<u32, std::io::Error>(7) }).await.unwrap_err();
//! assert!(err.is_refused()); // refused locally after 20 ms in the queue, counted nowhere
//! assert!(matches!(err.reason(), StopReason::Refused(_)));
//! # Ok(()) }
//! ```
//!
//! ## Fallback
//!
//! ```
//! use staunch::fallback::Fallback;
//! use staunch::{Retry, RetryConfig};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
//! let retry = Retry::new(RetryConfig::new().with_max_attempts(2))?;
//! let price = Fallback::value(9.99)
//!     .call(retry.call(|| async { Err::<f64, _>("pricing is down") }))
//!     .await;
//! assert_eq!(price.unwrap(), 9.99);
//! # Ok(()) }
//! ```
//!
//! # The layer order
//!
//! When policies stack, their order decides what they do. [`Pipeline`] fixes it, outermost to
//! innermost: **fallback → overall deadline → retry or hedge (with budget) → throttle → rate
//! limit → concurrency limit → circuit breaker → attempt timeout → the call.** Fallback last, so
//! it never hides a failure retrying would fix; the deadline outside retry, so retry knows the
//! time left; retry outside the breaker, so an open circuit ends the loop at once instead of
//! burning attempts; the local admission checks per attempt and before the breaker, so that no
//! wait holds a probe slot and no refusal counts as a failure; the timeout inside the breaker, so
//! a slow dependency counts as failing. The [`pipeline`] module explains each position and how to
//! choose attempt timeouts (the timeout hierarchy). Fault injection, when you test with it, goes
//! innermost, just around the call, so that every policy above meets an injected fault as it
//! would a real one (see the `chaos` module, feature `chaos`).
//!
//! # Time
//!
//! No decision reads the clock itself: the pure cores take `now` as an argument, and the shells
//! read a [`Clock`]. With the `tokio` feature the system clock is tokio's, so
//! `#[tokio::test(start_paused = true)]` controls every timer in the library; a [`ManualClock`]
//! drives blocking code in tests. No decision reads the wall clock (`SystemTime`); the one
//! reading in staunch is the `http` classifier's, for a `Retry-After` HTTP-date on a response
//! without a valid `Date` header.
//!
//! One hot path takes a shortcut: a circuit breaker rejecting while open first reads the
//! kernel's coarse clock (Linux), until some breaker in the process sees tokio's clock paused;
//! so pause before a breaker trips (`start_paused = true` does). See
//! [the breaker's time section](breaker#time).
//!
//! # Cancel safety
//!
//! Every future in staunch can be dropped at any await point, and dropping it is the way to
//! cancel: a dropped retry stops at once, mid-attempt or mid-sleep; a dropped breaker call (or a
//! dropped [`breaker::Permit`]) records nothing and returns its half-open probe slot; a dropped
//! hedged call drops every attempt in flight; a dropped wait for a [`limit::ConcurrencyLimit`]
//! slot leaves its queue, and a dropped [`limit::Permit`] frees its slot with no sample; a
//! dropped pipeline call does all of these. Nothing outlives the future. A
//! [`CancellationToken`] does the same for code that cannot drop a future, including a thread
//! blocked in [`Retry::call_blocking_with`] or in a limit's queue
//! ([`limit::ConcurrencyLimit::acquire_blocking`]), which wakes as soon as the token fires.
//!
//! A [`Deadline`] scope travels with the future that carries it: a task spawned inside a scope
//! does not inherit it unless you pass it on. A tower service's `call` runs when it is called,
//! not when its future is polled, so put the call itself inside the scope:
//! `deadline.scope(async { svc.call(req).await })`, not `deadline.scope(svc.call(req))`, whose
//! first attempt would start outside it. The async closure APIs ([`Retry::call`],
//! [`Pipeline::call`]) start on their first poll and have no such trap.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | async runners, attempt timeouts, hedging and the pipeline; time from `tokio::time` |
//! | `tower` | no | a `Layer`/`Service` per policy, and [`pipeline::PipelineLayer`]: with `http`, the client door for hyper-util, tonic channels and any tower HTTP client |
//! | `http` | no | HTTP classification, `Retry-After` parsing, the deadline header; with `tower`, the server door for axum, tonic and hyper ([`http::ReceiveDeadlineLayer`]) |
//! | `tracing` | no | events for each retry, stop, fallback and breaker state change |
//! | `metrics` | no | counters, gauges and duration histograms for retries, fallbacks, breakers, hedges and local refusals, labelled by policy; gauges for limits, calls in flight and queued |
//! | `serde` | no | `Deserialize` for the configuration types, durations written as `"250ms"` |
//! | `rate-limit` | no | `limit::RateLimit`: N calls per period with a burst (GCRA, from `governor`) |
//! | `reqwest` | no | the reqwest door: [`http::Staunch`], a reqwest-middleware middleware running each request through a [`Pipeline`]; implies `http` and `tower` |
//! | `chaos` | no | fault injection (errors, delays, substitutes) with a run-time switch; implies `tokio` |
//!
//! Every feature is additive and zero-cost when off. [`telemetry`] lists every metric and
//! event, with their labels; without either feature, [`Retry::on_retry`] and
//! [`breaker::Builder::on_state_change`] report to your own code.

// On docs.rs (and with `RUSTDOCFLAGS="--cfg docsrs"` on nightly), each item gated on a feature
// says which one it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backoff;
pub mod breaker;
mod cancel;
#[cfg(feature = "chaos")]
pub mod chaos;
pub mod classify;
mod clock;
pub mod deadline;
mod error;
pub mod fallback;
// Under loom (built without `tokio`), only the latency estimate, for its model tests.
#[cfg(any(feature = "tokio", loom))]
pub mod hedge;
#[cfg(feature = "http")]
pub mod http;
pub mod limit;
pub(crate) mod loom;
#[cfg(feature = "tokio")]
pub mod pipeline;
pub mod retry;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod telemetry;

pub use breaker::{BreakerConfig, CircuitBreaker, CircuitOpen};
pub use cancel::CancellationToken;
pub use clock::{Clock, ManualClock};
pub use deadline::Deadline;
pub use error::{AttemptRecord, ConfigError, Error, Failure, StopReason};
#[cfg(feature = "tokio")]
pub use pipeline::Pipeline;
pub use retry::{Retry, RetryConfig};
#[cfg(feature = "serde")]
pub use serde_impls::{Dur, parse_duration};
pub use telemetry::Name;

// The crate's README (its crates.io page) runs as doctests, so its examples cannot drift. The
// file is inside the package, so the published crate's doctests pass too. Its examples are
// async programs.
#[cfg(all(doctest, feature = "tokio"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
