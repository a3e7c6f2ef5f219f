//! The tower pipeline's attempts when it hedges: each under its own breaker permit and limit,
//! as a retried attempt is, raced by [`Race`](crate::hedge::race::Race) instead of looped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::PipelineLayer;
use super::admission::Held;
use super::policy::Limit;
use crate::breaker::{CircuitBreaker, OwnedPermit};
use crate::classify::{Class, Classify};
use crate::deadline::{Elapsed, Enter};
use crate::hedge::race::{Driver, Race, Settled};
use crate::retry::MakeRetryRequest;
use crate::{Deadline, Failure, StopReason};

/// The race of a hedged pipeline call.
pub(super) type HedgedRace<S, Req> = Race<
    Attempt<S, Req>,
    Attempt<S, Req>,
    Result<<S as Service<Req>>::Response, Failure<<S as Service<Req>>::Error>>,
>;

/// How an attempt ended, before it is classified.
pub(super) enum Ended<T, E> {
    /// The service answered.
    Answered(Result<T, E>),
    /// The attempt's limit passed first.
    TimedOut(Elapsed),
    /// A local check refused it before it was sent.
    Refused(Failure<E>, Class),
}

pin_project! {
    #[project = CallProj]
    enum Call<S, Req, F> {
        // A hedge, waiting for its clone of the service to be ready.
        Ready { service: S, request: Option<Req> },
        // Sent.
        Called { #[pin] future: F },
        // Refused before it was sent (the failure is the attempt's `refused`).
        Refused,
    }
}

pin_project! {
    /// One attempt of a hedged pipeline call: the service's call under the attempt's limit,
    /// holding its breaker permit and its admission (a concurrency-limit slot, the throttle's
    /// count) until it settles (dropped unsettled, they record nothing).
    pub(super) struct Attempt<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        call: Call<S, Req, S::Future>,
        #[pin]
        limit: Option<Sleep>,
        elapsed: Option<Elapsed>,
        scope: Option<Deadline>,
        permit: Option<OwnedPermit>,
        held: Option<Held>,
        refused: Option<(Failure<S::Error>, Class)>,
    }
}

impl<S: Service<Req>, Req> Attempt<S, Req> {
    /// The first attempt, sent on the ready service.
    pub(super) fn called(future: S::Future, started: Started) -> Self {
        Self::new(Call::Called { future }, started, None)
    }

    /// A hedge, to send once its clone of the service is ready.
    fn ready(service: S, request: Req, started: Started) -> Self {
        Self::new(
            Call::Ready {
                service,
                request: Some(request),
            },
            started,
            None,
        )
    }

    /// An attempt refused before it was sent (an open circuit, no time left).
    pub(super) fn refused(failure: Failure<S::Error>, class: Class) -> Self {
        Self::new(Call::Refused, (None, None, None), Some((failure, class)))
    }

    fn new(
        call: Call<S, Req, S::Future>,
        (held, permit, limit): Started,
        refused: Option<(Failure<S::Error>, Class)>,
    ) -> Self {
        Self {
            call,
            limit: limit.map(|limit| tokio::time::sleep(limit.elapsed.timeout())),
            elapsed: limit.map(|limit| limit.elapsed),
            scope: limit.map(|limit| limit.deadline),
            permit,
            held,
            refused,
        }
    }
}

impl<S: Service<Req>, Req> Future for Attempt<S, Req> {
    type Output = (Ended<S::Response, S::Error>, Holds);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((failure, class)) = this.refused.take() {
            return Poll::Ready((Ended::Refused(failure, class), (None, None)));
        }
        // The attempt's own limit is the deadline in scope for the service.
        let _scope = this.scope.map(Enter::new);
        loop {
            match this.call.as_mut().project() {
                CallProj::Ready { service, request } => match service.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let Some(request) = request.take() else {
                            return Poll::Pending;
                        };
                        let future = service.call(request);
                        this.call.set(Call::Called { future });
                    }
                    Poll::Ready(Err(error)) => {
                        return Poll::Ready((
                            Ended::Answered(Err(error)),
                            (this.permit.take(), this.held.take()),
                        ));
                    }
                    Poll::Pending => break,
                },
                CallProj::Called { future } => {
                    if let Poll::Ready(result) = future.poll(cx) {
                        return Poll::Ready((
                            Ended::Answered(result),
                            (this.permit.take(), this.held.take()),
                        ));
                    }
                    break;
                }
                CallProj::Refused => return Poll::Pending,
            }
        }
        let Some(limit) = this.limit.as_pin_mut() else {
            return Poll::Pending;
        };
        ready!(limit.poll(cx));
        let elapsed = this
            .elapsed
            .unwrap_or(Elapsed::new(Default::default(), true));
        Poll::Ready((
            Ended::TimedOut(elapsed),
            (this.permit.take(), this.held.take()),
        ))
    }
}

