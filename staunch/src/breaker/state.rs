//! The pure core: the packed state word, its transitions, and the rate windows. Nothing here
//! reads a clock, allocates after construction, or touches an atomic; the shared state
//! (`shared.rs`) runs these functions inside compare-exchange loops and under the window lock.

use std::fmt;
use std::time::Duration;

/// The state of a breaker, as [`CircuitBreaker::state`](super::CircuitBreaker::state) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls pass; outcomes are recorded by the trip rule.
    Closed,
    /// Calls are rejected with [`CircuitOpen`](super::CircuitOpen) until the open duration ends.
    Open,
    /// A limited number of probe calls pass; their outcomes close or re-open the breaker.
    HalfOpen,
    /// Forced open by [`force_open`](super::CircuitBreaker::force_open): every call is rejected
    /// until [`reset`](super::CircuitBreaker::reset) or [`force_closed`](super::CircuitBreaker::force_closed).
    ForcedOpen,
    /// Forced closed by [`force_closed`](super::CircuitBreaker::force_closed): every call
    /// passes and outcomes are still recorded (resilience4j's `METRICS_ONLY`), but nothing
    /// trips.
    ForcedClosed,
    /// Disabled by [`disable`](super::CircuitBreaker::disable) (or
    /// [`with_disabled`](super::BreakerConfig::with_disabled)): every call passes and nothing is
    /// recorded (resilience4j's `DISABLED`).
    Disabled,
}

