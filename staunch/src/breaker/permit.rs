//! Permits: the right to run one call, reported back with an outcome.

use std::fmt;
use std::mem::ManuallyDrop;

use super::CircuitBreaker;
use super::shared::{Shared, outcome_of};
use super::state::{GEN_MASK, Outcome};
use crate::classify::Class;

/// What a permit remembers, packed in one `u64` so that a [`Permit`] is two words and moves in
/// registers: the generation that admitted it (bits 0..25, as wide as the state word's),
/// whether it holds a probe slot (bit 25), and, when calls are timed, when it started (bits
/// 26..64: microseconds since the breaker's origin, wrapping every 76 hours; durations are
/// computed with wrapping subtraction, so only a call longer than that would be misjudged).
///
/// (A 24-byte permit holding an `Option<Instant>` was assembled piecewise on the stack and
/// copied with vector loads, a store-forwarding stall that tripled the cost of the hot path.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawPermit(u64);

const GENERATION_BITS: u32 = GEN_MASK.count_ones();
const PROBE_BIT: u64 = 1 << GENERATION_BITS;
const STARTED_SHIFT: u32 = GENERATION_BITS + 1;
/// The mask of the wrapping start time, in microseconds.
pub(crate) const STARTED_MASK: u64 = (1 << (64 - STARTED_SHIFT)) - 1;

impl RawPermit {
    #[inline(always)]
    const fn new(generation: u32, probe: bool, started_micros: u64) -> Self {
        Self(
            (generation as u64 & (PROBE_BIT - 1))
                | if probe { PROBE_BIT } else { 0 }
                | ((started_micros & STARTED_MASK) << STARTED_SHIFT),
        )
    }

    #[inline(always)]
    pub(crate) const fn normal(generation: u32, started_micros: u64) -> Self {
        Self::new(generation, false, started_micros)
    }

    pub(crate) const fn probe(generation: u32, started_micros: u64) -> Self {
        Self::new(generation, true, started_micros)
    }

    #[inline(always)]
    pub(crate) const fn generation(self) -> u32 {
        (self.0 & (PROBE_BIT - 1)) as u32
    }

    #[inline(always)]
    pub(crate) const fn is_probe(self) -> bool {
        self.0 & PROBE_BIT != 0
    }

    /// Microseconds from the start to `now_micros`, modulo the 37-bit wrap.
    pub(crate) const fn micros_until(self, now_micros: u64) -> u64 {
        now_micros.wrapping_sub(self.0 >> STARTED_SHIFT) & STARTED_MASK
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
        self.raw.is_probe()
    }

    /// The generation that admitted the call.
    pub fn generation(&self) -> u32 {
        self.raw.generation()
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

    /// Gives up the guard: the caller now answers for the outcome (and a probe's slot).
    #[inline(always)]
    pub(crate) fn into_raw(self) -> RawPermit {
        ManuallyDrop::new(self).raw
    }

    #[inline(always)]
    fn finish(self, outcome: Outcome) {
        // Both fields are `Copy`: skipping `Drop` leaks nothing.
        let this = ManuallyDrop::new(self);
        this.shared.complete(this.raw, outcome);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.raw.is_probe() {
            self.shared.complete(self.raw, Outcome::Ignored);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.raw.generation())
            .field("probe", &self.raw.is_probe())
            .finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker, from
/// [`CircuitBreaker::try_acquire_owned`]: for `'static` futures and structures. The same guard
/// semantics.
#[must_use = "a permit dropped without an outcome counts as nothing"]
pub struct OwnedPermit {
    breaker: Handle,
    raw: Option<RawPermit>,
}

/// How a `'static` holder reaches its breaker: its own clone of the handle (a reference-count
/// increment and decrement, a shared write when threads share the breaker), or a `&'static`
/// one (nothing at all).
#[derive(Clone, Debug)]
pub(crate) enum Handle {
    Shared(CircuitBreaker),
    /// Made by the tower layer's `new_static`.
    #[cfg(feature = "tower")]
    Static(&'static CircuitBreaker),
}

impl Handle {
    #[inline]
    pub(crate) fn get(&self) -> &CircuitBreaker {
        match self {
            Self::Shared(breaker) => breaker,
            #[cfg(feature = "tower")]
            Self::Static(breaker) => breaker,
        }
    }

    /// [`CircuitBreaker::try_acquire_owned`] through this handle: no reference count for a
    /// `&'static` breaker.
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn try_acquire(&self) -> Result<OwnedPermit, super::CircuitOpen> {
        let raw = self.get().shared.acquire()?;
        Ok(OwnedPermit::new(self.clone(), raw))
    }
}

impl OwnedPermit {
    #[inline]
    pub(crate) fn new(breaker: Handle, raw: RawPermit) -> Self {
        Self {
            breaker,
            raw: Some(raw),
        }
    }

    /// Whether this permit holds a half-open probe slot.
    pub fn is_probe(&self) -> bool {
        self.raw.is_some_and(RawPermit::is_probe)
    }

    /// The generation that admitted the call.
    pub fn generation(&self) -> u32 {
        self.raw.map_or(0, RawPermit::generation)
    }

    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call failed.
    #[inline]
    pub fn failure(mut self) {
        self.finish(Outcome::Failure);
    }

    /// Counts the call as neither (a probe slot is returned).
    #[inline]
    pub fn ignore(mut self) {
        self.finish(Outcome::Ignored);
    }

    /// Records a [`Class`]: success, ignored, or (any failure class) failure.
    #[inline]
    pub fn record(mut self, class: Class) {
        self.finish(outcome_of(class));
    }

    /// [`record`](Self::record) in place, for a future that keeps its permit until dropped
    /// (moving the permit out of the future first costs a store-forwarding stall per call).
    #[cfg(feature = "tower")]
    #[inline]
    pub(crate) fn record_in_place(&mut self, class: Class) {
        self.finish(outcome_of(class));
    }

    #[inline]
    fn finish(&mut self, outcome: Outcome) {
        if let Some(raw) = self.raw.take() {
            self.breaker.get().shared.complete(raw, outcome);
        }
    }
}

impl Drop for OwnedPermit {
    #[inline]
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
