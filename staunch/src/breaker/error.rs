//! [`CircuitOpen`], the rejection, and [`Error`], the error of [`CircuitBreaker::call`](super::CircuitBreaker::call).

use std::fmt;
use std::time::{Duration, Instant};

use super::State;

/// The breaker rejected the call without running it.
///
/// It says when the breaker will next admit a probe ([`retry_at`](Self::retry_at)), like
/// governor's `NotUntil`. Tower services return it boxed in a `BoxError`; downcast to find it.
///
/// # Examples
///
/// ```
/// use staunch::breaker::{BreakerConfig, CircuitBreaker, State};
///
/// let breaker = CircuitBreaker::new(BreakerConfig::consecutive_failures(1))?;
/// breaker.try_acquire().unwrap().failure();
/// let open = breaker.try_acquire().unwrap_err();
/// assert_eq!(open.state(), State::Open);
/// assert!(open.retry_at().is_some());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    state: State,
    retry_at: Option<Instant>,
}

impl CircuitOpen {
    pub(crate) const fn new(state: State, retry_at: Option<Instant>) -> Self {
        Self { state, retry_at }
    }

    /// The state that rejected the call: [`State::Open`], [`State::HalfOpen`] (every probe slot
    /// taken) or [`State::ForcedOpen`].
    pub fn state(&self) -> State {
        self.state
    }

    /// When the breaker admits its next probe: the end of the open duration, or, in half-open
    /// with every slot taken, the latest instant at which the probe lease lets a new probe
    /// reclaim the slots (a slot may free up sooner). `None` when forced open: only a manual
    /// [`reset`](super::CircuitBreaker::reset) admits calls again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// How long from `now` until [`retry_at`](Self::retry_at) (zero if it has passed).
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|at| at.saturating_duration_since(now))
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
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
