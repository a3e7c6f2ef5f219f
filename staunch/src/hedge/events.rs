//! What a hedged call reports: hedges sent, won and refused, to the hook of
//! [`Hedge::on_hedge`](super::Hedge::on_hedge), `tracing` and `metrics`.

use std::fmt;
use std::sync::Arc;

use crate::StopReason;

/// One hedging decision, passed to every [`on_hedge`](super::Hedge::on_hedge) hook.
///
/// Hooks run on the thread that polls the call, inside its poll, never under a lock: keep them
/// short (count, log), and do not block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HedgeEvent {
    /// The policy's name (see [`Hedge::with_name`](super::Hedge::with_name)).
    pub policy: &'static str,
    /// The attempt concerned, counting from 1 for the first: 2 is the first hedge.
    pub attempt: u32,
    /// What happened to it.
    pub kind: HedgeEventKind,
}

/// What happened to a hedge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HedgeEventKind {
    /// The attempt was sent, for this reason.
    Sent {
        /// Why it was sent now.
        trigger: Trigger,
    },
    /// The attempt's answer won: the call returns it and drops the others.
    Won,
    /// The attempt was not sent, or, refused by a local check such as an open circuit, never
    /// reached the dependency: [`Budget`](StopReason::Budget) (the retry budget is spent),
    /// [`Deadline`](StopReason::Deadline) (it would go at or past the deadline),
    /// [`RetryAfterTooLong`](StopReason::RetryAfterTooLong) (a server asked for a longer wait
    /// than `max_retry_after`), or, in a pipeline, [`CircuitOpen`](StopReason::CircuitOpen).
    Refused(StopReason),
}

/// Why a hedge was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// The delay (or a failed attempt's Retry-After hint) passed with no answer.
    Delay,
    /// An attempt failed with a transient failure: the next goes at once.
    Failure,
}

impl Trigger {
    /// A short lowercase name, as used in telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delay => "delay",
            Self::Failure => "failure",
        }
    }
}

/// The hook type: any `Fn(&HedgeEvent)` shared between threads.
pub(crate) type Hook = Arc<dyn Fn(&HedgeEvent) + Send + Sync>;

/// A `Debug` stand-in for a hook.
pub(crate) struct HookDebug<'a>(pub(crate) &'a Option<Hook>);

impl fmt::Debug for HookDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<hook>)"
        } else {
            "None"
        })
    }
}
