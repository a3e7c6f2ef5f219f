//! [`RateLimit`]: a quota of calls per period with a burst (GCRA), and its [`RateConfig`].
//!
//! The algorithm is `governor`'s generic cell rate algorithm (one atomic word, a
//! compare-exchange per admission), driven by staunch's [`Clock`], so that paused tokio time and
//! a [`ManualClock`](crate::ManualClock) move it like every other policy.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Refusal, Refused};
use crate::loom::{Arc, AtomicU64, Ordering};
use crate::retry::CallOptions;
use crate::telemetry::LimitMetrics;
use crate::{Clock, ConfigError, Deadline};

/// The settings of a [`RateLimit`]: `calls` per `period`, replenished evenly (one every
/// `period / calls`), up to a burst.
///
/// | setting | default |
/// |---|---|
/// | `calls`, `period` | chosen by the constructor: [`new`](Self::new), [`per_second`](Self::per_second) |
/// | [`with_burst`](Self::with_burst) | `calls`: a quiet period's whole quota at once |
/// | [`with_max_wait`](Self::with_max_wait) | zero: a call that finds no token is refused at once |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::limit::{RateConfig, RateLimit};
///
/// let config = RateConfig::per_second(100).with_burst(10).with_max_wait(Duration::from_millis(50));
/// RateLimit::new(config)?;
/// let err = RateLimit::new(RateConfig::per_second(0)).unwrap_err();
/// assert_eq!(err.field(), "calls");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    pub(crate) calls: u32,
    pub(crate) period: Duration,
    pub(crate) burst: Option<u32>,
    pub(crate) max_wait: Duration,
}

impl RateConfig {
    /// `calls` per `period`.
    pub const fn new(calls: u32, period: Duration) -> Self {
        Self {
            calls,
            period,
            burst: None,
            max_wait: Duration::ZERO,
        }
    }

    /// `calls` per second.
    pub const fn per_second(calls: u32) -> Self {
        Self::new(calls, Duration::from_secs(1))
    }

    /// Sets how many calls may go at once after a quiet time (default: `calls`), at least 1.
    pub const fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Sets how long a call may wait for a token (default zero: refused at once). A wait never
    /// outlasts the deadline in scope: a call whose token would come at or after its deadline
    /// is refused at once with [`Refusal::Deadline`].
    pub const fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// Zero calls, a zero period, a period shorter than a nanosecond per call, a zero burst.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.quota().map(drop)
    }

    fn quota(&self) -> Result<Quota, ConfigError> {
        let calls = NonZeroU32::new(self.calls)
            .ok_or_else(|| ConfigError::new("calls", "use at least 1 call per period"))?;
        if self.period.is_zero() {
            return Err(ConfigError::new("period", "use a non-zero period"));
        }
        let burst = match self.burst {
            None => calls,
            Some(burst) => NonZeroU32::new(burst)
                .ok_or_else(|| ConfigError::new("burst", "use a burst of at least 1"))?,
        };
        let interval = self.period / self.calls;
        let quota = Quota::with_period(interval).ok_or_else(|| {
            ConfigError::new(
                "period",
                "the period is shorter than one nanosecond per call; lengthen it",
            )
        })?;
        Ok(quota.allow_burst(burst))
    }
}

/// `governor`'s view of staunch's clock: time since the limit's origin.
#[derive(Clone, Debug)]
struct StaunchClock {
    clock: Clock,
    origin: Instant,
}

impl GovernorClock for StaunchClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.clock.now().saturating_duration_since(self.origin)
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, StaunchClock, NoOpMiddleware<Duration>>;

/// A rate limit for one dependency: a cheap `Clone` handle to a GCRA shared by every call.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::limit::{RateConfig, RateLimit, Refusal};
///
/// let limit = RateLimit::new(RateConfig::per_second(10).with_burst(2))?;
/// limit.try_acquire().unwrap();
/// limit.try_acquire().unwrap();
/// let refused = limit.try_acquire().unwrap_err(); // the burst is spent
/// assert_eq!(refused.reason(), Refusal::RateLimited);
/// assert!(refused.retry_after().unwrap() <= Duration::from_millis(100)); // the next token
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RateLimit {
    shared: Arc<RateShared>,
}

struct RateShared {
    gcra: Gcra,
    config: RateConfig,
    refused: AtomicU64,
    metrics: LimitMetrics,
}

