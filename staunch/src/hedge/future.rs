//! The future of [`HedgeService`](super::HedgeService): the race of attempts pinned inline, so a
//! call whose first attempt answers before the delay allocates nothing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::HedgeLayer;
use super::layer::Shared;
use super::race::{Driver, Race, Settled};
use super::state::{Begun, Core};
use crate::classify::Classify;
use crate::deadline::Enter;
use crate::retry::{BoxError, MakeRetryRequest, Stopped};
use crate::{Deadline, Error};

pin_project! {
    /// The response future of [`HedgeService`](super::HedgeService).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        race: Option<Race<S::Future, Attempt<S, Req, S::Future>, Result<S::Response, S::Error>>>,
        // A clone of the inner service, for the hedges.
        service: S,
        // A copy of the request, for the hedges.
        template: Option<Req>,
        // The deadline in scope at the call, in scope again for every poll.
        deadline: Option<Deadline>,
        // Why the call was refused before its first attempt.
        refused: Option<Error<S::Error>>,
        policy: P,
    }
}

impl<S, Req, C, K> ResponseFuture<S, Req, HedgeLayer<C, K>>
where
    S: Service<Req>,
{
    /// Starts the call: its first attempt on the `ready` service.
    #[inline]
    pub(super) fn start(
        ready: &mut S,
        service: S,
        request: Req,
        template: Option<Req>,
        policy: HedgeLayer<C, K>,
    ) -> Self {
        let deadline = Deadline::current();
        match Begun::begin(&policy.shared.hedge, None, false, template.is_some()).map(Core::after) {
            Ok(core) => Self {
                race: Some(Race::new(core, ready.call(request))),
                service,
                template,
                deadline,
                refused: None,
                policy,
            },
            Err(refused) => Self {
                race: None,
                service,
                template,
                deadline,
                refused: Some(refused),
                policy,
            },
        }
    }
}

impl<S, Req, C, K> Future for ResponseFuture<S, Req, HedgeLayer<C, K>>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(race) = this.race.as_pin_mut() else {
            let error = this.refused.take().unwrap_or_else(|| {
                Error::new(crate::StopReason::Deadline, 0, Default::default(), None)
            });
            return Poll::Ready(Err(Stopped::from(error).into()));
        };
        let _scope = this.deadline.map(Enter::new);
        let shared = &this.policy.shared;
        let mut driver = Hedges {
            service: this.service,
            template: this.template,
            shared,
        };
        race.poll_race(cx, &shared.hedge, &mut driver)
            .map(|outcome| outcome.map_err(|e| Stopped::from(e).into()))
    }
}

/// Starts hedges on clones of the service with copies of the request.
struct Hedges<'a, S, Req, C, K> {
    service: &'a S,
    template: &'a mut Option<Req>,
    shared: &'a Shared<C, K>,
}

impl<S, Req, C, K> Driver for Hedges<'_, S, Req, C, K>
where
    S: Service<Req> + Clone,
    C: Classify<S::Response, S::Error>,
    K: MakeRetryRequest<Req>,
{
    type Output = Result<S::Response, S::Error>;
    type Value = S::Response;
    type Error = S::Error;
    type Hedge = Attempt<S, Req, S::Future>;

    #[inline]
    fn settle(&mut self, result: Self::Output) -> Settled<S::Response, S::Error> {
        let class = self.shared.hedge.classifier.classify(&result);
        Settled {
            result,
            class,
            refused: None,
        }
    }

    fn launch(&mut self, last: bool) -> Option<Self::Hedge> {
        // The last hedge takes the copy itself; the others copy it again.
        let copy = match self.template.as_ref() {
            Some(template) if !last => self.shared.make_request.hedge_request(template),
            _ => None,
        };
        let request = copy.or_else(|| self.template.take())?;
        Some(Attempt::Ready {
            service: self.service.clone(),
            request: Some(request),
        })
    }
}

pin_project! {
    /// A hedge: waits for its clone of the service to be ready, then calls it.
    #[project = AttemptProj]
    pub(crate) enum Attempt<S, Req, F> {
        Ready { service: S, request: Option<Req> },
        Called { #[pin] future: F },
    }
}

impl<S, Req> Future for Attempt<S, Req, S::Future>
where
    S: Service<Req>,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                AttemptProj::Ready { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    // Always `Some`: the state changes as soon as the request is taken.
                    let Some(request) = request.take() else {
                        return Poll::Pending;
                    };
                    let future = service.call(request);
                    self.set(Self::Called { future });
                }
                AttemptProj::Called { future } => return future.poll(cx),
            }
        }
    }
}

impl<S: Service<Req>, Req, P> fmt::Debug for ResponseFuture<S, Req, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
