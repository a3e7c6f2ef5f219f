use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pin_project_lite::pin_project;

use crate::Clock;

thread_local! {
    static CURRENT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// An absolute point in monotonic time by which a piece of work must be done.
///
/// `Copy` and ordered: the earlier deadline is the smaller (`a.min(b)` is the tighter one).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::Deadline;
///
/// let deadline = Deadline::after(Duration::from_secs(2));
/// assert!(!deadline.is_expired());
/// assert!(deadline.remaining() <= Duration::from_secs(2));
/// let value = deadline.scope_sync(|| Deadline::current().map(|d| d.remaining()));
/// assert!(value.is_some());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `timeout` from now on the system clock (see [`Clock::system`]). A timeout too
    /// large to represent saturates to a far-future instant instead of panicking.
    pub fn after(timeout: Duration) -> Self {
        Self::after_from(Clock::system().now(), timeout)
    }

    /// The deadline `timeout` after `now`, saturating like [`after`](Self::after). For manual
    /// clocks and pure code.
    pub fn after_from(now: Instant, timeout: Duration) -> Self {
        Self {
            at: saturating_add(now, timeout),
        }
    }

    /// The deadline at `instant`.
    pub const fn at(instant: Instant) -> Self {
        Self { at: instant }
    }

    /// The instant of this deadline.
    pub const fn instant(&self) -> Instant {
        self.at
    }

    /// Time left on the system clock; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.remaining_at(Clock::system().now())
    }

    /// Time left at `now`; zero once passed.
    #[inline]
    pub fn remaining_at(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now)
    }

    /// Whether the deadline has passed on the system clock.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(Clock::system().now())
    }

    /// Whether the deadline has passed at `now` (no time left).
    #[inline]
    pub fn is_expired_at(&self, now: Instant) -> bool {
        now >= self.at
    }

    /// The deadline in scope for the current task or closure, if any.
    #[inline]
    pub fn current() -> Option<Self> {
        CURRENT.with(Cell::get).map(Self::at)
    }

    /// The tighter of `explicit` and the deadline in scope.
    #[inline]
    pub(crate) fn effective(explicit: Option<Self>) -> Option<Self> {
        match (explicit, Self::current()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs `future` with this deadline in scope (or the caller's, if that is tighter).
    pub fn scope<F: Future>(self, future: F) -> Scoped<F> {
        Scoped::new(Some(self), future)
    }

    /// Runs `f` on this thread with this deadline in scope (or the caller's, if that is tighter).
    pub fn scope_sync<R>(self, f: impl FnOnce() -> R) -> R {
        let _guard = Enter::new(self);
        f()
    }
}

fn saturating_add(now: Instant, timeout: Duration) -> Instant {
    if let Some(at) = now.checked_add(timeout) {
        return at;
    }
    // Past what the platform's Instant can hold: fall back to the furthest instant we can reach.
    let mut step = timeout;
    let mut at = now;
    while !step.is_zero() {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

/// Sets the thread's current deadline for as long as it lives and restores the previous one on
/// drop, even when unwinding.
pub(crate) struct Enter {
    previous: Option<Instant>,
}

impl Enter {
    pub(crate) fn new(deadline: Deadline) -> Self {
        let previous = CURRENT.with(Cell::get);
        let tighter = previous.map_or(deadline.at, |outer| outer.min(deadline.at));
        CURRENT.with(|current| current.set(Some(tighter)));
        Self { previous }
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

pin_project! {
    /// A future run with a deadline in scope; made by [`Deadline::scope`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Scoped<F> {
        // `None` (crate-internal only) leaves the caller's scope as it is.
        deadline: Option<Deadline>,
        #[pin]
        inner: F,
    }
}

impl<F> Scoped<F> {
    /// `future` with `deadline` in scope, or with the caller's scope as it is for `None`.
    pub(crate) const fn new(deadline: Option<Deadline>, future: F) -> Self {
        Self {
            deadline,
            inner: future,
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = this.deadline.map(Enter::new);
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_never_panics() {
        let now = Instant::now();
        let far = Deadline::after_from(now, Duration::MAX);
        assert!(far.instant() > now);
        assert!(!far.is_expired_at(now));
        let d = Deadline::after_from(now, Duration::from_secs(3));
        assert_eq!(d.remaining_at(now), Duration::from_secs(3));
        assert_eq!(
            d.remaining_at(now + Duration::from_secs(10)),
            Duration::ZERO
        );
        assert!(
            d.is_expired_at(now + Duration::from_secs(3)),
            "no time left is expired"
        );
    }

    #[test]
    fn nested_sync_scopes_keep_the_tighter_deadline_and_restore() {
        let now = Instant::now();
        let tight = Deadline::after_from(now, Duration::from_secs(1));
        let loose = Deadline::after_from(now, Duration::from_secs(10));
        assert_eq!(Deadline::current(), None);
        loose.scope_sync(|| {
            assert_eq!(Deadline::current(), Some(loose));
            tight.scope_sync(|| assert_eq!(Deadline::current(), Some(tight)));
            assert_eq!(Deadline::current(), Some(loose));
        });
        tight.scope_sync(|| loose.scope_sync(|| assert_eq!(Deadline::current(), Some(tight))));
        assert_eq!(Deadline::current(), None);
    }

    #[test]
    fn scope_is_restored_after_a_panic() {
        let d = Deadline::after_from(Instant::now(), Duration::from_secs(1));
        let result = std::panic::catch_unwind(|| d.scope_sync(|| panic!("boom")));
        assert!(result.is_err());
        assert_eq!(Deadline::current(), None);
    }

    #[test]
    fn effective_takes_the_tighter_of_explicit_and_scope() {
        let now = Instant::now();
        let tight = Deadline::after_from(now, Duration::from_secs(1));
        let loose = Deadline::after_from(now, Duration::from_secs(10));
        assert_eq!(Deadline::effective(None), None);
        assert_eq!(Deadline::effective(Some(loose)), Some(loose));
        tight.scope_sync(|| {
            assert_eq!(Deadline::effective(Some(loose)), Some(tight));
            assert_eq!(Deadline::effective(None), Some(tight));
        });
        loose.scope_sync(|| assert_eq!(Deadline::effective(Some(tight)), Some(tight)));
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn scope_follows_the_future_across_awaits_not_the_thread() {
        let d = Deadline::after(Duration::from_secs(5));
        let seen = d
            .scope(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Deadline::current()
            })
            .await;
        assert_eq!(seen, Some(d));
        assert_eq!(Deadline::current(), None, "the scope ends with the future");
        // Work interleaved on the same thread does not see another future's scope.
        let (inner, outside) = tokio::join!(
            d.scope(async {
                tokio::task::yield_now().await;
                Deadline::current()
            }),
            async {
                tokio::task::yield_now().await;
                Deadline::current()
            }
        );
        assert_eq!((inner, outside), (Some(d), None));
    }
}
