//! [`Acquire`]: the future of [`ConcurrencyLimit::acquire`](super::ConcurrencyLimit::acquire).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::concurrency::wait_for;
use super::shared::{Joined, Shared, Ticket, Wake};
use super::{Permit, Refusal, Refused};
use crate::Deadline;

pin_project! {
    /// The future of [`acquire`](super::ConcurrencyLimit::acquire): a slot at once, or a place
    /// in the queue until a slot is handed over, `max_wait` passes or the deadline comes.
    ///
    /// Cancel safe: dropped while queued, it leaves the queue; dropped just after a slot was
    /// handed to it, it frees the slot.
    #[must_use = "futures do nothing unless polled"]
    pub struct Acquire<'a> {
        shared: &'a Shared,
        explicit: Option<Deadline>,
        // Set while queued.
        ticket: Option<Ticket>,
        // Whether the deadline, not `max_wait`, ends the wait.
        deadline_first: bool,
        #[pin]
        timer: Option<Sleep>,
    }

    impl PinnedDrop for Acquire<'_> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(ticket) = this.ticket.take() {
                if this.shared.leave(ticket) {
                    this.shared.release();
                }
            }
        }
    }
}

impl<'a> Acquire<'a> {
    pub(crate) fn new(shared: &'a Shared, explicit: Option<Deadline>) -> Self {
        Self {
            shared,
            explicit,
            ticket: None,
            deadline_first: false,
            timer: None,
        }
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, Refused>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared: &'a Shared = this.shared;
        let granted = |shared: &'a Shared| {
            let inflight = shared.load().in_flight();
            Poll::Ready(Ok(Permit::new(shared, shared.stamp(inflight))))
        };
        let Some(ticket) = *this.ticket else {
            if let Some(inflight) = shared.try_take() {
                return Poll::Ready(Ok(Permit::new(shared, shared.stamp(inflight))));
            }
            if shared.config.max_queue == 0 {
                return Poll::Ready(Err(shared.refuse(Refusal::LimitFull)));
            }
            let deadline = Deadline::effective(*this.explicit);
            let Some((wait, deadline_first)) = wait_for(shared, deadline, shared.clock.now())
            else {
                return Poll::Ready(Err(shared.refuse(Refusal::Deadline)));
            };
            match shared.join(Wake::Task(cx.waker().clone())) {
                Err(refused) => return Poll::Ready(Err(refused)),
                Ok(Joined::Acquired(inflight)) => {
                    return Poll::Ready(Ok(Permit::new(shared, shared.stamp(inflight))));
                }
                Ok(Joined::Queued(ticket)) => {
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
            if let Some(timer) = this.timer.as_mut().as_pin_mut() {
                ready!(timer.poll(cx));
            }
            return time_out(shared, this.ticket, *this.deadline_first);
        };
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
        if let Some(timer) = this.timer.as_mut().as_pin_mut() {
            ready!(timer.poll(cx));
        }
        time_out(shared, this.ticket, *this.deadline_first)
    }
}

/// The wait is over: leave the queue, unless a slot was handed over just now.
fn time_out<'a>(
    shared: &'a Shared,
    ticket: &mut Option<Ticket>,
    deadline_first: bool,
) -> Poll<Result<Permit<'a>, Refused>> {
    if let Some(ticket) = ticket.take() {
        if shared.leave(ticket) {
            let inflight = shared.load().in_flight();
            return Poll::Ready(Ok(Permit::new(shared, shared.stamp(inflight))));
        }
    }
    let reason = if deadline_first {
        Refusal::Deadline
    } else {
        Refusal::QueueTimeout
    };
    Poll::Ready(Err(shared.refuse(reason)))
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("queued", &self.ticket.is_some())
            .finish_non_exhaustive()
    }
}
