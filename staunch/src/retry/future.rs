//! The future of [`RetryService`](super::RetryService): a hand-written state machine, pinned
//! inline, so a call allocates nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::event::Direct;
use super::layer::{MakeRetryRequest, Reclassify};
use super::state::{CallState, Next};
use super::{BoxError, RetryLayer, Stopped};
use crate::classify::Classify;
use crate::{Error, StopReason};

pin_project! {
    #[project = StateProj]
    enum State<F> {
        // An attempt is in flight.
        Called { #[pin] future: F },
        // Waiting out the delay before the next attempt.
        Waiting { #[pin] sleep: Sleep },
        // Waiting for the service to be ready for the next attempt.
        Ready,
        // The call was refused before its first attempt.
        Refused,
    }
}

pin_project! {
    /// The response future of [`RetryService`](super::RetryService).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future>,
        service: S,
        request: Option<Req>,
        call: Result<CallState<S::Response, S::Error>, Option<Error<S::Error>>>,
        policy: P,
    }
}

impl<S: Service<Req>, Req, P> ResponseFuture<S, Req, P> {
    #[inline]
    pub(crate) fn called(
        future: S::Future,
        service: S,
        request: Option<Req>,
        call: CallState<S::Response, S::Error>,
        policy: P,
    ) -> Self {
        Self {
            state: State::Called { future },
            service,
            request,
            call: Ok(call),
            policy,
        }
    }

    pub(crate) fn refused(error: Error<S::Error>, service: S, policy: P) -> Self {
        Self {
            state: State::Refused,
            service,
            request: None,
            call: Err(Some(error)),
            policy,
        }
    }
}

impl<S, Req, C, K> Future for ResponseFuture<S, Req, RetryLayer<C, K>>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req> + Reclassify<Req, S::Response, S::Error>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let shared = &this.policy.shared;
        let call = match this.call {
            Ok(call) => call,
            Err(refused) => {
                let error = refused.take().unwrap_or_else(|| {
                    Error::new(StopReason::Deadline, 0, Default::default(), None)
                });
                return Poll::Ready(Err(Stopped::from(error).into()));
            }
        };
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { future } => {
                    let result = ready!(future.poll(cx));
                    let mut class = shared.retry.classifier.classify(&result);
                    // Without a copy this attempt is the last: no retry to gate.
                    if let Some(next) = this.request.as_ref() {
                        class = shared.make_request.reclassify(next, &result, class);
                    }
                    let observe = Direct(&shared.retry.classifier);
                    match call.settle_as(&shared.retry, result, class, true, &observe) {
                        Next::Done(outcome) => return Poll::Ready(boxed(outcome)),
                        Next::Wait(delay) => this.state.set(State::Waiting {
                            sleep: tokio::time::sleep(delay),
                        }),
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    if let Err(outcome) = call.resume(&shared.retry, false) {
                        return Poll::Ready(boxed(outcome));
                    }
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(e.into()));
                    }
                    // A missing copy made the previous attempt final, so this is not reached;
                    // stop cleanly rather than trust that.
                    let Some(request) = this.request.take() else {
                        return Poll::Ready(boxed(call.stop(&shared.retry, StopReason::Exhausted)));
                    };
                    *this.request = shared.make_request.retry_request(&request);
                    if this.request.is_none() {
                        call.make_final();
                    }
                    let future = this.service.call(request);
                    this.state.set(State::Called { future });
                }
                StateProj::Refused => {
                    return Poll::Ready(boxed(call.stop(&shared.retry, StopReason::Deadline)));
                }
            }
        }
    }
}

fn boxed<T, E: Into<BoxError>>(outcome: Result<T, Error<E>>) -> Result<T, BoxError> {
    outcome.map_err(|e| Stopped::from(e).into())
}

impl<S: Service<Req>, Req, P> fmt::Debug for ResponseFuture<S, Req, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
