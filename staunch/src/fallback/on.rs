use crate::limit::Refusal;
use crate::{Error, StopReason};

/// The failures a fallback covers: a set of [`StopReason`]s, plus "the last attempt timed out".
///
/// Each local refusal reason ([`StopReason::Refused`]) is a member of its own, so a fallback
/// can cover a throttled call and not a full queue, say.
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
    bits: u32,
}

const fn bit(reason: StopReason) -> u32 {
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
        StopReason::Refused(refusal) => 10 + refusal.index() as u32,
    }
}

impl FallbackOn {
    /// An open circuit, every local refusal (a full concurrency limit or queue, throttling, a
    /// rate limit), a timeout (as the stop reason or the last attempt's failure), the deadline
    /// (no time left for another attempt: the whole call timed out) and exhausted retries (out
    /// of attempts, or out of the time allowed for retrying).
    pub const DEFAULT: Self = Self::NONE
        .with(StopReason::CircuitOpen)
        .with_refusals()
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

    /// Adds every local refusal reason ([`StopReason::Refused`]).
    pub const fn with_refusals(self) -> Self {
        let mut on = self;
        let mut i = 0;
        while i < Refusal::ALL.len() {
            on = on.with(StopReason::Refused(Refusal::ALL[i]));
            i += 1;
        }
        on
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
    /// out (or met an open circuit, or a local refusal) and that is covered. Cancellation and a
    /// failed fallback never are.
    pub fn covers<E>(self, error: &Error<E>) -> bool {
        match error.reason() {
            StopReason::Cancelled | StopReason::FallbackFailed => false,
            reason => {
                self.contains(reason)
                    || (error.is_timeout() && self.contains(StopReason::Timeout))
                    || (error.circuit_open().is_some() && self.contains(StopReason::CircuitOpen))
                    || error
                        .refused()
                        .is_some_and(|refused| self.contains(StopReason::Refused(refused.reason())))
            }
        }
    }
}

impl Default for FallbackOn {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Failure;
    use crate::limit::Refused;

    #[test]
    fn the_default_covers_every_local_refusal_and_each_can_be_left_out() {
        for reason in Refusal::ALL {
            let stop = StopReason::Refused(reason);
            assert!(FallbackOn::DEFAULT.contains(stop), "{stop:?}");
            let error = Error::<()>::with_failure(
                stop,
                1,
                Default::default(),
                Some(Failure::Refused(Refused::new(reason))),
            );
            assert!(error.is_refused());
            assert_eq!(error.refused().map(Refused::reason), Some(reason));
            assert!(FallbackOn::DEFAULT.covers(&error));
            assert!(!FallbackOn::DEFAULT.without(stop).covers(&error));
            assert!(!FallbackOn::NONE.covers(&error));
        }
        let throttled_only = FallbackOn::NONE.with(StopReason::Refused(Refusal::Throttled));
        assert!(!throttled_only.contains(StopReason::Refused(Refusal::LimitFull)));
        assert_eq!(
            StopReason::Refused(Refusal::RateLimited).as_str(),
            "refused_rate_limited"
        );
    }
}
