//! Client-side adaptive throttling (Google SRE book, "Handling Overload"): [`AdaptiveThrottle`]
//! and its [`ThrottleConfig`].
//!
//! Each client keeps, over a sliding window, how many calls it made (`requests`) and how many
//! the dependency accepted (`accepts`), and refuses a new call locally with probability
//!
//! ```text
//! max(0, (requests − K·accepts) / (requests + 1))
//! ```
//!
//! While the dependency accepts nearly everything, `requests < K·accepts` and nothing is
//! refused. When it starts refusing work, the client sends it less, in proportion, without any
//! coordination between clients; a local refusal counts as a request, so the probability keeps
//! rising while the dependency keeps refusing, and falls as soon as it accepts again. `K = 2`
//! lets through up to twice what the dependency accepts: it wastes some of its capacity on
//! refusals but reacts fast to recovery; a smaller `K` (at least 1) sheds harder.

use std::fmt;
use std::time::{Duration, Instant};

use super::config::check_number;
use super::{Refusal, Refused};
use crate::classify::Class;
use crate::loom::{Arc, AtomicU64, Mutex, Ordering, lock};
use crate::telemetry::LimitMetrics;
use crate::{Clock, ConfigError};

/// The settings of an [`AdaptiveThrottle`].
///
/// | setting | default |
/// |---|---|
/// | [`with_k`](Self::with_k) | 2.0, at least 1 |
/// | [`with_window`](Self::with_window) | 2 min, non-zero |
/// | [`with_buckets`](Self::with_buckets) | 120 (the window slides in steps of `window / buckets`) |
/// | [`with_seed`](Self::with_seed) | none: draws from the thread's generator |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::limit::{AdaptiveThrottle, ThrottleConfig};
///
/// let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_k(1.5))?;
/// let err = AdaptiveThrottle::new(ThrottleConfig::new().with_k(0.5)).unwrap_err();
/// assert_eq!(err.field(), "k");
/// let err = AdaptiveThrottle::new(ThrottleConfig::new().with_window(Duration::ZERO)).unwrap_err();
/// assert_eq!(err.field(), "window");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleConfig {
    pub(crate) k: f64,
    pub(crate) window: Duration,
    pub(crate) buckets: u32,
    pub(crate) seed: Option<u64>,
}

impl ThrottleConfig {
    /// The SRE book's settings: `K = 2`, a 2-minute window.
    pub const fn new() -> Self {
        Self {
            k: 2.0,
            window: Duration::from_secs(120),
            buckets: 120,
            seed: None,
        }
    }

    /// Sets `K`, the multiple of accepted calls let through before refusing (default 2, at
    /// least 1).
    pub const fn with_k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// Sets the window over which requests and accepts are counted (default 2 min).
    pub const fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets how many buckets the window slides in (default 120, in `1..=3600`).
    pub const fn with_buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
    }

    /// Seeds the draws, for reproducible tests and simulations.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// `K` below 1 or not a number, a zero window, a bucket count out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_number("k", self.k, |k| k >= 1.0, "[1, ∞)")?;
        if self.window.is_zero() {
            return Err(ConfigError::new(
                "window",
                "use a non-zero window, such as 2m",
            ));
        }
        if self.buckets == 0 || self.buckets > 3600 {
            return Err(ConfigError::new(
                "buckets",
                "use between 1 and 3600 buckets",
            ));
        }
        if self.window.as_nanos() < u128::from(self.buckets) {
            return Err(ConfigError::new(
                "window",
                "the window is shorter than one nanosecond per bucket",
            ));
        }
        Ok(())
    }
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The sliding window of requests and accepts, in buckets: the pure core, given `now` in
/// nanoseconds.
#[derive(Debug)]
pub(crate) struct Window {
    /// Requests and accepts per bucket, a ring indexed by epoch modulo its length.
    buckets: Vec<(u64, u64)>,
    bucket_nanos: u64,
    /// The epoch (`now / bucket_nanos`) of the newest bucket.
    epoch: u64,
    requests: u64,
    accepts: u64,
    k: f64,
    rng: fastrand::Rng,
}

