//! The shared state of a concurrency limit: one atomic word for the counts, a FIFO queue of
//! waiters behind a lock, and the adaptive algorithm's state.
//!
//! # The word
//!
//! `in_flight` (bits 0..32) and `queued` (bits 32..64) share one `AtomicU64`, so that an
//! admission and a release each see both in one load and change them in one compare-exchange:
//!
//! - **Admission, fast path**: with nobody queued and a free slot, `in_flight + 1`. Nobody
//!   overtakes a waiter: with `queued > 0` every caller goes through the queue (FIFO).
//! - **Release, fast path**: with nobody queued (or the limit shrunk below the calls in
//!   flight), `in_flight − 1`.
//! - **Slow paths**, under the queue lock: `queued` only changes there, so a releaser that sees
//!   `queued > 0` finds the waiter in the queue once it has the lock, and hands its slot over
//!   (`queued − 1`, `in_flight` unchanged). A caller joins the queue with a compare-exchange that
//!   also checks that no slot came free meanwhile; if one did, it takes it instead. So a slot
//!   can never be free while someone waits for it, and never be held by nobody.

use std::collections::VecDeque;
use std::fmt;
#[cfg(feature = "tokio")]
use std::task::Waker;
use std::time::{Duration, Instant};

use super::algorithm::{Aimd, Sample, State};
use super::config::Kind;
use super::config::LimitConfig;
use super::{Refusal, Refused};
use crate::loom::{AtomicU32, AtomicU64, Mutex, MutexGuard, Ordering, lock};
use crate::telemetry::LimitMetrics;
use crate::{CancellationToken, Clock};

/// One waiter, or one more slot in flight, in the word.
const ONE_QUEUED: u64 = 1 << 32;
const IN_FLIGHT_MASK: u64 = ONE_QUEUED - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word(u64);

impl Word {
    #[inline(always)]
    pub(crate) const fn in_flight(self) -> u32 {
        (self.0 & IN_FLIGHT_MASK) as u32
    }

