//! The one clock every policy reads.
//!
//! Decision code never reads time itself: it takes `now` as an argument. The shells read it from
//! a [`Clock`], which is either the monotonic system clock or a [`ManualClock`] that tests move by
//! hand.
//!
//! With the `tokio` feature, the system clock is `tokio::time::Instant::now()`, so
//! `#[tokio::test(start_paused = true)]` controls every timer and every reading in the library.
//! Outside a runtime it is the ordinary monotonic clock. No decision reads the wall clock
//! (`SystemTime`); the one wall-clock reading in staunch is the HTTP classifier's, to measure a
//! Retry-After HTTP-date when the response carries no `Date` header (feature `http`).
//!
//! # Coarse readings for hot paths
//!
//! An exact reading costs ~30 ns on a virtual machine. Two hot paths of the circuit breaker
//! (rejecting while open, bucketing outcomes of a time window) can do with the kernel's coarse
//! monotonic clock instead (`CLOCK_MONOTONIC_COARSE` on Linux: the time of the last timer tick,
//! one read of shared memory, ~7 ns). It is used only when it is known to tell real time:
//!
//! - never for a [`ManualClock`], never under loom, never off Linux;
//! - never once tokio's clock has been seen paused in this process. [`Clock::now_anchored`], read
//!   when a breaker is built or changes state, checks whether tokio's clock stands still or
//!   differs from the system's, and from then on the process reads the exact clock only.
//!   This mirrors tokio's own fast path (`DID_PAUSE_CLOCK`).
//!
//! A coarse reading trails the exact one by up to a tick (4 ms at the usual 250 Hz); every user
//! allows for [`coarse_lag`] and falls back to the exact reading when the answer is too close.
//! Pausing tokio's clock *while* a breaker is open is the one case it cannot see until the next
//! state change: pause before the breaker trips (`start_paused = true` does).
//!
//! Building with `RUSTFLAGS="--cfg staunch_std_clock"` turns coarse readings off everywhere, so
//! every reading is the standard clock's. It exists for tools that cannot follow the kernel's
//! shared-memory clock page (valgrind's callgrind crashes there); see BENCHMARKS.md.

use std::fmt;
use std::time::{Duration, Instant};

use crate::CancellationToken;
use crate::loom::{Arc, AtomicU64, Ordering};

/// Whether tokio's clock has been seen paused (or otherwise apart from the system's) in this
/// process. Sticky: from then on, no coarse readings.
#[cfg(all(
    feature = "tokio",
    target_os = "linux",
    not(any(loom, staunch_std_clock))
))]
static VIRTUAL_TIME_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A monotonic clock: the system's, or a [`ManualClock`].
///
/// Cheap to clone (at most an `Arc`). The default is [`Clock::system`].
///
/// The system clock is read exactly, except on one hot path: a circuit breaker rejecting while
/// open first reads the kernel's coarse clock when time is known to be real (on Linux, and
/// only until some breaker in the process sees tokio's clock paused; see the
/// [breaker docs](crate::breaker#time)). The open period still ends on an exact reading.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::{Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let clock = Clock::from(manual.clone());
/// let t0 = clock.now();
/// manual.advance(Duration::from_secs(3));
/// assert_eq!(clock.now() - t0, Duration::from_secs(3));
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

impl Clock {
    /// The monotonic system clock (tokio's, when the `tokio` feature is on, so paused test time
    /// applies).
    pub const fn system() -> Self {
        Self { manual: None }
    }