impl Window {
    pub(crate) fn new(config: &ThrottleConfig) -> Self {
        let window = u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX);
        Self {
            buckets: vec![(0, 0); config.buckets as usize],
            bucket_nanos: (window / u64::from(config.buckets)).max(1),
            epoch: 0,
            requests: 0,
            accepts: 0,
            k: config.k,
            rng: match config.seed {
                Some(seed) => fastrand::Rng::with_seed(seed),
                None => fastrand::Rng::new(),
            },
        }
    }

    /// Expires the buckets older than the window at `now`.
    pub(crate) fn advance(&mut self, now: u64) {
        let epoch = now / self.bucket_nanos;
        if epoch <= self.epoch {
            return;
        }
        let len = self.buckets.len() as u64;
        let stale = (epoch - self.epoch).min(len);
        for step in 1..=stale {
            let index = ((self.epoch + step) % len) as usize;
            let (requests, accepts) = std::mem::take(&mut self.buckets[index]);
            self.requests -= requests;
            self.accepts -= accepts;
        }
        self.epoch = epoch;
    }

    /// `max(0, (requests − K·accepts) / (requests + 1))`.
    pub(crate) fn probability(&self) -> f64 {
        let requests = self.requests as f64;
        ((requests - self.k * self.accepts as f64) / (requests + 1.0)).max(0.0)
    }

    /// Counts a request (and an accept) in the newest bucket.
    pub(crate) fn record(&mut self, accepted: bool) {
        let index = (self.epoch % self.buckets.len() as u64) as usize;
        let bucket = &mut self.buckets[index];
        bucket.0 += 1;
        self.requests += 1;
        if accepted {
            bucket.1 += 1;
            self.accepts += 1;
        }
    }

    /// Whether to refuse a call now: a draw against the probability, made only when it is
    /// above zero. A refusal counts as a request.
    pub(crate) fn admit(&mut self) -> bool {
        let p = self.probability();
        if p > 0.0 && self.rng.f64() < p {
            self.record(false);
            return false;
        }
        true
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.requests, self.accepts)
    }
}

/// Client-side adaptive throttling for one dependency (Google SRE book, "Handling Overload"): a
/// cheap `Clone` handle to a window shared by every call to it.
///
/// Over a sliding window the throttle counts the calls made (`requests`) and those the
/// dependency accepted (`accepts`), and refuses a new call locally with probability
///
/// ```text
/// max(0, (requests − K·accepts) / (requests + 1))
/// ```
///
/// While the dependency accepts nearly everything, `requests < K·accepts` and nothing is
/// refused. When it starts refusing work, each client sends it less, in proportion, with no
/// coordination between clients; a local refusal counts as a request, so the probability keeps
/// rising while the dependency keeps refusing, and falls as soon as it accepts again. `K = 2`
/// lets through up to twice what the dependency accepts (some of its capacity spent on
/// refusals, a fast reaction to recovery); a smaller `K`, down to 1, sheds harder. Draws come
/// from a seedable generator ([`ThrottleConfig::with_seed`]).
///
/// Ask before each call ([`try_acquire`](Self::try_acquire)); the permit it gives reports whether
/// the dependency accepted the call. What counts as accepted: a success, a permanent failure
/// (the dependency answered, a 404 say) ; what counts as refused: a transient failure (a 503, a
/// timeout, a 429 with Retry-After). An ignored outcome, and a permit dropped without one,
/// count as nothing.
///
/// # Examples
///
/// ```
/// use staunch::limit::{AdaptiveThrottle, Refusal, ThrottleConfig};
///
/// let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(7))?;
/// // The dependency refuses everything: soon the client refuses most calls itself.
/// let mut throttled = 0;
/// for _ in 0..1000 {
///     match throttle.try_acquire() {
///         Ok(permit) => permit.rejected(),
///         Err(refused) => {
///             assert_eq!(refused.reason(), Refusal::Throttled);
///             throttled += 1;
///         }
///     }
/// }
/// assert!(throttled > 900);
/// assert!(throttle.rejection_probability() > 0.99);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct AdaptiveThrottle {
    shared: Arc<ThrottleShared>,
}

