//! The shared atomic state, the [`CircuitBreaker`] handle and its [`Builder`].

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use super::config::{MAX_GROWTH_STEPS, OpenDuration, Rule};
use super::events::{Counters, Listener, Listeners, Reason, StateChange};
use super::pending::Pending;
use super::permit::{Handle, OwnedPermit, Permit, RawPermit, STARTED_MASK};
use super::state::{
    self, CountWindow, Counts, Outcome, Path, State, Thresholds, TimeWindow, Window, WindowKind,
    Word,
};
use super::{BreakerConfig, Call, CircuitOpen, Error};
use crate::classify::{AllTransient, Class, Classify};
use crate::loom::{Arc, AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering, lock};
use crate::{Clock, ConfigError};

/// A circuit breaker: a cheap `Clone` handle (one `Arc`) to state shared by every task and thread
/// that calls the same dependency.
///
/// See the [module docs](super) for the state machine, the trip rules and the cost model.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
///
/// let breaker = CircuitBreaker::new(
///     BreakerConfig::consecutive_failures(2).with_open_duration(Duration::from_secs(5)),
/// )?;
/// for _ in 0..2 {
///     let _ = breaker.call_blocking(|| Err::<(), _>("connection refused"));
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let err = breaker.call_blocking(|| Ok::<_, &str>(1)).unwrap_err();
/// assert!(err.is_open());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    pub(crate) shared: Arc<Shared>,
}

/// Keeps a value on its own pair of cache lines (x86 prefetches lines in pairs), so that writes
/// to its neighbours (the `Arc`'s reference counts, bumped by every `OwnedPermit` and tower
/// call; the window lock) do not invalidate it in the caches of threads that only read it.
#[repr(align(128))]
struct CachePadded<T>(T);

pub(crate) struct Shared {
    /// The packed state word (see `state::Word`), on a line that only transitions write. Every
    /// decision starts with one load of it; it also carries the rule's hot path, so the inlined
    /// paths need nothing else.
    word: CachePadded<AtomicU64>,
    /// Nanoseconds since `origin` at which the current open period ends. Written before the
    /// word's unpublished flag is cleared, so a reader that sees a published open word sees it.
    open_until: AtomicU64,
    /// The current open period's length in nanoseconds, which a coarse rejection's
    /// `retry_after` never exceeds. Written with `open_until`.
    open_for: AtomicU64,
    /// Automatic half-open: the open period's time left as its timer last measured it, for the
    /// `retry_after` of rejections that read no clock (see `open_timer_tick`).
    open_left: AtomicU64,
    /// How far a coarse reading may trail the exact clock, in nanoseconds.
    coarse_lag: u64,
    /// Nanoseconds since `origin` of the latest probe admission, for the probe lease. Raised
    /// (never lowered) before the compare-exchange that admits the probe.
    last_probe_at: AtomicU64,
    /// Trips since the breaker last closed, for the growing open duration.
    trips: AtomicU32,
    /// Count-reset interval: nanoseconds since `origin` at which the current closed period ends.
    /// Stored by whoever starts a closed generation (a close, a reset, or the one admission
    /// whose compare-exchange starts the next period) before it clears the word's unpublished
    /// flag, as `open_until` is for an open period; only ever raised, so a late writer cannot
    /// shorten a newer period.
    period_end: AtomicU64,
    /// The count-reset interval in nanoseconds (0: none).
    interval_nanos: u64,
    /// Nanoseconds since `origin` at which the breaker last turned half-open from open, for the
    /// half-open maximum wait. Raised (never lowered) before the compare-exchange that turns it
    /// half-open.
    half_open_since: AtomicU64,
    /// The half-open maximum wait in nanoseconds (`u64::MAX`: none).
    max_wait_nanos: u64,
    /// Half-open with tolerated probe failures: the generation (bits 32..64) whose failures
    /// the count (bits 0..32) holds; a count of another generation is zero.
    probe_failures: AtomicU64,
    /// Probe failures that re-open the breaker (1 unless `with_successes_to_close_out_of`).
    failures_to_open: u32,
    /// The window rule's thresholds.
    thresholds: Thresholds,
    /// The rate window, for rate rules only.
    window: Option<Mutex<Window>>,
    /// Successes of the rate window counted without its lock (see `pending.rs`).
    pending: Pending,
    /// The raw monotonic reading taken just before `origin`, when coarse readings tell real
    /// time: a coarse reading minus this is nanoseconds since `origin`, never more than
    /// `coarse_lag` behind the exact reading (see `coarse_now`).
    coarse_origin: Option<u64>,
    config: BreakerConfig,
    lease_nanos: u64,
    clock: Clock,
    origin: Instant,
    name: &'static str,
    listeners: Listeners,
    counters: Counters,
    /// This breaker, for the timer an open period spawns (automatic half-open).
    #[cfg(all(feature = "tokio", not(loom)))]
    this: std::sync::Weak<Shared>,
}

/// The shortest open period: what a jittered open duration that draws zero is raised to.
const MIN_OPEN: Duration = Duration::from_nanos(1);

/// `Shared::open_left`: the generation above the time left, in whole milliseconds rounded up.
const LEFT_GEN_SHIFT: u32 = 38;
const LEFT_MS_MASK: u64 = (1 << LEFT_GEN_SHIFT) - 1;
/// The bounds of the interval at which an open period's timer re-measures the time left.
#[cfg(any(all(feature = "tokio", not(loom)), all(test, loom)))]
const TIMER_INTERVAL_MIN: u64 = 10_000_000;
#[cfg(any(all(feature = "tokio", not(loom)), all(test, loom)))]
const TIMER_INTERVAL_MAX: u64 = 1_000_000_000;