impl State {
    /// A short lowercase name, as used in telemetry labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
            Self::ForcedOpen => "forced_open",
            Self::ForcedClosed => "forced_closed",
            Self::Disabled => "disabled",
        }
    }

    /// The value of the `metrics` state gauge: 0 closed, 1 open, 2 half-open, 3 forced open,
    /// 4 forced closed, 5 disabled.
    pub const fn as_gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
            Self::ForcedOpen => 3.0,
            Self::ForcedClosed => 4.0,
            Self::Disabled => 5.0,
        }
    }

    /// Whether calls are admitted without limit (closed, forced closed, or disabled).
    pub const fn admits_all(self) -> bool {
        matches!(self, Self::Closed | Self::ForcedClosed | Self::Disabled)
    }

    /// Whether outcomes are recorded in the counts (closed, or forced closed).
    pub(crate) const fn records(self) -> bool {
        matches!(self, Self::Closed | Self::ForcedClosed)
    }

    /// The state's bits in the word (see [`Word`]).
    const fn code(self) -> u64 {
        match self {
            Self::Closed => 0,
            Self::Open => 1,
            Self::HalfOpen => 2,
            Self::ForcedOpen => 3,
            Self::ForcedClosed => 4,
            Self::Disabled => DISABLED,
        }
    }

    const fn from_code(code: u64) -> Self {
        match code {
            0 => Self::Closed,
            1 => Self::Open,
            2 => Self::HalfOpen,
            3 => Self::ForcedOpen,
            _ => Self::ForcedClosed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The packed state word: one `u64` that a single atomic load reads and a single
/// compare-exchange changes.
///
/// ```text
///  63          39 38        23 22         7  6   5   4   3   2  0
/// +--------------+------------+------------+---+---+---+---+-----+
/// |  generation  |     b      |     a      | P | T | W | U |state|
/// +--------------+------------+------------+---+---+---+---+-----+
/// ```
///
/// - `a`: closed (consecutive rule): failures in a row; closed (count window): 1 when the
///   window is full of successes (a success then changes nothing); half-open: probes in flight;
///   open: 1 when a timer ends the period (automatic half-open), so rejections read no clock.
/// - `b`: half-open: probe successes so far. With the state bits of closed, a non-zero `b` is
///   [`State::Disabled`]: its word is a closed word with nothing counted and no path or
///   interval bits, so that its admissions and successes take the inlined paths of a closed
///   breaker under the consecutive rule (one load and one test each), and only failures go out
///   of line, to be dropped there.
/// - `U`: open, but the open-until instant is not published yet (a trip in progress); closed
///   with a count-reset interval, but the end of the first period is not published yet.
/// - `W`, `T`: the breaker's [`Path`] bits, set at construction and kept by every
///   transition: `W` a rate window whose calls are not timed, `T` timed calls (a slow-call
///   threshold). Neither: the consecutive rule. Kept here, beside the state, so that the hot
///   paths decide with the one load they already make: a closed, untimed admission without a
///   count-reset interval is `word & (state | T | P) == 0`, and a success with nothing to
///   record under the consecutive rule is `word & (open bits | T | W | a) == 0`.
/// - `P`: the counts clear on a fixed period (a count-reset interval): a closed admission reads
///   the clock to find its period. Set at construction and kept by every transition.
/// - generation: bumped by every transition and every clearing of the counts (25 bits,
///   wrapping after 2^25); a permit remembers the generation that admitted it, and its
///   outcome only counts while the generation is unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

/// Which hot path a breaker's calls take, as the word's `W` and `T` bits: derived once from
/// the config, the same in every generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// The consecutive-failures rule: a success with no failure pending writes nothing.
    Consecutive = 0,
    /// A count or time window whose calls are not timed: successes may skip the window lock.
    Window = WINDOW as isize,
    /// A rule with a slow-call threshold: every admission reads the clock, every outcome takes
    /// the window lock.
    Timed = TIMED as isize,
}

const STATE_MASK: u64 = 0b111;
const UNPUBLISHED: u64 = 1 << 3;
const WINDOW: u64 = 1 << 4;
const TIMED: u64 = 1 << 5;
const PATH_MASK: u64 = WINDOW | TIMED;
const PERIODIC: u64 = 1 << 6;
/// The bits every transition keeps: the path and the count-reset interval.
const KEPT: u64 = PATH_MASK | PERIODIC;
const A_SHIFT: u32 = 7;
const B_SHIFT: u32 = 23;
const GEN_SHIFT: u32 = 39;
/// [`State::Disabled`]: the state bits of closed, `b` = 1.
const DISABLED: u64 = 1 << B_SHIFT;
const FIELD_MASK: u64 = 0xFFFF;
pub(crate) const GEN_MASK: u64 = (1 << (64 - GEN_SHIFT)) - 1;
/// The states that do not record all outcomes (open, half-open, forced open, disabled), without
/// the forced-closed bit (4), which records as closed does.
const NOT_ADMITTING_ALL: u64 = 0b011;
/// Open, published, with `a` = 1: a timer ends the period.
const OPEN_WITH_TIMER: u64 = State::Open.code() | (1 << A_SHIFT);
/// The bits that must all be clear for a success to change nothing under the consecutive rule.
const SUCCESS_CHANGES: u64 = NOT_ADMITTING_ALL | PATH_MASK | (FIELD_MASK << A_SHIFT);

impl Word {
    /// Closed, generation 0, nothing counted, under the consecutive rule.
    pub(crate) const INITIAL: Self = Self(0);

    pub(crate) const fn new(state: State, generation: u32, a: u32, b: u32) -> Self {
        Self(
            state.code()
                | ((a as u64 & FIELD_MASK) << A_SHIFT)
                | ((b as u64 & FIELD_MASK) << B_SHIFT)
                | ((generation as u64 & GEN_MASK) << GEN_SHIFT),
        )
    }

    /// The word with its path bits set to `path`.
    pub(crate) const fn with_path(self, path: Path) -> Self {
        Self((self.0 & !PATH_MASK) | path as u64)
    }

    /// The word with its count-reset-interval bit set or cleared.
    pub(crate) const fn with_periodic(self, periodic: bool) -> Self {
        Self((self.0 & !PERIODIC) | if periodic { PERIODIC } else { 0 })
    }

    /// The counts clear on a fixed period (a count-reset interval).
    #[inline]
    pub(crate) const fn periodic(self) -> bool {
        self.0 & PERIODIC != 0
    }

    #[inline]
    pub(crate) const fn path(self) -> Path {
        match self.0 & PATH_MASK {
            0 => Path::Consecutive,
            WINDOW => Path::Window,
            _ => Path::Timed,
        }
    }

    #[inline]
    pub(crate) const fn state(self) -> State {
        let code = self.0 & STATE_MASK;
        if code == 0 && self.0 & (FIELD_MASK << B_SHIFT) != 0 {
            return State::Disabled;
        }
        State::from_code(code)
    }

    /// Closed, calls are not timed, and no count-reset interval: the admission needs nothing
    /// but this word.
    #[inline]
    pub(crate) const fn admits_untimed(self) -> bool {
        self.0 & (STATE_MASK | TIMED | PERIODIC) == 0
    }

    #[inline]
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> GEN_SHIFT) as u32
    }

    #[inline]
    pub(crate) const fn a(self) -> u32 {
        ((self.0 >> A_SHIFT) & FIELD_MASK) as u32
    }

    #[inline]
    pub(crate) const fn b(self) -> u32 {
        ((self.0 >> B_SHIFT) & FIELD_MASK) as u32
    }

    /// A success changes nothing: closed (or forced closed) under the consecutive rule with no
    /// failure pending, or with a count window full of successes (untimed).
    #[inline]
    pub(crate) const fn success_changes_nothing(self) -> bool {
        let changes = self.0 & SUCCESS_CHANGES;
        changes == 0 || changes == WINDOW | (1 << A_SHIFT)
    }

    /// Count-window rules, closed or forced closed: the window is full of untimed successes (in
    /// `a`), so one more success changes nothing.
    #[inline]
    pub(crate) const fn clean_window(self) -> bool {
        self.0 & (NOT_ADMITTING_ALL | (FIELD_MASK << A_SHIFT)) == 1 << A_SHIFT
    }

    pub(crate) const fn with_clean_window(self, clean: bool) -> Self {
        self.with_a(clean as u32)
    }

    #[inline]
    pub(crate) const fn unpublished(self) -> bool {
        self.0 & UNPUBLISHED != 0
    }

    pub(crate) const fn published(self) -> Self {
        Self(self.0 & !UNPUBLISHED)
    }

    /// Open, with a timer that ends the period (see `timer.rs`): a rejection needs no clock.
    #[inline]
    pub(crate) const fn has_timer(self) -> bool {
        self.0 & (STATE_MASK | UNPUBLISHED | (FIELD_MASK << A_SHIFT)) == OPEN_WITH_TIMER
    }

    /// Open, with the timer of the period of `generation`.
    #[cfg(any(feature = "tokio", all(test, loom)))]
    #[inline]
    pub(crate) const fn has_timer_of(self, generation: u32) -> bool {
        self.has_timer() && self.generation() == generation
    }

    /// The open word with its timer flag set or cleared.
    #[cfg(any(feature = "tokio", all(test, loom)))]
    pub(crate) const fn with_timer(self, timer: bool) -> Self {
        self.with_a(timer as u32)
    }

    pub(crate) const fn with_a(self, a: u32) -> Self {
        Self((self.0 & !(FIELD_MASK << A_SHIFT)) | ((a as u64 & FIELD_MASK) << A_SHIFT))
    }

    pub(crate) const fn with_b(self, b: u32) -> Self {
        Self((self.0 & !(FIELD_MASK << B_SHIFT)) | ((b as u64 & FIELD_MASK) << B_SHIFT))
    }

    /// The next generation in `state`, counts cleared, path and interval kept (but for
    /// disabled, which drops them). Entering open marks the open-until instant as not yet
    /// published; entering closed with a count-reset interval marks the end of its first period
    /// as not yet published.
    pub(crate) const fn next(self, state: State) -> Self {
        let generation = (self.generation() as u64 + 1) & GEN_MASK;
        let next = Self::new(state, generation as u32, 0, 0).0;
        match state {
            State::Open => Self(next | (self.0 & KEPT) | UNPUBLISHED),
            State::Closed if self.periodic() => Self(next | (self.0 & KEPT) | UNPUBLISHED),
            // Without the path and interval bits: a disabled word takes the cheapest inlined
            // paths. Leaving it, `with_config` puts them back.
            State::Disabled => Self(next),
            _ => Self(next | (self.0 & KEPT)),
        }
    }

    /// The word with the path and interval bits of a config: what `next` keeps.
    pub(crate) const fn with_config(self, path: Path, periodic: bool) -> Self {
        self.with_path(path).with_periodic(periodic)
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("state", &self.state())
            .field("generation", &self.generation())
            .field("a", &self.a())
            .field("b", &self.b())
            .field("unpublished", &self.unpublished())
            .field("timer", &self.has_timer())
            .field("path", &self.path())
            .field("periodic", &self.periodic())
            .finish()
    }
}