    /// The current instant.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => system_now(),
            Some(manual) => {
                manual
                    .inner
                    .reads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                manual.now()
            }
        }
    }

    /// The current instant, and a reading of the raw monotonic clock (in nanoseconds, the base
    /// of [`coarse_nanos`]) taken just before it, when this clock is known to tell real time.
    /// So `raw <= ` the instant, on the raw clock's scale.
    ///
    /// Slower than [`now`](Self::now) (four readings); for construction and state changes.
    /// Notes a paused tokio clock for the whole process (see the module docs).
    pub(crate) fn now_anchored(&self) -> (Instant, Option<u64>) {
        if self.manual.is_some() {
            return (self.now(), None);
        }
        #[cfg(all(
            feature = "tokio",
            target_os = "linux",
            not(any(loom, staunch_std_clock))
        ))]
        if VIRTUAL_TIME_SEEN.load(std::sync::atomic::Ordering::Relaxed) {
            return (self.now(), None);
        }
        #[cfg(all(target_os = "linux", not(any(loom, staunch_std_clock))))]
        {
            let raw = timespec_nanos(rustix::time::clock_gettime(
                rustix::time::ClockId::Monotonic,
            ));
            #[cfg(feature = "tokio")]
            {
                let (before, system, after) = (system_now(), Instant::now(), system_now());
                // Running tokio time is the system's: it moves, and brackets a system reading.
                // Paused, it stands still (nothing can advance it between two reads).
                if before == after || system < before || system > after {
                    VIRTUAL_TIME_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
                    return (after, None);
                }
                (before, Some(raw))
            }
            #[cfg(not(feature = "tokio"))]
            {
                (Instant::now(), Some(raw))
            }
        }
        #[cfg(not(all(target_os = "linux", not(any(loom, staunch_std_clock)))))]
        {
            (self.now(), None)
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// The manual clock, if this is one.
    pub(crate) fn manual(&self) -> Option<&ManualClock> {
        self.manual.as_ref()
    }

    /// Blocks the calling thread for `delay`, waking early if `cancel` fires. Returns `false` if
    /// it was cancelled.
    ///
    /// A manual clock does not block: it advances itself by `delay` at once (as tokio's paused
    /// time auto-advances), unless the token has already fired.
    pub(crate) fn sleep_blocking(
        &self,
        delay: Duration,
        cancel: Option<&CancellationToken>,
    ) -> bool {
        match (&self.manual, cancel) {
            (Some(_), Some(token)) if token.is_cancelled() => false,
            (Some(manual), _) => {
                manual.advance(delay);
                true
            }
            (None, Some(token)) => !token.wait_timeout(delay),
            (None, None) => {
                std::thread::sleep(delay);
                true
            }
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(manual) => f.debug_tuple("Clock::Manual").field(manual).finish(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self {
            manual: Some(manual),
        }
    }
}

#[inline]
fn system_now() -> Instant {
    #[cfg(feature = "tokio")]
    {
        tokio::time::Instant::now().into_std()
    }
    #[cfg(not(feature = "tokio"))]
    {
        Instant::now()
    }
}

/// A coarse reading of the raw monotonic clock in nanoseconds (trailing the exact one by up to
/// [`coarse_lag`]), while time in this process is known to be real and the platform has one.
///
/// Takes no clock: a caller holds the raw anchor [`Clock::now_anchored`] gave it, which is
/// `None` for a manual clock, and checks that first.
#[inline]
pub(crate) fn coarse_nanos() -> Option<u64> {
    #[cfg(all(target_os = "linux", not(any(loom, staunch_std_clock))))]
    {
        #[cfg(feature = "tokio")]
        if VIRTUAL_TIME_SEEN.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        Some(timespec_nanos(rustix::time::clock_gettime(
            rustix::time::ClockId::MonotonicCoarse,
        )))
    }
    #[cfg(not(all(target_os = "linux", not(any(loom, staunch_std_clock)))))]
    {
        None
    }
}

/// How far a coarse reading may trail the exact clock: two ticks of the coarse clock (its
/// resolution, 4 ms at 250 Hz), read once per process. Zero where there is no coarse clock.
pub(crate) fn coarse_lag() -> Duration {
    #[cfg(all(target_os = "linux", not(any(loom, staunch_std_clock))))]
    {
        static LAG: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
        *LAG.get_or_init(|| {
            let tick = timespec_nanos(rustix::time::clock_getres(
                rustix::time::ClockId::MonotonicCoarse,
            ));
            Duration::from_nanos(tick.saturating_mul(2))
        })
    }
    #[cfg(not(all(target_os = "linux", not(any(loom, staunch_std_clock)))))]
    {
        Duration::ZERO
    }
}

#[cfg(all(target_os = "linux", not(any(loom, staunch_std_clock))))]
#[inline]
fn timespec_nanos(ts: rustix::time::Timespec) -> u64 {
    // Monotonic readings are never negative and stay far below 2^64 ns (584 years of uptime),
    // so the plain arithmetic is exact, and costs the rejection path no overflow checks.
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// A clock that only moves when told to, for tests of blocking code and the pure cores.
///
/// Clones share one time line. It starts at the system instant of its creation and never goes
/// backwards. A blocking sleep on a manual clock returns at once after advancing it by the sleep's
/// length, so blocking tests run in virtual time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::ManualClock;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(clock.elapsed_since(start), Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    origin: Instant,
    offset_nanos: AtomicU64,
    /// Readings through a [`Clock`]. A std atomic even under loom: it decides nothing.
    reads: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A manual clock reading the current system instant.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ManualInner {
                origin: system_now(),
                offset_nanos: AtomicU64::new(0),
                reads: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// The current instant of this clock.
    pub fn now(&self) -> Instant {
        let offset = Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire));
        self.inner.origin + offset
    }

    /// Moves the clock forward by `by` (saturating after about 584 years).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                Some(old.saturating_add(nanos))
            });
    }

    /// Time from `earlier` to this clock's now (zero if `earlier` is later).
    pub fn elapsed_since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }

    /// How many times policies have read this clock (through a [`Clock`] made from it or a
    /// clone): for tests that pin when a policy needs the time. Reads made here, with
    /// [`now`](Self::now), are not counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use staunch::{ManualClock, Retry, RetryConfig};
    ///
    /// let clock = ManualClock::new();
    /// let retry = Retry::new(RetryConfig::new().with_max_attempts(2))?
    ///     .with_clock(clock.clone().into());
    /// let before = clock.reads();
    /// let _ = retry.call_blocking(|| Err::<(), _>("down"));
    /// // A failure needs the time: to decide on the retry, and to time the attempts.
    /// assert!(clock.reads() > before);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = Duration::from_nanos(self.inner.offset_nanos.load(Ordering::Acquire));
        f.debug_struct("ManualClock")
            .field("advanced", &offset)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        manual.clone().advance(Duration::from_millis(5));
        assert_eq!(clock.now() - t0, Duration::from_millis(5));
        manual.advance(Duration::MAX);
        assert!(clock.now() > t0);
    }

    #[test]
    fn blocking_sleep_on_manual_clock_advances_virtual_time() {
        let manual = ManualClock::new();
        let clock = Clock::from(manual.clone());
        let t0 = clock.now();
        assert!(clock.sleep_blocking(Duration::from_secs(3600), None));
        assert_eq!(clock.now() - t0, Duration::from_secs(3600));

        let token = CancellationToken::new();
        token.cancel();
        assert!(!clock.sleep_blocking(Duration::from_secs(1), Some(&token)));
        assert_eq!(
            clock.now() - t0,
            Duration::from_secs(3600),
            "a cancelled sleep does not advance"
        );
    }
}
