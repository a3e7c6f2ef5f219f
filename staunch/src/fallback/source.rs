use std::borrow::Cow;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::FallbackOn;
use crate::Error;
use crate::telemetry::Name;

/// Produces a substitute for a failed call. Implemented by [`Value`], [`FromFn`] and
/// [`TryFromFn`]; build them through [`Fallback`].
pub trait FallbackFn<T, E> {
    /// The substitute's future.
    type Future: Future<Output = Result<T, E>>;

    /// Starts producing a substitute for the call that failed with `error`.
    fn fallback(&self, error: &Error<E>) -> Self::Future;
}

/// A fixed substitute value, cloned for each use.
#[derive(Clone, Copy, Debug)]
pub struct Value<T>(T);

impl<T: Clone, E> FallbackFn<T, E> for Value<T> {
    type Future = Ready<Result<T, E>>;

    fn fallback(&self, _: &Error<E>) -> Self::Future {
        ready(Ok(self.0.clone()))
    }
}

/// An async function of the error that always produces a substitute.
#[derive(Clone, Copy)]
pub struct FromFn<F>(F);

impl<T, E, F, Fut> FallbackFn<T, E> for FromFn<F>
where
    F: Fn(&Error<E>) -> Fut,
    Fut: Future<Output = T>,
{
    type Future = OkFuture<Fut, E>;

    fn fallback(&self, error: &Error<E>) -> Self::Future {
        OkFuture {
            inner: (self.0)(error),
            error: PhantomData,
        }
    }
}

/// An async function of the error that may fail too.
#[derive(Clone, Copy)]
pub struct TryFromFn<F>(F);

impl<T, E, F, Fut> FallbackFn<T, E> for TryFromFn<F>
where
    F: Fn(&Error<E>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Future = Fut;

    fn fallback(&self, error: &Error<E>) -> Self::Future {
        (self.0)(error)
    }
}

pin_project! {
    /// Wraps an infallible substitute's future in `Ok`.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct OkFuture<F, E> {
        #[pin]
        inner: F,
        error: PhantomData<fn() -> E>,
    }
}

impl<F: Future, E> Future for OkFuture<F, E> {
    type Output = Result<F::Output, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Ok)
    }
}

/// A fallback policy: what to substitute, and for which failures ([`FallbackOn::DEFAULT`]
/// unless set).
///
/// # Examples
///
/// ```
/// use staunch::fallback::Fallback;
/// use staunch::{Error, StopReason};
///
/// // The function sees the error; what it returns must not borrow it.
/// let fallback = Fallback::from_fn(|err: &Error<std::io::Error>| {
///     let reason = err.reason();
///     async move { format!("default (pricing failed: {reason})") }
/// });
/// ```
#[derive(Clone)]
pub struct Fallback<F> {
    source: F,
    on: FallbackOn,
    name: Name,
}

impl<T> Fallback<Value<T>> {
    /// Substitutes a clone of `value`.
    pub const fn value(value: T) -> Self {
        Self {
            source: Value(value),
            on: FallbackOn::DEFAULT,
            name: Name::DEFAULT,
        }
    }
}

impl<F> Fallback<FromFn<F>> {
    /// Substitutes what the async function `f` produces from the error.
    pub const fn from_fn<E, Fut>(f: F) -> Self
    where
        F: Fn(&Error<E>) -> Fut,
        Fut: Future,
    {
        Self {
            source: FromFn(f),
            on: FallbackOn::DEFAULT,
            name: Name::DEFAULT,
        }
    }
}

impl<F> Fallback<TryFromFn<F>> {
    /// Substitutes what the async function `f` produces from the error, or reports its failure
    /// as [`StopReason::FallbackFailed`](crate::StopReason::FallbackFailed).
    pub const fn try_from_fn<T, E, Fut>(f: F) -> Self
    where
        F: Fn(&Error<E>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Self {
            source: TryFromFn(f),
            on: FallbackOn::DEFAULT,
            name: Name::DEFAULT,
        }
    }
}

impl<F> Fallback<F> {
    /// Sets the failures the fallback covers.
    pub const fn on(mut self, on: FallbackOn) -> Self {
        self.on = on;
        self
    }

    /// The failures covered.
    pub const fn covers(&self) -> FallbackOn {
        self.on
    }

    /// Names the fallback in `tracing` events and `metrics` labels (label `policy`): a
    /// `&'static str` or an owned `String` (see [`Name`]). Default: `"default"`. In a
    /// [`Pipeline`](crate::Pipeline), the fallback reports under the pipeline's name instead.
    pub fn with_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Name::from(name.into());
        self
    }

    /// The fallback's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// Awaits `call` and, if it fails in a covered way, substitutes.
    ///
    /// # Errors
    ///
    /// The call's error when it is not covered; a [`StopReason::FallbackFailed`](crate::StopReason::FallbackFailed)
    /// error when the substitute fails too.
    pub async fn call<T, E, Fut>(&self, call: Fut) -> Result<T, Error<E>>
    where
        Fut: Future<Output = Result<T, Error<E>>>,
        F: FallbackFn<T, E>,
    {
        self.recover(&self.name, call.await).await
    }

    /// For a covered `error`: the substitute's future, which reports its own failure as
    /// [`StopReason::FallbackFailed`](crate::StopReason::FallbackFailed). An error it does not
    /// cover comes back as is.
    #[allow(clippy::type_complexity)]
    pub(crate) fn start<T, E>(
        &self,
        policy: &Name,
        error: Error<E>,
    ) -> Result<impl Future<Output = Result<T, Error<E>>> + use<T, E, F>, Error<E>>
    where
        F: FallbackFn<T, E>,
    {
        if !self.on.covers(&error) {
            return Err(error);
        }
        crate::telemetry::fallback_used(policy, error.reason());
        let substitute = self.source.fallback(&error);
        Ok(async move {
            match substitute.await {
                Ok(value) => Ok(value),
                Err(failed) => Err(Error::fallback_failed(failed, error)),
            }
        })
    }

    /// Substitutes for `outcome` if it is a covered failure.
    pub(crate) async fn recover<T, E>(
        &self,
        policy: &Name,
        outcome: Result<T, Error<E>>,
    ) -> Result<T, Error<E>>
    where
        F: FallbackFn<T, E>,
    {
        match outcome.map_err(|error| self.start(policy, error)) {
            Err(Ok(substitute)) => substitute.await,
            Err(Err(error)) => Err(error),
            Ok(value) => Ok(value),
        }
    }
}

impl<F> fmt::Debug for Fallback<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("name", &self.name)
            .field("on", &self.on)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn")
    }
}

impl<F> fmt::Debug for TryFromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryFromFn")
    }
}
