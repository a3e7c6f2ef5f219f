//! The log of a call's attempts, kept without allocating on the paths that never allocated.
//!
//! A call whose first attempt succeeds never builds a log. A call that retries keeps one record
//! per finished attempt, in a `Vec` taken from a per-thread spare: when the call succeeds after
//! all, the `Vec` goes back to its thread's spare, emptied, so that a program whose calls
//! sometimes retry allocates it once per thread, not once per call. A call that fails hands its
//! `Vec` to its [`Error`](crate::Error), which allocates anyway.

use std::cell::Cell;

use crate::AttemptRecord;

/// Records a spare keeps at most (about 1.3 KB): a log grown past it is dropped, not kept.
const SPARE_CAPACITY: usize = 32;

std::thread_local! {
    /// This thread's empty log, with its capacity, waiting for the next call that retries.
    static SPARE: Cell<Vec<AttemptRecord>> = const { Cell::new(Vec::new()) };
}

/// One record per finished attempt of a call, in order.
pub(crate) struct AttemptLog {
    records: Vec<AttemptRecord>,
}

impl AttemptLog {
    /// An empty log, which allocates nothing until its first record.
    pub(crate) const fn new() -> Self {
        Self {
            records: Vec::new(),
        }
    }

    /// Adds the record of an attempt that finished.
    pub(crate) fn push(&mut self, record: AttemptRecord) {
        if self.records.capacity() == 0 {
            // The thread may be exiting, with its spare gone: then allocate.
            self.records = SPARE.try_with(Cell::take).unwrap_or_default();
        }
        self.records.push(record);
    }

    /// Takes the records out, for the error that ends the call.
    pub(crate) fn take(&mut self) -> Vec<AttemptRecord> {
        std::mem::take(&mut self.records)
    }
}

impl Drop for AttemptLog {
    #[inline]
    fn drop(&mut self) {
        // Most calls never log: they test one word and are done.
        if self.records.capacity() != 0 {
            self.keep_spare();
        }
    }
}

impl AttemptLog {
    /// Leaves this log's `Vec`, emptied, as the thread's spare.
    #[cold]
    #[inline(never)]
    fn keep_spare(&mut self) {
        let capacity = self.records.capacity();
        if capacity > SPARE_CAPACITY {
            return;
        }
        let mut records = std::mem::take(&mut self.records);
        records.clear();
        // Keep the larger of this log and the spare (a nested call may have taken it).
        let _ = SPARE.try_with(|spare| {
            let kept = spare.take();
            spare.set(if kept.capacity() >= capacity {
                kept
            } else {
                records
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Class;

    fn record(number: u32) -> AttemptRecord {
        AttemptRecord::new(number, None, Class::Transient)
    }

    #[test]
    fn a_dropped_log_leaves_its_vec_for_the_next_one() {
        let mut first = AttemptLog::new();
        first.push(record(1));
        first.push(record(2));
        let address = first.records.as_ptr();
        drop(first);
        let mut second = AttemptLog::new();
        second.push(record(1));
        assert_eq!(second.records.as_ptr(), address, "the same allocation");
        assert_eq!(second.records, [record(1)], "emptied before reuse");
        // Taken for an error, it is gone: the next log allocates again.
        let taken = second.take();
        drop(second);
        let mut third = AttemptLog::new();
        third.push(record(1));
        assert_ne!(third.records.as_ptr(), taken.as_ptr());
    }

    #[test]
    fn a_log_grown_past_the_spare_capacity_is_not_kept() {
        let mut long = AttemptLog::new();
        for n in 0..=SPARE_CAPACITY as u32 {
            long.push(record(n));
        }
        drop(long);
        let kept = SPARE.with(Cell::take);
        assert!(kept.capacity() <= SPARE_CAPACITY);
    }
}
