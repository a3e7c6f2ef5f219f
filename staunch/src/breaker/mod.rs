//! The circuit breaker: stop calling a dependency that is failing, and find out cheaply when it
//! has recovered.
//!
//! A [`CircuitBreaker`] sits around every call to one dependency. While the dependency is
//! healthy it costs almost nothing; when the trip rule says the dependency is failing it rejects
//! calls at once with [`CircuitOpen`] (so callers fail fast and the dependency gets room to
//! recover), then lets a few probe calls through to find out whether it has.
//!
//! # The state machine
//!
//! ```text
//!                 trip rule fires
//!     +--------+ ----------------------------> +------+
//!     | Closed |                               | Open | rejects with CircuitOpen { retry_after }
//!     +--------+ <-----+                       +------+
//!     ^  |             |                        |   ^
//!     |  | count-reset | successes_to_close     |   | a probe failure (or the failure that
//!     |  | interval:   | probe successes        |   | makes closing impossible), or the
//!     |  | new period  |                        |   | half-open maximum wait
//!     +--+             |                        v   | (open duration grows)
//!         ^        +----------+  open duration  |   |
//!         |        | HalfOpen | <---------------+   |
//!         |        +----------+ -------------------+
//!         |          at most half_open_probes calls in flight;
//!         |          the others are rejected
//!         |
//!     reset()      force_open() -> ForcedOpen (rejects all, no retry_after)
//!                  force_closed() -> ForcedClosed (admits all, records, never trips)
//!                  disable() -> Disabled (admits all, records nothing)
//! ```
//!
//! Every transition starts a new *generation*, and so do a reset and the start of each period
//! of a [count-reset interval](BreakerConfig::with_count_reset_interval). A permit remembers
//! the generation that admitted it, and its outcome only counts in that generation: a slow call
//! admitted while closed that fails after the breaker opened (or after it has opened and closed
//! again) changes nothing. It is reported as stale (a `tracing` debug event and a `metrics`
//! counter), unless it is a success that would change nothing in the current generation either
//! (a success into a closed breaker with nothing to reset is not checked at all: that check
//! would cost every call).
//!
//! # Trip rules, and when to choose which
//!
//! One rule per breaker, chosen by the [`BreakerConfig`] constructor. Rates trip when the
//! measured share is *at least* the threshold (`>=`).
//!
//! | rule | trips when | choose it when |
//! |---|---|---|
//! | [`consecutive_failures(n)`](BreakerConfig::consecutive_failures) | `n` failures in a row (a success resets the count) | traffic is low or bursty, or any run of failures means "down"; the cheapest rule |
//! | [`failure_rate_count(rate, n)`](BreakerConfig::failure_rate_count) | `rate` of the last `n` calls failed, with at least the minimum number of calls | traffic is steady and an error *rate* matters, not a run |
//! | [`failure_rate_time(rate, window)`](BreakerConfig::failure_rate_time) | `rate` of the calls in the last `window` failed, with a minimum throughput | traffic varies; old outcomes must age out even when no calls arrive |
//! | [`failure_count_time(k, window)`](BreakerConfig::failure_count_time) | `k` calls in the last `window` failed, whatever their share | a number of failures means trouble however many calls succeed |
//! | [`slow_call_rate(rate, slow, n)`](BreakerConfig::slow_call_rate) | `rate` of the last `n` calls took at least `slow` | the dependency slows down before it fails |
//!
//! The window rules can combine a failure rate, a failure count and a slow-call rate
//! ([`with_failure_rate`](BreakerConfig::with_failure_rate),
//! [`with_failure_count`](BreakerConfig::with_failure_count),
//! [`with_slow_calls`](BreakerConfig::with_slow_calls)); each threshold trips on its own.
//! A window rule evaluates after every recorded outcome, so it opens on exactly the call that
//! reaches both the minimum number of calls and the threshold. The window starts empty each time
//! the breaker closes, and, with a
//! [count-reset interval](BreakerConfig::with_count_reset_interval), at the start of each
//! period (the consecutive rule's count too).
//!
//! Which outcomes count is the caller's decision, through the shared
//! [`classify`](crate::classify) module: [`Class::Success`](crate::classify::Class::Success) is a
//! success, [`Class::Ignored`](crate::classify::Class::Ignored) counts as nothing, and every
//! failure class (permanent, transient, retry-after) is a failure. A classifier may call an
//! `Ok` a failure (an HTTP 503) or ignore an `Err` (a 404).
//!
//! # Open
//!
//! Open lasts the [open duration](BreakerConfig::with_open_duration), fixed, or growing with
//! each consecutive trip through a [`Backoff`](crate::backoff::Backoff)
//! ([`with_open_backoff`](BreakerConfig::with_open_backoff)), jittered and capped so that a
//! fleet's probes spread out. A successful close resets the growth. [`CircuitOpen::retry_after`]
//! says when the next probe will be admitted.
//!
//! By default the period ends at the first call after it: that caller reads the clock, finds
//! the period over, and becomes the first probe, so the breaker reports open until some call
//! arrives. With [`with_automatic_half_open`](BreakerConfig::with_automatic_half_open)
//! (feature `tokio`), a timer task ends it instead: the breaker turns half-open on time with no
//! traffic (health endpoints and callbacks see it), and rejections while open read no clock,
//! at the price of a first probe a little late (the timer's resolution and scheduling) and one
//! task per open period.
//!
//! # Half-open guarantees
//!
//! - At most [`half_open_probes`](BreakerConfig::with_half_open_probes) calls are in flight;
//!   every other caller is rejected (never "every caller is a probe").
//! - [`successes_to_close`](BreakerConfig::with_successes_to_close) probe successes close; the
//!   first probe failure re-opens (and grows the open duration). With
//!   [`with_successes_to_close_out_of(s, n)`](BreakerConfig::with_successes_to_close_out_of),
//!   `s` successes out of `n` probes close, and the failure that makes closing impossible (the
//!   `n - s + 1`th) re-opens, each on the outcome that makes it certain. Only failures count in
//!   half-open; slow probes are not judged.
//! - A probe permit is a guard: dropped without an outcome (a cancelled future, a panic), it
//!   returns its slot and counts as nothing.
//! - A probe that never finishes cannot wedge the breaker: once every slot has been held for the
//!   [probe lease](BreakerConfig::with_probe_lease) without a new admission, the next caller
//!   reclaims all slots in a new generation (the old probes become stale) and probes itself.
//! - Half-open can be bounded as a whole: with a
//!   [maximum wait](BreakerConfig::with_half_open_max_wait), a breaker still half-open that long
//!   after it turned half-open re-opens, at the first call or probe outcome after it.
//!
//! # Manual control: closed, forced closed, disabled
//!
//! [`force_open`](CircuitBreaker::force_open), [`force_closed`](CircuitBreaker::force_closed),
//! [`disable`](CircuitBreaker::disable) and [`reset`](CircuitBreaker::reset) override the rule
//! until the next of them. A manual transition to the state the breaker is already in changes
//! nothing and tells nobody (a reset of a closed breaker still clears its counts).
//!
//! | | closed | forced closed | disabled | forced open |
//! |---|---|---|---|---|
//! | admits | every call | every call | every call | no call (`retry_after` is `None`) |
//! | records outcomes (snapshot counts, failure rate) | yes | yes | no | no |
//! | trips | yes | never | never | (rejects) |
//! | cost per call | the rule's | the rule's, admission out of line | a closed success's, whatever the rule | one load |
//! | resilience4j | `CLOSED` | `METRICS_ONLY` | `DISABLED` | `FORCED_OPEN` |
//!
//! Forced closed keeps measuring, so its snapshots show what the rule would have done: use it
//! to watch a breaker before letting it act. Disabled turns the breaker off: use it when a
//! breaker must not act and its counts are of no use (a kill switch, or
//! [`with_disabled`](BreakerConfig::with_disabled) in a configuration file).
//!
//! # Coming from another library
//!
//! Each setting has the meaning of its peer's below, and a test that pins it. "≈" marks a near
//! equivalent whose difference the linked docs explain.
//!
//! | staunch | resilience4j | failsafe (Java, Go) | gobreaker | Polly (v8) |
//! |---|---|---|---|---|
//! | [`consecutive_failures(n)`](BreakerConfig::consecutive_failures) | – | `withFailureThreshold(n)` | `ReadyToTrip`: `ConsecutiveFailures >= n` | – |
//! | [`failure_rate_count(rate, n)`](BreakerConfig::failure_rate_count) | `COUNT_BASED`, `slidingWindowSize`, `failureRateThreshold` | ≈ `withFailureThreshold(k, n)`, Go `WithFailureThresholdRatio` (a count: [`with_failure_count`](BreakerConfig::with_failure_count)) | – | – |
//! | [`failure_rate_time(rate, window)`](BreakerConfig::failure_rate_time) | `TIME_BASED`, `slidingWindowSize`, `failureRateThreshold` | `withFailureRateThreshold(rate, executions, period)` | – | `FailureRatio`, `SamplingDuration` |
//! | [`failure_count_time(k, window)`](BreakerConfig::failure_count_time) | – | `withFailureThreshold(k, period)`, Go `WithFailureThresholdPeriod` | ≈ `ReadyToTrip`: `TotalFailures >= k`, with `Interval` and (v2) `BucketPeriod` | – |
//! | [`with_minimum_calls`](BreakerConfig::with_minimum_calls) | `minimumNumberOfCalls` | `withFailureExecutionThreshold` | – | `MinimumThroughput` |
//! | [`with_slow_calls`](BreakerConfig::with_slow_calls), [`slow_call_rate`](BreakerConfig::slow_call_rate) | `slowCallRateThreshold`, `slowCallDurationThreshold` | – | – | – |
//! | [`with_count_reset_interval`](BreakerConfig::with_count_reset_interval) | – | – | `Interval` | – |
//! | [`with_open_duration`](BreakerConfig::with_open_duration) | `waitDurationInOpenState` | `withDelay` | `Timeout` | `BreakDuration` |
//! | [`with_open_backoff`](BreakerConfig::with_open_backoff) | `waitIntervalFunctionInOpenState` | `withDelayFn` | – | `BreakDurationGenerator` |
//! | `with_automatic_half_open` | `automaticTransitionFromOpenToHalfOpenEnabled` | – | – | – |
//! | [`with_half_open_probes`](BreakerConfig::with_half_open_probes) | ≈ `permittedNumberOfCallsInHalfOpenState` (staunch bounds calls in flight) | – | `MaxRequests` | – |
//! | [`with_successes_to_close(s)`](BreakerConfig::with_successes_to_close) | – | `withSuccessThreshold(s)` | `MaxRequests` (consecutive successes) | – |
//! | [`with_successes_to_close_out_of(s, n)`](BreakerConfig::with_successes_to_close_out_of) | ≈ `failureRateThreshold` over the permitted calls (decided after all of them) | `withSuccessThreshold(s, n)`, Go `WithSuccessThresholdRatio` | – | – |
//! | [`with_half_open_max_wait`](BreakerConfig::with_half_open_max_wait) | `maxWaitDurationInHalfOpenState` (its 0, "forever", is leaving it unset) | – | – | – |
//! | [`with_probe_lease`](BreakerConfig::with_probe_lease) | – | – | – | – |
//! | [`force_open`](CircuitBreaker::force_open) | `transitionToForcedOpenState` | `open()` | – | `Isolate` |
//! | [`force_closed`](CircuitBreaker::force_closed) | `transitionToMetricsOnlyState` | – | – | – |
//! | [`disable`](CircuitBreaker::disable) | `transitionToDisabledState` | – | – | – |
//! | [`reset`](CircuitBreaker::reset) | `reset` | `close()` | – | `Close` |
//!
//! # Time
//!
//! Time is monotonic and injectable: the breaker reads its [`Clock`](crate::Clock) (set with
//! [`Builder::clock`]), which with the `tokio` feature follows tokio's paused test time, and
//! a [`ManualClock`](crate::ManualClock) drives tests of blocking code. No wall clock is read.
//!
//! Rejecting while open (or half-open with every probe slot taken) is the one hot path that
//! needs the time, and an exact reading costs ~30 ns on a virtual machine. When time is known
//! to be real (the system clock, on Linux, and tokio's clock not seen paused), the breaker
//! first reads the kernel's coarse monotonic clock (3–11 ns there): while it shows the open
//! period (or the probes' lease) surely not over, allowing two ticks of its lag, the call is
//! rejected at once; within the last ~8 ms it reads the exact clock. The period ends when the
//! exact clock says so either way. The breaker notices a paused tokio clock when it is built or
//! changes state, so pause before it trips (as `#[tokio::test(start_paused = true)]` does); see
//! [`Clock`](crate::Clock). With automatic half-open, rejections while open read no clock at all
//! (the timer runs on tokio's clock, so paused time drives it too).
//!
//! # APIs
//!
//! - [`call`](CircuitBreaker::call) for async closures, [`call_blocking`](CircuitBreaker::call_blocking)
//!   for sync ones (and `_with` variants taking a classifier);
//! - [`try_acquire`](CircuitBreaker::try_acquire) for code that cannot be wrapped in a closure:
//!   a [`Permit`] reported with `success()`, `failure()` or `ignore()`;
//! - `CircuitBreakerLayer` (feature `tower`); see `CircuitBreakerService` for how it treats
//!   `poll_ready`.
//! - [`state`](CircuitBreaker::state), [`snapshot`](CircuitBreaker::snapshot),
//!   [`force_open`](CircuitBreaker::force_open), [`force_closed`](CircuitBreaker::force_closed),
//!   [`reset`](CircuitBreaker::reset), and [`Builder::on_state_change`] callbacks (run after the
//!   change, never under a lock). With the `tracing` feature, every transition is an event;
//!   with `metrics`, `staunch_breaker_transitions_total`, `staunch_breaker_rejected_total`,
//!   `staunch_breaker_stale_outcomes_total` and the `staunch_breaker_state` gauge.
//!
//! # Cost model
//!
//! The whole state lives in one packed 64-bit word (state, generation, consecutive failures,
//! probes in flight, probe successes, and two bits for which hot path the rule takes), changed
//! only by compare-exchange. The inlined paths read nothing else: a closed admission and a
//! success with nothing to record are each one load and one test of the word.
//!
//! | path | cost |
//! |---|---|
//! | admission in closed | one atomic load (plus, out of line, a clock read if slow calls are measured) |
//! | success, consecutive rule, no failures pending | one atomic load; no write, no clock read |
//! | failure, consecutive rule | one compare-exchange |
//! | success, count window full of successes (no slow-call rule) | one atomic load; no write |
//! | success, window rules, no run of successes can trip the window (no slow-call rule) | one compare-exchange on a counter of its own, no lock; plus one atomic load (count window) or a coarse clock read (time window) |
//! | other outcomes, window rules | a short lock around the window, which first records the `k` successes counted without it (`O(min(k, size))`); a clock read for time windows and slow calls |
//! | rejection in open, or in half-open with every slot taken | two loads and a coarse clock read (3–11 ns on a VM); an exact read near the period's (or lease's) end or when time is not known to be real |
//! | rejection in open, automatic half-open | two loads, no clock |
//! | admission in closed, count-reset interval | one load, then out of line a coarse clock read (an exact one when time is not known to be real) and a load; the first admission of a period also takes the window lock |
//! | disabled, admission and success (any rule) | one atomic load each, as a closed success under the consecutive rule; a failure goes out of line to be dropped |
//! | transitions, half-open | compare-exchange loops, clock reads, callbacks (outside any lock) |
//!
//! A success can trip a window only by meeting the minimum number of calls, never by raising a
//! share. So each time the window lock is taken, the breaker checks whether any run of further
//! successes could trip the window before its newest bucket ends; while none can (typically
//! once the minimum is met and the rate is below the threshold), successes are only counted,
//! and recorded in the window, in order, by whoever takes the lock next. Decisions and counts
//! are the same as if each success took the lock, with one approximation: a time window reads
//! such a success's time on the coarse clock when time is real, up to a tick (4 ms) early, so
//! near a bucket boundary it may land in the bucket before its own and expire that much
//! sooner.
//!
//! No call allocates (the window is allocated once, at construction; with automatic half-open,
//! a trip spawns its period's timer task). The handle is one `Arc`;
//! [`call`](CircuitBreaker::call) and [`try_acquire`](CircuitBreaker::try_acquire) borrow it,
//! so calls do not touch its reference count. What must be `'static` holds its own clone:
//! [`try_acquire_owned`](CircuitBreaker::try_acquire_owned) and the tower service's response
//! futures, one increment and decrement per call, a shared write when threads share the
//! breaker. For a breaker that lives as long as the process (a `static`, or leaked once at
//! startup), `CircuitBreakerLayer::new_static` takes a `&'static CircuitBreaker` and its
//! calls touch no count.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
//! let breaker = CircuitBreaker::new(
//!     BreakerConfig::failure_rate_count(0.5, 10)
//!         .with_minimum_calls(4)
//!         .with_open_duration(Duration::from_secs(5)),
//! )?;
//! for ok in [true, false, true, false] {
//!     let _ = breaker.call(|| async move { if ok { Ok(()) } else { Err("503") } }).await;
//! }
//! assert_eq!(breaker.state(), State::Open); // 2 of 4 failed: 50% >= 50%
//!
//! tokio::time::advance(Duration::from_secs(5)).await;
//! breaker.call(|| async { Ok::<_, &str>(()) }).await.unwrap(); // the probe
//! assert_eq!(breaker.state(), State::Closed);
//! # Ok(()) }
//! ```

mod call;
mod config;
mod error;
mod events;
mod pending;
mod permit;
mod shared;
mod state;
#[cfg(all(feature = "tokio", not(loom)))]
mod timer;

#[cfg(feature = "tower")]
pub mod future;
#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

#[cfg(all(test, loom))]
mod loom_tests;

pub use call::Call;
pub use config::BreakerConfig;
pub use error::{CircuitOpen, Error};
pub use events::{Reason, StateChange};
#[cfg(feature = "tower")]
pub use layer::CircuitBreakerLayer;
pub use permit::{OwnedPermit, Permit};
#[cfg(feature = "tower")]
pub use service::CircuitBreakerService;
pub use shared::{Builder, CircuitBreaker, Snapshot};
pub use state::State;

/// The error type of the tower services: any error, boxed.
#[cfg(feature = "tower")]
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