impl RateLimit {
    /// A rate limit with `config` and the system clock.
    ///
    /// # Errors
    ///
    /// The configuration is invalid; the error names the setting.
    pub fn new(config: RateConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Clock::system(), "default")
    }

    /// A rate limit reading `clock`, named `name` in telemetry.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_clock(
        config: RateConfig,
        clock: Clock,
        name: &'static str,
    ) -> Result<Self, ConfigError> {
        let quota = config.quota()?;
        let (origin, _) = clock.now_anchored();
        Ok(Self {
            shared: Arc::new(RateShared {
                gcra: RateLimiter::direct_with_clock(quota, StaunchClock { clock, origin }),
                config,
                refused: AtomicU64::new(0),
                metrics: LimitMetrics::new(name),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RateConfig {
        &self.shared.config
    }

    /// Calls refused so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Takes a token now, or says when the next one comes.
    ///
    /// # Errors
    ///
    /// [`Refusal::RateLimited`], with [`retry_after`](Refused::retry_after) the wait for the
    /// next token.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Refused> {
        match self.next_wait() {
            None => Ok(()),
            Some(wait) => Err(self.shared.refuse(Refusal::RateLimited, wait)),
        }
    }

    /// `None` when a token was taken; else the wait for the next one.
    #[inline]
    pub(crate) fn next_wait(&self) -> Option<Duration> {
        let shared = &self.shared;
        match shared.gcra.check() {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(shared.gcra_now())),
        }
    }

    /// What to do about a call that found no token, `wait` before the next, with `waited`
    /// spent so far: wait again, or refuse (with why).
    pub(crate) fn plan(
        &self,
        wait: Duration,
        waited: Duration,
        deadline: Option<Deadline>,
    ) -> Result<Duration, Refused> {
        let shared = &self.shared;
        if let Some(deadline) = deadline {
            let now = shared.gcra.clock().clock.now();
            if wait >= deadline.remaining_at(now) {
                return Err(shared.refuse(Refusal::Deadline, wait));
            }
        }
        if waited.saturating_add(wait) > shared.config.max_wait {
            return Err(shared.refuse(Refusal::RateLimited, wait));
        }
        Ok(wait)
    }

    /// Takes a token, waiting for one for at most `max_wait`, never past the deadline in scope:
    /// when the next token comes at or after the deadline, refused at once. Cancel safe (a
    /// dropped wait takes nothing); waits on tokio's timer.
    ///
    /// # Errors
    ///
    /// [`Refusal::RateLimited`] when the next token is further than `max_wait` allows;
    /// [`Refusal::Deadline`] when it is at or after the deadline.
    #[cfg(feature = "tokio")]
    pub async fn acquire(&self) -> Result<(), Refused> {
        let deadline = Deadline::current();
        let mut waited = Duration::ZERO;
        while let Some(wait) = self.next_wait() {
            let wait = self.plan(wait, waited, deadline)?;
            tokio::time::sleep(wait).await;
            waited += wait;
        }
        Ok(())
    }

    /// Runs `f` once a token is taken (waiting as [`acquire`](Self::acquire) does).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`](super::Error::Refused) without calling `f`;
    /// [`Error::Inner`](super::Error::Inner) with `f`'s error.
    #[cfg(feature = "tokio")]
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, super::Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        self.acquire().await?;
        f().await.map_err(super::Error::Inner)
    }

    /// Runs the blocking `f` once a token is taken (waiting as
    /// [`acquire_blocking`](Self::acquire_blocking) does).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`](super::Error::Refused) or [`Error::Cancelled`](super::Error::Cancelled)
    /// without calling `f`; [`Error::Inner`](super::Error::Inner) with `f`'s error.
    pub fn call_blocking<F, T, E>(&self, options: &CallOptions, f: F) -> Result<T, super::Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        match self.acquire_blocking(options) {
            Ok(()) => f().map_err(super::Error::Inner),
            Err(Some(refused)) => Err(super::Error::Refused(refused)),
            Err(None) => Err(super::Error::Cancelled),
        }
    }

    /// [`acquire`](Self::acquire) for blocking code: the thread sleeps for its token, waking
    /// at once when the options' cancellation token fires (then `Err(None)`); the deadline is
    /// the tighter of the options' and the one in scope.
    ///
    /// # Errors
    ///
    /// `Some(refused)` as for [`acquire`](Self::acquire); `None` when cancelled.
    pub fn acquire_blocking(&self, options: &CallOptions) -> Result<(), Option<Refused>> {
        let deadline = Deadline::effective(options.deadline);
        let cancel = options.cancel.as_ref();
        let mut waited = Duration::ZERO;
        while let Some(wait) = self.next_wait() {
            let wait = self.plan(wait, waited, deadline).map_err(Some)?;
            if !self.shared.gcra.clock().clock.sleep_blocking(wait, cancel) {
                return Err(None);
            }
            waited += wait;
        }
        Ok(())
    }
}

impl RateShared {
    fn gcra_now(&self) -> Duration {
        self.gcra.clock().now()
    }

