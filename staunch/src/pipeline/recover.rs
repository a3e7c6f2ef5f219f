use std::future::Future;

use crate::Error;
use crate::fallback::{Fallback, FallbackFn};

/// What a [`Pipeline`](super::Pipeline) does with a failed call: nothing ([`NoFallback`]) or a
/// [`Fallback`].
pub trait Recover<T, E> {
    /// Turns a failed outcome into a substitute where the fallback covers it.
    fn recover(&self, outcome: Result<T, Error<E>>) -> impl Future<Output = Result<T, Error<E>>>;
}

/// No fallback: failures come back as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

impl<T, E> Recover<T, E> for NoFallback {
    #[inline]
    fn recover(&self, outcome: Result<T, Error<E>>) -> impl Future<Output = Result<T, Error<E>>> {
        std::future::ready(outcome)
    }
}

impl<T, E, S: FallbackFn<T, E>> Recover<T, E> for Fallback<S> {
    fn recover(&self, outcome: Result<T, Error<E>>) -> impl Future<Output = Result<T, Error<E>>> {
        Fallback::recover(self, outcome)
    }
}
