use crate::{Error, StopReason};

/// The failures a fallback covers: a set of [`StopReason`]s, plus "the last attempt timed out".
///
/// # Examples
///
/// ```
/// use staunch::StopReason;
/// use staunch::fallback::FallbackOn;
///
/// let on = FallbackOn::DEFAULT.with(StopReason::Budget).without(StopReason::Exhausted);
/// assert!(on.contains(StopReason::Budget));
/// assert!(!on.contains(StopReason::Exhausted));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FallbackOn {
    bits: u16,
}

const fn bit(reason: StopReason) -> u16 {
    1 << match reason {
        StopReason::Permanent => 0,
        StopReason::Exhausted => 1,
        StopReason::Deadline => 2,
        StopReason::Budget => 3,
        StopReason::Cancelled => 4,
        StopReason::RetryAfterTooLong => 5,
        StopReason::Timeout => 6,
        StopReason::CircuitOpen => 7,
        StopReason::FallbackFailed => 8,
        StopReason::MaxDuration => 9,
    }
}

impl FallbackOn {
    /// An open circuit, a timeout (as the stop reason or the last attempt's failure), the
    /// deadline (no time left for another attempt: the whole call timed out) and exhausted
    /// retries (out of attempts, or out of the time allowed for retrying).
    pub const DEFAULT: Self = Self::NONE
        .with(StopReason::CircuitOpen)
        .with(StopReason::Timeout)
        .with(StopReason::Deadline)
        .with(StopReason::Exhausted)
        .with(StopReason::MaxDuration);

    /// Nothing: the fallback never runs.
    pub const NONE: Self = Self { bits: 0 };

    /// Every failure except cancellation (a cancelled caller wants no answer) and a failed
    /// fallback.
    pub const ALL: Self = Self::DEFAULT
        .with(StopReason::Permanent)
        .with(StopReason::Budget)
        .with(StopReason::RetryAfterTooLong);

    /// Adds `reason`.
    pub const fn with(self, reason: StopReason) -> Self {
        Self {
            bits: self.bits | bit(reason),
        }
    }

    /// Removes `reason`.
    pub const fn without(self, reason: StopReason) -> Self {
        Self {
            bits: self.bits & !bit(reason),
        }
    }

    /// Whether `reason` is covered.
    pub const fn contains(self, reason: StopReason) -> bool {
        self.bits & bit(reason) != 0
    }

    /// Whether the fallback runs for `error`: its reason is covered, or its last attempt timed
    /// out (or met an open circuit) and that is covered. Cancellation and a failed fallback never
    /// are.
    pub fn covers<E>(self, error: &Error<E>) -> bool {
        match error.reason() {
            StopReason::Cancelled | StopReason::FallbackFailed => false,
            reason => {
                self.contains(reason)
                    || (error.is_timeout() && self.contains(StopReason::Timeout))
                    || (error.circuit_open().is_some() && self.contains(StopReason::CircuitOpen))
            }
        }
    }
}

impl Default for FallbackOn {
    fn default() -> Self {
        Self::DEFAULT
    }
}