/// Builds a [`CircuitBreaker`] with a clock, a name or state-change callbacks.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use staunch::ManualClock;
/// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
///
/// let clock = ManualClock::new();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let breaker = CircuitBreaker::builder(
///     BreakerConfig::consecutive_failures(1).with_open_duration(Duration::from_secs(1)),
/// )
/// .clock(clock.clone().into())
/// .name("pricing")
/// .on_state_change(move |change| log.lock().unwrap().push(change.to))
/// .build()?;
///
/// breaker.try_acquire().unwrap().failure();
/// clock.advance(Duration::from_secs(1));
/// breaker.try_acquire().unwrap().success();
/// assert_eq!(*seen.lock().unwrap(), [State::Open, State::HalfOpen, State::Closed]);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[must_use]
pub struct Builder {
    config: BreakerConfig,
    clock: Clock,
    name: &'static str,
    listeners: Vec<Listener>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("name", &self.name)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl Builder {
    /// Sets the clock (default [`Clock::system`]: tokio's paused-aware clock with the `tokio`
    /// feature). Use a [`ManualClock`](crate::ManualClock) to drive tests of blocking code.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Names the breaker in events, `tracing` fields and `metrics` labels (default `"default"`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Calls `callback` after every state change, on the thread that made it, never under a
    /// lock. See [`StateChange`] for ordering.
    pub fn on_state_change<F>(mut self, callback: F) -> Self
    where
        F: Fn(&StateChange) + Send + Sync + 'static,
    {
        self.listeners.push(std::sync::Arc::new(callback));
        self
    }

    /// Validates the configuration and builds the breaker, closed.
    ///
    /// # Errors
    ///
    /// The configuration is invalid: a zero threshold, a rate outside `(0, 1]`, a zero window,
    /// zero probes, ... The error names the setting and says what to change.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        let config = self.config;
        config.validate()?;
        let window = match config.rule {
            Rule::Consecutive { .. } => None,
            Rule::CountWindow { size, .. } => Some(WindowKind::Count(CountWindow::new(size))),
            Rule::TimeWindow {
                window, buckets, ..
            } => Some(WindowKind::Time(TimeWindow::new(window, buckets))),
        };
        // Anchored: notes a paused tokio clock before any coarse reading is trusted.
        let (origin, coarse_origin) = self.clock.now_anchored();
        let pending_cap = match config.rule {
            Rule::CountWindow { size, .. } => size,
            _ => u32::MAX,
        };
        // Disabled drops the config's bits (see `Word::next`); closed is generation 0.
        let initial = if config.disabled {
            Word::new(State::Disabled, 0, 0, 0)
        } else {
            Word::INITIAL.with_config(config.path(), config.periodic())
        };
        let interval_nanos = config.count_reset_interval.map_or(0, saturating_nanos);
        #[cfg_attr(not(all(feature = "tokio", not(loom))), allow(unused_variables))]
        let shared = |this| Shared {
            word: CachePadded(AtomicU64::new(initial.0)),
            open_until: AtomicU64::new(0),
            open_for: AtomicU64::new(0),
            open_left: AtomicU64::new(0),
            coarse_lag: saturating_nanos(crate::clock::coarse_lag()),
            last_probe_at: AtomicU64::new(0),
            trips: AtomicU32::new(0),
            period_end: AtomicU64::new(interval_nanos),
            interval_nanos,
            half_open_since: AtomicU64::new(0),
            max_wait_nanos: config.half_open_max_wait.map_or(u64::MAX, saturating_nanos),
            probe_failures: AtomicU64::new(0),
            failures_to_open: config.successes_out_of - config.successes_to_close + 1,
            thresholds: config.thresholds(),
            window: window.map(|kind| {
                Mutex::new(Window {
                    generation: 0,
                    kind,
                })
            }),
            pending: Pending::new(pending_cap),
            coarse_origin,
            config,
            lease_nanos: saturating_nanos(config.probe_lease),
            clock: self.clock,
            origin,
            name: self.name,
            listeners: Listeners(self.listeners),
            counters: Counters::new(self.name),
            #[cfg(all(feature = "tokio", not(loom)))]
            this,
        };
        #[cfg(all(feature = "tokio", not(loom)))]
        let shared = Arc::new_cyclic(|this| shared(this.clone()));
        #[cfg(not(all(feature = "tokio", not(loom))))]
        let shared = Arc::new(shared(()));
        Ok(CircuitBreaker { shared })
    }
}

/// A point-in-time view of a breaker, for health endpoints and dashboards. Cheap: a few atomic
/// loads, plus the window lock for rate rules.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The state.
    pub state: State,
    /// The current generation (bumped by every transition, by a reset, and at the first
    /// admission of each period of a count-reset interval).
    pub generation: u32,
    /// Consecutive-failures rule: failures in a row so far (closed or forced closed).
    pub consecutive_failures: u32,
    /// Rate rules: calls in the window of the current closed period.
    pub calls: u32,
    /// Rate rules: failures in the window.
    pub failures: u32,
    /// Rate rules: slow calls in the window.
    pub slow_calls: u32,
    /// Rate rules: `failures / calls`, if the window holds any call.
    pub failure_rate: Option<f64>,
    /// Half-open: probes admitted and not yet finished.
    pub probes_in_flight: u32,
    /// Half-open: probe successes so far.
    pub probe_successes: u32,
    /// Half-open: probe failures so far, with
    /// [`with_successes_to_close_out_of`](BreakerConfig::with_successes_to_close_out_of)
    /// (otherwise the first one re-opens).
    pub probe_failures: u32,
    /// Open: when the next probe will be admitted.
    pub next_probe_at: Option<Instant>,
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whether `now` has reached `end` (nanoseconds since the origin). An end that saturated
/// (`u64::MAX`, some 584 years away) is never reached, so that a clock that saturated too
/// cannot end a period, or a wait, again and again.
#[inline]
fn reached(now: u64, end: u64) -> bool {
    now >= end && end != u64::MAX
}

