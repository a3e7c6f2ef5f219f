//! [`HttpClassifier`]: the class of an HTTP response or client error.

use std::fmt;
use std::time::SystemTime;

use ::http::{HeaderMap, Response, StatusCode};

use super::retry_after::retry_after_with;
use crate::classify::{Class, Classify};

/// Classifies `http::Response`s (and the client's errors) for retry, the circuit breaker and
/// fallback: a [`Classify<Response<B>, E>`](Classify) for any body `B` and error `E`.
///
/// Defaults:
///
/// | outcome | class | why |
/// |---|---|---|
/// | 1xx, 2xx, 3xx | [`Success`](Class::Success) | the server did its job (a redirect is an answer) |
/// | 408 Request Timeout | [`Transient`](Class::Transient) | the server gave up waiting; a new attempt may be quicker |
/// | 429 Too Many Requests | [`Transient`](Class::Transient) | load shedding: try again later, ideally when told |
/// | other 4xx | [`Permanent`](Class::Permanent) | the request is wrong; sending it again will not fix it |
/// | 5xx | [`Transient`](Class::Transient) | the server failed; it may not next time |
/// | 600–999 (non-standard) | [`Permanent`](Class::Permanent) | no meaning is known, so nothing suggests a retry helps |
/// | an error (`Err`) | [`Transient`](Class::Transient) | connection refused, reset or timed out: the network, not the request |
///
/// A transient status with a valid `Retry-After` becomes [`RetryAfter(d)`](Class::RetryAfter):
/// the retry waits at least `d`, up to the policy's
/// [`max_retry_after`](crate::RetryConfig::with_max_retry_after) (see [`retry_after`](super::retry_after)
/// for parsing and bounds). A `503` with `Retry-After: 30` is `RetryAfter(30 s)`.
///
/// Every rule is configurable with the `with_*` setters. Retrying is further limited to
/// idempotent requests by [`IdempotencyGate`](super::IdempotencyGate) (feature `tower`).
///
/// # Wall-clock time
///
/// A `Retry-After` given as an HTTP-date needs a wall-clock reference. The classifier uses the
/// response's own `Date` header when it is valid, and reads `SystemTime::now()` only when it is
/// missing or invalid: the one place in staunch that reads the wall clock, and only for this.
/// [`classify_response`](Self::classify_response) takes the time as an argument instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::{Response, StatusCode};
/// use staunch::classify::{Class, Classify};
/// use staunch::http::HttpClassifier;
///
/// let classify = HttpClassifier::new();
/// let response = |status: u16| Response::builder().status(status).body(()).unwrap();
/// let class = |result: Result<Response<()>, std::io::Error>| classify.classify(&result);
/// assert_eq!(class(Ok(response(200))), Class::Success);
/// assert_eq!(class(Ok(response(404))), Class::Permanent);
/// assert_eq!(class(Ok(response(503))), Class::Transient);
/// assert_eq!(class(Err(std::io::ErrorKind::ConnectionReset.into())), Class::Transient);
///
/// let limited = Response::builder().status(429).header("retry-after", "7").body(()).unwrap();
/// assert_eq!(class(Ok(limited)), Class::RetryAfter(Duration::from_secs(7)));
///
/// // 501 Not Implemented will not start working on the next attempt.
/// let classify = HttpClassifier::new().with_permanent(StatusCode::NOT_IMPLEMENTED);
/// assert_eq!(classify.classify_status(StatusCode::NOT_IMPLEMENTED), Class::Permanent);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HttpClassifier {
    statuses: StatusTable,
    error: Class,
    retry_after: bool,
}

impl HttpClassifier {
    /// The defaults in the table above.
    pub const fn new() -> Self {
        let mut statuses = StatusTable::ALL_SUCCESS;
        let mut code = 400;
        while code <= 999 {
            let class = match code {
                408 | 429 => Code::Transient,
                400..=499 => Code::Permanent,
                500..=599 => Code::Transient,
                _ => Code::Permanent,
            };
            statuses = statuses.set(code, class);
            code += 1;
        }
        Self {
            statuses,
            error: Class::Transient,
            retry_after: true,
        }
    }