/// What a finished call was, to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Failure,
    Ignored,
}

/// The consecutive rule's answer to a failure admitted in `generation`: the next word, or `None`
/// when the outcome is stale and changes nothing.
#[inline]
pub(crate) fn consecutive_failure(word: Word, generation: u32, threshold: u32) -> Option<Word> {
    if word.generation() != generation {
        return None;
    }
    match word.state() {
        State::Closed => {
            let failures = word.a() + 1;
            Some(if failures >= threshold {
                word.next(State::Open)
            } else {
                word.with_a(failures)
            })
        }
        State::ForcedClosed => Some(word.with_a((word.a() + 1).min(FIELD_MASK as u32))),
        _ => None,
    }
}

/// The consecutive rule's answer to a success admitted in `generation` with failures pending.
#[inline]
pub(crate) fn consecutive_success(word: Word, generation: u32) -> Option<Word> {
    (word.generation() == generation && word.state().records() && word.a() != 0)
        .then(|| word.with_a(0))
}

/// Half-open: the word that admits one more probe, if a slot is free.
#[inline]
pub(crate) fn admit_probe(word: Word, probes: u32) -> Option<Word> {
    (word.state() == State::HalfOpen && word.a() < probes).then(|| word.with_a(word.a() + 1))
}

/// Half-open: the word after a probe admitted in `generation` finished with `outcome` (or was
/// dropped, `Ignored`). `None`: stale.
#[inline]
pub(crate) fn probe_done(
    word: Word,
    generation: u32,
    outcome: Outcome,
    successes_to_close: u32,
) -> Option<Word> {
    if word.generation() != generation || word.state() != State::HalfOpen {
        return None;
    }
    let in_flight = word.a().saturating_sub(1);
    Some(match outcome {
        Outcome::Ignored => word.with_a(in_flight),
        Outcome::Failure => word.next(State::Open),
        Outcome::Success => {
            let successes = word.b() + 1;
            if successes >= successes_to_close {
                word.next(State::Closed)
            } else {
                word.with_a(in_flight).with_b(successes)
            }
        }
    })
}

