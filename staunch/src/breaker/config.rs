//! [`BreakerConfig`]: which trip rule, how long to stay open, how to probe.

use std::time::Duration;

use super::state::{Path, Thresholds};
use crate::ConfigError;
use crate::backoff::Backoff;

/// The largest count the packed state word holds: the limit on `consecutive_failures`,
/// `half_open_probes` and `successes_to_close`.
pub(crate) const FIELD_MAX: u32 = 0xFFFF;
/// The largest count window (one byte of memory per call in the window).
const MAX_WINDOW_SIZE: u32 = 1 << 20;
/// The largest number of time buckets.
const MAX_BUCKETS: u32 = 1024;
/// Growth of the open duration stops after this many consecutive trips.
pub(crate) const MAX_GROWTH_STEPS: u32 = 64;

/// How a breaker decides to trip while closed. One rule per breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Rule {
    /// `failures` consecutive failures trip; a success resets the count.
    Consecutive { failures: u32 },
    /// Rates over the last `size` calls, once at least `min_calls` are in the window.
    CountWindow { size: u32, min_calls: u32 },
    /// Rates over the calls of the last `window`, split into `buckets`, once at least
    /// `min_calls` are in the window.
    TimeWindow {
        window: Duration,
        buckets: u32,
        min_calls: u32,
    },
}

/// How long the breaker stays open after a trip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum OpenDuration {
    Fixed(Duration),
    Growing(Backoff),
}

/// The configuration of a [`CircuitBreaker`](super::CircuitBreaker): a small `Copy` value built
/// with one `const fn` constructor per trip rule and `with_*` setters, validated once by
/// [`CircuitBreaker::new`](super::CircuitBreaker::new).
///
/// | setting | default |
/// |---|---|
/// | trip rule | chosen by the constructor |
/// | [`with_open_duration`](Self::with_open_duration) | 30 s, fixed |
/// | [`with_open_backoff`](Self::with_open_backoff) | off (the open duration is fixed) |
/// | [`with_half_open_probes`](Self::with_half_open_probes) | 1 |
/// | [`with_successes_to_close`](Self::with_successes_to_close) | 1 |
/// | [`with_successes_to_close_out_of`](Self::with_successes_to_close_out_of) | off (the first probe failure re-opens) |
/// | [`with_probe_lease`](Self::with_probe_lease) | 60 s |
/// | [`with_half_open_max_wait`](Self::with_half_open_max_wait) | off (half-open lasts until the probes decide) |
/// | [`with_minimum_calls`](Self::with_minimum_calls) | the window size (count window), 20 (time window), 1 ([`failure_count_time`](Self::failure_count_time)) |
/// | [`with_buckets`](Self::with_buckets) | 10 (time window) |
/// | [`with_slow_calls`](Self::with_slow_calls) | off, except for [`slow_call_rate`](Self::slow_call_rate) |
/// | [`with_failure_count`](Self::with_failure_count) | off, except for [`failure_count_time`](Self::failure_count_time) |
/// | [`with_count_reset_interval`](Self::with_count_reset_interval) | off (the counts clear only on a transition) |
/// | [`with_disabled`](Self::with_disabled) | off (the breaker starts closed) |
/// | `with_automatic_half_open` (feature `tokio`) | off (the open period ends at the first call after it) |
///
/// Rates are fractions in `(0, 1]` and trip when the measured rate is *at least* the
/// threshold (`>=`): a 0.5 threshold trips at 5 failures out of 10.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::breaker::{BreakerConfig, CircuitBreaker};
///
/// let config = BreakerConfig::consecutive_failures(5)
///     .with_open_duration(Duration::from_secs(10))
///     .with_half_open_probes(2)
///     .with_successes_to_close(2);
/// let breaker = CircuitBreaker::new(config)?;
///
/// let err = CircuitBreaker::new(BreakerConfig::failure_rate_count(1.5, 100)).unwrap_err();
/// assert_eq!(err.field(), "failure_rate");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerConfig {
    pub(crate) rule: Rule,
    pub(crate) failure_rate: Option<f64>,
    /// A window rule's failure-count threshold.
    pub(crate) failure_count: Option<u32>,
    pub(crate) slow_call: Option<SlowCalls>,
    /// Closed: the counts clear on this fixed period.
    pub(crate) count_reset_interval: Option<Duration>,
    pub(crate) open: OpenDuration,
    pub(crate) half_open_probes: u32,
    pub(crate) successes_to_close: u32,
    /// Half-open judges at most this many probe outcomes: it re-opens once more than
    /// `successes_out_of - successes_to_close` have failed.
    pub(crate) successes_out_of: u32,
    pub(crate) probe_lease: Duration,
    pub(crate) half_open_max_wait: Option<Duration>,
    /// The breaker starts disabled.
    pub(crate) disabled: bool,
    #[cfg(feature = "tokio")]
    pub(crate) automatic_half_open: bool,
}

