//! The local admission checks of an attempt: adaptive throttling, the rate limit, the
//! concurrency limit, in that order, each before the breaker (see the module docs).

use std::fmt;

use crate::classify::Class;
#[cfg(feature = "tower")]
use crate::limit::OwnedPermit;
#[cfg(feature = "rate-limit")]
use crate::limit::RateLimit;
use crate::limit::{AdaptiveThrottle, ConcurrencyLimit, Permit, Refused};

/// The admission checks a pipeline makes before each attempt.
#[derive(Clone, Default)]
pub(super) struct Admission {
    pub(super) throttle: Option<AdaptiveThrottle>,
    #[cfg(feature = "rate-limit")]
    pub(super) rate: Option<RateLimit>,
    pub(super) limit: Option<ConcurrencyLimit>,
}

/// What an admitted attempt holds: whether the throttle counts it, and its slot.
pub(super) struct Admitted<'a> {
    throttle: Option<&'a AdaptiveThrottle>,
    limit: Option<Permit<'a>>,
}

impl Admission {
    /// Whether there is no check to make.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        #[cfg(feature = "rate-limit")]
        if self.rate.is_some() {
            return false;
        }
        self.throttle.is_none() && self.limit.is_none()
    }

    /// Admits an attempt, waiting (for a rate-limit token, or in the concurrency limit's
    /// queue) as the policies allow, never past the deadline in scope. A later check's refusal
    /// drops what earlier ones gave: the throttle counts nothing, a slot is freed.
    ///
    /// # Errors
    ///
    /// The first check's refusal.
    #[inline]
    pub(super) async fn admit(&self) -> Result<Admitted<'_>, Refused> {
        let throttle = match &self.throttle {
            Some(throttle) => {
                throttle.admit()?;
                Some(throttle)
            }
            None => None,
        };
        #[cfg(feature = "rate-limit")]
        if let Some(rate) = &self.rate {
            rate.acquire().await?;
        }
        let limit = match &self.limit {
            Some(limit) => Some(limit.acquire().await?),
            None => None,
        };
        Ok(Admitted { throttle, limit })
    }
}

/// What an attempt admitted at once holds, owned (for the tower pipeline's hedged attempts):
/// whether the throttle counts it, and its slot.
#[cfg(feature = "tower")]
pub(super) struct Held {
    throttled: bool,
    slot: Option<OwnedPermit>,
}

impl Admission {
    /// Admits an attempt at once, or refuses it: for the attempts of a hedged tower call, which
    /// do not wait (a hedge that cannot go at once is not sent, and the call waits for the
    /// attempts in flight). A later check's refusal drops what earlier ones gave.
    ///
    /// # Errors
    ///
    /// The first check's refusal.
    #[cfg(feature = "tower")]
    pub(super) fn try_admit_owned(&self) -> Result<Held, Refused> {
        if let Some(throttle) = &self.throttle {
            throttle.admit()?;
        }
        #[cfg(feature = "rate-limit")]
        if let Some(rate) = &self.rate {
            rate.try_acquire()?;
        }
        let slot = match &self.limit {
            Some(limit) => Some(limit.try_acquire_owned()?),
            None => None,
        };
        Ok(Held {
            throttled: self.throttle.is_some(),
            slot,
        })
    }
}

#[cfg(feature = "tower")]
impl Held {
    /// Reports the attempt's class, as [`Admitted::record`] does.
    pub(super) fn record(self, admission: &Admission, class: Class) {
        if let Some(slot) = self.slot {
            slot.record(class);
        }
        if self.throttled
            && let Some(throttle) = &admission.throttle
        {
            throttle.record_class(class);
        }
    }
}

impl Admitted<'_> {
    /// Reports the attempt's class: an adaptive limit's sample (a timeout is a drop) and the
    /// throttle's accept or refusal.
    #[inline]
    pub(super) fn record(self, class: Class) {
        if let Some(limit) = self.limit {
            limit.record(class);
        }
        if let Some(throttle) = self.throttle {
            throttle.record_class(class);
        }
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Admission");
        debug.field("throttle", &self.throttle);
        #[cfg(feature = "rate-limit")]
        debug.field("rate", &self.rate);
        debug.field("limit", &self.limit).finish()
    }
}
