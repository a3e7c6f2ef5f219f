//! State changes: the event passed to subscribers, and the `tracing`/`metrics` hooks.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use super::State;

/// Why the state changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The trip rule fired in closed.
    Tripped,
    /// The open duration ended: a caller was admitted as the first probe, or, with automatic
    /// half-open, the timer moved the breaker to half-open.
    OpenElapsed,
    /// Enough probes succeeded.
    ProbesSucceeded,
    /// A probe failed.
    ProbeFailed,
    /// Every probe slot was held longer than the probe lease; the slots were reclaimed.
    LeaseExpired,
    /// The breaker was half-open for its
    /// [maximum wait](super::BreakerConfig::with_half_open_max_wait) and re-opened.
    HalfOpenTimedOut,
    /// [`force_open`](super::CircuitBreaker::force_open),
    /// [`force_closed`](super::CircuitBreaker::force_closed),
    /// [`disable`](super::CircuitBreaker::disable) or
    /// [`reset`](super::CircuitBreaker::reset).
    Manual,
}

impl Reason {
    /// A short lowercase name, as used in telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tripped => "tripped",
            Self::OpenElapsed => "open_elapsed",
            Self::ProbesSucceeded => "probes_succeeded",
            Self::ProbeFailed => "probe_failed",
            Self::LeaseExpired => "lease_expired",
            Self::HalfOpenTimedOut => "half_open_timed_out",
            Self::Manual => "manual",
        }
    }
}

/// A state change, passed to every [`on_state_change`](super::Builder::on_state_change)
/// callback.
///
/// Callbacks run on the thread that made the change (for the end of an open period with
/// automatic half-open, the runtime thread that runs its timer), after the change is visible
/// and never under a lock; they may call back into the breaker. Changes made concurrently by different
/// threads may reach a callback out of order: order them by [`generation`](Self::generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The breaker's name (see [`Builder::name`](super::Builder::name)).
    pub name: &'static str,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// The generation the change started (every transition starts a new one).
    pub generation: u32,
    /// Why it changed.
    pub reason: Reason,
    /// When, on the breaker's clock.
    pub at: Instant,
}

pub(crate) type Listener = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// The subscribers of one breaker.
#[derive(Clone, Default)]
pub(crate) struct Listeners(pub(crate) Vec<Listener>);

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} listener(s)", self.0.len())
    }
}

impl Listeners {
    pub(crate) fn emit(&self, change: &StateChange) {
        #[cfg(feature = "tracing")]
        {
            if change.to == State::Open || change.reason == Reason::LeaseExpired {
                tracing::warn!(
                    breaker = change.name,
                    from = change.from.as_str(),
                    to = change.to.as_str(),
                    generation = change.generation,
                    reason = change.reason.as_str(),
                    "circuit breaker state changed"
                );
            } else {
                tracing::info!(
                    breaker = change.name,
                    from = change.from.as_str(),
                    to = change.to.as_str(),
                    generation = change.generation,
                    reason = change.reason.as_str(),
                    "circuit breaker state changed"
                );
            }
        }
        #[cfg(feature = "metrics")]
        {
            metrics::counter!(
                "staunch_breaker_transitions_total",
                "breaker" => change.name,
                "to" => change.to.as_str(),
                "reason" => change.reason.as_str()
            )
            .increment(1);
            metrics::gauge!("staunch_breaker_state", "breaker" => change.name)
                .set(change.to.as_gauge());
        }
        for listener in &self.0 {
            listener(change);
        }
    }
}

/// Per-call counters registered once at construction, so that recording costs no lookup and no
/// allocation.
#[derive(Clone, Debug)]
pub(crate) struct Counters {
    #[cfg(feature = "metrics")]
    rejected: metrics::Counter,
    #[cfg(feature = "metrics")]
    stale: metrics::Counter,
}

impl Counters {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            rejected: metrics::counter!("staunch_breaker_rejected_total", "breaker" => name),
            #[cfg(feature = "metrics")]
            stale: metrics::counter!("staunch_breaker_stale_outcomes_total", "breaker" => name),
        }
    }

    #[inline]
    pub(crate) fn rejected(&self) {
        #[cfg(feature = "metrics")]
        self.rejected.increment(1);
    }

    #[inline]
    // The name and generation are only for the `tracing` event; the counter carries its labels.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn stale(&self, name: &'static str, generation: u32) {
        #[cfg(feature = "metrics")]
        self.stale.increment(1);
        #[cfg(feature = "tracing")]
        tracing::debug!(
            breaker = name,
            generation,
            "stale outcome ignored: the breaker changed state since the call was admitted"
        );
    }
}