impl CircuitBreaker {
    /// A closed breaker with `config`, the system clock and no callbacks.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; the error names the setting and says what to change.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let err = CircuitBreaker::new(BreakerConfig::consecutive_failures(0)).unwrap_err();
    /// assert_eq!(err.field(), "consecutive_failures");
    /// ```
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        Self::builder(config).build()
    }

    /// A [`Builder`] to set the clock, a name or state-change callbacks.
    pub fn builder(config: BreakerConfig) -> Builder {
        Builder {
            config,
            clock: Clock::system(),
            name: "default",
            listeners: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// The current state: one atomic load.
    pub fn state(&self) -> State {
        self.shared.load().state()
    }

    /// A consistent-enough view for health endpoints: each field is read once; fields may come
    /// from slightly different instants under concurrent calls.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }

    /// Asks to run one call. `Ok` gives a [`Permit`] to report the outcome with; `Err` says the
    /// breaker is open and when it will admit a probe.
    ///
    /// In closed this is one atomic load. A permit dropped without an outcome counts as nothing
    /// and, if it was a probe, returns its slot.
    ///
    /// # Errors
    ///
    /// [`CircuitOpen`] when open, forced open, or half-open with every probe slot taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(3))?;
    /// match breaker.try_acquire() {
    ///     Ok(permit) => {
    ///         let response: Result<u32, &str> = Ok(200); // the call you could not wrap
    ///         match response {
    ///             Ok(_) => permit.success(),
    ///             Err(_) => permit.failure(),
    ///         }
    ///     }
    ///     Err(open) => println!("rejected; next probe in {:?}", open.retry_after()),
    /// }
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, CircuitOpen> {
        self.shared
            .acquire()
            .map(|raw| Permit::new(&self.shared, raw))
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit holds its own handle, for
    /// futures and structures that must be `'static`. Costs a reference-count increment (and
    /// a decrement when the permit is done): a shared write when threads share the breaker.
    /// A breaker that lives as long as the process avoids it: on a `&'static CircuitBreaker`,
    /// [`try_acquire`](Self::try_acquire) gives a `Permit<'static>`.
    ///
    /// # Errors
    ///
    /// [`CircuitOpen`] when the breaker rejects the call.
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, CircuitOpen> {
        self.shared
            .acquire()
            .map(|raw| OwnedPermit::new(Handle::Shared(self.clone()), raw))
    }

    /// Runs `f` if the breaker admits it and records its outcome: `Ok` is a success, every
    /// `Err` a failure (use [`call_with`](Self::call_with) to classify).
    ///
    /// The breaker is asked when the future is first polled. Cancel safe: dropping the future
    /// before the call ends records nothing and returns a probe slot. Needs no runtime beyond
    /// what `f`'s future needs (the breaker only reads its clock).
    ///
    /// # Errors
    ///
    /// [`Error::Open`] without calling `f` when the breaker rejects; [`Error::Inner`] with `f`'s
    /// error.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(5))?;
    /// let price = breaker.call(|| async { Ok::<_, std::io::Error>(42) }).await?;
    /// assert_eq!(price, 42);
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn call<F, Fut, T, E>(&self, f: F) -> Call<'_, AllTransient, F, Fut>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(AllTransient, f)
    }

    /// [`call`](Self::call) with a classifier: which errors are failures, which are ignored
    /// (neither success nor failure), which successes are really failures. See
    /// [`classify`](crate::classify).
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call). An `Err` classified as a success or ignored is still returned as
    /// [`Error::Inner`].
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker};
    /// use staunch::classify::Class;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), staunch::ConfigError> {
    /// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1))?;
    /// // A 404 says nothing about the dependency's health.
    /// let classify = |r: &Result<u16, u16>| match r {
    ///     Ok(_) => Class::Success,
    ///     Err(404) => Class::Ignored,
    ///     Err(_) => Class::Transient,
    /// };
    /// let _ = breaker.call_with(classify, || async { Err::<u16, u16>(404) }).await;
    /// assert!(breaker.state().admits_all());
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn call_with<C, F, Fut, T, E>(&self, classify: C, f: F) -> Call<'_, C, F, Fut>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Call::new(&self.shared, classify, f)
    }

    /// Runs the blocking `f` if the breaker admits it and records its outcome: `Ok` is a
    /// success, every `Err` a failure. A panic in `f` records nothing and returns a probe slot.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] without calling `f` when the breaker rejects; [`Error::Inner`] with `f`'s
    /// error.
    #[inline]
    pub fn call_blocking<F, T, E>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_blocking_with(AllTransient, f)
    }

    /// [`call_blocking`](Self::call_blocking) with a classifier.
    ///
    /// # Errors
    ///
    /// As [`call_blocking`](Self::call_blocking).
    #[inline]
    pub fn call_blocking_with<C, F, T, E>(&self, classify: C, f: F) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: FnOnce() -> Result<T, E>,
    {
        // Closed with untimed calls, apart from the other admissions: the compiler then knows
        // on this path that the permit holds no probe slot and that admission succeeded, and
        // tests neither (so the call is inlined on both paths).
        match self.shared.admit_untimed() {
            Ok(raw) => run_blocking(Permit::new(&self.shared, raw), classify, f),
            Err(word) => {
                unlikely();
                let raw = self.shared.acquire_slow(word)?;
                run_blocking(Permit::new(&self.shared, raw), classify, f)
            }
        }
    }

    /// Forces the breaker open: every call is rejected (with no `retry_after`) until
    /// [`reset`](Self::reset) or [`force_closed`](Self::force_closed). Outstanding permits
    /// become stale. On a breaker already forced open it changes nothing (and tells no
    /// subscriber).
    pub fn force_open(&self) {
        self.shared.force(State::ForcedOpen);
    }

    /// Forces the breaker closed: every call is admitted and outcomes are still recorded
    /// (visible in the [`snapshot`](Self::snapshot)), but nothing trips until
    /// [`reset`](Self::reset). On a breaker already forced closed it changes nothing: the
    /// counts recorded so far stay.
    pub fn force_closed(&self) {
        self.shared.force(State::ForcedClosed);
    }

    /// Disables the breaker: every call is admitted and nothing is recorded, until
    /// [`reset`](Self::reset), [`force_open`](Self::force_open) or
    /// [`force_closed`](Self::force_closed) (resilience4j's `DISABLED`). Outstanding permits
    /// become stale. On a breaker already disabled it changes nothing.
    ///
    /// Unlike [`force_closed`](Self::force_closed), which keeps recording (its snapshots still
    /// show counts and failure rates: resilience4j's `METRICS_ONLY`), a disabled breaker
    /// counts nothing at all, so its calls cost about what a closed breaker's successes cost.
    ///
    /// | | closed | [`force_closed`](Self::force_closed) | `disable` | [`force_open`](Self::force_open) |
    /// |---|---|---|---|---|
    /// | admits | every call | every call | every call | no call |
    /// | records outcomes (snapshot counts) | yes | yes | no | no |
    /// | trips | yes | never | never | (open) |
    /// | resilience4j | `CLOSED` | `METRICS_ONLY` | `DISABLED` | `FORCED_OPEN` |
    ///
    /// ```
    /// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
    ///
    /// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1))?;
    /// breaker.disable();
    /// let _ = breaker.call_blocking(|| Err::<(), _>("down"));
    /// assert_eq!(breaker.state(), State::Disabled);
    /// assert_eq!(breaker.snapshot().consecutive_failures, 0); // nothing recorded
    /// breaker.reset(); // on again
    /// let _ = breaker.call_blocking(|| Err::<(), _>("down"));
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn disable(&self) {
        self.shared.force(State::Disabled);
    }

    /// Closes the breaker with every count cleared and the open-duration growth reset, whatever
    /// its state. Outstanding permits become stale. On a closed breaker this clears the counts
    /// but is no state change: subscribers, `tracing` and `metrics` hear of nothing.
    pub fn reset(&self) {
        self.shared.force(State::Closed);
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.shared.load();
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &word.state())
            .field("generation", &word.generation())
            .field("config", &self.shared.config)
            .field("clock", &self.shared.clock)
            .field("listeners", &self.shared.listeners)
            .finish()
    }
}

impl Shared {
    #[inline]
    pub(crate) fn load(&self) -> Word {
        #[cfg(not(loom))]
        {
            Word(self.word.0.load(Ordering::Acquire))
        }
        // loom 0.7 remembers only the last access to a location when it looks for a conflict, so
        // a plain load by one thread that precedes another thread's load + compare-exchange is
        // never rescheduled after it, and the race goes unexplored. Modelled as a read-modify-
        // write, every load of the word is a scheduling point that conflicts with every change.
        #[cfg(loom)]
        {
            Word(self.word.0.fetch_add(0, Ordering::AcqRel))
        }
    }

    #[inline]
    fn nanos(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.origin);
        // Exact below 584 years; avoids the 128-bit `as_nanos`.
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    fn instant(&self, nanos: u64) -> Instant {
        let offset = Duration::from_nanos(nanos);
        self.origin
            .checked_add(offset)
            .unwrap_or(self.origin + Duration::from_secs(u64::from(u32::MAX)))
    }

    /// Microseconds since the origin, wrapping (see `RawPermit`).
    fn micros(&self, at: Instant) -> u64 {
        let micros = at.saturating_duration_since(self.origin).as_micros();
        (micros & u128::from(STARTED_MASK)) as u64
    }

    /// When a call admitted on `word` starts, for the permit: only timed calls read the clock.
    fn start_time(&self, word: Word) -> u64 {
        if word.path() == Path::Timed {
            self.micros(self.clock.now())
        } else {
            0
        }
    }

    /// Admission. Closed with untimed calls: one load and one test of it.
    #[inline(always)]
    pub(crate) fn acquire(&self) -> Result<RawPermit, CircuitOpen> {
        match self.admit_untimed() {
            Ok(raw) => Ok(raw),
            Err(word) => {
                unlikely();
                self.acquire_slow(word)
            }
        }
    }

    /// The inlined half of admission: closed with untimed calls. `Err`: the word, for
    /// `acquire_slow`.
    #[inline(always)]
    pub(crate) fn admit_untimed(&self) -> Result<RawPermit, Word> {
        let word = self.load();
        if word.admits_untimed() {
            Ok(RawPermit::normal(word.generation(), 0))
        } else {
            Err(word)
        }
    }

