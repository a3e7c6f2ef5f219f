//! [`CircuitOpen`], the rejection, and [`Error`], the error of [`CircuitBreaker::call`](super::CircuitBreaker::call).

use std::fmt;
use std::time::Duration;

use super::State;

/// The breaker rejected the call without running it.
///
/// It says when the breaker will next admit a probe ([`retry_after`](Self::retry_after), counted
/// from the rejection), like governor's `NotUntil`. Tower services return it boxed in a
/// `BoxError`; downcast to find it.
///
/// It is one word (a `Duration` and the state, packed), so that `Result<T, Error<E>>` stays
/// small enough to return in registers on the hot path.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
///
/// let breaker = CircuitBreaker::new(
///     BreakerConfig::consecutive_failures(1).with_open_duration(Duration::from_secs(30)),
/// )?;
/// breaker.try_acquire().unwrap().failure();
/// let open = breaker.try_acquire().unwrap_err();
/// assert_eq!(open.state(), State::Open);
/// assert!(open.retry_after().unwrap() <= Duration::from_secs(30));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitOpen {
    /// Bits 0..2: the state (0 open, 1 half-open, 2 forced open); bits 2..64: nanoseconds until
    /// the next probe, all ones for "not until a manual reset".
    bits: u64,
}

const STATE_BITS: u32 = 2;
const NEVER: u64 = u64::MAX >> STATE_BITS;

impl CircuitOpen {
    /// A rejection by `state`, the next probe `retry_after_nanos` from now (`None`: never).
    #[inline]
    pub(crate) fn new(state: State, retry_after_nanos: Option<u64>) -> Self {
        let code = match state {
            State::HalfOpen => 1,
            State::ForcedOpen => 2,
            _ => 0,
        };
        let nanos = match retry_after_nanos {
            Some(nanos) => nanos.min(NEVER - 1),
            None => NEVER,
        };
        Self {
            bits: (nanos << STATE_BITS) | code,
        }
    }

    /// The state that rejected the call: [`State::Open`], [`State::HalfOpen`] (every probe slot
    /// taken) or [`State::ForcedOpen`].
    pub fn state(&self) -> State {
        match self.bits & 0b11 {
            1 => State::HalfOpen,
            2 => State::ForcedOpen,
            _ => State::Open,
        }
    }

    /// How long after the rejection the breaker admits its next probe: the rest of the open
    /// duration, or, in half-open with every slot taken, the longest the probe lease lets the
    /// current probes hold their slots (a slot may free up sooner), or, when the
    /// [half-open maximum wait](super::BreakerConfig::with_half_open_max_wait) ends first, the
    /// rest of the wait and the next open duration (its base value, before jitter). `None`
    /// when forced open: only a manual [`reset`](super::CircuitBreaker::reset) admits calls
    /// again.
    ///
    /// Never less than the exact answer. It may be more by up to ~8 ms (a coarse clock
    /// reading), or, with [automatic half-open](super::BreakerConfig::with_automatic_half_open),
    /// by up to the interval at which the timer measures the time left.
    ///
    /// Suitable for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        let nanos = self.bits >> STATE_BITS;
        (nanos != NEVER).then(|| Duration::from_nanos(nanos))
    }
}

impl fmt::Debug for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitOpen")
            .field("state", &self.state())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state() {
            State::ForcedOpen => f.write_str("circuit breaker is forced open"),
            State::HalfOpen => {
                f.write_str("circuit breaker is half-open and every probe slot is taken")
            }
            _ => f.write_str("circuit breaker is open"),
        }
    }
}

impl std::error::Error for CircuitOpen {}

/// The error of [`CircuitBreaker::call`](super::CircuitBreaker::call) and
/// [`call_blocking`](super::CircuitBreaker::call_blocking): the breaker rejected the call, or the
/// call ran and returned an error.
///
/// # Examples
///
/// ```
/// use staunch::breaker::{BreakerConfig, CircuitBreaker};
///
/// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1))?;
/// let err = breaker.call_blocking(|| Err::<(), _>("refused")).unwrap_err();
/// assert_eq!(err.into_inner(), Some("refused"));
/// let err = breaker.call_blocking(|| Ok::<_, &str>(())).unwrap_err();
/// assert!(err.is_open());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// Rejected without running: the breaker is open.
    Open(CircuitOpen),
    /// The call ran and failed with this error.
    Inner(E),
}

impl<E> Error<E> {
    /// Whether the breaker rejected the call.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open(_))
    }

    /// The rejection, if the breaker rejected the call.
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        match self {
            Self::Open(open) => Some(open),
            Self::Inner(_) => None,
        }
    }

    /// The call's own error, if it ran.
    pub fn inner(&self) -> Option<&E> {
        match self {
            Self::Inner(e) => Some(e),
            Self::Open(_) => None,
        }
    }

    /// Takes the call's own error out, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Self::Inner(e) => Some(e),
            Self::Open(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open(open) => open.fmt(f),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open(open) => Some(open),
            Self::Inner(e) => Some(e),
        }
    }
}

impl<E> From<CircuitOpen> for Error<E> {
    fn from(open: CircuitOpen) -> Self {
        Self::Open(open)
    }
}