    /// Classifies `status` as [`Transient`](Class::Transient) (retried; a `Retry-After` on it is
    /// honoured).
    pub const fn with_transient(mut self, status: StatusCode) -> Self {
        self.statuses = self.statuses.set(status.as_u16(), Code::Transient);
        self
    }

    /// Classifies `status` as [`Permanent`](Class::Permanent) (a failure, not retried).
    pub const fn with_permanent(mut self, status: StatusCode) -> Self {
        self.statuses = self.statuses.set(status.as_u16(), Code::Permanent);
        self
    }

    /// Classifies `status` as a [`Success`](Class::Success) (a `404` on a lookup that may miss).
    pub const fn with_success(mut self, status: StatusCode) -> Self {
        self.statuses = self.statuses.set(status.as_u16(), Code::Success);
        self
    }

    /// Classifies `status` as [`Ignored`](Class::Ignored): not retried, and not counted by a
    /// breaker (a `499` when the client itself went away says nothing about the server).
    pub const fn with_ignored(mut self, status: StatusCode) -> Self {
        self.statuses = self.statuses.set(status.as_u16(), Code::Ignored);
        self
    }

    /// Sets the class of every `Err` (the client's own errors: connect failures, resets,
    /// timeouts). Default: [`Transient`](Class::Transient). For finer rules, wrap the classifier
    /// in a closure that looks at the error first.
    pub const fn with_error_class(mut self, class: Class) -> Self {
        self.error = class;
        self
    }

    /// Whether to read `Retry-After` on transient statuses. Default: `true`.
    pub const fn with_retry_after(mut self, honour: bool) -> Self {
        self.retry_after = honour;
        self
    }

    /// The class of `status` alone, without any `Retry-After` hint.
    pub const fn classify_status(&self, status: StatusCode) -> Class {
        match self.statuses.get(status.as_u16()) {
            Code::Success => Class::Success,
            Code::Ignored => Class::Ignored,
            Code::Permanent => Class::Permanent,
            Code::Transient => Class::Transient,
        }
    }

    /// The class of `response`, measuring an HTTP-date `Retry-After` from the response's `Date`
    /// header, or from `now` when it has none that is valid. Pure: no clock is read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use http::Response;
    /// use staunch::classify::Class;
    /// use staunch::http::HttpClassifier;
    ///
    /// let in_a_minute = SystemTime::now() + Duration::from_secs(60);
    /// let response = Response::builder()
    ///     .status(503)
    ///     .header("retry-after", httpdate::fmt_http_date(in_a_minute))
    ///     .body(())
    ///     .unwrap();
    /// let class = HttpClassifier::new().classify_response(&response, SystemTime::now());
    /// assert!(matches!(class, Class::RetryAfter(d) if d <= Duration::from_secs(60)));
    /// ```
    pub fn classify_response<B>(&self, response: &Response<B>, now: SystemTime) -> Class {
        self.classify_with(response, || now)
    }

    fn classify_with<B>(&self, response: &Response<B>, now: impl Fn() -> SystemTime) -> Class {
        self.classify_head(response.status(), response.headers(), now)
    }

    /// The class of a response's status and headers, for clients whose response type is not
    /// an `http::Response` (reqwest's).
    pub(super) fn classify_head(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        now: impl Fn() -> SystemTime,
    ) -> Class {
        let class = self.classify_status(status);
        if !(self.retry_after && class.is_retriable()) {
            return class;
        }
        retry_after_with(headers, now).map_or(class, Class::RetryAfter)
    }
}

impl Default for HttpClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl<B, E> Classify<Response<B>, E> for HttpClassifier {
    fn classify(&self, result: &Result<Response<B>, E>) -> Class {
        match result {
            Ok(response) => self.classify_with(response, SystemTime::now),
            Err(_) => self.error,
        }
    }
}