    /// Every admission but the closed, untimed one. Not `#[cold]`: rejecting while open is its
    /// common case, so it first tries the rejections that need no transition (forced open;
    /// open with a timer, on no clock; open, on a coarse reading) before the state machine's
    /// loop.
    #[inline(never)]
    pub(crate) fn acquire_slow(&self, word: Word) -> Result<RawPermit, CircuitOpen> {
        match word.state() {
            State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
            State::Open => {
                if word.has_timer() {
                    return Err(self.reject_on_timer(word));
                }
                if let Some(rejected) = self.reject_coarse(word) {
                    return Err(rejected);
                }
            }
            _ => {}
        }
        self.acquire_loop(word)
    }

    /// Admission by the state machine: closed with timed calls or a count-reset interval, open
    /// on the exact clock (after `acquire_slow`'s coarse reading could not decide), half-open,
    /// and every transition an admission makes.
    #[inline(never)]
    fn acquire_loop(&self, mut word: Word) -> Result<RawPermit, CircuitOpen> {
        loop {
            match word.state() {
                State::Closed | State::ForcedClosed | State::Disabled => {
                    if word.periodic() && word.state() == State::Closed && !word.unpublished() {
                        let now = self.quick_nanos();
                        if reached(now, self.period_end.load(Ordering::Acquire)) {
                            // The first admission after a period's end starts the next one.
                            self.roll_period(word, now);
                            word = self.load();
                            continue;
                        }
                        // The end just read may be that of a period started since `word` was
                        // loaded: then admit in that period, not the one that has ended.
                        let current = self.load();
                        if current.generation() != word.generation() {
                            word = current;
                            continue;
                        }
                    }
                    if word.state() == State::Disabled {
                        return Ok(RawPermit::normal(word.generation(), 0));
                    }
                    return Ok(RawPermit::normal(word.generation(), self.start_time(word)));
                }
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None)),
                State::Open => {
                    // `acquire_slow` has tried the coarse reading; only a lost race comes back
                    // here, and it asks the exact clock.
                    let now = self.clock.now();
                    if word.unpublished() {
                        // A trip is being published this very moment (a few instructions
                        // away): report the open duration it is most likely to get.
                        let trips = self.trips.load(Ordering::Relaxed).saturating_add(1);
                        let estimate = saturating_nanos(self.base_open_duration(trips));
                        return Err(self.reject(State::Open, Some(estimate)));
                    }
                    let until = self.open_until.load(Ordering::Acquire);
                    let now_nanos = self.nanos(now);
                    if now_nanos < until {
                        return Err(self.reject(State::Open, Some(until - now_nanos)));
                    }
                    // The open period is over: this caller becomes the first probe.
                    self.last_probe_at.fetch_max(now_nanos, Ordering::Relaxed);
                    self.half_open_since.fetch_max(now_nanos, Ordering::Relaxed);
                    let next = word.next(State::HalfOpen).with_a(1);
                    match self.cas(word, next) {
                        Ok(()) => {
                            self.emit(word, next, Reason::OpenElapsed, now);
                            return Ok(RawPermit::probe(next.generation(), self.micros(now)));
                        }
                        Err(actual) => word = actual,
                    }
                }
                State::HalfOpen => {
                    if state::admit_probe(word, self.config.half_open_probes).is_none()
                        && let Some(rejected) = self.reject_half_open_coarse()
                    {
                        return Err(rejected);
                    }
                    let now = self.clock.now();
                    let now_nanos = self.nanos(now);
                    if reached(now_nanos, self.half_open_until()) {
                        // Half-open for its maximum wait: back to open, and this caller is
                        // rejected by the new open period.
                        self.half_open_timed_out(word.generation(), now);
                        word = self.load();
                        continue;
                    }
                    if let Some(next) = state::admit_probe(word, self.config.half_open_probes) {
                        self.last_probe_at.fetch_max(now_nanos, Ordering::Relaxed);
                        match self.cas(word, next) {
                            Ok(()) => {
                                return Ok(RawPermit::probe(next.generation(), self.micros(now)));
                            }
                            Err(actual) => word = actual,
                        }
                        continue;
                    }
                    let lease_end = self.lease_end();
                    if now_nanos < lease_end {
                        let retry_after = self.half_open_retry_after(now_nanos, lease_end);
                        return Err(self.reject(State::HalfOpen, Some(retry_after)));
                    }
                    // Every slot has been held past the lease: reclaim them all in a new
                    // generation (the old probes become stale) and probe.
                    self.last_probe_at.fetch_max(now_nanos, Ordering::Relaxed);
                    let next = word.next(State::HalfOpen).with_a(1);
                    match self.cas(word, next) {
                        Ok(()) => {
                            self.emit(word, next, Reason::LeaseExpired, now);
                            return Ok(RawPermit::probe(next.generation(), self.micros(now)));
                        }
                        Err(actual) => word = actual,
                    }
                }
            }
        }
    }

    /// Rejects while open on a coarse reading (~5 ns instead of ~30 ns for an exact one), if
    /// that reading shows the open period surely not over. `None`: ask the exact clock.
    #[inline]
    fn reject_coarse(&self, word: Word) -> Option<CircuitOpen> {
        if word.unpublished() {
            return None;
        }
        // Acquire on the word (published after these were stored) makes them this period's,
        // or a later one's: then the breaker has tripped again, and is open all the same.
        let left = self.coarse_left(|| {
            (
                self.open_until.load(Ordering::Relaxed),
                self.open_for.load(Ordering::Relaxed),
            )
        })?;
        Some(self.reject(State::Open, Some(left)))
    }

    /// Rejects while open with a timer that ends the period: no clock, so `retry_after` is the
    /// time left as the timer last measured it (an upper bound), or the whole period before
    /// its first tick.
    #[inline]
    fn reject_on_timer(&self, word: Word) -> CircuitOpen {
        let left = self.open_left.load(Ordering::Relaxed);
        let nanos = if (left >> LEFT_GEN_SHIFT) as u32 == word.generation() {
            (left & LEFT_MS_MASK).saturating_mul(1_000_000)
        } else {
            self.open_for.load(Ordering::Relaxed)
        };
        self.reject(State::Open, Some(nanos))
    }

    /// Rejects in half-open with every probe slot taken on a coarse reading, if it shows the
    /// probes' lease (and the half-open maximum wait) surely not over: a half-open breaker under
    /// load rejects as many calls as an open one. `None`: ask the exact clock.
    fn reject_half_open_coarse(&self) -> Option<CircuitOpen> {
        let now = self.coarse_now()?;
        let lease_end = self.lease_end();
        if now.saturating_add(self.coarse_lag) >= lease_end.min(self.half_open_until()) {
            return None;
        }
        let retry_after = self.half_open_retry_after(now, lease_end);
        Some(self.reject(State::HalfOpen, Some(retry_after)))
    }

    /// Half-open: nanoseconds since the origin at which every held probe slot may be reclaimed.
    fn lease_end(&self) -> u64 {
        self.last_probe_at
            .load(Ordering::Relaxed)
            .saturating_add(self.lease_nanos)
    }

    /// Half-open: nanoseconds since the origin at which the maximum wait ends (`u64::MAX`:
    /// never).
    fn half_open_until(&self) -> u64 {
        self.half_open_since
            .load(Ordering::Relaxed)
            .saturating_add(self.max_wait_nanos)
    }

    /// Half-open with every slot taken, at `now` before `lease_end` and the maximum wait's end:
    /// how long until the next probe. At the lease's end, unless the wait ends first (or then):
    /// the breaker then re-opens, and probes again after the next open duration (its base
    /// value: the jitter is not drawn yet).
    fn half_open_retry_after(&self, now: u64, lease_end: u64) -> u64 {
        let wait_end = self.half_open_until();
        if lease_end < wait_end {
            return (lease_end - now).min(self.lease_nanos);
        }
        let trips = self.trips.load(Ordering::Relaxed).saturating_add(1);
        (wait_end - now).saturating_add(saturating_nanos(self.base_open_duration(trips)))
    }

    /// Half-open for its maximum wait: re-opens the half-open generation `generation`, if the
    /// word is still in it.
    #[cold]
    fn half_open_timed_out(&self, generation: u32, now: Instant) -> bool {
        let reopened = self.update(|w| {
            (w.state() == State::HalfOpen && w.generation() == generation)
                .then(|| w.next(State::Open))
        });
        if let Some((from, to)) = reopened {
            self.transitioned(from, to, Reason::HalfOpenTimedOut, Some(now));
        }
        reopened.is_some()
    }

    /// Closed with a count-reset interval and its period published: the time (nanoseconds since
    /// the origin) if the period has ended. Reads the coarse clock when time is real.
    #[inline]
    fn closed_period_over(&self, word: Word) -> Option<u64> {
        if !word.periodic() || word.state() != State::Closed || word.unpublished() {
            return None;
        }
        let now = self.quick_nanos();
        reached(now, self.period_end.load(Ordering::Acquire)).then_some(now)
    }

    /// Ends the closed period of `word`, over at `now`: starts a new generation (one caller
    /// wins the compare-exchange), whose period is the one `now` falls in on the grid of
    /// periods (empty ones are skipped), and publishes its end.
    #[cold]
    #[inline(never)]
    fn roll_period(&self, word: Word, now: u64) {
        // Under the window lock, which seals the pending successes, as every way out of a
        // closed generation is.
        let window = self.window.as_ref().map(|w| self.lock_window(w));
        // The end of `word`'s period: published before `word` was.
        let end = self.period_end.load(Ordering::Acquire);
        let rolled = self.update(|w| {
            (w.state() == State::Closed && w.generation() == word.generation() && !w.unpublished())
                .then(|| w.next(State::Closed))
        });
        drop(window);
        if let Some((_, rolled)) = rolled {
            let periods = (now.saturating_sub(end) / self.interval_nanos).saturating_add(1);
            let next_end = end.saturating_add(periods.saturating_mul(self.interval_nanos));
            self.publish_period(rolled, next_end);
        }
    }

    /// Publishes the end of the first period of the closed generation `word` (unpublished),
    /// and clears its unpublished flag if the word is still in that generation. The end only
    /// grows (every writer computes it from a later reading), so a late writer cannot shorten
    /// a newer period.
    fn publish_period(&self, word: Word, end: u64) {
        self.period_end.fetch_max(end, Ordering::Release);
        let _ = self.update(|w| {
            (w.generation() == word.generation() && w.unpublished()).then(|| w.published())
        });
    }

    /// After a transition to closed: with a count-reset interval, the first period starts now.
    fn publish_closed(&self, closed: Word) {
        if closed.periodic() {
            let now = self.quick_nanos();
            self.publish_period(closed, now.saturating_add(self.interval_nanos));
        }
    }

    /// Nanoseconds since the origin on the coarse clock, if there is one: never more than
    /// `coarse_lag` behind the exact reading (the coarse clock trails the raw one by less, and
    /// `coarse_origin` was read before `origin`).
    #[inline]
    fn coarse_now(&self) -> Option<u64> {
        // The anchor first: it is `None` for a manual clock, so no need to ask the clock.
        let origin = self.coarse_origin?;
        Some(crate::clock::coarse_nanos()?.saturating_sub(origin))
    }

    /// How long until `end` (nanoseconds since the origin), if a coarse reading shows it surely
    /// ahead even allowing for the lag: never less than the exact answer, never more than
    /// `longest`. `None` when there is no coarse reading or `end` may have passed. `bounds`
    /// gives `(end, longest)`, read after the clock so that nothing needs keeping across it.
    #[inline]
    fn coarse_left(&self, bounds: impl FnOnce() -> (u64, u64)) -> Option<u64> {
        let now = self.coarse_now()?;
        let (end, longest) = bounds();
        (now.saturating_add(self.coarse_lag) < end).then(|| (end - now).min(longest))
    }

    #[inline]
    fn reject(&self, state: State, retry_after_nanos: Option<u64>) -> CircuitOpen {
        self.counters.rejected();
        CircuitOpen::new(state, retry_after_nanos)
    }

    fn cas(&self, current: Word, next: Word) -> Result<(), Word> {
        self.word
            .0
            .compare_exchange(current.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(Word)
    }

    /// Applies `f` in a compare-exchange loop until it succeeds or `f` declines.
    fn update(&self, mut f: impl FnMut(Word) -> Option<Word>) -> Option<(Word, Word)> {
        let mut current = self.load();
        loop {
            let next = f(current)?;
            match self.word.0.compare_exchange_weak(
                current.0,
                next.0,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some((current, next)),
                Err(actual) => current = Word(actual),
            }
        }
    }

    /// Records the outcome of a permit. A success that changes nothing (closed under the
    /// consecutive rule with no failure pending, or a count window full of successes) is
    /// inlined: one load and one test of it, no write. It needs no test of the permit either: a
    /// probe finds the word half-open, unless the breaker has left its generation, and then its
    /// success is stale and changes nothing too (unreported, like any success that changes
    /// nothing). Every other success goes out of line, so that the inlined part stays small
    /// enough to inline everywhere.
    #[inline(always)]
    pub(crate) fn complete(&self, permit: RawPermit, outcome: Outcome) {
        if outcome == Outcome::Success {
            if self.load().success_changes_nothing() {
                return;
            }
            return self.complete_success(permit);
        }
        if outcome == Outcome::Ignored && !permit.is_probe() {
            return;
        }
        self.complete_slow(permit, outcome);
    }

    /// A success that may change something. An untimed success of a rate window costs one
    /// compare-exchange while the pending counter is open (see `pending.rs`); a probe, any
    /// other success, and a sealed counter take the slow path. (It loads the word again rather
    /// than take it as an argument: keeping it for the call costs the inlined part a copy.)
    #[inline(never)]
    fn complete_success(&self, permit: RawPermit) {
        let counted = !permit.is_probe()
            && self.load().path() == Path::Window
            && if matches!(self.config.rule, Rule::TimeWindow { .. }) {
                self.pending.add(permit.generation(), || self.quick_nanos())
            } else {
                self.pending.add(permit.generation(), || 0)
            };
        if !counted {
            self.complete_slow(permit, Outcome::Success);
        }
    }

    /// Now, in nanoseconds since `origin`, for the decisions that may run up to a tick late: a
    /// coarse reading when there is one (~7 ns instead of ~30 ns).
    ///
    /// When an untimed success of a time window happened: it may be up to a tick (4 ms at
    /// 250 Hz) early, so near a bucket boundary a success may be counted in the bucket before
    /// its own, and expire up to that much sooner than an exact reading would make it: the one
    /// inexact thing about counting successes without the lock. Where a count-reset interval's
    /// periods start and end: a period ends up to a tick late.
    #[inline]
    fn quick_nanos(&self) -> u64 {
        self.coarse_now()
            .unwrap_or_else(|| self.nanos(self.clock.now()))
    }

    #[cold]
    #[inline(never)]
    fn complete_slow(&self, permit: RawPermit, outcome: Outcome) {
        let generation = permit.generation();
        if permit.is_probe() {
            self.complete_probe(generation, outcome);
            return;
        }
        let word = self.load();
        if word.generation() == generation {
            if word.state() == State::Disabled {
                return;
            }
            if self.closed_period_over(word).is_some() {
                // Admitted in a period that has ended: it does not count after it.
                self.counters.stale(self.name, generation);
                return;
            }
        }
        match self.config.rule {
            Rule::Consecutive { failures } => {
                let changed = match outcome {
                    Outcome::Success => self.update(|w| state::consecutive_success(w, generation)),
                    _ => self.update(|w| state::consecutive_failure(w, generation, failures)),
                };
                match changed {
                    Some((from, to)) if to.state() == State::Open => {
                        self.transitioned(from, to, Reason::Tripped, None);
                    }
                    Some(_) => {}
                    None if self.load().generation() != generation => {
                        self.counters.stale(self.name, generation);
                    }
                    None => {}
                }
            }
            Rule::CountWindow { .. } | Rule::TimeWindow { .. } => {
                self.record_window(permit, outcome == Outcome::Failure);
            }
        }
    }

    /// The outcome of a probe admitted in `generation` (`Ignored` for a dropped one).
    fn complete_probe(&self, generation: u32, outcome: Outcome) {
        if self.max_wait_nanos != u64::MAX {
            let now = self.clock.now();
            if reached(self.nanos(now), self.half_open_until()) {
                // The maximum wait ended before this outcome: it re-opens, and the outcome
                // counts for nothing.
                if !self.half_open_timed_out(generation, now) {
                    self.counters.stale(self.name, generation);
                }
                return;
            }
        }
        // A tolerated failure (closing is still possible) only returns its slot.
        let outcome = match outcome {
            Outcome::Failure
                if self.failures_to_open > 1
                    && self.probe_failure(generation) < self.failures_to_open =>
            {
                Outcome::Ignored
            }
            outcome => outcome,
        };
        let successes = self.config.successes_to_close;
        match self.update(|w| state::probe_done(w, generation, outcome, successes)) {
            Some((from, to)) if to.state() != State::HalfOpen => {
                let reason = if to.state() == State::Closed {
                    Reason::ProbesSucceeded
                } else {
                    Reason::ProbeFailed
                };
                self.transitioned(from, to, reason, None);
            }
            Some(_) => {}
            None => self.counters.stale(self.name, generation),
        }
    }

    /// Counts a probe failure of the half-open generation `generation` (with tolerated probe
    /// failures) and returns the generation's failures so far; 0 if the breaker has left it.
    fn probe_failure(&self, generation: u32) -> u32 {
        const COUNT: u64 = 0xFFFF_FFFF;
        let tag = u64::from(generation) << 32;
        let mut current = self.probe_failures.load(Ordering::Acquire);
        loop {
            if self.load().generation() != generation {
                return 0;
            }
            let count = if current & !COUNT == tag {
                (current & COUNT).saturating_add(1)
            } else {
                1
            };
            match self.probe_failures.compare_exchange_weak(
                current,
                tag | count,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return count as u32,
                Err(actual) => current = actual,
            }
        }
    }

    /// The probe failures of the half-open generation `generation`, for snapshots.
    fn probe_failures_of(&self, generation: u32) -> u32 {
        let current = self.probe_failures.load(Ordering::Acquire);
        if current >> 32 == u64::from(generation) {
            current as u32
        } else {
            0
        }
    }

    fn record_window(&self, permit: RawPermit, failure: bool) {
        let Some(window) = &self.window else { return };
        let needs_now =
            self.config.times_calls() || matches!(self.config.rule, Rule::TimeWindow { .. });
        let now = needs_now.then(|| self.clock.now());
        let now_nanos = now.map_or(0, |now| self.nanos(now));
        let slow = match (self.config.slow_call, now) {
            (Some(slow), Some(now)) => {
                let took = Duration::from_micros(permit.micros_until(self.micros(now)));
                took >= slow.threshold
            }
            _ => false,
        };
        let tripped = {
            let mut window = self.lock_window(window);
            // Read under the lock: a transition's compare-exchange either precedes this load (the
            // outcome is stale) or follows our own trip attempt below.
            let word = self.load();
            if word.generation() != permit.generation() || !word.state().records() {
                drop(window);
                self.counters.stale(self.name, permit.generation());
                return;
            }
            window.enter(permit.generation());
            let counts = window.record(now_nanos, failure, slow);
            let trips = word.state() == State::Closed && counts.trips(&self.thresholds);
            if trips {
                let next = word.next(State::Open);
                self.cas(word, next).ok().map(|()| (word, next))
            } else {
                if let Rule::CountWindow { size, .. } = self.config.rule {
                    // Keep the word's clean-window flag in step, under the lock. If the word
                    // moved on meanwhile, the new generation starts unflagged anyway.
                    let clean = counts.calls == size && counts.failures == 0 && counts.slow == 0;
                    if clean != word.clean_window() {
                        let _ = self.cas(word, word.with_clean_window(clean));
                    }
                }
                None
            }
        };
        if let Some((from, to)) = tripped {
            self.transitioned(from, to, Reason::Tripped, now);
        }
    }

    /// Locks the window and records in it the successes counted without the lock (sealing their
    /// counter), so that the holder sees every outcome so far, in order. Unlocking reopens the
    /// counter if the window is safe then.
    fn lock_window<'a>(&'a self, window: &'a Mutex<Window>) -> WindowGuard<'a> {
        let mut guard = lock(window);
        let (generation, successes) = self.pending.seal();
        if successes > 0 {
            // Opened only for the window's generation, which only a lock holder changes.
            debug_assert_eq!(generation, guard.generation);
            guard.record_successes(successes);
        }
        WindowGuard {
            shared: self,
            guard,
        }
    }

    /// Under the window lock: opens the pending counter if the word is in the window's
    /// generation, admitting all, and no run of untimed successes can trip the window before
    /// its newest bucket ends (forced closed never trips).
    fn reopen_pending(&self, window: &Window) {
        let word = self.load();
        if !word.state().records() || word.generation() != window.generation {
            return;
        }
        let size = match self.config.rule {
            Rule::CountWindow { size, .. } => Some(size),
            Rule::TimeWindow { .. } => None,
            Rule::Consecutive { .. } => return,
        };
        let safe = word.state() == State::ForcedClosed
            || window
                .counts()
                .successes_cannot_trip(&self.thresholds, size);
        if safe {
            self.pending
                .open(window.generation, window.successes_until());
        }
    }

    /// The window's generation and counts, with every success counted so far.
    #[cfg(all(test, loom))]
    pub(crate) fn window_counts(&self) -> (u32, Counts) {
        let window = self.lock_window(self.window.as_ref().expect("a rate rule"));
        (window.generation, window.counts())
    }

    /// After a compare-exchange from `from` to `to` succeeded: publish an open period, reset
    /// growth on a close, and tell the subscribers (outside any lock).
    fn transitioned(&self, from: Word, to: Word, reason: Reason, now: Option<Instant>) {
        let now = now.unwrap_or_else(|| self.clock.now());
        match to.state() {
            State::Open => self.publish_open(to),
            State::Closed => {
                self.trips.store(0, Ordering::Relaxed);
                self.publish_closed(to);
            }
            _ => {}
        }
        self.emit(from, to, reason, now);
    }

    fn publish_open(&self, opened: Word) {
        let trips = self.trips.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let open_for = saturating_nanos(self.open_duration(trips));
        // Anchored: notes a paused tokio clock before the next coarse rejection trusts one.
        let (now, _) = self.clock.now_anchored();
        self.open_until
            .store(self.nanos(now).saturating_add(open_for), Ordering::Release);
        self.open_for.store(open_for, Ordering::Release);
        // Both compare-exchanges fail harmlessly if the word moved on (a reset, or force) in
        // between.
        #[cfg(all(feature = "tokio", not(loom)))]
        if let Some(runtime) = self.timer_runtime() {
            // Flagged before the spawn, so that a timer dropped at once finds the flag to clear.
            if self
                .cas(opened, opened.published().with_timer(true))
                .is_ok()
            {
                super::timer::spawn(&runtime, self.this.clone(), opened.generation());
            }
            return;
        }
        let _ = self.cas(opened, opened.published());
    }

    /// The runtime to run an open period's timer on, with automatic half-open: the current
    /// one, unless the clock is manual (which no tokio timer follows).
    #[cfg(all(feature = "tokio", not(loom)))]
    fn timer_runtime(&self) -> Option<tokio::runtime::Handle> {
        if !self.config.automatic_half_open || self.clock.is_manual() {
            return None;
        }
        tokio::runtime::Handle::try_current().ok()
    }

    /// One tick of the timer of the open period of `generation` (see `timer.rs`): ends the
    /// period if it is over, else records the time left for rejections and says how long to
    /// sleep. `None`: the timer is done (the period is over, or the breaker has left it).
    #[cfg(any(all(feature = "tokio", not(loom)), all(test, loom)))]
    pub(crate) fn open_timer_tick(&self, generation: u32) -> Option<Duration> {
        if !self.load().has_timer_of(generation) {
            return None;
        }
        let now = self.clock.now();
        let now_nanos = self.nanos(now);
        let until = self.open_until.load(Ordering::Acquire);
        if now_nanos < until {
            let left = until - now_nanos;
            let ms = left.div_ceil(1_000_000).min(LEFT_MS_MASK);
            self.open_left.store(
                (u64::from(generation) << LEFT_GEN_SHIFT) | ms,
                Ordering::Relaxed,
            );
            // Re-measured every 1/64 of the period (10 ms to 1 s), which bounds how far
            // `retry_after` may overstate.
            let interval = (self.open_for.load(Ordering::Relaxed) / 64)
                .clamp(TIMER_INTERVAL_MIN, TIMER_INTERVAL_MAX);
            return Some(Duration::from_nanos(left.min(interval)));
        }
        // Half-open with every slot free: the next caller is the first probe.
        self.half_open_since.fetch_max(now_nanos, Ordering::Relaxed);
        if let Some((from, to)) =
            self.update(|w| w.has_timer_of(generation).then(|| w.next(State::HalfOpen)))
        {
            self.emit(from, to, Reason::OpenElapsed, now);
        }
        None
    }

    /// loom: flags the current (published) open period as having a timer, as `publish_open`
    /// does on a runtime.
    #[cfg(all(test, loom))]
    pub(crate) fn arm_timer_for_test(&self) {
        let word = self.load();
        assert!(word.state() == State::Open && !word.unpublished());
        self.cas(word, word.with_timer(true)).unwrap();
    }

    /// Clears the timer flag of the open period of `generation`, if the word is still in it:
    /// its timer is gone, so rejections read the clock again.
    #[cfg(any(all(feature = "tokio", not(loom)), all(test, loom)))]
    pub(crate) fn disarm_timer(&self, generation: u32) {
        let _ = self.update(|w| w.has_timer_of(generation).then(|| w.with_timer(false)));
    }

    /// The open duration of the `trips`th trip since the last close. A jittered draw of zero
    /// (full jitter draws from `[0, base]`) is raised to 1 ns, so that a trip always rejects
    /// the calls of its own instant, as a fixed duration (never zero) does.
    fn open_duration(&self, trips: u32) -> Duration {
        match self.config.open {
            OpenDuration::Fixed(d) => d,
            OpenDuration::Growing(backoff) => {
                let step = trips.clamp(1, MAX_GROWTH_STEPS) as usize;
                backoff
                    .delays()
                    .ok()
                    .and_then(|mut delays| delays.nth(step - 1))
                    .unwrap_or_else(|| backoff.base_delay(trips))
                    .max(MIN_OPEN)
            }
        }
    }

    fn base_open_duration(&self, trips: u32) -> Duration {
        match self.config.open {
            OpenDuration::Fixed(d) => d,
            OpenDuration::Growing(backoff) => backoff.base_delay(trips.min(MAX_GROWTH_STEPS)),
        }
    }

    fn emit(&self, from: Word, to: Word, reason: Reason, at: Instant) {
        self.listeners.emit(&StateChange {
            name: self.name,
            from: from.state(),
            to: to.state(),
            generation: to.generation(),
            reason,
            at,
        });
    }

    fn force(&self, target: State) {
        // Under the window lock, which seals the pending successes: none counted after this
        // leaves the generation lands in it unreported (see `pending.rs`).
        let window = self.window.as_ref().map(|w| self.lock_window(w));
        // Forcing the state the breaker is in changes nothing; a reset while closed still
        // clears the counts (a new generation), but the state does not change.
        let changed = self.update(|w| {
            // From disabled, which dropped them, with the config's path and interval bits.
            let next = w.with_config(self.config.path(), self.config.periodic());
            (w.state() != target || target == State::Closed).then(|| next.next(target))
        });
        drop(window);
        let Some((from, to)) = changed else { return };
        if target == State::Closed {
            self.trips.store(0, Ordering::Relaxed);
            self.publish_closed(to);
        }
        if from.state() != to.state() {
            self.emit(from, to, Reason::Manual, self.clock.now());
        }
    }

    fn snapshot(&self) -> Snapshot {
        let word = self.load();
        let state = word.state();
        let mut snapshot = Snapshot {
            state,
            generation: word.generation(),
            consecutive_failures: 0,
            calls: 0,
            failures: 0,
            slow_calls: 0,
            failure_rate: None,
            probes_in_flight: 0,
            probe_successes: 0,
            probe_failures: 0,
            next_probe_at: None,
        };
        match state {
            State::HalfOpen => {
                snapshot.probes_in_flight = word.a();
                snapshot.probe_successes = word.b();
                snapshot.probe_failures = self.probe_failures_of(word.generation());
            }
            // The period has ended: its counts no longer count (the next admission clears them).
            State::Closed if self.closed_period_over(word).is_some() => {}
            State::Open if !word.unpublished() => {
                snapshot.next_probe_at =
                    Some(self.instant(self.open_until.load(Ordering::Acquire)));
            }
            State::Closed | State::ForcedClosed => match &self.window {
                None => snapshot.consecutive_failures = word.a(),
                Some(window) => {
                    let now = matches!(self.config.rule, Rule::TimeWindow { .. })
                        .then(|| self.nanos(self.clock.now()));
                    let mut window = self.lock_window(window);
                    let counts = if window.generation == word.generation() {
                        if let Some(now) = now {
                            window.advance(now);
                        }
                        window.counts()
                    } else {
                        Counts::default()
                    };
                    drop(window);
                    snapshot.calls = counts.calls;
                    snapshot.failures = counts.failures;
                    snapshot.slow_calls = counts.slow;
                    snapshot.failure_rate = counts.failure_rate();
                }
            },
            _ => {}
        }
        snapshot
    }
}

