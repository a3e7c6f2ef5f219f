use std::fmt;
#[cfg(feature = "tokio")]
use std::future::Future;
use std::time::{Duration, Instant};

use crate::backoff::scale;
use crate::{ConfigError, Deadline};

/// The limit on one attempt: fixed, or a fraction of the time the caller has left, and always
/// clipped to the remaining deadline.
///
/// A fixed timeout suits a dependency with a known latency profile ("pricing answers in 50 ms
/// or not at all"). A fraction of the remaining deadline suits a call made at different depths
/// of a request: early on it gets a generous slice, late on a small one, and a retry always has
/// time left after it. The rule of thumb is 10–25% of what remains, with a floor so a late
/// attempt is not hopelessly short and a ceiling so an early one does not wait forever.
///
/// | setting | default |
/// |---|---|
/// | [`with_min`](Self::with_min) | zero (no floor) |
/// | [`with_max`](Self::with_max) | none with a deadline in scope; 10 s without one |
///
/// With no deadline in scope a fraction has nothing to take a fraction of, so the ceiling
/// applies ([`DEFAULT_WITHOUT_DEADLINE`](Self::DEFAULT_WITHOUT_DEADLINE) if none is set). With a
/// deadline the result is `min(remaining, clamp(fraction × remaining, min, max))`: the floor never
/// pushes an attempt past the deadline.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use staunch::Deadline;
/// use staunch::deadline::AttemptTimeout;
///
/// let timeout = AttemptTimeout::fraction(0.25)
///     .with_min(Duration::from_millis(50))
///     .with_max(Duration::from_millis(500));
/// timeout.validate()?;
/// let now = Instant::now();
/// let at = |left_ms| timeout.timeout_at(now, Some(Deadline::after_from(now, Duration::from_millis(left_ms))));
/// assert_eq!(at(5_000), Some(Duration::from_millis(500))); // capped
/// assert_eq!(at(1_000), Some(Duration::from_millis(250))); // a quarter of what is left
/// assert_eq!(at(100), Some(Duration::from_millis(50)));    // the floor
/// assert_eq!(at(30), Some(Duration::from_millis(30)));     // never past the deadline
/// assert_eq!(at(0), None);                                 // no time left: do not call
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptTimeout {
    kind: Kind,
    min: Duration,
    max: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Fixed(Duration),
    Fraction(f64),
}

impl AttemptTimeout {
    /// The limit of a fraction timeout when no deadline is in scope and no ceiling is set.
    pub const DEFAULT_WITHOUT_DEADLINE: Duration = Duration::from_secs(10);

    /// Every attempt gets `timeout`, or what is left of the deadline if that is less.
    pub const fn fixed(timeout: Duration) -> Self {
        Self {
            kind: Kind::Fixed(timeout),
            min: Duration::ZERO,
            max: None,
        }
    }

    /// Every attempt gets `fraction` of the time left before the deadline (in `(0, 1]`).
    pub const fn fraction(fraction: f64) -> Self {
        Self {
            kind: Kind::Fraction(fraction),
            min: Duration::ZERO,
            max: None,
        }
    }

    /// Sets the floor: no attempt gets less than this, unless the deadline is closer.
    pub const fn with_min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// Sets the ceiling: no attempt gets more than this. Also the limit of a fraction timeout
    /// when no deadline is in scope.
    pub const fn with_max(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A zero fixed timeout, a fraction outside `(0, 1]`, or a floor above the ceiling.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.kind {
            Kind::Fixed(timeout) if timeout.is_zero() => {
                return Err(ConfigError::new(
                    "attempt_timeout",
                    "a zero timeout would fail every attempt before it starts; use a positive duration",
                ));
            }
            Kind::Fraction(f) if !(f > 0.0 && f <= 1.0) => {
                return Err(ConfigError::new(
                    "fraction",
                    format!(
                        "{f} is not allowed; use a fraction in (0, 1] of the remaining deadline (0.1 to 0.25 is typical)"
                    ),
                ));
            }
            _ => {}
        }
        if let Some(max) = self.max
            && self.min > max
        {
            return Err(ConfigError::new(
                "min",
                format!(
                    "the floor ({:?}) is above the ceiling ({max:?}); lower with_min or raise with_max",
                    self.min
                ),
            ));
        }
        Ok(())
    }

    /// The limit for an attempt starting at `now` under `deadline`, or `None` when the deadline
    /// has passed (the attempt must not start). Pure.
    pub fn timeout_at(&self, now: Instant, deadline: Option<Deadline>) -> Option<Duration> {
        let remaining = match deadline {
            Some(deadline) if deadline.is_expired_at(now) => return None,
            Some(deadline) => Some(deadline.remaining_at(now)),
            None => None,
        };
        let ceiling = self.max.unwrap_or(Duration::MAX);
        let wanted = match (self.kind, remaining) {
            (Kind::Fixed(timeout), _) => timeout.min(ceiling),
            (Kind::Fraction(f), Some(remaining)) => scale(remaining, f).min(ceiling),
            (Kind::Fraction(_), None) => self.max.unwrap_or(Self::DEFAULT_WITHOUT_DEADLINE),
        };
        // Even an unvalidated setting (NaN, a floor above the ceiling) must not panic here.
        let wanted = wanted.max(self.min);
        Some(remaining.map_or(wanted, |remaining| wanted.min(remaining)))
    }