/// reqwest's responses, by the same rules (feature `reqwest`), for the
/// [`Staunch`](super::Staunch) middleware or a closure-based retry around reqwest.
#[cfg(feature = "reqwest")]
impl<E> Classify<::reqwest::Response, E> for HttpClassifier {
    fn classify(&self, result: &Result<::reqwest::Response, E>) -> Class {
        match result {
            Ok(response) => {
                self.classify_head(response.status(), response.headers(), SystemTime::now)
            }
            Err(_) => self.error,
        }
    }
}

impl fmt::Debug for HttpClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClassifier")
            .field("changed_statuses", &Changed(&self.statuses))
            .field("error", &self.error)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

/// The statuses whose class differs from the default (the full table is 900 entries).
struct Changed<'a>(&'a StatusTable);

impl fmt::Debug for Changed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = HttpClassifier::new().statuses;
        let mut map = f.debug_map();
        for code in 100..=999 {
            let class = self.0.get(code);
            if class != default.get(code) {
                map.entry(&code, &class);
            }
        }
        map.finish()
    }
}

/// A status's class, two bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Code {
    Success = 0,
    Ignored = 1,
    Permanent = 2,
    Transient = 3,
}

/// The class of every status from 100 to 999, two bits each, so that the classifier is `Copy`
/// and a lookup is a shift.
#[derive(Clone, Copy, PartialEq, Eq)]
struct StatusTable([u64; 29]);

impl StatusTable {
    const ALL_SUCCESS: Self = Self([0; 29]);

    /// Word and shift of `code`; `None` outside 100..=999 (which `StatusCode` never holds).
    const fn slot(code: u16) -> Option<(usize, u32)> {
        if code < 100 || code > 999 {
            return None;
        }
        let index = (code - 100) as usize * 2;
        Some((index / 64, (index % 64) as u32))
    }

    const fn set(mut self, code: u16, class: Code) -> Self {
        if let Some((word, shift)) = Self::slot(code) {
            self.0[word] = (self.0[word] & !(0b11 << shift)) | ((class as u64) << shift);
        }
        self
    }

