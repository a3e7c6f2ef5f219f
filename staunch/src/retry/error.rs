use std::fmt;
use std::time::Duration;

use crate::{AttemptRecord, Error, Failure, StopReason};

/// A boxed error, as tower services return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a [`RetryService`](super::RetryService) returns (boxed, to downcast) when
/// retrying stops on an error: why it stopped, the attempts made, and the service's last error
/// as the [`source`](std::error::Error::source): the service's error, or for a
/// [`PipelineService`](crate::pipeline::PipelineService) an
/// [`Elapsed`](crate::deadline::Elapsed) or a [`CircuitOpen`](crate::breaker::CircuitOpen).
///
/// It is the tower twin of [`Error`], whose `source` needs a typed error.
///
/// # Examples
///
/// ```
/// # fn inspect(err: staunch::retry::BoxError) {
/// use staunch::retry::Stopped;
/// if let Some(stopped) = err.downcast_ref::<Stopped>() {
///     eprintln!("gave up after {} attempts: {}", stopped.attempts(), stopped.reason());
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Stopped {
    reason: StopReason,
    attempts: u32,
    elapsed: Duration,
    log: Vec<AttemptRecord>,
    source: Option<BoxError>,
}

impl Stopped {
    /// Why retrying stopped.
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// How many attempts ran.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time from the end of the first attempt to the stop (see [`Error::elapsed`]).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Every attempt that finished, in order (see [`Error::attempt_log`]).
    pub fn attempt_log(&self) -> &[AttemptRecord] {
        &self.log
    }

    /// Takes the service's last error out.
    pub fn into_source(self) -> Option<BoxError> {
        self.source
    }
}

impl<E: Into<BoxError>> From<Error<E>> for Stopped {
    fn from(mut err: Error<E>) -> Self {
        let (reason, attempts, elapsed) = (err.reason(), err.attempts(), err.elapsed());
        let log = err.take_log();
        let source = err.into_last_failure().map(|failure| match failure {
            Failure::Inner(e) => e.into(),
            Failure::Timeout(elapsed) => Box::new(elapsed) as BoxError,
            Failure::CircuitOpen(open) => Box::new(open) as BoxError,
            Failure::Refused(refused) => Box::new(refused) as BoxError,
        });
        Self {
            reason,
            attempts,
            elapsed,
            log,
            source,
        }
    }
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after {} attempt(s)", self.reason, self.attempts)
    }
}

impl std::error::Error for Stopped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
