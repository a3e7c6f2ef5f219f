//! [`Acquire`]: the future of [`ConcurrencyLimit::acquire`](super::ConcurrencyLimit::acquire),
//! over [`Waiting`], the wait itself, which futures that own their limit (the tower services)
//! embed too.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::concurrency::{Handle, wait_for};
use super::shared::{Joined, RawPermit, Shared, Ticket, Wake};
use super::{ConcurrencyLimit, OwnedPermit, Permit, Refusal, Refused};
use crate::Deadline;

pin_project! {
    /// A wait for a slot: a place in the queue and the timer that ends the wait. Polled with
    /// the limit it waits on, so that a future that owns the limit can embed it.
    ///
    /// Whoever embeds it must call [`cancel`](Waiting::cancel) when dropped early.
    pub(crate) struct Waiting {
        explicit: Option<Deadline>,
        started: bool,
        // Set while queued.
        ticket: Option<Ticket>,
        // Whether the deadline, not `max_wait`, ends the wait.
        deadline_first: bool,
        #[pin]
        timer: Option<Sleep>,
    }
}

impl Waiting {
    pub(crate) const fn new(explicit: Option<Deadline>) -> Self {
        Self {
            explicit,
            started: false,
            ticket: None,
            deadline_first: false,
            timer: None,
        }
    }

    /// A slot at once, or a place in the queue until one is handed over, `max_wait` passes or
    /// the deadline comes.
    pub(crate) fn poll_acquire(
        self: Pin<&mut Self>,
        shared: &Shared,
        cx: &mut Context<'_>,
    ) -> Poll<Result<RawPermit, Refused>> {
        let mut this = self.project();
        let granted = |shared: &Shared| {
            let inflight = shared.load().in_flight();
            Poll::Ready(Ok(shared.stamp(inflight)))
        };
        match *this.ticket {
            None if *this.started => {
                // Polled again after it finished: never hang, never take a second slot.
                return Poll::Ready(Err(Refused::new(Refusal::QueueTimeout)));
            }
            None => {
                *this.started = true;
                if let Some(inflight) = shared.try_take() {
                    return Poll::Ready(Ok(shared.stamp(inflight)));
                }
                if shared.config.max_queue == 0 {
                    return Poll::Ready(Err(shared.refuse(Refusal::LimitFull)));
                }
                let deadline = Deadline::effective(*this.explicit);
                let Some((wait, deadline_first)) = wait_for(shared, deadline, shared.clock.now())
                else {
                    return Poll::Ready(Err(shared.refuse(Refusal::Deadline)));
                };
                match shared.join(Wake::Task(cx.waker().clone()))? {
                    Joined::Acquired(inflight) => return Poll::Ready(Ok(shared.stamp(inflight))),
                    Joined::Queued(ticket) => {
                        *this.ticket = Some(ticket);
                        *this.deadline_first = deadline_first;
                        this.timer.set(Some(tokio::time::sleep(wait)));
                        // Granted as it joined (the limit grew)?
                        if shared.poll_ticket(ticket, None) == Some(true) {
                            *this.ticket = None;
                            return granted(shared);
                        }
                    }
                }
            }
            Some(ticket) => {
                match shared.poll_ticket(ticket, Some(Wake::Task(cx.waker().clone()))) {
                    Some(true) => {
                        *this.ticket = None;
                        return granted(shared);
                    }
                    Some(false) => {}
                    // Not in the queue (unreachable): never hang.
                    None => {
                        *this.ticket = None;
                        return Poll::Ready(Err(shared.refuse(Refusal::QueueTimeout)));
                    }
                }
            }
        }
        if let Some(timer) = this.timer.as_pin_mut() {
            ready!(timer.poll(cx));
        }
        // The wait is over: leave the queue, unless a slot was handed over just now.
        if let Some(ticket) = this.ticket.take()
            && shared.leave(ticket)
        {
            return granted(shared);
        }
        let reason = if *this.deadline_first {
            Refusal::Deadline
        } else {
            Refusal::QueueTimeout
        };
        Poll::Ready(Err(shared.refuse(reason)))
    }

    /// Gives up the wait (the future embedding it was dropped): leaves the queue, and frees a
    /// slot that was handed over just before.
    pub(crate) fn cancel(self: Pin<&mut Self>, shared: &Shared) {
        if let Some(ticket) = self.project().ticket.take()
            && shared.leave(ticket)
        {
            shared.release();
        }
    }

    /// Whether it waits in the queue.
    pub(crate) fn is_queued(&self) -> bool {
        self.ticket.is_some()
    }
}

pin_project! {
    /// The future of [`acquire`](super::ConcurrencyLimit::acquire): a slot at once, or a place
    /// in the queue until a slot is handed over, `max_wait` passes or the deadline comes.
    ///
    /// Cancel safe: dropped while queued, it leaves the queue; dropped just after a slot was
    /// handed to it, it frees the slot.
    #[must_use = "futures do nothing unless polled"]
    pub struct Acquire<'a> {
        shared: &'a Shared,
        #[pin]
        waiting: Waiting,
    }

    impl PinnedDrop for Acquire<'_> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.waiting.cancel(this.shared);
        }
    }
}

impl<'a> Acquire<'a> {
    pub(crate) fn new(shared: &'a Shared, explicit: Option<Deadline>) -> Self {
        Self {
            shared,
            waiting: Waiting::new(explicit),
        }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, Refused>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let shared: &'a Shared = this.shared;
        this.waiting
            .poll_acquire(shared, cx)
            .map_ok(|raw| Permit::new(shared, raw))
    }
}

pin_project! {
    /// The future of [`acquire_owned`](super::ConcurrencyLimit::acquire_owned):
    /// [`Acquire`] for futures that must be `'static`, holding its own handle to the limit.
    #[must_use = "futures do nothing unless polled"]
    pub struct AcquireOwned {
        limit: ConcurrencyLimit,
        #[pin]
        waiting: Waiting,
    }

    impl PinnedDrop for AcquireOwned {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.waiting.cancel(&this.limit.shared);
        }
    }
}

impl AcquireOwned {
    pub(crate) fn new(limit: ConcurrencyLimit, explicit: Option<Deadline>) -> Self {
        Self {
            limit,
            waiting: Waiting::new(explicit),
        }
    }
}

impl Future for AcquireOwned {
    type Output = Result<OwnedPermit, Refused>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let limit: &ConcurrencyLimit = this.limit;
        this.waiting
            .poll_acquire(&limit.shared, cx)
            .map_ok(|raw| OwnedPermit::new(Handle::Shared(limit.clone()), raw))
    }
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("queued", &self.waiting.is_queued())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("queued", &self.waiting.is_queued())
            .finish_non_exhaustive()
    }
}
