//! A cancellation token that wakes async waiters and blocked threads alike.

use std::fmt;
use std::time::{Duration, Instant};

use crate::loom::{Arc, AtomicBool, Condvar, Mutex, Ordering, lock};

/// A token that a caller fires to stop a retry loop: the sleep between attempts ends at once and
/// the call ends with [`StopReason::Cancelled`](crate::StopReason::Cancelled).
///
/// Clones share one state; firing any clone fires them all. It works for async runners (which
/// await [`cancelled`](Self::cancelled)) and for blocking ones (a thread blocked in a retry sleep
/// wakes as soon as another thread calls [`cancel`](Self::cancel)).
///
/// In async code, dropping the call's future is the other, simpler way to cancel.
///
/// # Examples
///
/// ```
/// use staunch::CancellationToken;
///
/// let token = CancellationToken::new();
/// let for_shutdown = token.clone();
/// assert!(!token.is_cancelled());
/// for_shutdown.cancel();
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancellationToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    // Blocked threads wait on the condvar; the mutex only orders their check against `cancel`.
    lock: Mutex<()>,
    condvar: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl CancellationToken {
    /// A token that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the token: every waiter, async or blocked, wakes. Idempotent.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(lock(&self.inner.lock));
        self.inner.condvar.notify_all();
        #[cfg(feature = "tokio")]
        self.inner.notify.notify_waiters();
    }

    /// Whether the token has fired.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes when the token fires (at once if it already has).
    #[cfg(feature = "tokio")]
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Register before checking the flag, so a `cancel` between the two is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Wakes the threads blocked in [`wait_ready`](Self::wait_ready) on this token, without
    /// firing it, so that they check their condition again.
    pub(crate) fn notify(&self) {
        drop(lock(&self.inner.lock));
        self.inner.condvar.notify_all();
    }

    /// Blocks the thread until `ready()` holds (`Some(true)`), the token fires (`None`), or
    /// `timeout` passes (`Some(false)`). `ready` runs under the token's lock, so a waker that
    /// makes it true and then calls [`notify`](Self::notify) is never missed.
    #[cfg(not(loom))]
    pub(crate) fn wait_ready(
        &self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Option<bool> {
        let start = Instant::now();
        let mut guard = lock(&self.inner.lock);
        loop {
            if self.is_cancelled() {
                return None;
            }
            if ready() {
                return Some(true);
            }
            let waited = start.elapsed();
            let Some(left) = timeout.checked_sub(waited).filter(|d| !d.is_zero()) else {
                return Some(false);
            };
            guard = match self.inner.condvar.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Blocks the thread until the token fires or `timeout` passes. Returns whether it fired.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let mut guard = lock(&self.inner.lock);
        loop {
            if self.is_cancelled() {
                return true;
            }
            let waited = start.elapsed();
            let Some(left) = timeout.checked_sub(waited).filter(|d| !d.is_zero()) else {
                return false;
            };
            guard = match self.inner.condvar.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn blocked_thread_wakes_when_another_thread_cancels() {
        let token = CancellationToken::new();
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || token.wait_timeout(Duration::from_secs(3600)))
        };
        token.cancel();
        assert!(
            waiter.join().expect("waiter thread"),
            "the waiter saw the cancellation"
        );
    }

    #[test]
    fn wait_without_cancel_times_out() {
        assert!(!CancellationToken::new().wait_timeout(Duration::ZERO));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn async_waiters_wake_on_cancel() {
        let token = CancellationToken::new();
        let waiter = tokio::spawn({
            let token = token.clone();
            async move { token.cancelled().await }
        });
        tokio::task::yield_now().await;
        token.cancel();
        waiter.await.expect("waiter task");
        token.cancelled().await; // already fired: returns at once
    }
}
