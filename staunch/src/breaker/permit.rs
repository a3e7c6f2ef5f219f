//! Permits: the right to run one call, reported back with an outcome.

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Instant;

use super::CircuitBreaker;
use super::shared::{Shared, outcome_of};
use super::state::Outcome;
use crate::classify::Class;

/// What a permit remembers: the generation that admitted it, whether it holds a probe slot, and
/// when it started (only when calls are timed).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawPermit {
    pub(crate) generation: u32,
    pub(crate) probe: bool,
    pub(crate) started: Option<Instant>,
}

impl RawPermit {
    #[inline]
    pub(crate) const fn normal(generation: u32, started: Option<Instant>) -> Self {
        Self {
            generation,
            probe: false,
            started,
        }
    }

    pub(crate) const fn probe(generation: u32, started: Option<Instant>) -> Self {
        Self {
            generation,
            probe: true,
            started,
        }
    }
}

/// The right to run one call, from [`CircuitBreaker::try_acquire`]. Report the outcome with
/// [`success`](Self::success), [`failure`](Self::failure), [`ignore`](Self::ignore) or
/// [`record`](Self::record).
///
/// It is a guard: dropped without an outcome (a cancelled future, a panic), it counts as nothing
/// and, if it holds a half-open probe slot, returns it.
///
/// The outcome only counts in the generation that admitted the permit: if the breaker changed
/// state since (a trip, a close, a reset), the outcome is stale and changes nothing.
#[must_use = "a permit dropped without an outcome counts as nothing"]
pub struct Permit<'a> {
    shared: &'a Shared,
    raw: RawPermit,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(shared: &'a Shared, raw: RawPermit) -> Self {
        Self { shared, raw }
    }

    /// Whether this permit holds a half-open probe slot.
    pub fn is_probe(&self) -> bool {
        self.raw.probe
    }

    /// The generation that admitted the call.
    pub fn generation(&self) -> u32 {
        self.raw.generation
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.finish(Outcome::Success);
    }

    /// The call failed.
    #[inline]
    pub fn failure(self) {
        self.finish(Outcome::Failure);
    }

    /// The outcome says nothing about the dependency: count it as neither (a probe slot is
    /// returned).
    #[inline]
    pub fn ignore(self) {
        self.finish(Outcome::Ignored);
    }

    /// Records a [`Class`]: success, ignored, or (any failure class) failure.
    #[inline]
    pub fn record(self, class: Class) {
        self.finish(outcome_of(class));
    }

    #[inline]
    fn finish(self, outcome: Outcome) {
        // Both fields are `Copy`: skipping `Drop` leaks nothing.
        let this = ManuallyDrop::new(self);
        this.shared.complete(this.raw, outcome);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.raw.probe {
            self.shared.complete(self.raw, Outcome::Ignored);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.raw.generation)
            .field("probe", &self.raw.probe)
            .finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker, from
/// [`CircuitBreaker::try_acquire_owned`]: for `'static` futures and structures. The same guard
/// semantics.
#[must_use = "a permit dropped without an outcome counts as nothing"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    raw: Option<RawPermit>,
}

impl OwnedPermit {
    pub(crate) fn new(breaker: CircuitBreaker, raw: RawPermit) -> Self {
        Self {
            breaker,
            raw: Some(raw),
        }
    }

    /// Whether this permit holds a half-open probe slot.
    pub fn is_probe(&self) -> bool {
        self.raw.is_some_and(|raw| raw.probe)
    }

    /// The generation that admitted the call.
    pub fn generation(&self) -> u32 {
        self.raw.map_or(0, |raw| raw.generation)
    }

    /// The call succeeded.
    pub fn success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call failed.
    pub fn failure(mut self) {
        self.finish(Outcome::Failure);
    }

    /// Counts the call as neither (a probe slot is returned).
    pub fn ignore(mut self) {
        self.finish(Outcome::Ignored);
    }

    /// Records a [`Class`]: success, ignored, or (any failure class) failure.
    pub fn record(mut self, class: Class) {
        self.finish(outcome_of(class));
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.breaker.shared.complete(raw, outcome);
        }
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.finish(Outcome::Ignored);
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("generation", &self.generation())
            .field("probe", &self.is_probe())
            .finish()
    }
}
