//! [`Refused`], the error of every local refusal, and [`Refusal`], its reason.

use std::fmt;
use std::time::Duration;

/// Why a local admission check refused a call before it reached the dependency.
///
/// Each is its own kind: none is a failure of the dependency, so no policy counts it as one
/// (a breaker never sees it, a retry budget does not spend on it), none is retried at once by
/// default, and a fallback covers every one by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Every slot of the concurrency limit was taken and the queue was full (or has no room:
    /// `max_queue` is 0 by default).
    LimitFull,
    /// The call waited in the queue for `max_wait` without getting a slot.
    QueueTimeout,
    /// The wait could not end before the deadline in scope: refused at once when the deadline
    /// had passed (or, for a rate limit, when the next token comes too late), or when the
    /// deadline arrived while waiting.
    Deadline,
    /// Client-side adaptive throttling rejected the call: the dependency has been refusing
    /// work, so this client sends it less.
    Throttled,
    /// The rate limit has no token for the call (and waiting for one is not allowed, or would
    /// take longer than the wait allowed).
    RateLimited,
}

impl Refusal {
    /// Every reason, in the order of their codes.
    pub(crate) const ALL: [Self; 5] = [
        Self::LimitFull,
        Self::QueueTimeout,
        Self::Deadline,
        Self::Throttled,
        Self::RateLimited,
    ];

    /// A short lowercase name, as used in telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LimitFull => "limit_full",
            Self::QueueTimeout => "queue_timeout",
            Self::Deadline => "deadline",
            Self::Throttled => "throttled",
            Self::RateLimited => "rate_limited",
        }
    }

    /// A dense index (0..5), for tables of counters and bit sets.
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::LimitFull => 0,
            Self::QueueTimeout => 1,
            Self::Deadline => 2,
            Self::Throttled => 3,
            Self::RateLimited => 4,
        }
    }

    const fn from_index(index: u64) -> Self {
        match index {
            0 => Self::LimitFull,
            1 => Self::QueueTimeout,
            2 => Self::Deadline,
            3 => Self::Throttled,
            _ => Self::RateLimited,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LimitFull => "the concurrency limit is full",
            Self::QueueTimeout => "no slot came free within max_wait",
            Self::Deadline => "no slot or token before the deadline",
            Self::Throttled => "throttled: the dependency has been refusing work",
            Self::RateLimited => "the rate limit is spent",
        })
    }
}

/// A local admission check refused the call without running it.
///
/// It says why ([`reason`](Self::reason)) and, when the refusing policy knows, when a call would
/// next be admitted ([`retry_after`](Self::retry_after), counted from the refusal, like
/// governor's `NotUntil`): a rate limit knows when its next token comes; a full concurrency
/// limit or the throttle cannot know. Tower services return it boxed in a `BoxError`; downcast
/// to find it.
///
/// One word (the reason and the duration, packed), like
/// [`CircuitOpen`](crate::breaker::CircuitOpen).
///
/// # Examples
///
/// ```
/// use staunch::limit::{ConcurrencyLimit, LimitConfig, Refusal};
///
/// let limit = ConcurrencyLimit::new(LimitConfig::fixed(1))?;
/// let _held = limit.try_acquire().unwrap();
/// let refused = limit.try_acquire().unwrap_err();
/// assert_eq!(refused.reason(), Refusal::LimitFull);
/// assert_eq!(refused.retry_after(), None);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refused {
    /// Bits 0..3: the reason's index; bits 3..64: nanoseconds until a call would be admitted,
    /// all ones for "unknown".
    bits: u64,
}

const REASON_BITS: u32 = 3;
const UNKNOWN: u64 = u64::MAX >> REASON_BITS;

impl Refused {
    /// A refusal for `reason`, with no known time to try again.
    #[inline]
    pub(crate) const fn new(reason: Refusal) -> Self {
        Self {
            bits: (UNKNOWN << REASON_BITS) | reason.index() as u64,
        }
    }

    /// A refusal for `reason`, admitted again `after` from now.
    #[cfg_attr(not(feature = "rate-limit"), allow(dead_code))]
    #[inline]
    pub(crate) fn after(reason: Refusal, after: Duration) -> Self {
        let nanos = u64::try_from(after.as_nanos())
            .unwrap_or(u64::MAX)
            .min(UNKNOWN - 1);
        Self {
            bits: (nanos << REASON_BITS) | reason.index() as u64,
        }
    }

    /// Why the call was refused.
    #[inline]
    pub const fn reason(&self) -> Refusal {
        Refusal::from_index(self.bits & ((1 << REASON_BITS) - 1))
    }

    /// How long from the refusal until the refusing policy would admit a call, when it knows
    /// (a rate limit's next token); `None` when it cannot know.
    #[inline]
    pub const fn retry_after(&self) -> Option<Duration> {
        let nanos = self.bits >> REASON_BITS;
        if nanos == UNKNOWN {
            None
        } else {
            Some(Duration::from_nanos(nanos))
        }
    }
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused")
            .field("reason", &self.reason())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused locally: {}", self.reason())?;
        if let Some(after) = self.retry_after() {
            write!(f, " (next admission in {after:?})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_one_word_and_round_trips() {
        assert_eq!(std::mem::size_of::<Refused>(), 8);
        for reason in Refusal::ALL {
            assert_eq!(Refused::new(reason).reason(), reason);
            assert_eq!(Refused::new(reason).retry_after(), None);
            let later = Refused::after(reason, Duration::from_millis(1500));
            assert_eq!(later.reason(), reason);
            assert_eq!(later.retry_after(), Some(Duration::from_millis(1500)));
            // Too long to pack: saturates, never reads as "unknown".
            assert!(
                Refused::after(reason, Duration::MAX)
                    .retry_after()
                    .is_some()
            );
        }
        for (i, reason) in Refusal::ALL.into_iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }

    #[test]
    fn display_names_the_reason_and_the_wait() {
        let text = Refused::after(Refusal::RateLimited, Duration::from_millis(20)).to_string();
        assert!(text.contains("rate limit"), "{text}");
        assert!(text.contains("20ms"), "{text}");
    }
}