/// What makes a rate window trip: enough calls, and any one threshold met. Any threshold may
/// be absent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Thresholds {
    pub(crate) min_calls: u32,
    /// A share of failures.
    pub(crate) failure_rate: Option<f64>,
    /// A share of slow calls.
    pub(crate) slow_rate: Option<f64>,
    /// A number of failures, whatever their share.
    pub(crate) failures: Option<u32>,
}

/// Counts of a rate window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl Counts {
    /// Whether `counts` trips: enough calls, and a failure or slow share at least its
    /// threshold, or at least the threshold number of failures.
    pub(crate) fn trips(self, thresholds: &Thresholds) -> bool {
        if self.calls < thresholds.min_calls || self.calls == 0 {
            return false;
        }
        let calls = f64::from(self.calls);
        let over =
            |n: u32, rate: Option<f64>| n != 0 && rate.is_some_and(|r| f64::from(n) / calls >= r);
        over(self.failures, thresholds.failure_rate)
            || over(self.slow, thresholds.slow_rate)
            || thresholds.failures.is_some_and(|k| self.failures >= k)
    }

    /// Whether no run of further untimed successes (so none of them slow) can make a window
    /// holding `self` trip, as long as nothing expires from it. `size` bounds a count window.
    ///
    /// Why one check covers every run: after `k >= 1` more successes, a window that is not full
    /// holds `calls + k` calls with the same failures and slow calls, so both shares fall as `k`
    /// grows (and the number of failures stays), and they only count once
    /// `calls + k >= min_calls`. The largest share that counts is therefore at
    /// `calls + k = max(calls + 1, min_calls)`, which is at most `size` (the minimum is at most
    /// the size). A full count window evicts its oldest call for each success: calls stay at
    /// `size` while failures and slow calls can only fall, so no share or number exceeds the
    /// full window's, which the same check (with `calls = size`) covers.
    pub(crate) fn successes_cannot_trip(self, thresholds: &Thresholds, size: Option<u32>) -> bool {
        let calls = self.calls.saturating_add(1).max(thresholds.min_calls);
        let calls = size.map_or(calls, |size| calls.min(size));
        !Self { calls, ..self }.trips(thresholds)
    }

    /// Failures over calls, if any calls were counted.
    pub(crate) fn failure_rate(self) -> Option<f64> {
        (self.calls > 0).then(|| f64::from(self.failures) / f64::from(self.calls))
    }

    fn add(&mut self, failure: bool, slow: bool) {
        self.calls += 1;
        self.failures += u32::from(failure);
        self.slow += u32::from(slow);
    }

    fn sub(&mut self, other: Self) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
    }
}

const SLOT_USED: u8 = 1;
const SLOT_FAILURE: u8 = 2;
const SLOT_SLOW: u8 = 4;

