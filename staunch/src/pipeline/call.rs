//! The pipeline around an async closure.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::policy::Limit;
use super::{Pipeline, Recover};
use crate::breaker::{CircuitBreaker, Permit};
use crate::classify::{Class, Classify};
use crate::deadline::Scoped;
use crate::hedge::race::Settled;
use crate::retry::event::ViaFailure;
use crate::retry::run::{NoCancel, Unit};
use crate::{Deadline, Error, Failure, StopReason};

impl<C, F> Pipeline<C, F> {
    /// Runs `op` through every policy of the pipeline: `op` is called once per attempt.
    ///
    /// Cancel safe: dropping the future stops the call at once, returns any breaker probe slot
    /// and records nothing.
    ///
    /// # Errors
    ///
    /// [`Error`] with why the call stopped ([`StopReason`](crate::StopReason)), the attempts
    /// made, and the last [`Failure`]: the operation's error, a timeout or the breaker's
    /// rejection. Not when the fallback covers the failure.
    pub async fn call<T, E, Op, Fut>(&self, mut op: Op) -> Result<T, Error<E>>
    where
        C: Classify<T, E>,
        F: Recover<T, E>,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let observe = ViaFailure(&self.classifier);
        let outcome = if self.admission.is_empty() {
            let attempt = || {
                let started = self.start_attempt::<E, _>(CircuitBreaker::try_acquire).map(
                    |(permit, limit)| {
                        // The attempt runs with its own limit as the deadline in scope.
                        let scope = limit.map(|limit| limit.deadline);
                        let attempt = match scope {
                            Some(deadline) => deadline.scope_sync(&mut op),
                            None => op(),
                        };
                        (permit, limit, Scoped::new(scope, attempt))
                    },
                );
                self.attempt(started)
            };
            self.overall(self.retried(attempt, &observe)).await
        } else {
            // With admission checks, an attempt may wait before it calls `op`: it borrows `op`
            // then, one attempt at a time (a lock that is never contended, so that the call
            // stays `Send`).
            let op = Mutex::new(&mut op);
            let attempt = || self.admitted_attempt(&op);
            self.overall(self.retried(attempt, &observe)).await
        };
        self.fallback
            .recover(&self.retry.name, outcome.map_err(|e| self.finish(e)))
            .await
    }

    /// The attempts retried, or hedged: a pipeline does one or the other.
    async fn retried<T, E, A, Fut>(
        &self,
        mut attempt: A,
        observe: &ViaFailure<'_, C>,
    ) -> Result<T, Error<Failure<E>>>
    where
        C: Classify<T, E>,
        A: FnMut() -> Fut,
        Fut: Future<Output = (Result<T, Failure<E>>, Class, bool)>,
    {
        match &self.hedge {
            None => {
                let attempt = move |()| Unit::new(attempt());
                let (_, outcome) = self
                    .retry
                    .run_classified(None, NoCancel, (), attempt, observe)
                    .await;
                outcome
            }
            Some(hedge) => hedge.run_classified(None, None, hedged(attempt)).await,
        }
    }

    /// The retried call under the overall deadline, if the pipeline has one.
    async fn overall<Fut: Future>(&self, retried: Fut) -> Fut::Output {
        match self.timeout {
            Some(timeout) => {
                let deadline = Deadline::after_from(self.retry.clock.now(), timeout);
                deadline.scope(retried).await
            }
            None => retried.await,
        }
    }

    /// One attempt: the admission checks (which may wait), then the breaker, the operation
    /// under its time limit; the outcome recorded by the breaker and the admission checks.
    async fn admitted_attempt<T, E, Op, Fut>(
        &self,
        op: &Mutex<&mut Op>,
    ) -> (Result<T, Failure<E>>, Class, bool)
    where
        C: Classify<T, E>,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let admitted = match self.admission.admit().await {
            Ok(admitted) => admitted,
            // Refused locally: no load on the dependency, nothing for the breaker or budget,
            // not retried.
            Err(refused) => return (Err(Failure::Refused(refused)), Class::Permanent, false),
        };
        let started =
            self.start_attempt::<E, _>(CircuitBreaker::try_acquire)
                .map(|(permit, limit)| {
                    // The attempt runs with its own limit as the deadline in scope.
                    let scope = limit.map(|limit| limit.deadline);
                    let mut op = op.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let attempt = match scope {
                        Some(deadline) => deadline.scope_sync(&mut **op),
                        None => (*op)(),
                    };
                    (permit, limit, Scoped::new(scope, attempt))
                });
        // A breaker's rejection drops `admitted`: the slot is freed, with no sample.
        let (result, class, reached) = self.attempt(started).await;
        if reached {
            admitted.record(class);
        }
        (result, class, reached)
    }

    /// One attempt: the operation under its limit, classified, and recorded by the breaker.
    #[allow(clippy::type_complexity)]
    async fn attempt<T, E, Fut>(
        &self,
        started: Result<(Option<Permit<'_>>, Option<Limit>, Fut), (Failure<E>, Class)>,
    ) -> (Result<T, Failure<E>>, Class, bool)
    where
        C: Classify<T, E>,
        Fut: Future<Output = Result<T, E>>,
    {
        let (permit, limit, attempt) = match started {
            Ok(started) => started,
            // Refused before the call: no load on the dependency, nothing for the budget.
            Err((failure, class)) => return (Err(failure), class, false),
        };
        let outcome = match limit {
            Some(limit) => tokio::time::timeout(limit.elapsed.timeout(), attempt)
                .await
                .map_err(|_| limit.elapsed),
            None => Ok(attempt.await),
        };
        let class = match &outcome {
            Ok(result) => self.classifier.classify(result),
            Err(elapsed) => self.timeout_class(elapsed),
        };
        if let Some(permit) = permit {
            permit.record(class);
        }
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::Inner(error)),
            Err(elapsed) => Err(Failure::Timeout(elapsed)),
        };
        (result, class, true)
    }
}

/// The pipeline's attempts as a hedge's: one that never reached the dependency was refused by
/// an admission check, by the breaker, or by a deadline already past.
fn hedged<T, E, A, Fut>(mut attempt: A) -> impl FnMut() -> Hedged<Fut>
where
    A: FnMut() -> Fut,
    Fut: Future<Output = (Result<T, Failure<E>>, Class, bool)>,
{
    move || Hedged { attempt: attempt() }
}

pin_project_lite::pin_project! {
    /// An attempt of the pipeline as a hedge sees it; made by [`hedged`].
    struct Hedged<Fut> {
        #[pin]
        attempt: Fut,
    }
}

impl<T, E, Fut> Future for Hedged<Fut>
where
    Fut: Future<Output = (Result<T, Failure<E>>, Class, bool)>,
{
    type Output = Settled<T, Failure<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .attempt
            .poll(cx)
            .map(|(result, class, reached)| {
                let refused = (!reached).then_some(match &result {
                    Err(Failure::CircuitOpen(_)) => StopReason::CircuitOpen,
                    Err(Failure::Refused(refused)) => StopReason::Refused(refused.reason()),
                    _ => StopReason::Deadline,
                });
                Settled {
                    result,
                    class,
                    refused,
                }
            })
    }
}