/// The slow-call rule: calls lasting at least `threshold` are slow; a slow share of at least
/// `rate` trips.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SlowCalls {
    pub(crate) threshold: Duration,
    pub(crate) rate: f64,
}

const DEFAULT_OPEN: Duration = Duration::from_secs(30);
const DEFAULT_LEASE: Duration = Duration::from_secs(60);
const DEFAULT_TIME_MIN_CALLS: u32 = 20;
const DEFAULT_BUCKETS: u32 = 10;

impl BreakerConfig {
    const fn with_rule(rule: Rule, failure_rate: Option<f64>) -> Self {
        Self {
            rule,
            failure_rate,
            failure_count: None,
            slow_call: None,
            count_reset_interval: None,
            open: OpenDuration::Fixed(DEFAULT_OPEN),
            half_open_probes: 1,
            successes_to_close: 1,
            successes_out_of: 1,
            probe_lease: DEFAULT_LEASE,
            half_open_max_wait: None,
            disabled: false,
            #[cfg(feature = "tokio")]
            automatic_half_open: false,
        }
    }

    /// Trips after `failures` failures in a row; any success resets the count (so "consecutive"
    /// means consecutive). The cheapest rule: a success with no failures pending costs one atomic
    /// load and reads no clock. `failures` must be in `1..=65535`.
    ///
    /// Choose it for low or bursty traffic, or when any run of failures means the dependency is
    /// down; it ignores a steady trickle of failures between successes.
    pub const fn consecutive_failures(failures: u32) -> Self {
        Self::with_rule(Rule::Consecutive { failures }, None)
    }

    /// Trips when at least `rate` of the last `window_size` calls failed, once the window holds
    /// at least the minimum number of calls ([`with_minimum_calls`](Self::with_minimum_calls),
    /// default: the whole window). The trip happens on the very call that reaches both.
    ///
    /// Choose it for steady traffic where an error *rate* matters more than a run; it reads no
    /// clock (unless slow calls are measured) but takes a short lock per recorded outcome.
    pub const fn failure_rate_count(rate: f64, window_size: u32) -> Self {
        Self::with_rule(
            Rule::CountWindow {
                size: window_size,
                min_calls: window_size,
            },
            Some(rate),
        )
    }

    /// Trips when at least `rate` of the calls that ended during the last `window` failed, once
    /// the window holds at least the minimum number of calls (default 20). The window is split
    /// into [`buckets`](Self::with_buckets) (default 10) that expire whole, so it slides in steps
    /// of `window / buckets`.
    ///
    /// Choose it when traffic varies a lot: old outcomes age out even when no calls arrive, and
    /// the minimum throughput keeps a quiet period's few failures from tripping.
    pub const fn failure_rate_time(rate: f64, window: Duration) -> Self {
        Self::with_rule(
            Rule::TimeWindow {
                window,
                buckets: DEFAULT_BUCKETS,
                min_calls: DEFAULT_TIME_MIN_CALLS,
            },
            Some(rate),
        )
    }

    /// Trips after `failures` failures among the calls that ended during the last `window`,
    /// whatever their share of the calls (failsafe's `withFailureThreshold(failures, period)`):
    /// a time window of [`buckets`](Self::with_buckets) (default 10) that expire whole, with a
    /// failure-count threshold instead of a rate. `failures` must be at least 1.
    ///
    /// Choose it when a number of failures means trouble however many calls succeed around
    /// them (a dependency with heavy traffic whose few failures are each costly), or to keep
    /// gobreaker's "more than n failures" in a time frame. The minimum number of calls
    /// defaults to 1 here: set [`with_minimum_calls`](Self::with_minimum_calls) to also require
    /// a throughput (failsafe's `withFailureExecutionThreshold`). Add
    /// [`with_failure_rate`](Self::with_failure_rate) to trip on a rate as well.
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    ///
    /// // Five failures in a minute trip it, even among ten thousand successes.
    /// let breaker = CircuitBreaker::new(BreakerConfig::failure_count_time(5, Duration::from_secs(60)))?;
    /// for i in 0..10_000 {
    ///     let _ = breaker.call_blocking(|| if i % 2_000 == 0 { Err("503") } else { Ok(()) });
    /// }
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub const fn failure_count_time(failures: u32, window: Duration) -> Self {
        let mut config = Self::with_rule(
            Rule::TimeWindow {
                window,
                buckets: DEFAULT_BUCKETS,
                min_calls: 1,
            },
            None,
        );
        config.failure_count = Some(failures);
        config
    }