struct ThrottleShared {
    window: Mutex<Window>,
    config: ThrottleConfig,
    clock: Clock,
    origin: Instant,
    throttled: AtomicU64,
    metrics: LimitMetrics,
}

/// A point-in-time view of a throttle.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct ThrottleSnapshot {
    /// Requests in the window (local refusals included).
    pub requests: u64,
    /// Accepted requests in the window.
    pub accepts: u64,
    /// The probability that the next call is refused.
    pub probability: f64,
    /// Calls refused so far ([`Refusal::Throttled`]).
    pub throttled: u64,
}

impl AdaptiveThrottle {
    /// A throttle with `config`, the system clock and the name `"default"`.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; the error names the setting.
    pub fn new(config: ThrottleConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Clock::system(), "default")
    }

    /// A throttle reading `clock` (for tests of blocking code), named `name` in telemetry.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_clock(
        config: ThrottleConfig,
        clock: Clock,
        name: &'static str,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let (origin, _) = clock.now_anchored();
        Ok(Self {
            shared: Arc::new(ThrottleShared {
                window: Mutex::new(Window::new(&config)),
                config,
                clock,
                origin,
                throttled: AtomicU64::new(0),
                metrics: LimitMetrics::new(name),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ThrottleConfig {
        &self.shared.config
    }

    /// Asks to make one call: refused with the throttle's probability (drawn from its
    /// generator), else a permit to report the dependency's answer with.
    ///
    /// # Errors
    ///
    /// [`Refusal::Throttled`].
    #[inline]
    pub fn try_acquire(&self) -> Result<ThrottlePermit<'_>, Refused> {
        let shared = &*self.shared;
        let now = shared.now();
        let mut window = lock(&shared.window);
        window.advance(now);
        if window.admit() {
            return Ok(ThrottlePermit { shared });
        }
        let probability = window.probability();
        drop(window);
        Err(shared.refuse(probability))
    }

    /// Runs `f` unless throttled, and reports its outcome: `Ok` as accepted, every `Err` as
    /// refused by the dependency (classify with [`ThrottlePermit::record`] for finer control).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`](super::Error::Refused) without calling `f`; [`Error::Inner`](super::Error::Inner)
    /// with `f`'s error.
    #[cfg(feature = "tokio")]
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, super::Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        let result = f().await;
        permit.record(crate::classify::Classify::classify(
            &crate::classify::AllTransient,
            &result,
        ));
        result.map_err(super::Error::Inner)
    }

    /// [`call`](Self::call) for blocking code.
    ///
    /// # Errors
    ///
    /// As [`call`](Self::call).
    pub fn call_blocking<F, T, E>(&self, f: F) -> Result<T, super::Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        let permit = self.try_acquire()?;
        let result = f();
        permit.record(crate::classify::Classify::classify(
            &crate::classify::AllTransient,
            &result,
        ));
        result.map_err(super::Error::Inner)
    }

    /// [`try_acquire`](Self::try_acquire) for an owner that reports with
    /// [`record_class`](Self::record_class) (the pipeline's tower future).
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn admit(&self) -> Result<(), Refused> {
        self.try_acquire().map(drop)
    }

    /// Reports the outcome of a call [`admit`](Self::admit) let through.
    #[cfg(feature = "tokio")]
    pub(crate) fn record_class(&self, class: Class) {
        if let Some(accepted) = accepted(class) {
            self.shared.record(accepted);
        }
    }

    /// The probability that the next call is refused, now.
    pub fn rejection_probability(&self) -> f64 {
        let now = self.shared.now();
        let mut window = lock(&self.shared.window);
        window.advance(now);
        window.probability()
    }

    /// The window's counts, the probability and the refusals so far.
    pub fn snapshot(&self) -> ThrottleSnapshot {
        let now = self.shared.now();
        let mut window = lock(&self.shared.window);
        window.advance(now);
        let (requests, accepts) = window.counts();
        ThrottleSnapshot {
            requests,
            accepts,
            probability: window.probability(),
            throttled: self.shared.throttled.load(Ordering::Relaxed),
        }
    }
}