/// The window lock, held: unlocking reopens the pending-success counter if the window is safe.
struct WindowGuard<'a> {
    shared: &'a Shared,
    guard: MutexGuard<'a, Window>,
}

impl std::ops::Deref for WindowGuard<'_> {
    type Target = Window;

    fn deref(&self) -> &Window {
        &self.guard
    }
}

impl std::ops::DerefMut for WindowGuard<'_> {
    fn deref_mut(&mut self) -> &mut Window {
        &mut self.guard
    }
}

impl Drop for WindowGuard<'_> {
    fn drop(&mut self) {
        self.shared.reopen_pending(&self.guard);
    }
}

/// Runs the blocking `f` under `permit` and records its outcome as `classify` says.
#[inline(always)]
fn run_blocking<C, F, T, E>(permit: Permit<'_>, classify: C, f: F) -> Result<T, Error<E>>
where
    C: Classify<T, E>,
    F: FnOnce() -> Result<T, E>,
{
    let result = f();
    permit.record(classify.classify(&result));
    result.map_err(Error::Inner)
}

/// Marks the branch that calls it as the unlikely one, so that the inlined fast paths are laid
/// out straight, with no taken jump (a stable stand-in for `std::hint::cold_path`, which is
/// newer than this crate's minimum Rust).
#[cold]
#[inline(always)]
pub(crate) fn unlikely() {}

/// Maps a [`Class`] to what the breaker counts.
#[inline]
pub(crate) fn outcome_of(class: Class) -> Outcome {
    match class {
        Class::Success => Outcome::Success,
        class if class.is_failure() => Outcome::Failure,
        _ => Outcome::Ignored,
    }
}

#[cfg(all(test, not(any(loom, staunch_std_clock)), target_os = "linux"))]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn tripped(config: BreakerConfig, clock: Clock) -> CircuitBreaker {
        let breaker = CircuitBreaker::builder(config)
            .clock(clock)
            .build()
            .unwrap();
        let _ = breaker.call_blocking(|| Err::<(), _>("down"));
        assert_eq!(breaker.state(), State::Open);
        breaker
    }

    // Real time, outside any runtime. No unit test in this crate builds a breaker under a paused
    // tokio clock, so the process trusts coarse readings (see `clock.rs`); the paused cases are
    // `tests/breaker_paused_clock.rs`, in a process of their own.
    #[test]
    fn an_open_breaker_rejects_on_a_coarse_reading_in_real_time() {
        let config = BreakerConfig::consecutive_failures(1).with_open_duration(HOUR);
        let breaker = tripped(config, Clock::system());
        let rejected = breaker
            .shared
            .reject_coarse(breaker.shared.load())
            .expect("a coarse reading shows the hour is not over");
        let retry_after = rejected.retry_after().unwrap();
        // Never sooner than the exact answer; later by at most the lag (plus this test's time).
        assert!(retry_after <= HOUR, "never more than the open duration");
        assert!(retry_after >= HOUR - Duration::from_secs(60));
    }

    #[test]
    fn a_half_open_breaker_with_every_slot_taken_rejects_on_a_coarse_reading() {
        let config = BreakerConfig::consecutive_failures(1)
            .with_open_duration(Duration::from_micros(1))
            .with_half_open_probes(1)
            .with_probe_lease(HOUR);
        let breaker = tripped(config, Clock::system());
        // A microsecond later (real time has passed it by now): the one probe, held.
        let probe = breaker.try_acquire().expect("the open period is over");
        assert_eq!(breaker.state(), State::HalfOpen);
        let rejected = breaker
            .shared
            .reject_half_open_coarse()
            .expect("a coarse reading shows the lease is not over");
        assert_eq!(rejected.state(), State::HalfOpen);
        let retry_after = rejected.retry_after().unwrap();
        assert!(retry_after <= HOUR, "never more than the lease");
        assert!(retry_after >= HOUR - Duration::from_secs(60));
        assert_eq!(breaker.try_acquire().unwrap_err().state(), State::HalfOpen);
        probe.success();
        assert_eq!(breaker.state(), State::Closed);
    }

    #[test]
    fn periods_shorter_than_the_lag_and_manual_clocks_read_the_exact_clock() {
        let short = crate::clock::coarse_lag() / 2;
        let breaker = tripped(
            BreakerConfig::consecutive_failures(1).with_open_duration(short),
            Clock::system(),
        );
        assert!(
            breaker
                .shared
                .reject_coarse(breaker.shared.load())
                .is_none()
        );

        let manual = crate::ManualClock::new();
        let config = BreakerConfig::consecutive_failures(1).with_open_duration(HOUR);
        let breaker = tripped(config, manual.into());
        assert!(breaker.shared.reject_half_open_coarse().is_none());
        assert!(
            breaker
                .shared
                .reject_coarse(breaker.shared.load())
                .is_none()
        );
        assert!(
            breaker
                .call_blocking(|| Ok::<_, &str>(()))
                .unwrap_err()
                .is_open()
        );
    }

    #[cfg(feature = "tokio")]
    fn automatic(open: Duration) -> CircuitBreaker {
        CircuitBreaker::new(
            BreakerConfig::consecutive_failures(1)
                .with_open_duration(open)
                .with_automatic_half_open(true),
        )
        .unwrap()
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_runtime_shutting_down_hands_the_period_back_to_the_callers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let breaker = automatic(HOUR);
        runtime.block_on(async {
            let _ = breaker.call(|| async { Err::<(), _>("down") }).await;
        });
        assert!(breaker.shared.load().has_timer(), "armed in the runtime");
        assert!(breaker.try_acquire().is_err());
        drop(runtime);
        let word = breaker.shared.load();
        assert_eq!(word.state(), State::Open);
        assert!(!word.has_timer(), "the dropped timer cleared its flag");
        let rejected = breaker.try_acquire().unwrap_err();
        assert!(rejected.retry_after().unwrap() <= HOUR);

        // A trip on a runtime already shut down: the timer is dropped as it is spawned.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        let _inside = handle.enter();
        let breaker = automatic(HOUR);
        let _ = breaker.call_blocking(|| Err::<(), _>("down"));
        let word = breaker.shared.load();
        assert_eq!(word.state(), State::Open);
        assert!(!word.has_timer());
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn outside_a_runtime_no_timer_is_armed() {
        let breaker = automatic(HOUR);
        let _ = breaker.call_blocking(|| Err::<(), _>("down"));
        let word = breaker.shared.load();
        assert_eq!(word.state(), State::Open);
        assert!(!word.has_timer());
        assert!(breaker.try_acquire().unwrap_err().retry_after().unwrap() <= HOUR);
    }
}