/// The outcomes of the last `size` calls, a ring of one byte per call with running counts.
#[derive(Debug)]
pub(crate) struct CountWindow {
    ring: Box<[u8]>,
    next: usize,
    counts: Counts,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        Self {
            ring: vec![0; size as usize].into_boxed_slice(),
            next: 0,
            counts: Counts::default(),
        }
    }

    pub(crate) fn record(&mut self, failure: bool, slow: bool) -> Counts {
        let slot = &mut self.ring[self.next];
        if *slot & SLOT_USED != 0 {
            self.counts.sub(Counts {
                calls: 1,
                failures: u32::from(*slot & SLOT_FAILURE != 0),
                slow: u32::from(*slot & SLOT_SLOW != 0),
            });
        }
        *slot =
            SLOT_USED | if failure { SLOT_FAILURE } else { 0 } | if slow { SLOT_SLOW } else { 0 };
        self.counts.add(failure, slow);
        self.next += 1;
        if self.next == self.ring.len() {
            self.next = 0;
        }
        self.counts
    }

    /// Records `k` untimed successes in O(min(k, size)): the same as `k` calls of `record`.
    pub(crate) fn record_successes(&mut self, k: u32) {
        let len = self.ring.len();
        if k as usize >= len {
            self.ring.fill(SLOT_USED);
            self.next = (self.next + k as usize % len) % len;
            self.counts = Counts {
                calls: len as u32,
                failures: 0,
                slow: 0,
            };
        } else {
            for _ in 0..k {
                self.record(false, false);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.ring.fill(0);
        self.next = 0;
        self.counts = Counts::default();
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Which bucket-length period since the breaker's origin this bucket holds.
    epoch: u64,
    counts: Counts,
}

/// The outcomes of the last `window`, in `buckets` equal buckets that expire whole.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    buckets: Box<[Bucket]>,
    bucket_nanos: u64,
    /// The newest epoch seen; buckets of epochs `<= head - len` are expired.
    head: u64,
    counts: Counts,
}

impl TimeWindow {
    pub(crate) fn new(window: Duration, buckets: u32) -> Self {
        let bucket_nanos = u64::try_from(window.as_nanos() / u128::from(buckets))
            .unwrap_or(u64::MAX)
            .max(1);
        Self {
            buckets: vec![Bucket::default(); buckets as usize].into_boxed_slice(),
            bucket_nanos,
            head: 0,
            counts: Counts::default(),
        }
    }

    /// Expires every bucket older than the window ending at `now_nanos` (nanoseconds since the
    /// breaker's origin).
    pub(crate) fn advance(&mut self, now_nanos: u64) {
        let epoch = now_nanos / self.bucket_nanos;
        if epoch <= self.head {
            return;
        }
        let len = self.buckets.len() as u64;
        if epoch - self.head >= len {
            self.buckets.fill(Bucket::default());
            self.counts = Counts::default();
        } else {
            for e in self.head + 1..=epoch {
                let bucket = &mut self.buckets[(e % len) as usize];
                self.counts.sub(bucket.counts);
                *bucket = Bucket {
                    epoch: e,
                    counts: Counts::default(),
                };
            }
        }
        self.head = epoch;
    }

    pub(crate) fn record(&mut self, now_nanos: u64, failure: bool, slow: bool) -> Counts {
        self.advance(now_nanos);
        self.head_bucket().counts.add(failure, slow);
        self.counts.add(failure, slow);
        self.counts
    }

    /// Records `k` successes in the newest bucket, as `record` does for a reading that is not
    /// past it (an outcome is never recorded in a bucket older than the newest).
    pub(crate) fn record_successes(&mut self, k: u32) {
        self.head_bucket().counts.calls += k;
        self.counts.calls += k;
    }

    /// Nanoseconds since the origin at which the newest bucket ends. Until then nothing expires:
    /// every bucket in the window is at most `len - 1` buckets older than the newest.
    pub(crate) fn head_end(&self) -> u64 {
        self.head
            .saturating_add(1)
            .saturating_mul(self.bucket_nanos)
    }

    fn head_bucket(&mut self) -> &mut Bucket {
        let len = self.buckets.len() as u64;
        let bucket = &mut self.buckets[(self.head % len) as usize];
        bucket.epoch = self.head;
        bucket
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.counts = Counts::default();
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }
}

/// A rate window of either kind, tagged with the closed generation its outcomes belong to.
#[derive(Debug)]
pub(crate) struct Window {
    pub(crate) generation: u32,
    pub(crate) kind: WindowKind,
}

#[derive(Debug)]
pub(crate) enum WindowKind {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// Makes the window belong to `generation`, forgetting the outcomes of any other.
    pub(crate) fn enter(&mut self, generation: u32) {
        if self.generation != generation {
            self.generation = generation;
            match &mut self.kind {
                WindowKind::Count(w) => w.clear(),
                WindowKind::Time(w) => w.clear(),
            }
        }
    }

    pub(crate) fn record(&mut self, now_nanos: u64, failure: bool, slow: bool) -> Counts {
        match &mut self.kind {
            WindowKind::Count(w) => w.record(failure, slow),
            WindowKind::Time(w) => w.record(now_nanos, failure, slow),
        }
    }

    /// Records `k` untimed successes of this window's generation, counted without the lock
    /// since it was last held: the same as recording each of them then, in order.
    pub(crate) fn record_successes(&mut self, k: u32) {
        match &mut self.kind {
            WindowKind::Count(w) => w.record_successes(k),
            WindowKind::Time(w) => w.record_successes(k),
        }
    }

    /// Until when (nanoseconds since the origin) a success recorded now changes nothing but
    /// the counts of the newest bucket: unbounded for a count window.
    pub(crate) fn successes_until(&self) -> u64 {
        match &self.kind {
            WindowKind::Count(_) => u64::MAX,
            WindowKind::Time(w) => w.head_end(),
        }
    }

    /// Expires what a time window no longer holds at `now_nanos`.
    pub(crate) fn advance(&mut self, now_nanos: u64) {
        if let WindowKind::Time(w) = &mut self.kind {
            w.advance(now_nanos);
        }
    }

    /// The counts as of the latest outcome or `advance`.
    pub(crate) fn counts(&self) -> Counts {
        match &self.kind {
            WindowKind::Count(w) => w.counts(),
            WindowKind::Time(w) => w.counts(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The states with bits of their own (disabled is a closed word; see `disabled_is_...`).
    const STATES: [State; 5] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::ForcedClosed,
    ];

    /// Rate thresholds with a minimum number of calls.
    fn rates(min_calls: u32, failure_rate: Option<f64>, slow_rate: Option<f64>) -> Thresholds {
        Thresholds {
            min_calls,
            failure_rate,
            slow_rate,
            failures: None,
        }
    }
    const PATHS: [Path; 3] = [Path::Consecutive, Path::Window, Path::Timed];

    #[test]
    fn word_round_trips_every_field() {
        for state in STATES {
            for path in PATHS {
                for periodic in [false, true] {
                    // `b` counts only in half-open (in closed it would read as disabled).
                    let b = if state == State::HalfOpen { 0x1234 } else { 0 };
                    let w = Word::new(state, GEN_MASK as u32, 0xFFFF, b)
                        .with_path(path)
                        .with_periodic(periodic);
                    assert_eq!(w.state(), state);
                    assert_eq!(w.path(), path);
                    assert_eq!(w.periodic(), periodic);
                    assert_eq!(w.generation(), GEN_MASK as u32);
                    assert_eq!((w.a(), w.b()), (0xFFFF, b));
                    assert!(!w.unpublished());
                }
            }
        }
        assert_eq!(GEN_MASK, (1 << 25) - 1);
        let open = Word::new(State::Closed, GEN_MASK as u32, 3, 0)
            .with_path(Path::Window)
            .next(State::Open);
        assert_eq!(open.generation(), 0, "the generation wraps");
        assert!(open.unpublished());
        assert_eq!(open.published().state(), State::Open);
        assert_eq!(open.path(), Path::Window, "every transition keeps the path");
        assert_eq!(open.next(State::HalfOpen).with_a(2).path(), Path::Window);
        // A closed period's end is published after the transition, as an open period's is.
        let periodic = open.with_periodic(true);
        assert!(periodic.next(State::Closed).unpublished());
        assert!(periodic.next(State::Closed).periodic());
        assert!(!open.next(State::Closed).unpublished());
        assert!(!periodic.next(State::ForcedClosed).unpublished());
    }

    #[test]
    fn only_closed_untimed_admissions_need_nothing_but_the_word() {
        for state in STATES {
            for path in PATHS {
                for periodic in [false, true] {
                    let w = Word::new(state, 9, 3, 0)
                        .with_path(path)
                        .with_periodic(periodic);
                    let expected = state == State::Closed && path != Path::Timed && !periodic;
                    assert_eq!(
                        w.admits_untimed(),
                        expected,
                        "{state:?} {path:?} {periodic}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_success_changes_nothing_only_when_no_rule_would_record_it() {
        for state in STATES {
            for path in PATHS {
                for a in [0, 1, 2] {
                    let w = Word::new(state, 7, a, 0).with_path(path);
                    let expected = state.records()
                        && match path {
                            // No failure pending.
                            Path::Consecutive => a == 0,
                            // A clean count window (a time window never sets the flag).
                            Path::Window => a == 1,
                            // Every timed outcome is judged slow or not, under the lock.
                            Path::Timed => false,
                        };
                    assert_eq!(
                        w.success_changes_nothing(),
                        expected,
                        "{state:?} {path:?} a={a}"
                    );
                    assert_eq!(w.clean_window(), state.records() && a == 1);
                }
            }
        }
    }

    #[test]
    fn disabled_is_a_closed_word_that_takes_every_inlined_path_and_records_nothing() {
        for path in PATHS {
            for periodic in [false, true] {
                let closed = Word::new(State::Closed, 9, 2, 0)
                    .with_config(path, periodic)
                    .with_a(2);
                let disabled = closed.next(State::Disabled);
                assert_eq!(disabled.state(), State::Disabled);
                assert_eq!(disabled.generation(), 10);
                assert_eq!(
                    (disabled.path(), disabled.periodic()),
                    (Path::Consecutive, false)
                );
                assert!(disabled.admits_untimed(), "admitted inline");
                assert!(
                    disabled.success_changes_nothing(),
                    "its successes end inline"
                );
                assert!(!disabled.clean_window() && !disabled.unpublished());
                assert_eq!(consecutive_failure(disabled, 10, 1), None);
                assert_eq!(consecutive_success(disabled, 10), None);
                assert_eq!(admit_probe(disabled, 5), None);
                // Leaving it puts the config's bits back.
                let again = disabled.with_config(path, periodic).next(State::Closed);
                assert_eq!(again.state(), State::Closed);
                assert_eq!((again.path(), again.periodic()), (path, periodic));
                assert_eq!(again.unpublished(), periodic);
                assert_eq!(again.admits_untimed(), closed.admits_untimed());
            }
        }
    }

    #[test]
    fn consecutive_rule_counts_resets_and_trips_at_the_threshold() {
        let w = Word::INITIAL;
        let w = consecutive_failure(w, 0, 3).unwrap();
        let w = consecutive_failure(w, 0, 3).unwrap();
        assert_eq!(w.a(), 2);
        assert_eq!(consecutive_success(w, 0).unwrap().a(), 0);
        let open = consecutive_failure(w, 0, 3).unwrap();
        assert_eq!(open.state(), State::Open);
        assert_eq!(open.generation(), 1);
        // A late failure from generation 0 changes nothing.
        assert_eq!(consecutive_failure(open, 0, 3), None);
        assert_eq!(consecutive_success(open, 0), None);
    }

    #[test]
    fn probes_close_after_enough_successes_and_reopen_on_a_failure() {
        let half = Word::new(State::HalfOpen, 4, 0, 0);
        let one = admit_probe(half, 2).unwrap();
        let two = admit_probe(one, 2).unwrap();
        assert_eq!(admit_probe(two, 2), None, "never more than the limit");
        let after = probe_done(two, 4, Outcome::Success, 2).unwrap();
        assert_eq!(
            (after.state(), after.a(), after.b()),
            (State::HalfOpen, 1, 1)
        );
        let closed = probe_done(after, 4, Outcome::Success, 2).unwrap();
        assert_eq!((closed.state(), closed.generation()), (State::Closed, 5));
        let reopened = probe_done(two, 4, Outcome::Failure, 2).unwrap();
        assert_eq!(reopened.state(), State::Open);
        let released = probe_done(two, 4, Outcome::Ignored, 2).unwrap();
        assert_eq!((released.a(), released.b()), (1, 0));
        assert_eq!(probe_done(two, 3, Outcome::Failure, 2), None, "stale probe");
    }

    #[test]
    fn thresholds_compare_with_at_least() {
        let c = Counts {
            calls: 10,
            failures: 5,
            slow: 0,
        };
        assert!(c.trips(&rates(10, Some(0.5), None)));
        assert!(!c.trips(&rates(11, Some(0.5), None)), "below the minimum");
        assert!(!c.trips(&rates(10, Some(0.51), None)));
        let slow = Counts {
            calls: 10,
            failures: 0,
            slow: 3,
        };
        assert!(slow.trips(&rates(10, Some(0.5), Some(0.3))));
        assert!(!slow.trips(&rates(10, Some(0.5), None)));
    }

    #[test]
    fn a_failure_count_trips_at_the_count_whatever_the_share() {
        let count = |failures, min_calls| Thresholds {
            min_calls,
            failures: Some(failures),
            ..Thresholds::default()
        };
        let c = Counts {
            calls: 1000,
            failures: 3,
            slow: 0,
        };
        assert!(c.trips(&count(3, 1)), "0.3% of the calls, but 3 failures");
        assert!(!c.trips(&count(4, 1)));
        assert!(!c.trips(&count(3, 1001)), "below the minimum");
    }

    #[test]
    fn count_window_forgets_the_oldest_call() {
        let mut w = CountWindow::new(3);
        w.record(true, false);
        w.record(false, true);
        let c = w.record(false, false);
        assert_eq!(
            c,
            Counts {
                calls: 3,
                failures: 1,
                slow: 1
            }
        );
        let c = w.record(false, false);
        assert_eq!(
            c,
            Counts {
                calls: 3,
                failures: 0,
                slow: 1
            }
        );
    }

    #[test]
    fn recording_successes_at_once_is_recording_them_one_by_one() {
        for size in 1..6u32 {
            for k in 0..13 {
                let (mut one_by_one, mut at_once) =
                    (CountWindow::new(size), CountWindow::new(size));
                for w in [&mut one_by_one, &mut at_once] {
                    for i in 0..size + 2 {
                        w.record(i % 3 == 0, i % 2 == 0);
                    }
                }
                for _ in 0..k {
                    one_by_one.record(false, false);
                }
                at_once.record_successes(k);
                assert_eq!(at_once.counts(), one_by_one.counts(), "size {size}, k {k}");
                // Same ring and position: the next outcomes evict the same calls.
                for i in 0..size {
                    let failure = i % 2 == 1;
                    assert_eq!(
                        at_once.record(failure, false),
                        one_by_one.record(failure, false)
                    );
                }
            }
        }
    }

    /// Every run of successes, simulated, against the one check.
    #[test]
    fn successes_cannot_trip_is_exact_before_a_window_fills() {
        let shares = [Some(0.25), Some(0.5), Some(2.0 / 3.0), Some(1.0), None];
        for size in 1..8u32 {
            for min in 1..=size {
                for calls in 0..size {
                    for failures in 0..=calls {
                        for slow in 0..=calls {
                            for (fr, sr) in shares.iter().flat_map(|f| shares.map(|s| (*f, s))) {
                                for count in [None, Some(1), Some(2), Some(3)] {
                                    let t = Thresholds {
                                        failures: count,
                                        ..rates(min, fr, sr)
                                    };
                                    let mut w = CountWindow::new(size);
                                    let mut tripped = false;
                                    for i in 0..calls {
                                        w.record(i < failures, i >= calls - slow);
                                    }
                                    let counts = w.counts();
                                    for _ in 0..2 * size {
                                        tripped |= w.record(false, false).trips(&t);
                                    }
                                    assert_eq!(
                                        counts.successes_cannot_trip(&t, Some(size)),
                                        !tripped,
                                        "{counts:?}, size {size}, {t:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_full_window_that_does_not_trip_cannot_trip_on_successes() {
        let full = Counts {
            calls: 4,
            failures: 1,
            slow: 1,
        };
        assert!(!full.trips(&rates(4, Some(0.5), Some(0.5))));
        assert!(full.successes_cannot_trip(&rates(4, Some(0.5), Some(0.5)), Some(4)));
        let time = Counts {
            calls: 2,
            failures: 1,
            slow: 0,
        };
        // Below a minimum of 4 calls, two more successes make 1/4 = 25%.
        assert!(!time.successes_cannot_trip(&rates(4, Some(0.25), None), None));
        assert!(time.successes_cannot_trip(&rates(4, Some(0.3), None), None));
        // A failure count below the minimum: successes reaching the minimum trip.
        let counted = Thresholds {
            failures: Some(1),
            ..rates(4, None, None)
        };
        assert!(!time.successes_cannot_trip(&counted, None));
    }

    #[test]
    fn time_window_expires_whole_buckets() {
        let s = 1_000_000_000;
        let mut w = TimeWindow::new(Duration::from_secs(10), 10);
        w.record(0, true, false);
        w.record(5 * s, true, false);
        assert_eq!(w.record(9 * s + 1, false, false).calls, 3);
        w.advance(10 * s);
        assert_eq!(
            w.counts(),
            Counts {
                calls: 2,
                failures: 1,
                slow: 0
            },
            "bucket 0 expired"
        );
        w.advance(15 * s);
        assert_eq!(w.counts().calls, 1);
        w.advance(100 * s);
        assert_eq!(w.counts(), Counts::default());
    }
}
