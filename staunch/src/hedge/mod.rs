//! Hedged requests: when an attempt is slow, send another and take whichever answers first.
//!
//! # Why hedge
//!
//! Retry helps when a call fails; it does nothing for the call that is merely slow, stuck
//! behind a garbage collection, a cold cache or a busy replica. That tail is what users feel
//! once requests fan out: a request that makes 100 dependency calls, each slow one time in a
//! hundred, is slow most of the time. A hedged call sends one attempt and, if no answer has come
//! after a delay near the dependency's p95, a second; the first acceptable answer wins and the
//! other is dropped. In "The Tail at Scale" (Dean and Barroso, CACM 2013), hedging after 10 ms
//! took a BigTable read of 1,000 keys from 1,800 ms to 74 ms at the 99.9th percentile, for 2%
//! more requests. gRPC's `hedgingPolicy` (proposal A6) is the model here.
//!
//! # The rules (each is a test)
//!
//! - **Bounded.** [`HedgeConfig::with_max_attempts`] counts the first attempt, at most 5 (gRPC's
//!   cap); 1 hedges nothing.
//! - **Timed.** The next attempt goes [`delay`](HedgeDelay) after the previous one: fixed, or
//!   a [percentile](HedgeDelay::percentile) of the dependency's recent latencies between a
//!   floor and a ceiling (the ceiling until the estimate has enough samples).
//! - **The first answer wins.** The first attempt whose outcome is not a failure is the call's;
//!   the others are dropped at once and record nothing (a dropped attempt is neither a success
//!   nor a failure, for the budget, the breaker or the limits).
//! - **Failures.** A transient failure sends the next attempt at once (a Retry-After hint
//!   delays it, up to [`max_retry_after`](HedgeConfig::with_max_retry_after)); a permanent one
//!   ends the call with that failure. When every attempt has failed the call ends with
//!   [`StopReason::Exhausted`](crate::StopReason::Exhausted), and
//!   [`Error::attempt_log`](crate::Error::attempt_log) has each attempt's class.
//! - **Budgeted.** Attempts after the first spend the [`RetryBudget`](crate::retry::RetryBudget)
//!   shared with retries: a hedge it refuses is not sent, and the call waits for the attempts in
//!   flight.
//! - **Deadline-aware.** No attempt starts at or past the deadline in scope.
//! - **Idempotent requests only.** The tower layer sends hedges only for requests its copier
//!   allows ([`HedgeLayer::with_hedge_request`]); with `http`, the
//!   `IdempotencyGate` allows only requests safe to send twice (GET, PUT, ...), so a POST is
//!   never sent twice.
//! - **Cancel safe, no spawning.** The attempts are polled side by side by the caller's task;
//!   dropping the call's future drops every attempt in flight.
//!
//! In a [`Pipeline`](crate::Pipeline) a hedge takes retry's place (a pipeline retries or
//! hedges, as in gRPC): each attempt goes through the breaker and its attempt timeout, so a
//! hedge is never sent while the breaker refuses and none outlives the deadline.
//!
//! # When not to hedge
//!
//! - **Writes that are not idempotent**: a hedge is a second copy of the request, sent before
//!   the first has answered. Never hedge a payment or an append.
//! - **A dependency slow because it is overloaded**: more copies make it slower. Hedging cuts a
//!   tail caused by chance (one busy replica among many), not by load; keep the budget on, so
//!   that hedges stop when failures rise, and prefer a delay at the p95 or above, so that about
//!   5% of calls hedge at most.
//! - **One replica, or a shared bottleneck**: a hedge to the same slow place answers no sooner.
//! - **Expensive calls**: each hedge costs a whole call's work on the dependency, which the
//!   dropped attempt may well finish anyway.
//!
//! # Cost
//!
//! A call whose first attempt answers at its first poll reads no clock, arms no timer and
//! allocates nothing (with an adaptive delay: plus, for one call in four, the sample's atomic
//! increment): about 1.4× the cost of a retry's success path, 1.7× with an adaptive delay (see
//! BENCHMARKS.md). One that waits for its answer reads the clock once and arms one tokio timer,
//! dropped when the answer comes (0.3–0.5 µs on a small VM; with an adaptive delay, one more
//! clock read). A call that hedges, or whose attempt fails, allocates once: a box for its later
//! attempts (attempts in flight must stay pinned, and pinning them inline would cost every
//! call; see `race.rs`).
//!
//! # Telemetry
//!
//! Every hedge sent, won or refused goes to the [`on_hedge`](Hedge::on_hedge) hooks, to
//! `tracing` (target `staunch::hedge`) and to `metrics`: `staunch_hedge_sent_total` (labels
//! `policy`, `trigger`), `staunch_hedge_won_total` (`policy`) and `staunch_hedge_refused_total`
//! (`policy`, `reason`: `budget`, `deadline`, `retry_after_too_long`, `circuit_open`).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::hedge::{Hedge, HedgeConfig, HedgeDelay};
//! use staunch::retry::{BudgetConfig, RetryBudget};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), staunch::ConfigError> {
//! // Hedge reads from a replicated store after its recent p95, within 2–100 ms, with at most
//! // 10% more requests.
//! let hedge = Hedge::new(
//!     HedgeConfig::new(
//!         HedgeDelay::percentile(95.0)
//!             .with_min(Duration::from_millis(2))
//!             .with_max(Duration::from_millis(100)),
//!     )
//!     .with_max_attempts(2),
//! )?
//! .with_budget(RetryBudget::new(BudgetConfig::ratio(0.1))?);
//!
//! let value = hedge.call(|| async { Ok::<_, std::io::Error>("row") }).await;
//! assert_eq!(value.unwrap(), "row");
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "tokio")]
mod call;
#[cfg(feature = "tokio")]
mod config;
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
mod estimate;
#[cfg(feature = "tokio")]
mod events;
#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tokio")]
mod policy;
#[cfg(feature = "tokio")]
pub(crate) mod race;
#[cfg(feature = "tower")]
mod service;
#[cfg(feature = "tokio")]
pub(crate) mod state;

#[cfg(feature = "tokio")]
pub use config::{HedgeConfig, HedgeDelay, MAX_ATTEMPTS};
#[cfg(feature = "tokio")]
pub use events::{HedgeEvent, HedgeEventKind, Trigger};
#[cfg(feature = "tower")]
pub use layer::HedgeLayer;
#[cfg(feature = "tokio")]
pub use policy::Hedge;
#[cfg(feature = "tower")]
pub use service::HedgeService;
