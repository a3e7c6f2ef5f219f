//! [`ChaosService`]: a tower `Service` with faults injected into its calls.

use std::fmt;
use std::task::{Context, Poll};

use tower_service::Service;

use super::{Call, Chaos, Inject};

/// A tower `Service` whose calls a [`Chaos`] policy may replace with an error of the service's
/// own type, delay, or replace with a substitute response. Made by
/// [`ChaosLayer`](super::ChaosLayer).
///
/// `poll_ready` asks the inner service only. The injection is drawn in `call`: an injected
/// error or substitute does not call the inner service (its readiness goes unused, as with any
/// service whose call fails early); an injected delay calls it at once and polls its future only
/// after the delay, so a service whose future does the work (as `async` blocks and HTTP
/// clients do) sends the request after the delay.
///
/// # Errors
///
/// The inner service's error type, unchanged: an injected error is one of its values, so the
/// layers above classify it as they would a real one.
#[derive(Clone)]
pub struct ChaosService<S, E, R> {
    inner: S,
    chaos: Chaos<E, R>,
}

impl<S, E, R> ChaosService<S, E, R> {
    /// Wraps `inner` with `chaos`.
    pub fn new(inner: S, chaos: Chaos<E, R>) -> Self {
        Self { inner, chaos }
    }

    /// The policy.
    pub fn chaos(&self) -> &Chaos<E, R> {
        &self.chaos
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, E, R, Request> Service<Request> for ChaosService<S, E, R>
where
    S: Service<Request>,
    E: Inject<S::Error>,
    R: Inject<S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Call<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        let inner = &mut self.inner;
        self.chaos.call(move || inner.call(request))
    }
}

// By hand: the makers are closures, which are not `Debug`.
impl<S: fmt::Debug, E, R> fmt::Debug for ChaosService<S, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosService")
            .field("inner", &self.inner)
            .field("chaos", &self.chaos)
            .finish()
    }
}