    /// Trips when at least `rate` of the last `window_size` calls took at least `slow` (whether
    /// they succeeded or not), once the window holds the minimum number of calls. Failures alone
    /// do not trip this rule; add [`with_failure_rate`](Self::with_failure_rate) to trip on
    /// either, independently.
    ///
    /// Choose it when a dependency degrades by slowing down before it fails. Measuring a call's
    /// duration reads the clock at admission and at completion; durations are measured in whole
    /// microseconds (and a call lasting over 76 hours may be misjudged).
    pub const fn slow_call_rate(rate: f64, slow: Duration, window_size: u32) -> Self {
        let mut config = Self::with_rule(
            Rule::CountWindow {
                size: window_size,
                min_calls: window_size,
            },
            None,
        );
        config.slow_call = Some(SlowCalls {
            threshold: slow,
            rate,
        });
        config
    }

    /// Sets (or adds) the failure-rate threshold of a window rule, in `(0, 1]`. The consecutive
    /// rule rejects it.
    pub const fn with_failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = Some(rate);
        self
    }

    /// Also trips a window rule when at least `rate` of the calls in the window lasted at least
    /// `slow`. The slow-rate and failure-rate thresholds trip independently; a slow failure
    /// counts towards both. Default: off. The consecutive rule rejects it.
    pub const fn with_slow_calls(mut self, slow: Duration, rate: f64) -> Self {
        self.slow_call = Some(SlowCalls {
            threshold: slow,
            rate,
        });
        self
    }

    /// Also trips a window rule once the window holds at least `failures` failures, whatever
    /// their share (failsafe's `withFailureThresholdRatio(failures, size)` on a count window,
    /// its `withFailureThreshold(failures, period)` on a time window). The thresholds trip
    /// independently. Must be in `1..=` the window size for a count window, at least 1 for a
    /// time window. Default: off, except for [`failure_count_time`](Self::failure_count_time).
    /// The consecutive rule rejects it (it already counts failures).
    pub const fn with_failure_count(mut self, failures: u32) -> Self {
        self.failure_count = Some(failures);
        self
    }

    /// Clears the closed state's counts on a fixed period (gobreaker's `Interval`): every
    /// `interval` after the breaker closed (or was built, or reset), the counts (consecutive
    /// failures, or the window) start empty in a new generation, so the outcomes of calls
    /// admitted before the period ended do not count after it, whatever they are. Must be
    /// non-zero. Default: off (the counts clear only on a transition).
    ///
    /// The periods are a fixed grid from the moment the breaker closed: `[closed + k interval,
    /// closed + (k + 1) interval)`. A period ends at the first admission after its end (which
    /// starts the period it falls in, skipping empty ones); an outcome that arrives after the
    /// end of its own period counts as stale, and a snapshot taken then shows the new period
    /// empty. It applies in closed only: forced closed keeps counting.
    ///
    /// What it costs: each closed admission reads the clock (the coarse clock when time is
    /// real, so a period may end up to a tick late), out of line; a success with nothing to
    /// record still costs one load.
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::ManualClock;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder(
    ///     BreakerConfig::consecutive_failures(3).with_count_reset_interval(Duration::from_secs(60)),
    /// )
    /// .clock(clock.clone().into())
    /// .build()?;
    /// breaker.try_acquire().unwrap().failure();
    /// breaker.try_acquire().unwrap().failure();
    /// clock.advance(Duration::from_secs(60)); // a new period: the two failures are forgotten
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), State::Closed);
    /// assert_eq!(breaker.snapshot().consecutive_failures, 1);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub const fn with_count_reset_interval(mut self, interval: Duration) -> Self {
        self.count_reset_interval = Some(interval);
        self
    }

    /// Sets the fewest calls a window must hold before its rates can trip. Default: the window
    /// size for a count window, 20 for a time window. Must be at least 1 (and at most the window
    /// size for a count window).
    pub const fn with_minimum_calls(mut self, min: u32) -> Self {
        match &mut self.rule {
            Rule::CountWindow { min_calls, .. } | Rule::TimeWindow { min_calls, .. } => {
                *min_calls = min;
            }
            Rule::Consecutive { .. } => {}
        }
        self
    }

    /// Sets how many buckets a time window is split into (default 10, at most 1024). Other
    /// rules ignore it.
    pub const fn with_buckets(mut self, count: u32) -> Self {
        if let Rule::TimeWindow { buckets, .. } = &mut self.rule {
            *buckets = count;
        }
        self
    }

    /// Sets a fixed open duration: how long the breaker rejects calls after a trip before it
    /// admits a probe. Default 30 s. Must be non-zero. Replaces any
    /// [`with_open_backoff`](Self::with_open_backoff).
    pub const fn with_open_duration(mut self, open: Duration) -> Self {
        self.open = OpenDuration::Fixed(open);
        self
    }

    /// Grows the open duration on each consecutive trip: the *n*th trip since the breaker last
    /// closed stays open for the *n*th delay of `backoff` (jittered and capped as `backoff`
    /// says), so that a fleet of clients does not probe a recovering dependency in lockstep. A
    /// successful close (or [`reset`](super::CircuitBreaker::reset)) starts again at the first
    /// delay. Growth stops after 64 trips. Default: off.
    ///
    /// The first delay must not be zero: a backoff whose first base delay is zero (an initial
    /// delay of zero) is rejected, as a zero fixed duration is, because the breaker would admit
    /// the call right after a trip. Jitter may still draw a duration near zero: full jitter
    /// draws from `[0, base]`, and `Proportional(1.0)` from `[0, 2 base]`. Such draws are
    /// allowed (spreading a fleet's probes from zero up is what full jitter is for), and a draw
    /// of zero is raised to 1 ns, so a trip always rejects the calls of its own instant. For a
    /// guaranteed minimum open time, use [`Jitter::Equal`](crate::backoff::Jitter::Equal) (at
    /// least half the base delay) or [`Jitter::Proportional(f)`](crate::backoff::Jitter::Proportional)
    /// with `f < 1` (at least `(1 - f)` times it).
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::backoff::{Backoff, Jitter};
    /// use staunch::breaker::BreakerConfig;
    ///
    /// let config = BreakerConfig::consecutive_failures(5).with_open_backoff(
    ///     Backoff::exponential(Duration::from_secs(5))
    ///         .with_max_delay(Duration::from_secs(300))
    ///         .with_jitter(Jitter::Proportional(0.2)),
    /// );
    /// ```
    pub const fn with_open_backoff(mut self, backoff: Backoff) -> Self {
        self.open = OpenDuration::Growing(backoff);
        self
    }

    /// Sets how many probe calls half-open admits at a time (default 1, at most 65535).
    /// Callers beyond it are rejected with [`CircuitOpen`](super::CircuitOpen).
    pub const fn with_half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes;
        self
    }

    /// Sets how many probe successes close the breaker (default 1, at most 65535). The first
    /// probe failure re-opens it; see
    /// [`with_successes_to_close_out_of`](Self::with_successes_to_close_out_of) to tolerate some.
    /// Replaces any earlier `with_successes_to_close_out_of`.
    pub const fn with_successes_to_close(mut self, successes: u32) -> Self {
        self.successes_to_close = successes;
        self.successes_out_of = successes;
        self
    }

    /// Closes the breaker after `successes` probe successes out of `probes` probe outcomes
    /// (failsafe's `withSuccessThreshold(successes, probes)`), and re-opens it as soon as
    /// closing has become impossible: at the `probes - successes + 1`th probe failure. Each
    /// decision is taken on the outcome that makes it certain, without waiting for the other
    /// probes. `1 <= successes <= probes <= 65535`; `successes == probes` is
    /// [`with_successes_to_close`](Self::with_successes_to_close) (the first failure re-opens).
    ///
    /// Only successes and failures count; an ignored or dropped probe is no outcome. A
    /// reclaim of the probes (the [lease](Self::with_probe_lease)) starts the count again.
    /// [`with_half_open_probes`](Self::with_half_open_probes) still bounds how many probes run
    /// at a time; set it up to `probes` to judge them together.
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::ManualClock;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    ///
    /// let clock = ManualClock::new();
    /// let breaker = CircuitBreaker::builder(
    ///     BreakerConfig::consecutive_failures(1)
    ///         .with_open_duration(Duration::from_secs(1))
    ///         .with_half_open_probes(5)
    ///         .with_successes_to_close_out_of(3, 5),
    /// )
    /// .clock(clock.clone().into())
    /// .build()?;
    /// breaker.try_acquire().unwrap().failure();
    /// clock.advance(Duration::from_secs(1));
    /// for ok in [false, true, false, true] {
    ///     let probe = breaker.try_acquire().unwrap();
    ///     if ok { probe.success() } else { probe.failure() }
    /// }
    /// assert_eq!(breaker.state(), State::HalfOpen); // 2 of 3 successes, 2 of 2 failures allowed
    /// breaker.try_acquire().unwrap().success();
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub const fn with_successes_to_close_out_of(mut self, successes: u32, probes: u32) -> Self {
        self.successes_to_close = successes;
        self.successes_out_of = probes;
        self
    }

    /// Sets the probe lease (default 60 s, non-zero): when every probe slot is taken and no
    /// probe was admitted for this long, the next caller reclaims all slots (the old probes'
    /// outcomes become stale) and probes itself. This is what keeps a probe that never finishes
    /// from wedging the breaker in half-open. Set it above the slowest call you expect.
    pub const fn with_probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// Bounds how long the breaker stays half-open (resilience4j's
    /// `maxWaitDurationInHalfOpenState`): still half-open `wait` after it turned half-open, it
    /// re-opens ([`Reason::HalfOpenTimedOut`](super::Reason::HalfOpenTimedOut)), and the open
    /// duration grows as after a probe failure. The probes then in flight become stale. Must be
    /// non-zero. Default: off, half-open lasts until the probes decide.
    ///
    /// This is in addition to the [probe lease](Self::with_probe_lease), which bounds how long
    /// one probe may hold a slot and, once every slot is held that long, reclaims them to probe
    /// again; the maximum wait bounds the whole half-open period, reclaims included. Use it when
    /// probes that trickle in (or never finish) must not keep the breaker half-open, with most
    /// callers rejected, for long.
    ///
    /// Resilience4j reads 0 as "wait forever"; here that is the default, and a zero wait is a
    /// configuration error (it would re-open the breaker the moment it turns half-open).
    ///
    /// The wait ends at the first call, or probe outcome, after it (like an open period
    /// without automatic half-open): until then [`state`](super::CircuitBreaker::state) still
    /// reports half-open. A call rejected in half-open with every slot taken is told to retry
    /// after the lease ends or, when the wait ends first, after the wait and the next open
    /// duration.
    pub const fn with_half_open_max_wait(mut self, wait: Duration) -> Self {
        self.half_open_max_wait = Some(wait);
        self
    }

    /// Builds the breaker [disabled](super::CircuitBreaker::disable): it admits every call and
    /// records nothing until [`reset`](super::CircuitBreaker::reset) (or a force) turns it on.
    /// For a breaker that configuration can switch off without a code change. Default: off.
    pub const fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Moves the breaker from open to half-open on a timer when the open period ends, instead of
    /// at the first call after it (resilience4j's `automaticTransitionFromOpenToHalfOpenEnabled`).
    /// Default: off.
    ///
    /// What it changes:
    ///
    /// - [`state`](super::CircuitBreaker::state), snapshots and state-change callbacks see
    ///   half-open when the period ends, with no traffic needed (the callback runs on the
    ///   runtime's thread).
    /// - A rejection while open reads no clock at all (the breaker's cheapest rejection, as
    ///   cheap as forced open), because the timer, not the caller, ends the period. Its
    ///   [`retry_after`](super::CircuitOpen::retry_after) is then the remaining time as the
    ///   timer last measured it: never less than the exact answer, and at most 1/64 of the
    ///   open duration more (at least 10 ms, at most 1 s), the interval at which the timer
    ///   measures it.
    ///
    /// What it costs: the first probe is admitted when the timer fires, which is a little after
    /// the period ends (tokio's timer resolution, 1 ms, plus the time the runtime takes to run
    /// the timer's task), not on the exact instant; and one spawned task per open period, which
    /// wakes at the interval above.
    ///
    /// The timer is a task on the tokio runtime that is current when the breaker trips. Where
    /// there is none (a blocking call outside a runtime), or with a [`ManualClock`](crate::ManualClock),
    /// that open period ends at the first call after it, as without this setting. If the runtime
    /// shuts down before the timer fires, the period falls back to ending at the first call
    /// after it. A runtime that is alive but stops running tasks (a current-thread runtime
    /// outside `block_on`) delays the timer, and so the probe, until it runs again: leave this
    /// off if the breaker is shared with code outside such a runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), staunch::ConfigError> {
    /// let breaker = CircuitBreaker::new(
    ///     BreakerConfig::consecutive_failures(1)
    ///         .with_open_duration(Duration::from_secs(5))
    ///         .with_automatic_half_open(true),
    /// )?;
    /// let _ = breaker.call(|| async { Err::<(), _>("connection refused") }).await;
    /// assert_eq!(breaker.state(), State::Open);
    ///
    /// tokio::time::sleep(Duration::from_millis(5_001)).await;
    /// assert_eq!(breaker.state(), State::HalfOpen); // no call needed
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "tokio")]
    pub const fn with_automatic_half_open(mut self, automatic: bool) -> Self {
        self.automatic_half_open = automatic;
        self
    }

    /// The closed state's counts clear on a fixed period.
    pub(crate) const fn periodic(&self) -> bool {
        self.count_reset_interval.is_some()
    }

    /// The thresholds of a window rule.
    pub(crate) fn thresholds(&self) -> Thresholds {
        let min_calls = match self.rule {
            Rule::CountWindow { min_calls, .. } | Rule::TimeWindow { min_calls, .. } => min_calls,
            Rule::Consecutive { .. } => 0,
        };
        Thresholds {
            min_calls,
            failure_rate: self.failure_rate,
            slow_rate: self.slow_call.map(|s| s.rate),
            failures: self.failure_count,
        }
    }

    /// Whether calls must be timed (a slow-call threshold is set).
    pub(crate) const fn times_calls(&self) -> bool {
        self.slow_call.is_some()
    }

    /// The hot path this config's calls take (kept in the state word).
    pub(crate) const fn path(&self) -> Path {
        match self.rule {
            _ if self.times_calls() => Path::Timed,
            Rule::Consecutive { .. } => Path::Consecutive,
            Rule::CountWindow { .. } | Rule::TimeWindow { .. } => Path::Window,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let rate_ok = |r: f64| r > 0.0 && r <= 1.0;
        match self.rule {
            Rule::Consecutive { failures } => {
                if failures == 0 || failures > FIELD_MAX {
                    return Err(ConfigError::new(
                        "consecutive_failures",
                        format!("{failures} is not allowed; use a number of failures in 1..=65535"),
                    ));
                }
                if self.failure_rate.is_some() {
                    return Err(ConfigError::new(
                        "failure_rate",
                        "the consecutive-failures rule has no rate; use failure_rate_count or failure_rate_time for a rate",
                    ));
                }
                if self.slow_call.is_some() {
                    return Err(ConfigError::new(
                        "slow_calls",
                        "the consecutive-failures rule does not measure slow calls; use slow_call_rate or a failure-rate rule with with_slow_calls",
                    ));
                }
                if self.failure_count.is_some() {
                    return Err(ConfigError::new(
                        "failure_count",
                        "the consecutive-failures rule already counts failures; use failure_count_time for a number of failures in a time window",
                    ));
                }
            }
            Rule::CountWindow { size, min_calls } => {
                if size == 0 || size > MAX_WINDOW_SIZE {
                    return Err(ConfigError::new(
                        "window_size",
                        format!(
                            "{size} is not allowed; use a window of 1..={MAX_WINDOW_SIZE} calls"
                        ),
                    ));
                }
                if min_calls == 0 || min_calls > size {
                    return Err(ConfigError::new(
                        "minimum_calls",
                        format!(
                            "{min_calls} is not allowed; the minimum number of calls must be in 1..=window size ({size}), or the rule could never trip"
                        ),
                    ));
                }
                if let Some(failures) = self.failure_count
                    && failures > size
                {
                    return Err(ConfigError::new(
                        "failure_count",
                        format!(
                            "{failures} failures never fit in a window of {size} calls; use a count in 1..={size}"
                        ),
                    ));
                }
            }
            Rule::TimeWindow {
                window,
                buckets,
                min_calls,
            } => {
                if window.is_zero() {
                    return Err(ConfigError::new(
                        "window",
                        "a zero time window holds no calls; use a window such as 10 s",
                    ));
                }
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        "buckets",
                        format!(
                            "{buckets} is not allowed; use 1..={MAX_BUCKETS} buckets (10 is usual)"
                        ),
                    ));
                }
                if window.as_nanos() < u128::from(buckets) {
                    return Err(ConfigError::new(
                        "buckets",
                        format!(
                            "{buckets} buckets do not fit in a window of {window:?}; use fewer buckets or a longer window"
                        ),
                    ));
                }
                if min_calls == 0 {
                    return Err(ConfigError::new(
                        "minimum_calls",
                        "0 is not allowed; the minimum number of calls must be at least 1",
                    ));
                }
            }
        }
        if self.failure_count == Some(0) {
            return Err(ConfigError::new(
                "failure_count",
                "0 failures would trip on the first call; use a number of failures of at least 1",
            ));
        }
        if let Some(interval) = self.count_reset_interval
            && interval.is_zero()
        {
            return Err(ConfigError::new(
                "count_reset_interval",
                "a zero interval clears the counts before they can trip; use a period such as 60 s, or leave the setting out",
            ));
        }
        if let Some(rate) = self.failure_rate
            && !rate_ok(rate)
        {
            return Err(ConfigError::new(
                "failure_rate",
                format!("{rate} is not allowed; use a fraction in (0, 1], such as 0.5 for 50%"),
            ));
        }
        if let Some(slow) = self.slow_call {
            if !rate_ok(slow.rate) {
                return Err(ConfigError::new(
                    "slow_calls",
                    format!(
                        "a slow-call rate of {} is not allowed; use a fraction in (0, 1], such as 0.5 for 50%",
                        slow.rate
                    ),
                ));
            }
            if slow.threshold.is_zero() {
                return Err(ConfigError::new(
                    "slow_calls",
                    "a zero slow-call threshold makes every call slow; use the duration above which a call counts as slow",
                ));
            }
        }
        match self.open {
            OpenDuration::Fixed(d) if d.is_zero() => {
                return Err(ConfigError::new(
                    "open_duration",
                    "a zero open duration never rejects anything; use a duration such as 30 s",
                ));
            }
            OpenDuration::Fixed(_) => {}
            OpenDuration::Growing(backoff) => {
                backoff.validate()?;
                // Every delay of a backoff whose first base delay is zero is zero (exponential,
                // constant) or starts at zero (linear): the first trip would admit the next call.
                if backoff.base_delay(1).is_zero() {
                    return Err(ConfigError::new(
                        "open_backoff",
                        "a growing open duration whose first delay is zero never rejects after the first trip; use a non-zero initial delay, such as 5 s",
                    ));
                }
            }
        }
        if self.half_open_probes == 0 || self.half_open_probes > FIELD_MAX {
            return Err(ConfigError::new(
                "half_open_probes",
                format!(
                    "{} is not allowed; half-open must admit 1..=65535 probes at a time (1 is usual)",
                    self.half_open_probes
                ),
            ));
        }
        if self.successes_to_close == 0 || self.successes_to_close > FIELD_MAX {
            return Err(ConfigError::new(
                "successes_to_close",
                format!(
                    "{} is not allowed; use 1..=65535 probe successes",
                    self.successes_to_close
                ),
            ));
        }
        if self.successes_out_of < self.successes_to_close || self.successes_out_of > FIELD_MAX {
            return Err(ConfigError::new(
                "successes_out_of",
                format!(
                    "{} probes is not allowed with {} successes to close; use a number of probes in {}..=65535",
                    self.successes_out_of, self.successes_to_close, self.successes_to_close
                ),
            ));
        }
        if let Some(wait) = self.half_open_max_wait
            && wait.is_zero()
        {
            return Err(ConfigError::new(
                "half_open_max_wait",
                "a zero maximum wait re-opens the breaker as soon as it turns half-open; use a duration above the probes' time, or leave the setting out to wait for the probes as long as they take",
            ));
        }
        if self.probe_lease.is_zero() {
            return Err(ConfigError::new(
                "probe_lease",
                "a zero probe lease would reclaim every probe at once; use a duration above your slowest call",
            ));
        }
        Ok(())
    }
}
