//! The future of [`PipelineService`](super::PipelineService): the retry state machine, the
//! breaker's permit and the attempt's limit, pinned inline. It allocates only to run a fallback.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::admission::Admission;
use super::hedged::{self, Attempt, HedgedRace, Hedges};
use super::policy::Limit;
use super::{BoxRecovery, PipelineLayer, RecoverBoxed};
use crate::breaker::{CircuitBreaker, OwnedPermit};
use crate::classify::{Class, Classify};
use crate::deadline::{Elapsed, Enter};
use crate::hedge::race::Race;
use crate::hedge::state::{Begun, Core};
use crate::limit::{AcquireOwned, OwnedPermit as Slot, Refused};
use crate::retry::event::ViaFailure;
use crate::retry::state::{CallState, Next};
use crate::retry::{BoxError, MakeRetryRequest, Reclassify, Stopped};
use crate::{Deadline, Error, Failure};

pin_project! {
    #[project = StateProj]
    enum State<F, T, E, R> {
        // An attempt is in flight, under its limit.
        Attempt { #[pin] future: F, #[pin] limit: Option<Sleep>, scope: Option<Deadline> },
        // The attempt failed before calling the service (open circuit, no time left).
        Refused,
        // Waiting out the delay before the next attempt.
        Waiting { #[pin] sleep: Sleep },
        // Waiting for the service to be ready for the next attempt.
        Ready,
        // The next attempt's admission checks: throttling, a rate-limit token (which may take
        // a wait), a slot of the concurrency limit (which may wait in its queue).
        Admitting {
            throttle_checked: bool,
            #[pin]
            rate_sleep: Option<Sleep>,
            rate_waited: std::time::Duration,
            rate_done: bool,
            #[pin]
            acquire: Option<AcquireOwned>,
        },
        // The fallback is producing a substitute.
        Recovering { substitute: BoxRecovery<T, E> },
        // The outcome is known.
        Done,
        // A hedged call's attempts are racing.
        Hedging { #[pin] race: R },
    }
}

type Outcome<T, E> = Result<T, Error<E>>;

/// An attempt's result, its class, and whether it reached the service.
type Settled<T, E> = (Result<T, Failure<E>>, Class, bool);

pin_project! {
    /// The response future of [`PipelineService`](super::PipelineService).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S::Future, S::Response, S::Error, HedgedRace<S, Req>>,
        service: S,
        request: Option<Req>,
        call: Option<CallState<S::Response, Failure<S::Error>>>,
        permit: Option<OwnedPermit>,
        // The attempt's slot of the concurrency limit, and whether the throttle counts it.
        slot: Option<Slot>,
        throttled: bool,
        elapsed: Option<Elapsed>,
        refused: Option<(Failure<S::Error>, Class)>,
        deadline: Option<Deadline>,
        outcome: Option<Outcome<S::Response, S::Error>>,
        policy: P,
    }
}

impl<S, Req, C, F, K> ResponseFuture<S, Req, PipelineLayer<C, F, K>>
where
    S: Service<Req>,
    K: MakeRetryRequest<Req>,
{
    /// Starts the call: the overall deadline, the retry state, and the first attempt.
    #[inline]
    pub(super) fn start(service: S, request: Req, policy: PipelineLayer<C, F, K>) -> Self {
        let pipeline = &policy.shared.pipeline;
        // The deadline of the whole call, kept so that every later poll (and every retried
        // attempt) runs in it, wherever the future is polled.
        let deadline = call_deadline(pipeline);
        let _scope = deadline.map(Enter::new);
        let mut service = service;
        let mut request = Some(request);
        // Each branch builds the future once, as the value returned: built early and filled in,
        // it was copied out whole (360 bytes for a small request).
        match CallState::begin(&pipeline.retry, deadline, false) {
            // With admission checks, the first poll makes them (they may wait).
            Ok(call) if !pipeline.admission.is_empty() => Self {
                state: admitting(),
                service,
                request,
                call: Some(call),
                permit: None,
                slot: None,
                throttled: false,
                elapsed: None,
                refused: None,
                deadline,
                outcome: None,
                policy,
            },
            Ok(mut call) => match launch(&policy, &mut service, &mut request, &mut call) {
                Ok((permit, limit, future)) => Self {
                    state: attempt_state(future, limit),
                    service,
                    request,
                    call: Some(call),
                    permit,
                    slot: None,
                    throttled: false,
                    elapsed: limit.map(|limit| limit.elapsed),
                    refused: None,
                    deadline,
                    outcome: None,
                    policy,
                },
                Err(refused) => Self {
                    state: State::Refused,
                    service,
                    request,
                    call: Some(call),
                    permit: None,
                    slot: None,
                    throttled: false,
                    elapsed: None,
                    refused: Some(refused),
                    deadline,
                    outcome: None,
                    policy,
                },
            },
            Err(refused) => {
                let outcome = Some(Err(pipeline_finish(&policy, refused)));
                Self {
                    state: State::Done,
                    service,
                    request,
                    call: None,
                    permit: None,
                    slot: None,
                    throttled: false,
                    elapsed: None,
                    refused: None,
                    deadline,
                    outcome,
                    policy,
                }
            }
        }
    }
}

impl<S, Req, C, F, K> ResponseFuture<S, Req, PipelineLayer<C, F, K>>
where
    S: Service<Req>,
    K: MakeRetryRequest<Req>,
{
    /// Starts a hedged call: the overall deadline, the race, and its first attempt; the
    /// request is copied up front for the hedges (no copy, no hedge).
    pub(super) fn start_hedged(service: S, request: Req, policy: PipelineLayer<C, F, K>) -> Self {
        let pipeline = &policy.shared.pipeline;
        let deadline = call_deadline(pipeline);
        let _scope = deadline.map(Enter::new);
        let mut service = service;
        let template = policy.shared.make_request.hedge_request(&request);
        let begun = pipeline.hedge.as_ref().map(|hedge| {
            Begun::begin::<_, Failure<S::Error>>(hedge, deadline, false, template.is_some())
                .map(Core::after)
        });
        let (state, outcome) = match begun {
            Some(Ok(core)) => {
                let first = match hedged::start(pipeline) {
                    Ok(started) => {
                        let _scope = started.2.map(|limit| Enter::new(limit.deadline));
                        Attempt::called(service.call(request), started)
                    }
                    Err((failure, class)) => Attempt::refused(failure, class),
                };
                let race = Race::new(core, first);
                (State::Hedging { race }, None)
            }
            Some(Err(refused)) => (State::Done, Some(Err(pipeline.finish(refused)))),
            // Not a hedged pipeline: `start` is called for those.
            None => (State::Done, None),
        };
        Self {
            state,
            service,
            request: template,
            call: None,
            permit: None,
            slot: None,
            throttled: false,
            elapsed: None,
            refused: None,
            deadline,
            outcome,
            policy,
        }
    }
}

/// The deadline of a whole call: the pipeline's timeout from now, or the caller's deadline if
/// that is tighter.
#[inline]
fn call_deadline<C, F>(pipeline: &super::Pipeline<C, F>) -> Option<Deadline> {
    match pipeline.timeout {
        Some(timeout) => {
            let mine = Deadline::after_from(pipeline.retry.clock.now(), timeout);
            Some(Deadline::current().map_or(mine, |outer| outer.min(mine)))
        }
        None => Deadline::current(),
    }
}

/// What starting an attempt gives: the permit, the limit and the service's future; or the
/// failure that stops it before the service is called.
type Launched<S, Req> = Result<
    (
        Option<OwnedPermit>,
        Option<Limit>,
        <S as Service<Req>>::Future,
    ),
    (Failure<<S as Service<Req>>::Error>, Class),
>;

/// Starts an attempt on a ready service, keeping a copy of the request for the next one (or
/// making this attempt the last when there is none).
fn launch<S, Req, C, F, K>(
    policy: &PipelineLayer<C, F, K>,
    service: &mut S,
    request: &mut Option<Req>,
    call: &mut CallState<S::Response, Failure<S::Error>>,
) -> Launched<S, Req>
where
    S: Service<Req>,
    K: MakeRetryRequest<Req>,
{
    let shared = &policy.shared;
    let (permit, limit) = shared
        .pipeline
        .start_attempt(CircuitBreaker::try_acquire_owned)?;
    let Some(current) = request.take() else {
        // Only reachable if a missing copy had not made the last attempt final.
        return Err((
            Failure::Timeout(Elapsed::new(Default::default(), true)),
            Class::Permanent,
        ));
    };
    *request = shared.make_request.retry_request(&current);
    if request.is_none() {
        call.make_final();
    }
    // The attempt's own limit is the deadline in scope for the service's call.
    let _scope = limit.map(|limit| Enter::new(limit.deadline));
    Ok((permit, limit, service.call(current)))
}

/// The state of an attempt's admission checks, none made yet.
fn admitting<F, T, E, R>() -> State<F, T, E, R> {
    State::Admitting {
        throttle_checked: false,
        rate_sleep: None,
        rate_waited: std::time::Duration::ZERO,
        rate_done: false,
        acquire: None,
    }
}

/// Makes the admission checks of an attempt, in order, waiting as they allow: `Ok` with the
/// attempt's slot (if the pipeline has a concurrency limit), or the first refusal. Sets
/// `throttled` once the throttle has admitted the attempt.
#[allow(clippy::too_many_arguments)]
fn poll_admission(
    admission: &Admission,
    throttled: &mut bool,
    throttle_checked: &mut bool,
    #[cfg_attr(not(feature = "rate-limit"), allow(unused_mut))] mut rate_sleep: Pin<
        &mut Option<Sleep>,
    >,
    rate_waited: &mut std::time::Duration,
    rate_done: &mut bool,
    mut acquire: Pin<&mut Option<AcquireOwned>>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Slot>, Refused>> {
    if !*throttle_checked {
        *throttle_checked = true;
        if let Some(throttle) = &admission.throttle {
            throttle.admit()?;
            *throttled = true;
        }
    }
    #[cfg(feature = "rate-limit")]
    if let Some(rate) = &admission.rate {
        while !*rate_done {
            if let Some(sleep) = rate_sleep.as_mut().as_pin_mut() {
                ready!(sleep.poll(cx));
                rate_sleep.set(None);
            }
            match rate.next_wait() {
                None => *rate_done = true,
                Some(wait) => {
                    let wait = rate.plan(wait, *rate_waited, Deadline::current())?;
                    *rate_waited += wait;
                    rate_sleep.set(Some(tokio::time::sleep(wait)));
                }
            }
        }
    }
    #[cfg(not(feature = "rate-limit"))]
    let _ = (rate_sleep, rate_waited, rate_done);
    let Some(limit) = &admission.limit else {
        return Poll::Ready(Ok(None));
    };
    if acquire.is_none() {
        acquire.set(Some(limit.acquire_owned()));
    }
    match acquire.as_mut().as_pin_mut() {
        Some(waiting) => {
            let slot = ready!(waiting.poll(cx))?;
            acquire.set(None);
            Poll::Ready(Ok(Some(slot)))
        }
        None => Poll::Ready(Ok(None)),
    }
}

/// The state of an attempt in flight: its future, the timer of its limit, and the limit as the
/// deadline in scope while it is polled.
fn attempt_state<F, T, E, R>(future: F, limit: Option<Limit>) -> State<F, T, E, R> {
    State::Attempt {
        future,
        limit: limit.map(|limit| tokio::time::sleep(limit.elapsed.timeout())),
        scope: limit.map(|limit| limit.deadline),
    }
}

fn pipeline_finish<C, F, K, E>(
    policy: &PipelineLayer<C, F, K>,
    error: Error<Failure<E>>,
) -> Error<E> {
    policy.shared.pipeline.finish(error)
}

impl<S, Req, C, F, K> Future for ResponseFuture<S, Req, PipelineLayer<C, F, K>>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    F: RecoverBoxed<S::Response, S::Error>,
    K: MakeRetryRequest<Req> + Reclassify<Req, S::Response, S::Error>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _scope = this.deadline.map(Enter::new);
        let shared = &this.policy.shared;
        let pipeline = &shared.pipeline;
        loop {
            // An attempt's result and class, to settle below.
            let settled: Settled<S::Response, S::Error> = match this.state.as_mut().project() {
                StateProj::Attempt {
                    future,
                    limit,
                    scope,
                } => {
                    let _attempt_scope = scope.map(Enter::new);
                    let outcome = match future.poll(cx) {
                        Poll::Ready(result) => Ok(result),
                        Poll::Pending => match limit.as_pin_mut() {
                            Some(limit) => {
                                ready!(limit.poll(cx));
                                Err(this
                                    .elapsed
                                    .unwrap_or(Elapsed::new(Default::default(), true)))
                            }
                            None => return Poll::Pending,
                        },
                    };
                    let mut class = match &outcome {
                        Ok(result) => pipeline.classifier.classify(result),
                        Err(elapsed) => pipeline.timeout_class(elapsed),
                    };
                    // The request copier may gate a retry on the request (idempotency);
                    // without a copy this attempt is the last anyway.
                    if let Some(next) = this.request.as_ref() {
                        class = match &outcome {
                            Ok(result) => shared.make_request.reclassify(next, result, class),
                            Err(_) => shared.make_request.reclassify_unanswered(next, class),
                        };
                    }
                    // In place: the next attempt's permit replaces it.
                    if let Some(permit) = this.permit {
                        permit.record_in_place(class);
                    }
                    if let Some(slot) = this.slot.take() {
                        slot.record(class);
                    }
                    if std::mem::take(this.throttled)
                        && let Some(throttle) = &pipeline.admission.throttle
                    {
                        throttle.record_class(class);
                    }
                    let result = match outcome {
                        Ok(Ok(response)) => Ok(response),
                        Ok(Err(error)) => Err(Failure::Inner(error)),
                        Err(elapsed) => Err(Failure::Timeout(elapsed)),
                    };
                    (result, class, true)
                }
                StateProj::Refused => match this.refused.take() {
                    Some((failure, class)) => (Err(failure), class, false),
                    None => (
                        Err(Failure::Timeout(Elapsed::new(Default::default(), true))),
                        Class::Permanent,
                        false,
                    ),
                },
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    let resumed = match this.call.as_mut() {
                        Some(call) => call.resume(&pipeline.retry, false),
                        None => Ok(()),
                    };
                    match resumed {
                        Ok(()) => this.state.set(State::Ready),
                        Err(outcome) => {
                            *this.outcome = Some(outcome.map_err(|e| pipeline.finish(e)));
                            this.state.set(State::Done);
                        }
                    }
                    continue;
                }
                StateProj::Ready => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(error.into()));
                    }
                    if !pipeline.admission.is_empty() {
                        this.state.set(admitting());
                        continue;
                    }
                    let Some(call) = this.call.as_mut() else {
                        this.state.set(State::Done);
                        continue;
                    };
                    match launch(this.policy, this.service, this.request, call) {
                        Ok((permit, limit, future)) => {
                            *this.permit = permit;
                            *this.elapsed = limit.map(|limit| limit.elapsed);
                            this.state.set(attempt_state(future, limit));
                            continue;
                        }
                        Err((failure, class)) => (Err(failure), class, false),
                    }
                }
                StateProj::Hedging { race } => {
                    let Some(hedge) = pipeline.hedge.as_ref() else {
                        this.state.set(State::Done);
                        continue;
                    };
                    let mut driver = Hedges {
                        policy: this.policy,
                        service: this.service,
                        template: this.request,
                    };
                    match ready!(race.poll_race(cx, hedge, &mut driver)) {
                        Ok(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Err(error) => {
                            *this.outcome = Some(Err(pipeline.finish(error)));
                            this.state.set(State::Done);
                        }
                    }
                    continue;
                }
                StateProj::Admitting {
                    throttle_checked,
                    rate_sleep,
                    rate_waited,
                    rate_done,
                    acquire,
                } => {
                    let admitted = ready!(poll_admission(
                        &pipeline.admission,
                        this.throttled,
                        throttle_checked,
                        rate_sleep,
                        rate_waited,
                        rate_done,
                        acquire,
                        cx,
                    ));
                    match admitted {
                        // Refused locally: nothing reached the service, nothing is counted
                        // anywhere, and it is not retried.
                        Err(refused) => {
                            *this.throttled = false;
                            (Err(Failure::Refused(refused)), Class::Permanent, false)
                        }
                        Ok(slot) => {
                            *this.slot = slot;
                            let Some(call) = this.call.as_mut() else {
                                this.state.set(State::Done);
                                continue;
                            };
                            match launch(this.policy, this.service, this.request, call) {
                                Ok((permit, limit, future)) => {
                                    *this.permit = permit;
                                    *this.elapsed = limit.map(|limit| limit.elapsed);
                                    this.state.set(attempt_state(future, limit));
                                    continue;
                                }
                                // The breaker refused (or no time was left): the slot is
                                // freed with no sample, the throttle counts nothing.
                                Err((failure, class)) => {
                                    *this.slot = None;
                                    *this.throttled = false;
                                    (Err(failure), class, false)
                                }
                            }
                        }
                    }
                }
                StateProj::Recovering { substitute } => {
                    let outcome = ready!(substitute.as_mut().poll(cx));
                    return Poll::Ready(boxed(outcome));
                }
                StateProj::Done => {
                    let outcome = match this.outcome.take() {
                        Some(outcome) => outcome,
                        // Polled after completion, or a request that could not be sent.
                        None => Err(Error::new(
                            crate::StopReason::Exhausted,
                            0,
                            Default::default(),
                            None,
                        )),
                    };
                    match outcome {
                        Ok(response) => return Poll::Ready(Ok(response)),
                        Err(error) => {
                            match pipeline.fallback.recover_boxed(&pipeline.retry.name, error) {
                                Ok(substitute) => {
                                    this.state.set(State::Recovering { substitute });
                                    continue;
                                }
                                Err(error) => return Poll::Ready(boxed(Err(error))),
                            }
                        }
                    }
                }
            };
            let (result, class, reached) = settled;
            let Some(call) = this.call.as_mut() else {
                this.state.set(State::Done);
                continue;
            };
            let observe = ViaFailure(&pipeline.classifier);
            match call.settle_as(&pipeline.retry, result, class, reached, &observe) {
                Next::Wait(delay) => this.state.set(State::Waiting {
                    sleep: tokio::time::sleep(delay),
                }),
                // A success needs no fallback: returned at once, not kept for `Done`.
                Next::Done(Ok(response)) => {
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                Next::Done(Err(error)) => {
                    *this.outcome = Some(Err(pipeline.finish(error)));
                    this.state.set(State::Done);
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
