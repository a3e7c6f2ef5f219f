//! Overload protection, client side: a dependency that is slow because it is busy must get less
//! work, not more.
//!
//! # Why
//!
//! Overload is the failure that takes most fleets down, and it does not look like one: the
//! dependency still answers, only slower. By Little's law, the calls in flight to it are its
//! arrival rate times its latency (`L = λ·W`): when its latency doubles under load, every client
//! that keeps sending at the same rate doubles what it holds in flight, its queues grow, calls
//! time out while it still works on them, retries add more, and the system can stay down after
//! whatever started it has gone (a *metastable* failure: the overload sustains itself). Timeouts
//! and retries alone make this worse. What breaks the loop is a client that sends less when the
//! dependency slows or refuses:
//!
//! - a [`ConcurrencyLimit`] (a bulkhead) caps the calls in flight to one dependency, so a slow
//!   dependency costs a bounded number of tasks, threads and sockets, not all of them. It is
//!   fixed ([`LimitConfig::fixed`]) or adaptive: [`Aimd`], [`Vegas`] and [`Gradient2`] (Netflix's
//!   concurrency-limits algorithms, with their published defaults) move the limit with the
//!   dependency's latency and drops, between a floor and a ceiling, so that `L` stays near what
//!   the dependency can serve;
//! - [`AdaptiveThrottle`] (Google SRE book's client-side throttling) refuses calls locally in
//!   proportion to how much work the dependency has been refusing, so that a fleet of clients
//!   backs off without coordination, and comes back as soon as the dependency accepts again;
//! - `RateLimit` (feature `rate-limit`: GCRA, N calls per period with a burst) keeps a client
//!   within a quota it was given;
//! - callers that find the limit full wait in a bounded FIFO queue
//!   ([`with_max_queue`](LimitConfig::with_max_queue), default 0: refused at once) for at most
//!   [`max_wait`](LimitConfig::with_max_wait) and never past their deadline. An unbounded queue
//!   is how latency turns into overload; a bounded one absorbs a burst and refuses the rest at
//!   once, while the refusal is still cheap.
//!
//! Each works alone (permits, async and blocking calls, and a tower layer with the `tower`
//! feature: `ConcurrencyLimitLayer`, `ThrottleLayer`, `RateLimitLayer`; each decides in `call`
//! or in the response future and never reserves capacity in `poll_ready`: see
//! `ConcurrencyLimitService`) and inside a [`Pipeline`](crate::Pipeline),
//! per attempt, before the breaker (see [its docs](crate::pipeline#overload-protection)).
//!
//! # Refusals
//!
//! Every local refusal is a [`Refused`] with its [`Refusal`] reason (and, where the policy knows
//! it, when a call would next be admitted). A refusal is never a failure of the dependency, and
//! a [`FallbackOn::DEFAULT`](crate::fallback::FallbackOn::DEFAULT) fallback covers every
//! refusal reason ([`StopReason::Refused`](crate::StopReason::Refused)). In a pipeline a refusal
//! is counted by no breaker and no retry budget, and is not retried.
//!
//! # Deadlines
//!
//! A wait in the queue never outlasts the deadline in scope ([`Deadline`](crate::Deadline)): it
//! is cut at the deadline and refused with [`Refusal::Deadline`], and a caller whose deadline
//! has already passed is refused at once without joining the queue. (A FIFO queue cannot know
//! when a slot will free, so a wait that still has time is allowed to try.)
//!
//! # Permits
//!
//! A [`Permit`] is a guard. Reported ([`success`](Permit::success), [`dropped`](Permit::dropped),
//! [`record`](Permit::record)), it frees its slot and gives an adaptive limit a sample; dropped
//! without an outcome (a cancelled future, a panic, or a call refused by another check after it
//! took its slot) it frees its slot and gives no sample, since a call its own caller abandoned
//! says nothing about the dependency. A timeout is a drop. No slot ever leaks: loom models check
//! the hand-over between a releasing holder and a waiter, cancellation racing a hand-over, FIFO
//! order and a limit that grows under waiters.
//!
//! # Cost
//!
//! The counts (calls in flight, callers queued) share one atomic word: an uncontended admission
//! is one compare-exchange, a release another, with no lock and no allocation; the queue's lock
//! is taken only when somebody waits. The queue is allocated once, at construction. An adaptive
//! limit also reads the clock at admission and at release: AIMD (which only compares a round
//! trip with its timeout) reads the kernel's coarse clock while time is known to be real and its
//! timeout is at least 1 s, and updates the limit with a compare-exchange only when it changes;
//! Vegas and Gradient2 read the exact clock and take a short lock per sample. Throttling takes a
//! short lock and reads the clock per call; a rate limit is one compare-exchange (and a clock
//! read). None allocates per call. BENCHMARKS.md has the numbers, beside tokio's semaphore,
//! tower's `ConcurrencyLimit` and tower-resilience.
//!
//! # Telemetry
//!
//! With `tracing`, a debug event per refusal and per change of an adaptive limit; with
//! `metrics`, `staunch_limit_refused_total` (labels `limit`, `reason`) and the gauges
//! `staunch_limit_limit`, `staunch_limit_in_flight`, `staunch_limit_queued` and
//! `staunch_limit_throttle_probability`. [`ConcurrencyLimit::snapshot`] and
//! [`AdaptiveThrottle::snapshot`] give the same numbers to health endpoints.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::limit::{Aimd, ConcurrencyLimit, LimitConfig, Refusal};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
//! let search = ConcurrencyLimit::new(
//!     LimitConfig::aimd(Aimd::new().with_initial_limit(20).with_min_limit(4).with_max_limit(100))
//!         .with_max_queue(50)
//!         .with_max_wait(Duration::from_millis(20)),
//! )?;
//! let hits = search.call(|| async { Ok::<_, std::io::Error>(3) }).await.unwrap();
//! assert_eq!(hits, 3);
//! assert_eq!(search.snapshot().in_flight, 0);
//! # Ok(()) }
//! ```

#[cfg(feature = "tokio")]
mod acquire;
mod algorithm;
mod concurrency;
mod config;
mod error;
#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "rate-limit")]
mod rate;
#[cfg(feature = "tower")]
mod service;
mod shared;
mod throttle;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(feature = "tokio")]
pub use acquire::{Acquire, AcquireOwned};
pub use algorithm::{Aimd, Gradient2, Vegas};
pub use concurrency::{Builder, ConcurrencyLimit, Error, OwnedPermit, Permit, Snapshot};
pub use config::LimitConfig;
pub use error::{Refusal, Refused};
#[cfg(all(feature = "tower", feature = "rate-limit"))]
pub use layer::RateLimitLayer;
#[cfg(feature = "tower")]
pub use layer::{ConcurrencyLimitLayer, ThrottleLayer};
#[cfg(feature = "rate-limit")]
pub use rate::{RateConfig, RateLimit};
#[cfg(all(feature = "tower", feature = "rate-limit"))]
pub use service::RateLimitService;
#[cfg(feature = "tower")]
pub use service::{ConcurrencyLimitService, ThrottleService};
pub use throttle::{AdaptiveThrottle, ThrottleConfig, ThrottlePermit, ThrottleSnapshot};

/// The error type of the tower services: any error, boxed.
#[cfg(feature = "tower")]
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
