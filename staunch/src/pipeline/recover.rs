use std::future::Future;

use crate::Error;
use crate::fallback::{Fallback, FallbackFn};
use crate::telemetry::Name;

/// What a [`Pipeline`](super::Pipeline) does with a failed call: nothing ([`NoFallback`]) or a
/// [`Fallback`].
pub trait Recover<T, E> {
    /// Turns a failed outcome into a substitute where the fallback covers it, reporting under
    /// the name `policy` (the pipeline's).
    fn recover(
        &self,
        policy: &Name,
        outcome: Result<T, Error<E>>,
    ) -> impl Future<Output = Result<T, Error<E>>>;
}

/// No fallback: failures come back as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

impl<T, E> Recover<T, E> for NoFallback {
    #[inline]
    fn recover(
        &self,
        _: &Name,
        outcome: Result<T, Error<E>>,
    ) -> impl Future<Output = Result<T, Error<E>>> {
        std::future::ready(outcome)
    }
}

impl<T, E, S: FallbackFn<T, E>> Recover<T, E> for Fallback<S> {
    fn recover(
        &self,
        policy: &Name,
        outcome: Result<T, Error<E>>,
    ) -> impl Future<Output = Result<T, Error<E>>> {
        Fallback::recover(self, policy, outcome)
    }
}

/// A fallback's future, boxed: the tower service only builds one when the fallback runs.
#[cfg(feature = "tower")]
pub type BoxRecovery<T, E> = std::pin::Pin<Box<dyn Future<Output = Result<T, Error<E>>> + Send>>;

/// [`Recover`] for the tower service, whose future must name every type: the substitute's
/// future is boxed, which costs an allocation only when a fallback runs.
#[cfg(feature = "tower")]
pub trait RecoverBoxed<T, E> {
    /// The substitute for a covered `error`, or the error back; reported under the name
    /// `policy` (the pipeline's).
    ///
    /// # Errors
    ///
    /// `error` itself when the fallback does not cover it.
    fn recover_boxed(&self, policy: &Name, error: Error<E>) -> Result<BoxRecovery<T, E>, Error<E>>;
}

#[cfg(feature = "tower")]
impl<T, E> RecoverBoxed<T, E> for NoFallback {
    fn recover_boxed(&self, _: &Name, error: Error<E>) -> Result<BoxRecovery<T, E>, Error<E>> {
        Err(error)
    }
}

#[cfg(feature = "tower")]
impl<T, E, S> RecoverBoxed<T, E> for Fallback<S>
where
    S: FallbackFn<T, E> + 'static,
    S::Future: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    fn recover_boxed(&self, policy: &Name, error: Error<E>) -> Result<BoxRecovery<T, E>, Error<E>> {
        self.start(policy, error)
            .map(|substitute| Box::pin(substitute) as BoxRecovery<T, E>)
    }
}