    /// Runs `future` under this limit (and the deadline in scope).
    ///
    /// # Errors
    ///
    /// [`Elapsed`] if the limit passed first, or at once, without polling `future`, if the
    /// deadline had already passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use staunch::deadline::AttemptTimeout;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let slow = tokio::time::sleep(Duration::from_secs(1));
    /// let err = AttemptTimeout::fixed(Duration::from_millis(500)).run(slow).await.unwrap_err();
    /// assert_eq!(err.timeout(), Duration::from_millis(500));
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn run<F: Future>(&self, future: F) -> Result<F::Output, Elapsed> {
        let now = crate::Clock::system().now();
        let deadline = Deadline::current();
        let Some(timeout) = self.timeout_at(now, deadline) else {
            return Err(Elapsed::new(Duration::ZERO, true));
        };
        let clipped = deadline.is_some_and(|d| timeout == d.remaining_at(now));
        tokio::time::timeout(timeout, future)
            .await
            .map_err(|_| Elapsed::new(timeout, clipped))
    }
}

/// An attempt ran out of time: its own limit, or the caller's deadline.
///
/// Distinct from the operation's own errors. Retry treats it as transient and a circuit
/// breaker as a failure, by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    timeout: Duration,
    deadline: bool,
}

impl Elapsed {
    #[cfg(feature = "tokio")]
    pub(crate) const fn new(timeout: Duration, deadline: bool) -> Self {
        Self { timeout, deadline }
    }

    /// The limit that passed (zero if the deadline had passed before the attempt).
    pub const fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the limit was the caller's deadline rather than the attempt's own timeout.
    pub const fn is_deadline(&self) -> bool {
        self.deadline
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.deadline, self.timeout.is_zero()) {
            (true, true) => f.write_str("the deadline had passed before the attempt"),
            (true, false) => write!(f, "the deadline passed after {:?}", self.timeout),
            (false, _) => write!(f, "the attempt timed out after {:?}", self.timeout),
        }
    }
}

impl std::error::Error for Elapsed {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn invalid_settings_name_the_field() {
        let cases = [
            (AttemptTimeout::fixed(Duration::ZERO), "attempt_timeout"),
            (AttemptTimeout::fraction(0.0), "fraction"),
            (AttemptTimeout::fraction(1.5), "fraction"),
            (AttemptTimeout::fraction(f64::NAN), "fraction"),
            (
                AttemptTimeout::fraction(0.2).with_min(10 * MS).with_max(MS),
                "min",
            ),
        ];
        for (timeout, field) in cases {
            assert_eq!(
                timeout.validate().unwrap_err().field(),
                field,
                "{timeout:?}"
            );
        }
    }

    #[test]
    fn fixed_is_clipped_to_the_deadline_and_capped() {
        let now = Instant::now();
        let t = AttemptTimeout::fixed(200 * MS);
        assert_eq!(t.timeout_at(now, None), Some(200 * MS));
        assert_eq!(
            t.timeout_at(now, Some(Deadline::after_from(now, 50 * MS))),
            Some(50 * MS)
        );
        assert_eq!(t.with_max(100 * MS).timeout_at(now, None), Some(100 * MS));
        assert_eq!(t.timeout_at(now, Some(Deadline::at(now))), None);
    }

    #[test]
    fn unvalidated_settings_do_not_panic() {
        let now = Instant::now();
        let deadline = Some(Deadline::after_from(now, 100 * MS));
        for t in [
            AttemptTimeout::fraction(f64::NAN),
            AttemptTimeout::fraction(-3.0),
            AttemptTimeout::fraction(f64::INFINITY),
            AttemptTimeout::fraction(0.5).with_min(10 * MS).with_max(MS),
        ] {
            let timeout = t.timeout_at(now, deadline).unwrap();
            assert!(timeout <= 100 * MS, "{t:?}: {timeout:?}");
        }
    }

    #[test]
    fn fraction_without_a_deadline_uses_the_ceiling_or_the_default() {
        let now = Instant::now();
        let t = AttemptTimeout::fraction(0.1);
        assert_eq!(
            t.timeout_at(now, None),
            Some(AttemptTimeout::DEFAULT_WITHOUT_DEADLINE)
        );
        assert_eq!(t.with_max(300 * MS).timeout_at(now, None), Some(300 * MS));
    }

    proptest! {
        #[test]
        fn never_past_the_deadline_never_below_the_floor_unless_the_deadline_is_closer(
            fraction in 0.001f64..=1.0,
            min_ms in 0u64..1000,
            extra_ms in 0u64..10_000,
            left_ms in 0u64..100_000,
            fixed in any::<bool>(),
        ) {
            let now = Instant::now();
            let min = Duration::from_millis(min_ms);
            let max = min + Duration::from_millis(extra_ms);
            let base = if fixed { AttemptTimeout::fixed(Duration::from_millis(extra_ms + 1)) } else { AttemptTimeout::fraction(fraction) };
            let t = base.with_min(min).with_max(max);
            prop_assert!(t.validate().is_ok());
            let left = Duration::from_millis(left_ms);
            match t.timeout_at(now, Some(Deadline::after_from(now, left))) {
                None => prop_assert!(left.is_zero()),
                Some(timeout) => {
                    prop_assert!(timeout <= left);
                    prop_assert!(timeout <= max.max(min));
                    prop_assert!(timeout >= min.min(left));
                }
            }
        }
    }
}