impl ThrottleShared {
    fn now(&self) -> u64 {
        let since = self.clock.now().saturating_duration_since(self.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    #[cold]
    fn refuse(&self, probability: f64) -> Refused {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        self.metrics.throttle_probability(probability);
        self.metrics.refused(Refusal::Throttled);
        Refused::new(Refusal::Throttled)
    }

    fn record(&self, accepted: bool) {
        let now = self.now();
        let mut window = lock(&self.window);
        window.advance(now);
        window.record(accepted);
    }
}

impl fmt::Debug for AdaptiveThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveThrottle")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// The right to make one call past an [`AdaptiveThrottle`]: report what the dependency said with
/// [`accepted`](Self::accepted), [`rejected`](Self::rejected) or [`record`](Self::record).
/// Dropped without an outcome (a cancelled call), it counts as nothing.
#[must_use = "a permit dropped without an outcome counts as nothing"]
pub struct ThrottlePermit<'a> {
    shared: &'a ThrottleShared,
}

impl ThrottlePermit<'_> {
    /// The dependency accepted the call (it answered, successfully or not).
    pub fn accepted(self) {
        self.shared.record(true);
    }

    /// The dependency refused the call: overloaded, unavailable, or timed out.
    pub fn rejected(self) {
        self.shared.record(false);
    }

    /// Records a [`Class`]: a success or a permanent failure is accepted, a transient failure
    /// rejected, an ignored outcome nothing.
    pub fn record(self, class: Class) {
        if let Some(accepted) = accepted(class) {
            self.shared.record(accepted);
        }
    }
}

/// Whether the dependency accepted a call of `class`; `None`: it says nothing.
fn accepted(class: Class) -> Option<bool> {
    match class {
        Class::Success | Class::Permanent => Some(true),
        Class::Ignored => None,
        _ => Some(false),
    }
}

