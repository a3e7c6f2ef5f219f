//! Successes of a rate window counted without the window lock.
//!
//! A success can only make a rate window trip by meeting the minimum number of calls; it never
//! raises a share. So once the window (under its lock) shows that no run of successes can trip
//! it (`Counts::successes_cannot_trip`) until its newest bucket ends, the lock holder *opens*
//! this counter for the window's generation, and an untimed success admitted in that generation
//! adds one to it with a single compare-exchange instead of taking the lock.
//!
//! Whoever takes the lock next *seals* the counter first (one swap) and records the successes it
//! held in the window, in order before its own outcome: a single thread sees exactly the counts
//! and decisions it would see if every success took the lock. While sealed, successes take the
//! lock. The lock holder reopens the counter when it is done, if the window is still safe.
//!
//! Why a success counted here belongs to its generation: the counter is only open while the
//! state word is in that generation. Every way out of a closed generation (a trip, a reset, a
//! force) takes the window lock, so it seals the counter first, and nobody reopens it for a
//! generation the word has left. A success that finds it sealed takes the lock, where a changed
//! generation makes it stale as before.
//!
//! Why the safety check of an earlier opening cannot be reused by mistake: the check and the
//! generation live in this one word, so a compare-exchange from an open word succeeds only while
//! an opening is in force (a reopening with a zero count is a fresh check of the same
//! generation, as good as the first). The end of the newest bucket, in its own atomic, only
//! ever grows (the window's newest epoch only grows), so an end read at any time is never later
//! than the end of the opening in force.

use crate::loom::{AtomicU64, Ordering};

/// The pending word: the count in bits 0..32, `OPEN` in bit 32, the generation in bits 36..64.
const COUNT_MASK: u64 = 0xFFFF_FFFF;
const OPEN: u64 = 1 << 32;
const GEN_SHIFT: u32 = 36;

/// On its own pair of cache lines: written by every counted success, so it must not share a
/// line with the state word, which every admission reads.
#[repr(align(128))]
pub(crate) struct Pending {
    word: AtomicU64,
    /// Nanoseconds since the breaker's origin at which the open period ends (the newest bucket's
    /// end for a time window; `u64::MAX` for a count window). Stored before the word opens.
    until: AtomicU64,
    /// The largest count: a count window's size, so that the lock is taken (and the clean-window
    /// flag set) once a whole window of successes is pending.
    cap: u32,
}

impl Pending {
    /// Sealed.
    pub(crate) fn new(cap: u32) -> Self {
        Self {
            word: AtomicU64::new(0),
            until: AtomicU64::new(0),
            cap,
        }
    }

    /// Counts one untimed success admitted in `generation`, read at `now` (nanoseconds since the
    /// origin; only read if the counter is open for `generation`). `false`: take the lock.
    #[inline]
    pub(crate) fn add(&self, generation: u32, now: impl FnOnce() -> u64) -> bool {
        let open = (u64::from(generation) << GEN_SHIFT) | OPEN;
        let mut current = self.word.load(Ordering::Acquire);
        if current & !COUNT_MASK != open {
            return false;
        }
        if now() >= self.until.load(Ordering::Acquire) {
            return false;
        }
        loop {
            if current & !COUNT_MASK != open || current & COUNT_MASK >= u64::from(self.cap) {
                return false;
            }
            match self.word.compare_exchange(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Under the window lock: stops counting, and returns the generation and count of the
    /// successes counted since the last opening (zero if it was sealed).
    pub(crate) fn seal(&self) -> (u32, u32) {
        let word = self.word.swap(0, Ordering::AcqRel);
        ((word >> GEN_SHIFT) as u32, (word & COUNT_MASK) as u32)
    }

    /// Under the window lock, the word in `generation` and the window safe until `until`:
    /// counts successes of `generation` again.
    pub(crate) fn open(&self, generation: u32, until: u64) {
        self.until.fetch_max(until, Ordering::Release);
        self.word.store(
            (u64::from(generation) << GEN_SHIFT) | OPEN,
            Ordering::Release,
        );
    }
}