    const fn get(&self, code: u16) -> Code {
        let Some((word, shift)) = Self::slot(code) else {
            return Code::Permanent;
        };
        match (self.0[word] >> shift) & 0b11 {
            0 => Code::Success,
            1 => Code::Ignored,
            2 => Code::Permanent,
            _ => Code::Transient,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    fn response(status: u16, headers: &[(&str, &str)]) -> Response<()> {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn class(classify: &HttpClassifier, status: u16, headers: &[(&str, &str)]) -> Class {
        classify.classify(&Ok::<_, ()>(response(status, headers)))
    }

    #[test]
    fn default_classes_by_status() {
        let c = HttpClassifier::new();
        let table = [
            (100, Class::Success),
            (200, Class::Success),
            (204, Class::Success),
            (301, Class::Success),
            (304, Class::Success),
            (399, Class::Success),
            (400, Class::Permanent),
            (401, Class::Permanent),
            (404, Class::Permanent),
            (407, Class::Permanent),
            (408, Class::Transient),
            (409, Class::Permanent),
            (428, Class::Permanent),
            (429, Class::Transient),
            (430, Class::Permanent),
            (499, Class::Permanent),
            (500, Class::Transient),
            (502, Class::Transient),
            (503, Class::Transient),
            (504, Class::Transient),
            (599, Class::Transient),
            (600, Class::Permanent),
            (999, Class::Permanent),
        ];
        for (status, expected) in table {
            assert_eq!(class(&c, status, &[]), expected, "{status}");
        }
        assert_eq!(
            c.classify(&Err::<Response<()>, _>("refused")),
            Class::Transient
        );
    }

    #[test]
    fn retry_after_applies_to_transient_statuses_only() {
        let c = HttpClassifier::new();
        let hint = [("retry-after", "3")];
        let three = Class::RetryAfter(Duration::from_secs(3));
        assert_eq!(class(&c, 503, &hint), three);
        assert_eq!(class(&c, 429, &hint), three);
        assert_eq!(class(&c, 408, &hint), three);
        assert_eq!(class(&c, 301, &hint), Class::Success);
        assert_eq!(class(&c, 400, &hint), Class::Permanent);
        assert_eq!(
            class(&c, 503, &[("retry-after", "later")]),
            Class::Transient
        );
        let ignoring = c.with_retry_after(false);
        assert_eq!(class(&ignoring, 503, &hint), Class::Transient);
    }

    #[test]
    fn an_http_date_is_measured_from_the_response_date_or_the_given_now() {
        let c = HttpClassifier::new();
        let dated = response(
            503,
            &[
                ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
                ("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT"),
            ],
        );
        // Through the shell (which would read the wall clock only without a valid Date).
        assert_eq!(
            c.classify(&Ok::<_, ()>(dated)),
            Class::RetryAfter(Duration::from_secs(10))
        );
        let undated = response(503, &[("retry-after", "Sun, 06 Nov 1994 08:49:47 GMT")]);
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            c.classify_response(&undated, now),
            Class::RetryAfter(Duration::from_secs(10))
        );
        // Against today's wall clock that date is long past: retry at once.
        assert_eq!(
            c.classify(&Ok::<_, ()>(undated)),
            Class::RetryAfter(Duration::ZERO)
        );
    }

    #[test]
    fn setters_override_single_statuses() {
        let c = HttpClassifier::new()
            .with_permanent(StatusCode::NOT_IMPLEMENTED)
            .with_transient(StatusCode::CONFLICT)
            .with_success(StatusCode::NOT_FOUND)
            .with_ignored(StatusCode::from_u16(499).unwrap())
            .with_error_class(Class::Ignored);
        assert_eq!(class(&c, 501, &[]), Class::Permanent);
        assert_eq!(class(&c, 409, &[]), Class::Transient);
        assert_eq!(class(&c, 404, &[]), Class::Success);
        assert_eq!(class(&c, 499, &[]), Class::Ignored);
        assert_eq!(
            class(&c, 500, &[]),
            Class::Transient,
            "neighbours unchanged"
        );
        assert_eq!(
            class(&c, 410, &[]),
            Class::Permanent,
            "neighbours unchanged"
        );
        assert_eq!(c.classify(&Err::<Response<()>, _>(())), Class::Ignored);
        let debug = format!("{c:?}");
        assert!(debug.contains("HttpClassifier"), "{debug}");
    }

    proptest! {
        #[test]
        fn any_status_and_any_retry_after_never_panic_and_stay_bounded(
            status in 100u16..=999,
            value in proptest::collection::vec(any::<u8>(), 0..40),
            date in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Ok(value) = ::http::HeaderValue::from_bytes(&value) {
                response.headers_mut().insert(::http::header::RETRY_AFTER, value);
            }
            if let Ok(date) = ::http::HeaderValue::from_bytes(&date) {
                response.headers_mut().insert(::http::header::DATE, date);
            }
            let class = HttpClassifier::new().classify_response(&response, UNIX_EPOCH);
            if let Some(hint) = class.retry_after() {
                prop_assert!(hint <= super::super::MAX_RETRY_AFTER);
            }
            let base = HttpClassifier::new().classify_status(response.status());
            prop_assert_eq!(class.is_retriable(), base.is_retriable());
        }

        #[test]
        fn a_setter_changes_exactly_one_status(target in 100u16..=999, probe in 100u16..=999) {
            let status = StatusCode::from_u16(target).unwrap();
            let probe_status = StatusCode::from_u16(probe).unwrap();
            let base = HttpClassifier::new();
            for (changed, expected) in [
                (base.with_transient(status), Class::Transient),
                (base.with_permanent(status), Class::Permanent),
                (base.with_success(status), Class::Success),
                (base.with_ignored(status), Class::Ignored),
            ] {
                prop_assert_eq!(changed.classify_status(status), expected);
                if probe != target {
                    prop_assert_eq!(
                        changed.classify_status(probe_status),
                        base.classify_status(probe_status)
                    );
                }
            }
        }
    }
}