    #[cold]
    fn refuse(&self, reason: Refusal, wait: Duration) -> Refused {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.metrics.refused(reason);
        Refused::after(reason, wait)
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("config", &self.shared.config)
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn manual(config: RateConfig) -> (RateLimit, ManualClock) {
        let clock = ManualClock::new();
        let limit = RateLimit::with_clock(config, clock.clone().into(), "t").unwrap();
        (limit, clock)
    }

    #[test]
    fn n_per_period_with_a_burst() {
        let (limit, clock) = manual(RateConfig::new(10, 1000 * MS).with_burst(3));
        for _ in 0..3 {
            limit.try_acquire().unwrap();
        }
        let refused = limit.try_acquire().unwrap_err();
        assert_eq!(refused.reason(), Refusal::RateLimited);
        assert_eq!(refused.retry_after(), Some(100 * MS));
        clock.advance(99 * MS);
        assert!(limit.try_acquire().is_err());
        clock.advance(MS);
        limit.try_acquire().unwrap(); // one token every 100 ms
        assert!(limit.try_acquire().is_err());
        clock.advance(10_000 * MS);
        for _ in 0..3 {
            limit.try_acquire().unwrap(); // no more than the burst after a quiet time
        }
        assert!(limit.try_acquire().is_err());
        assert_eq!(limit.refused(), 4);
    }

    #[test]
    fn a_blocking_wait_takes_the_next_token_in_virtual_time() {
        let (limit, clock) = manual(
            RateConfig::new(10, 1000 * MS)
                .with_burst(1)
                .with_max_wait(500 * MS),
        );
        limit.try_acquire().unwrap();
        let start = clock.now();
        limit.acquire_blocking(&CallOptions::new()).unwrap();
        assert_eq!(clock.elapsed_since(start), 100 * MS);
    }

    #[test]
    fn a_token_after_the_deadline_is_refused_at_once() {
        let (limit, clock) = manual(RateConfig::new(1, 1000 * MS).with_max_wait(5000 * MS));
        limit.try_acquire().unwrap();
        let start = clock.now();
        let options =
            CallOptions::new().with_deadline(Deadline::after_from(clock.now(), 1000 * MS));
        let refused = limit.acquire_blocking(&options).unwrap_err().unwrap();
        assert_eq!(refused.reason(), Refusal::Deadline);
        assert_eq!(refused.retry_after(), Some(1000 * MS));
        assert_eq!(clock.elapsed_since(start), Duration::ZERO, "no wait at all");

        let options =
            CallOptions::new().with_deadline(Deadline::after_from(clock.now(), 1001 * MS));
        limit.acquire_blocking(&options).unwrap();
        assert_eq!(clock.elapsed_since(start), 1000 * MS);
    }

    #[test]
    fn a_wait_longer_than_max_wait_is_refused_at_once() {
        let (limit, clock) = manual(RateConfig::new(1, 1000 * MS).with_max_wait(999 * MS));
        limit.try_acquire().unwrap();
        let start = clock.now();
        let refused = limit
            .acquire_blocking(&CallOptions::new())
            .unwrap_err()
            .unwrap();
        assert_eq!(refused.reason(), Refusal::RateLimited);
        assert_eq!(clock.elapsed_since(start), Duration::ZERO);
    }

    #[test]
    fn a_blocking_call_runs_with_a_token_and_not_without() {
        let (limit, _clock) = manual(RateConfig::new(1, 1000 * MS));
        let options = CallOptions::new();
        assert_eq!(limit.call_blocking(&options, || Ok::<_, ()>(1)), Ok(1));
        let mut ran = false;
        let err = limit
            .call_blocking(&options, || {
                ran = true;
                Ok::<_, ()>(2)
            })
            .unwrap_err();
        assert!(!ran);
        assert_eq!(err.refused().unwrap().reason(), Refusal::RateLimited);
    }

    #[test]
    fn a_cancelled_wait_takes_nothing() {
        let (limit, _clock) = manual(RateConfig::new(1, 1000 * MS).with_max_wait(5000 * MS));
        limit.try_acquire().unwrap();
        let token = crate::CancellationToken::new();
        token.cancel();
        let options = CallOptions::new().with_cancellation(token);
        assert_eq!(limit.acquire_blocking(&options), Err(None));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn an_async_wait_follows_paused_time_and_the_deadline() {
        let limit = RateLimit::new(
            RateConfig::new(2, 1000 * MS)
                .with_burst(1)
                .with_max_wait(2000 * MS),
        )
        .unwrap();
        limit.try_acquire().unwrap();
        let start = tokio::time::Instant::now();
        limit.acquire().await.unwrap();
        assert_eq!(start.elapsed(), 500 * MS);
        let refused = Deadline::after(400 * MS)
            .scope(limit.acquire())
            .await
            .unwrap_err();
        assert_eq!(refused.reason(), Refusal::Deadline);
        assert_eq!(start.elapsed(), 500 * MS, "refused at once");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        for (config, field) in [
            (RateConfig::per_second(0), "calls"),
            (RateConfig::new(1, Duration::ZERO), "period"),
            (RateConfig::new(10, Duration::from_nanos(5)), "period"),
            (RateConfig::per_second(1).with_burst(0), "burst"),
        ] {
            assert_eq!(config.validate().unwrap_err().field(), field, "{config:?}");
        }
    }
}