/// Classifies the attempts of a hedged pipeline call and starts its hedges.
pub(super) struct Hedges<'a, S, Req, C, F, K> {
    pub(super) policy: &'a PipelineLayer<C, F, K>,
    pub(super) service: &'a S,
    pub(super) template: &'a mut Option<Req>,
}

impl<S, Req, C, F, K> Driver for Hedges<'_, S, Req, C, F, K>
where
    S: Service<Req> + Clone,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req>,
{
    type Output = (Ended<S::Response, S::Error>, Holds);
    type Value = S::Response;
    type Error = Failure<S::Error>;
    type Hedge = Attempt<S, Req>;

    fn settle(
        &mut self,
        (ended, (permit, held)): Self::Output,
    ) -> Settled<S::Response, Failure<S::Error>> {
        let pipeline = &self.policy.shared.pipeline;
        let (result, class, refused) = match ended {
            Ended::Answered(result) => {
                let class = pipeline.classifier.classify(&result);
                (result.map_err(Failure::Inner), class, None)
            }
            Ended::TimedOut(elapsed) => (
                Err(Failure::Timeout(elapsed)),
                pipeline.timeout_class(&elapsed),
                None,
            ),
            Ended::Refused(failure, class) => {
                let reason = match &failure {
                    Failure::CircuitOpen(_) => StopReason::CircuitOpen,
                    Failure::Refused(refused) => StopReason::Refused(refused.reason()),
                    _ => StopReason::Deadline,
                };
                (Err(failure), class, Some(reason))
            }
        };
        if let Some(permit) = permit {
            permit.record(class);
        }
        if let Some(held) = held {
            held.record(&pipeline.admission, class);
        }
        Settled {
            result,
            class,
            refused,
        }
    }

    fn launch(&mut self, last: bool) -> Option<Attempt<S, Req>> {
        // The last hedge takes the copy itself; the others copy it again.
        let copy = match self.template.as_ref() {
            Some(template) if !last => self.policy.shared.make_request.hedge_request(template),
            _ => None,
        };
        let request = copy.or_else(|| self.template.take())?;
        Some(match start(&self.policy.shared.pipeline) {
            Ok(started) => Attempt::ready(self.service.clone(), request, started),
            Err((failure, class)) => Attempt::refused(failure, class),
        })
    }
}

/// What a started attempt holds: its admission, its breaker permit, its limit.
pub(super) type Started = (Option<Held>, Option<OwnedPermit>, Option<Limit>);

/// What a settled attempt gives back to record its class in: its breaker permit, its admission.
type Holds = (Option<OwnedPermit>, Option<Held>);

/// Starts an attempt of a hedged call: the admission checks, which do not wait, then the
/// breaker and the attempt's limit; or the failure that stops it before it is sent. A breaker's
/// refusal drops the admission: a slot is freed with no sample.
pub(super) fn start<C, F, E>(
    pipeline: &super::Pipeline<C, F>,
) -> Result<Started, (Failure<E>, Class)> {
    let held = if pipeline.admission.is_empty() {
        None
    } else {
        match pipeline.admission.try_admit_owned() {
            Ok(held) => Some(held),
            Err(refused) => return Err((Failure::Refused(refused), Class::Permanent)),
        }
    };
    let (permit, limit) = pipeline.start_attempt(CircuitBreaker::try_acquire_owned)?;
    Ok((held, permit, limit))
}