impl fmt::Debug for ThrottlePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottlePermit").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;

    const SEC: Duration = Duration::from_secs(1);

    /// The SRE formula, written out again for the test.
    fn formula(requests: u64, accepts: u64, k: f64) -> f64 {
        ((requests as f64 - k * accepts as f64) / (requests as f64 + 1.0)).max(0.0)
    }

    #[test]
    fn the_probability_is_the_formula_over_a_scripted_history() {
        let clock = ManualClock::new();
        let config = ThrottleConfig::new().with_seed(42);
        let throttle = AdaptiveThrottle::with_clock(config, clock.clone().into(), "t").unwrap();
        // (accepted, rejected) per scripted second.
        let script: [(u64, u64); 6] = [(100, 0), (50, 50), (10, 90), (0, 100), (0, 200), (5, 0)];
        let (mut requests, mut accepts) = (0u64, 0u64);
        let mut reference = fastrand::Rng::with_seed(42);
        for (accepted, rejected) in script {
            for ok in std::iter::repeat_n(true, accepted as usize)
                .chain(std::iter::repeat_n(false, rejected as usize))
            {
                // The throttle and the formula, with the same seeded draws, decide alike.
                let p = formula(requests, accepts, 2.0);
                assert!((throttle.rejection_probability() - p).abs() < 1e-12);
                let refuse = p > 0.0 && reference.f64() < p;
                match throttle.try_acquire() {
                    Err(refused) => {
                        assert!(refuse, "refused at p = {p}");
                        assert_eq!(refused.reason(), Refusal::Throttled);
                        requests += 1; // a local refusal counts as a request
                    }
                    Ok(permit) => {
                        assert!(!refuse, "admitted at p = {p}");
                        requests += 1;
                        if ok {
                            accepts += 1;
                            permit.accepted();
                        } else {
                            permit.rejected();
                        }
                    }
                }
            }
            clock.advance(SEC);
        }
        let snapshot = throttle.snapshot();
        assert_eq!((snapshot.requests, snapshot.accepts), (requests, accepts));
        assert!(snapshot.throttled > 0);
    }

    #[test]
    fn the_window_slides() {
        let config = ThrottleConfig::new()
            .with_k(2.0)
            .with_window(10 * SEC)
            .with_buckets(10);
        let mut window = Window::new(&config);
        let nanos = |d: Duration| d.as_nanos() as u64;
        for _ in 0..10 {
            window.record(false);
        }
        assert_eq!(window.counts(), (10, 0));
        assert!((window.probability() - 10.0 / 11.0).abs() < 1e-12);
        window.advance(nanos(5 * SEC));
        for _ in 0..30 {
            window.record(true);
        }
        assert_eq!(window.counts(), (40, 30));
        assert_eq!(window.probability(), 0.0, "40 < 2 * 30");
        window.advance(nanos(10 * SEC)); // the first second's bucket expires
        assert_eq!(window.counts(), (30, 30));
        window.advance(nanos(100 * SEC)); // everything expires
        assert_eq!(window.counts(), (0, 0));
        assert_eq!(window.probability(), 0.0);
    }

    #[test]
    fn a_dependency_that_accepts_everything_is_never_throttled() {
        let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(1)).unwrap();
        for _ in 0..10_000 {
            throttle.try_acquire().unwrap().accepted();
        }
        assert_eq!(throttle.snapshot().throttled, 0);
    }

    #[test]
    fn ignored_and_dropped_permits_count_nothing() {
        let throttle = AdaptiveThrottle::new(ThrottleConfig::new()).unwrap();
        throttle.try_acquire().unwrap().record(Class::Ignored);
        drop(throttle.try_acquire().unwrap());
        throttle.try_acquire().unwrap().record(Class::Permanent);
        throttle.try_acquire().unwrap().record(Class::Transient);
        let snapshot = throttle.snapshot();
        assert_eq!((snapshot.requests, snapshot.accepts), (2, 1));
    }

    #[test]
    fn calls_count_their_outcome_and_a_throttled_call_does_not_run() {
        let throttle = AdaptiveThrottle::new(ThrottleConfig::new().with_seed(5)).unwrap();
        assert_eq!(throttle.call_blocking(|| Ok::<_, ()>(1)), Ok(1));
        let mut ran = 0;
        let mut refused = 0;
        for _ in 0..200 {
            match throttle.call_blocking(|| {
                ran += 1;
                Err::<(), _>("503")
            }) {
                Err(super::super::Error::Refused(r)) => {
                    assert_eq!(r.reason(), Refusal::Throttled);
                    refused += 1;
                }
                Err(super::super::Error::Inner("503")) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ran + refused, 200);
        assert!(refused > 100, "{refused}");
        let snapshot = throttle.snapshot();
        assert_eq!(snapshot.accepts, 1);
        assert_eq!(snapshot.requests, 201);
    }

    #[test]
    fn bad_settings_name_the_setting() {
        for (config, field) in [
            (ThrottleConfig::new().with_k(0.99), "k"),
            (ThrottleConfig::new().with_k(f64::NAN), "k"),
            (ThrottleConfig::new().with_window(Duration::ZERO), "window"),
            (ThrottleConfig::new().with_buckets(0), "buckets"),
        ] {
            assert_eq!(config.validate().unwrap_err().field(), field);
        }
    }
}
