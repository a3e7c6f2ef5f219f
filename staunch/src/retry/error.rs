use std::fmt;
use std::time::Duration;

use crate::{Error, StopReason};

/// A boxed error, as tower services return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a [`RetryService`](super::RetryService) returns (boxed, to downcast) when
/// retrying stops on an error: why it stopped, the attempts made, and the service's last error
/// as the [`source`](std::error::Error::source).
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

    /// Takes the service's last error out.
    pub fn into_source(self) -> Option<BoxError> {
        self.source
    }
}

impl<E: Into<BoxError>> From<Error<E>> for Stopped {
    fn from(err: Error<E>) -> Self {
        Self {
            reason: err.reason(),
            attempts: err.attempts(),
            elapsed: err.elapsed(),
            source: err.into_inner().map(Into::into),
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
