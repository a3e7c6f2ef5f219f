//! One pipeline that composes every policy in the one order that is correct.
//!
//! Outermost to innermost:
//!
//! ```text
//! fallback → overall deadline → retry or hedge (with budget)
//!          → throttle → rate limit → concurrency limit → circuit breaker → attempt timeout → the call
//! ```
//!
//! The order is fixed by the library, because every other order is subtly wrong:
//!
//! - **Fallback outermost**, so it sees a failure only after retrying could not fix it, and a
//!   substitute answer is never retried or counted against the breaker.
//! - **The overall deadline outside retry**, so retry knows the time left: it never sleeps past
//!   the deadline and never starts an attempt with no time left.
//! - **Retry outside the breaker**, so an open circuit ends the retry loop at once instead of
//!   burning attempts (a rejection is not retriable, unless you opt in to
//!   [`wait_for_probe`](Pipeline::wait_for_probe)); and each retry is a separate call the breaker
//!   can count and refuse.
//! - **Retry or hedge, not both** (as in gRPC): [`hedge`](Pipeline::hedge) takes retry's place,
//!   and each of its attempts, first and hedges alike, goes through the breaker and the attempt
//!   timeout as a retry's would, so no hedge goes out while the breaker refuses and none
//!   outlives the deadline; an attempt dropped for a winner records nothing.
//! - **The attempt timeout inside the breaker**, so a slow dependency counts as failing: a
//!   timeout is a failure for the breaker and, by default, a transient failure for retry.
//! - **Every attempt clipped to the deadline**, with or without an attempt timeout: no attempt
//!   outlives the request.
//! - **Fault injection innermost**, when you test with it (feature `chaos`:
//!   `Pipeline::call_with_chaos`, `Pipeline::layer_with_chaos`): just around the call, so that
//!   every policy above meets an injected fault as it would a real one.
//!
//! # Overload protection
//!
//! The local admission checks ([`throttle`](Pipeline::throttle), `rate_limit` with the
//! `rate-limit` feature, [`limit`](Pipeline::limit); see [`limit`](crate::limit)) act on every
//! attempt, inside retry, in that order, and all before the breaker:
//!
//! - **Per attempt, inside retry**, because each attempt is a call the dependency serves: a
//!   retry takes its own slot and token, and holds none while it sleeps.
//! - **Before the breaker**, because a wait for a token or in the limit's queue must not hold a
//!   half-open probe slot, nor count as the dependency's latency in a slow-call rule. So a slot
//!   taken and then refused by the breaker is freed at once with no sample (the breaker's
//!   rejection says nothing about the dependency's latency), and a refusal by a limit never
//!   reaches the breaker.
//! - **Throttling first**, because it refuses without waiting and counts what the dependency
//!   accepts; **the rate limit before the concurrency limit**, so that no slot is held while
//!   waiting for a token.
//!
//! A refusal puts no load on the dependency: no breaker, retry budget or other statistic counts
//! it, it is not retried (it ends the call with [`StopReason::Refused`](crate::StopReason::Refused)
//! and its reason), and the default fallback covers it. A finished attempt's class feeds the
//! adaptive limit (a timeout is a drop; a timeout the caller's own deadline cut short, and a
//! cancelled attempt, give no sample) and the throttle.
//!
//! A response that arrives as `Ok` but is classified as a failure (an HTTP 503) is retried and
//! counted by the breaker like an error; when retrying stops on it, it comes back as the `Ok` it
//! is, and the fallback does not run, since there is no error to hand it. To fall back on such
//! responses, turn them into errors inside the operation (reqwest's `error_for_status`, say).
//!
//! Any subset works; a pipeline with no retry makes one attempt. It runs a plain async closure
//! ([`Pipeline::call`]) and, with the `tower` feature, wraps a tower service.
//!
//! # The timeout hierarchy
//!
//! A request has one deadline (its caller's, or [`Pipeline::timeout`]); each dependency call
//! gets an [`AttemptTimeout`](crate::deadline::AttemptTimeout) cut from what is left. Choose per dependency:
//!
//! - a **fixed** cap from the dependency's latency profile (its p99.9 plus a margin) when the
//!   call sits at a known depth, like the pricing call of a checkout;
//! - a **fraction** (10–25%) of the remaining deadline when the same call happens at different
//!   depths or is retried, so that early attempts get a generous slice and a retry always has
//!   time left;
//! - a **floor** so that a late attempt is not hopelessly short (below the dependency's median
//!   latency it can only fail), and a **ceiling** so that an early one does not wait for a
//!   dependency that has stopped answering.
//!
//! # Examples
//!
//! The canonical request: a 5 s deadline, pricing capped at 500 ms with a fallback price,
//! inventory capped at 200 ms with no fallback.
//!
//! ```
//! use std::time::Duration;
//! use staunch::breaker::{BreakerConfig, CircuitBreaker};
//! use staunch::deadline::AttemptTimeout;
//! use staunch::{Deadline, Pipeline};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pricing = Pipeline::new()
//!     .breaker(CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?)
//!     .attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(500)))?
//!     .fallback(|_err| async { 9.99 });
//! let inventory = Pipeline::new().attempt_timeout(AttemptTimeout::fixed(Duration::from_millis(200)))?;
//!
//! let start = tokio::time::Instant::now();
//! let (price, stock) = Deadline::after(Duration::from_secs(5))
//!     .scope(async {
//!         let price = pricing
//!             .call(|| async {
//!                 tokio::time::sleep(Duration::from_millis(600)).await; // too slow
//!                 Ok::<f64, std::io::Error>(12.50)
//!             })
//!             .await;
//!         let stock = inventory.call(|| async { Ok::<u32, std::io::Error>(3) }).await;
//!         (price, stock)
//!     })
//!     .await;
//! assert_eq!(price?, 9.99); // timed out at 500 ms; the fallback answered
//! assert_eq!(stock?, 3);
//! assert_eq!(start.elapsed(), Duration::from_millis(500)); // well within 5 s
//! # Ok(())
//! # }
//! ```

mod admission;
mod call;
#[cfg(feature = "chaos")]
mod chaos;
#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod hedged;
#[cfg(feature = "tower")]
mod layer;
mod policy;
mod recover;
#[cfg(feature = "tower")]
mod service;

#[cfg(feature = "tower")]
pub use layer::PipelineLayer;
pub use policy::Pipeline;
#[cfg(feature = "tower")]
pub use recover::{BoxRecovery, RecoverBoxed};
pub use recover::{NoFallback, Recover};
#[cfg(feature = "tower")]
pub use service::PipelineService;