    #[inline(always)]
    pub(crate) const fn queued(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Keeps the word on its own pair of cache lines, away from the `Arc`'s counts and the lock.
#[repr(align(128))]
struct CachePadded<T>(T);

/// A waiter's place in the queue: its slot and the slot's generation when it joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    index: u32,
    generation: u32,
}

/// How to wake a waiter.
pub(crate) enum Wake {
    None,
    #[cfg(feature = "tokio")]
    Task(Waker),
    #[cfg(not(loom))]
    Thread(std::thread::Thread),
    Token(CancellationToken),
}

impl Wake {
    fn wake(self) {
        match self {
            Self::None => {}
            #[cfg(feature = "tokio")]
            Self::Task(waker) => waker.wake(),
            #[cfg(not(loom))]
            Self::Thread(thread) => thread.unpark(),
            Self::Token(token) => token.notify(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Waiting,
    Granted,
}

struct Slot {
    generation: u32,
    state: SlotState,
    wake: Wake,
}

/// The queue: `max_queue` slots, allocated once; the free ones on a stack; the waiting ones in
/// arrival order.
struct Queue {
    slots: Vec<Slot>,
    free: Vec<u32>,
    order: VecDeque<u32>,
}

impl Queue {
    fn new(capacity: u32) -> Self {
        Self {
            slots: (0..capacity)
                .map(|_| Slot {
                    generation: 0,
                    state: SlotState::Free,
                    wake: Wake::None,
                })
                .collect(),
            free: (0..capacity).rev().collect(),
            order: VecDeque::with_capacity(capacity as usize),
        }
    }

    fn slot(&mut self, ticket: Ticket) -> Option<&mut Slot> {
        self.slots
            .get_mut(ticket.index as usize)
            .filter(|slot| slot.generation == ticket.generation && slot.state != SlotState::Free)
    }

    fn release_slot(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.state = SlotState::Free;
        slot.generation = slot.generation.wrapping_add(1);
        slot.wake = Wake::None;
        self.free.push(index);
    }
}

/// What joining the queue gave.
pub(crate) enum Joined {
    /// A slot came free: taken, with this many calls in flight (this one included).
    Acquired(u32),
    /// Waiting, with this ticket.
    Queued(Ticket),
}

/// A slot, held: how many calls were in flight when it was taken (this one included), and
/// when, for an adaptive limit's sample (nanoseconds since the limit's origin; 0 when fixed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawPermit {
    pub(crate) inflight: u32,
    pub(crate) started: u64,
}

pub(crate) struct Shared {
    word: CachePadded<AtomicU64>,
    /// The limit: the fixed one, or the algorithm's latest.
    limit: AtomicU32,
    queue: Mutex<Queue>,
    adaptive: Adaptive,
    /// The raw coarse reading at `origin`, when samples may be timed on the coarse clock (see
    /// `sample_nanos`).
    coarse_origin: Option<u64>,
    pub(crate) config: LimitConfig,
    pub(crate) clock: Clock,
    origin: Instant,
    /// Refusals so far, by reason (`Refusal::index`), for snapshots.
    refusals: [AtomicU64; 3],
    pub(crate) metrics: LimitMetrics,
}

/// How the limit adapts.
enum Adaptive {
    Fixed,
    /// AIMD is a pure function of the limit and the sample: a compare-exchange on `limit`.
    Aimd(Aimd),
    /// Vegas and Gradient2 keep floating-point state: a short lock per sample.
    Locked(Mutex<State>),
}

/// AIMD only compares a round trip with its timeout; from this timeout up, a coarse clock's
/// error (two ticks, ~8 ms) is below 1%, so its samples are timed on the coarse clock (a few
/// nanoseconds a reading instead of ~30 on a virtual machine) while time is known to be real.
const COARSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What finished a permit: an outcome for the adaptive algorithm, or none (cancelled, ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    Dropped,
    Ignored,
}

impl Shared {
    pub(crate) fn new(config: LimitConfig, clock: Clock, name: &'static str) -> Self {
        let metrics = LimitMetrics::new(name);
        metrics.limit_changed(0, config.initial_limit());
        let (origin, coarse_origin) = clock.now_anchored();
        let (adaptive, coarse_origin) = match config.kind {
            Kind::Fixed(_) => (Adaptive::Fixed, None),
            Kind::Aimd(aimd) => (
                Adaptive::Aimd(aimd),
                coarse_origin.filter(|_| aimd.timeout >= COARSE_TIMEOUT),
            ),
            _ => (
                State::new(&config.kind)
                    .map_or(Adaptive::Fixed, |s| Adaptive::Locked(Mutex::new(s))),
                None,
            ),
        };
        Self {
            word: CachePadded(AtomicU64::new(0)),
            limit: AtomicU32::new(config.initial_limit()),
            queue: Mutex::new(Queue::new(config.max_queue)),
            adaptive,
            coarse_origin,
            config,
            clock,
            origin,
            refusals: Default::default(),
            metrics,
        }
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> Word {
        Word(self.word.0.load(Ordering::Acquire))
    }

    #[inline(always)]
    pub(crate) fn limit(&self) -> u32 {
        self.limit.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn cas(&self, from: Word, to: u64) -> Result<(), Word> {
        self.word
            .0
            .compare_exchange_weak(from.0, to, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(Word)
    }

    /// Takes a free slot if nobody waits: the calls in flight, this one included.
    #[inline]
    pub(crate) fn try_take(&self) -> Option<u32> {
        let limit = self.limit();
        let mut word = self.load();
        loop {
            if word.0 >= u64::from(limit) {
                // Somebody queued (the high half is set), or every slot is taken.
                return None;
            }
            match self.cas(word, word.0 + 1) {
                Ok(()) => return Some(word.in_flight() + 1),
                Err(now) => word = now,
            }
        }
    }

    /// The raw permit of a slot just taken with `inflight` calls in flight: stamped with the
    /// time when the limit adapts.
    #[inline]
    pub(crate) fn stamp(&self, inflight: u32) -> RawPermit {
        let started = match self.adaptive {
            Adaptive::Fixed => 0,
            _ => self.sample_nanos(),
        };
        RawPermit { inflight, started }
    }

    /// Now, for timing a sample: nanoseconds since the origin, on the coarse clock when allowed
    /// and time is known to be real (the clock module's rules), else on the exact clock.
    #[inline]
    fn sample_nanos(&self) -> u64 {
        if let Some(origin) = self.coarse_origin
            && let Some(raw) = crate::clock::coarse_nanos()
        {
            return raw.saturating_sub(origin);
        }
        self.nanos(self.clock.now())
    }

    fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts a refusal and makes its error.
    #[cold]
    pub(crate) fn refuse(&self, reason: Refusal) -> Refused {
        if let Some(count) = self.refusals.get(reason.index()) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.refused(reason);
        Refused::new(reason)
    }

    /// Joins the queue (or takes a slot that came free), to be woken by `wake`.
    ///
    /// # Errors
    ///
    /// [`Refusal::LimitFull`] when the queue is full (or has no room at all).
    pub(crate) fn join(&self, wake: Wake) -> Result<Joined, Refused> {
        let mut queue = lock(&self.queue);
        let mut word = self.load();
        loop {
            let limit = self.limit();
            if word.queued() == 0 && word.in_flight() < limit {
                match self.cas(word, word.0 + 1) {
                    Ok(()) => return Ok(Joined::Acquired(word.in_flight() + 1)),
                    Err(now) => {
                        word = now;
                        continue;
                    }
                }
            }
            if word.queued() >= self.config.max_queue {
                drop(queue);
                return Err(self.refuse(Refusal::LimitFull));
            }
            match self.word.0.compare_exchange_weak(
                word.0,
                word.0 + ONE_QUEUED,
                Ordering::SeqCst,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => word = Word(now),
            }
        }
        let Some(index) = queue.free.pop() else {
            // `queued < max_queue` leaves a free slot: unreachable, but never panic.
            self.word.0.fetch_sub(ONE_QUEUED, Ordering::AcqRel);
            drop(queue);
            return Err(self.refuse(Refusal::LimitFull));
        };
        let slot = &mut queue.slots[index as usize];
        slot.state = SlotState::Waiting;
        slot.wake = wake;
        let ticket = Ticket {
            index,
            generation: slot.generation,
        };
        queue.order.push_back(index);
        drop(queue);
        self.metrics
            .occupancy(word.in_flight(), word.queued().saturating_add(1));
        // The limit may have grown after it was read, by a sample that saw nobody queued yet:
        // then this waiter (or one before it) gets the room now (SeqCst pairs with `sample`).
        if word.in_flight() < self.limit.load(Ordering::SeqCst) {
            self.grant_while_room();
        }
        Ok(Joined::Queued(ticket))
    }

    /// Whether the waiter of `ticket` has been granted a slot (then its place is given up and
    /// it holds the slot); else updates how to wake it. `None` for a ticket not in the queue.
    pub(crate) fn poll_ticket(&self, ticket: Ticket, wake: Option<Wake>) -> Option<bool> {
        let mut queue = lock(&self.queue);
        let slot = queue.slot(ticket)?;
        match slot.state {
            SlotState::Granted => {
                queue.release_slot(ticket.index);
                Some(true)
            }
            _ => {
                if let Some(wake) = wake {
                    slot.wake = wake;
                }
                Some(false)
            }
        }
    }

    /// The waiter of `ticket` stops waiting (timed out, cancelled, dropped). Returns whether it
    /// had been granted a slot just before, which it then holds.
    pub(crate) fn leave(&self, ticket: Ticket) -> bool {
        let mut queue = lock(&self.queue);
        let Some(slot) = queue.slot(ticket) else {
            return false;
        };
        let granted = slot.state == SlotState::Granted;
        if !granted {
            if let Some(at) = queue.order.iter().position(|&i| i == ticket.index) {
                queue.order.remove(at);
            }
            let word = Word(self.word.0.fetch_sub(ONE_QUEUED, Ordering::AcqRel));
            self.metrics
                .occupancy(word.in_flight(), word.queued().saturating_sub(1));
        }
        queue.release_slot(ticket.index);
        granted
    }

    /// Frees a slot: to the first waiter if there is one and room, else to the pool.
    #[inline]
    pub(crate) fn release(&self) {
        let mut word = self.load();
        loop {
            if word.queued() != 0 && word.in_flight() <= self.limit() {
                return self.release_to_waiter();
            }
            match self.cas(word, word.0 - 1) {
                Ok(()) => break,
                Err(now) => word = now,
            }
        }
        self.metrics.occupancy(word.in_flight() - 1, word.queued());
    }

    #[cold]
    fn release_to_waiter(&self) {
        let mut queue = lock(&self.queue);
        let word = self.load();
        let granted = if word.queued() != 0 && word.in_flight() <= self.limit() {
            // `queued` changes only under this lock, so the waiter is in the queue. The slot
            // passes to it: one fewer queued, as many in flight.
            self.grant_first(&mut queue)
        } else {
            None
        };
        let wake = match granted {
            Some(wake) => {
                self.word.0.fetch_sub(ONE_QUEUED, Ordering::AcqRel);
                wake
            }
            None => {
                self.word.0.fetch_sub(1, Ordering::AcqRel);
                Wake::None
            }
        };
        let after = self.load();
        drop(queue);
        self.metrics.occupancy(after.in_flight(), after.queued());
        wake.wake();
    }

    /// Marks the first waiter granted; returns how to wake it, after the lock is released (a
    /// token's wake takes the token's lock, which a blocked waiter holds while it takes this
    /// one).
    fn grant_first(&self, queue: &mut MutexGuard<'_, Queue>) -> Option<Wake> {
        let index = queue.order.pop_front()?;
        let slot = &mut queue.slots[index as usize];
        slot.state = SlotState::Granted;
        Some(std::mem::replace(&mut slot.wake, Wake::None))
    }

    /// Grants slots to waiters while the limit has room (it grew), waking each.
    fn grant_while_room(&self) {
        loop {
            let mut queue = lock(&self.queue);
            let word = self.load();
            if word.queued() == 0 || word.in_flight() >= self.limit() {
                return;
            }
            let Some(wake) = self.grant_first(&mut queue) else {
                return;
            };
            // One more in flight, one fewer queued.
            self.word.0.fetch_sub(ONE_QUEUED - 1, Ordering::AcqRel);
            drop(queue);
            wake.wake();
        }
    }

    /// Finishes a permit: feeds the adaptive algorithm its sample (none for `Ignored`), then
    /// frees the slot.
    #[inline]
    pub(crate) fn complete(&self, raw: RawPermit, outcome: Outcome) {
        if !matches!(self.adaptive, Adaptive::Fixed) && outcome != Outcome::Ignored {
            self.sample(raw, outcome == Outcome::Dropped);
        }
        self.release();
    }

    #[inline]
    fn sample(&self, raw: RawPermit, dropped: bool) {
        let now = self.sample_nanos();
        let sample = Sample {
            rtt: Duration::from_nanos(now.saturating_sub(raw.started)),
            inflight: raw.inflight,
            dropped,
        };
        let (previous, next) = match &self.adaptive {
            Adaptive::Fixed => return,
            Adaptive::Aimd(aimd) => {
                let mut previous = self.limit.load(Ordering::Relaxed);
                loop {
                    let next = aimd.next(previous, sample);
                    if next == previous {
                        // Nothing changes: no write.
                        return;
                    }
                    match self.limit.compare_exchange_weak(
                        previous,
                        next,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break (previous, next),
                        Err(now) => previous = now,
                    }
                }
            }
            Adaptive::Locked(state) => {
                let next = lock(state).on_sample(sample);
                (self.limit.swap(next, Ordering::SeqCst), next)
            }
        };
        self.limit_moved(previous, next);
    }

    #[cold]
    fn limit_moved(&self, previous: u32, next: u32) {
        if next != previous {
            self.metrics.limit_changed(previous, next);
            // Room for waiters (SeqCst pairs with `join`: either it sees the new limit, or
            // this sees it queued).
            if next > previous && Word(self.word.0.load(Ordering::SeqCst)).queued() != 0 {
                self.grant_while_room();
            }
        }
    }

    /// How many refusals for `reason` so far.
    pub(crate) fn refusals(&self, reason: Refusal) -> u64 {
        self.refusals
            .get(reason.index())
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.load();
        f.debug_struct("ConcurrencyLimit")
            .field("limit", &self.limit())
            .field("in_flight", &word.in_flight())
            .field("queued", &word.queued())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
