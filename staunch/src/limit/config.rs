//! [`LimitConfig`]: a fixed or adaptive concurrency limit, and its queue.

use std::time::Duration;

use super::algorithm::{Aimd, Gradient2, Vegas};
use crate::ConfigError;

/// The largest limit (and floor, ceiling, queue): counts share one 64-bit word.
pub(crate) const MAX_LIMIT: u32 = 1 << 24;

/// How the limit is set: fixed, or by an algorithm that follows the dependency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Fixed(u32),
    Aimd(Aimd),
    Vegas(Vegas),
    Gradient2(Gradient2),
}

/// The configuration of a [`ConcurrencyLimit`](super::ConcurrencyLimit): how many calls may be in
/// flight at once (fixed, or adaptive), and how callers that find every slot taken wait. A
/// small `Copy` value, validated once by [`ConcurrencyLimit::new`](super::ConcurrencyLimit::new).
///
/// | setting | default |
/// |---|---|
/// | the limit | chosen by the constructor: [`fixed`](Self::fixed), [`aimd`](Self::aimd), [`vegas`](Self::vegas), [`gradient2`](Self::gradient2) |
/// | [`with_max_queue`](Self::with_max_queue) | 0: a caller that finds the limit full is refused at once |
/// | [`with_max_wait`](Self::with_max_wait) | 1 s (only with a queue) |
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::limit::{Aimd, ConcurrencyLimit, LimitConfig};
///
/// let fixed = LimitConfig::fixed(32)
///     .with_max_queue(64)
///     .with_max_wait(Duration::from_millis(50));
/// let adaptive = LimitConfig::aimd(Aimd::new().with_min_limit(5).with_max_limit(100));
/// ConcurrencyLimit::new(fixed)?;
/// ConcurrencyLimit::new(adaptive)?;
///
/// let err = ConcurrencyLimit::new(LimitConfig::fixed(0)).unwrap_err();
/// assert_eq!(err.field(), "limit");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitConfig {
    pub(crate) kind: Kind,
    pub(crate) max_queue: u32,
    pub(crate) max_wait: Duration,
}

const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(1);

impl LimitConfig {
    const fn with_kind(kind: Kind) -> Self {
        Self {
            kind,
            max_queue: 0,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// At most `limit` calls in flight, always (a bulkhead). `limit` must be in `1..=2^24`.
    pub const fn fixed(limit: u32) -> Self {
        Self::with_kind(Kind::Fixed(limit))
    }

    /// A limit set by [`Aimd`]: one more slot while calls succeed with the limit in use, a
    /// tenth fewer (by default) on each drop.
    pub const fn aimd(aimd: Aimd) -> Self {
        Self::with_kind(Kind::Aimd(aimd))
    }

    /// A limit set by [`Vegas`]: grows while latency stays at its floor, shrinks as queueing
    /// shows in it.
    pub const fn vegas(vegas: Vegas) -> Self {
        Self::with_kind(Kind::Vegas(vegas))
    }

    /// A limit set by [`Gradient2`]: follows the ratio of a long-term to the latest latency.
    pub const fn gradient2(gradient2: Gradient2) -> Self {
        Self::with_kind(Kind::Gradient2(gradient2))
    }

    /// Sets how many callers may wait for a slot, first come first served (default 0: a caller
    /// that finds every slot taken is refused at once with
    /// [`Refusal::LimitFull`](super::Refusal::LimitFull)). A caller that finds the queue full is
    /// refused at once too. At most 2^24.
    pub const fn with_max_queue(mut self, max_queue: u32) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// Sets how long a caller waits in the queue before it is refused with
    /// [`Refusal::QueueTimeout`](super::Refusal::QueueTimeout) (default 1 s, non-zero). The
    /// deadline in scope cuts the wait shorter (then the refusal is
    /// [`Refusal::Deadline`](super::Refusal::Deadline)).
    pub const fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The limit a new [`ConcurrencyLimit`](super::ConcurrencyLimit) starts with.
    pub const fn initial_limit(&self) -> u32 {
        match &self.kind {
            Kind::Fixed(limit) => *limit,
            Kind::Aimd(a) => a.initial_limit,
            Kind::Vegas(v) => v.initial_limit,
            Kind::Gradient2(g) => g.initial_limit,
        }
    }

    /// Whether the limit adapts (every kind but [`fixed`](Self::fixed)).
    pub const fn is_adaptive(&self) -> bool {
        !matches!(self.kind, Kind::Fixed(_))
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// A setting out of range; the error names it and says what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.kind {
            Kind::Fixed(limit) => check_limit("limit", *limit)?,
            Kind::Aimd(a) => a.validate()?,
            Kind::Vegas(v) => v.validate()?,
            Kind::Gradient2(g) => g.validate()?,
        }
        if self.max_queue > MAX_LIMIT {
            return Err(ConfigError::new(
                "max_queue",
                format!("{} is above the largest queue, 2^24", self.max_queue),
            ));
        }
        if self.max_wait.is_zero() {
            return Err(ConfigError::new(
                "max_wait",
                "use a non-zero wait; for no waiting at all, leave max_queue at 0",
            ));
        }
        Ok(())
    }
}

/// A limit, floor or ceiling must be in `1..=2^24`.
pub(crate) fn check_limit(field: &'static str, value: u32) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(
            field,
            "use at least 1: a limit of 0 would refuse every call",
        ));
    }
    if value > MAX_LIMIT {
        return Err(ConfigError::new(
            field,
            format!("{value} is above the largest limit, 2^24"),
        ));
    }
    Ok(())
}

/// `min <= initial <= max`, each a valid limit.
pub(crate) fn check_bounds(
    (min_field, min): (&'static str, u32),
    initial: u32,
    (max_field, max): (&'static str, u32),
) -> Result<(), ConfigError> {
    check_limit(min_field, min)?;
    check_limit(max_field, max)?;
    check_limit("initial_limit", initial)?;
    if min > max {
        return Err(ConfigError::new(
            min_field,
            format!("the floor {min} is above the ceiling {max_field} = {max}; lower it"),
        ));
    }
    if initial < min || initial > max {
        return Err(ConfigError::new(
            "initial_limit",
            format!("{initial} is outside [{min_field}, {max_field}] = [{min}, {max}]"),
        ));
    }
    Ok(())
}

/// A finite number in `range` (written for the message).
pub(crate) fn check_number(
    field: &'static str,
    value: f64,
    ok: impl Fn(f64) -> bool,
    range: &str,
) -> Result<(), ConfigError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{value} is not a number in {range}"),
        ))
    }
}
