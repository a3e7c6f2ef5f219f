//! The `grpc-timeout` value format: `<1 to 8 digits><unit>`, with units `H` (hours), `M`
//! (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds) and `n` (nanoseconds).
//! Pure, allocation-free, and never panics.

use std::fmt;
use std::time::Duration;

use ::http::HeaderValue;

/// The most digits a value may have.
const MAX_DIGITS: usize = 8;
/// The largest value: 8 nines.
const MAX_VALUE: u128 = 99_999_999;

/// Units from finest to coarsest, with their length in nanoseconds.
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// The longest timeout the format can carry: 99,999,999 hours (over 11,000 years).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(99_999_999 * 3600);

/// A timeout encoded in the `grpc-timeout` format, on the stack. Made by [`encode_timeout`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutValue {
    bytes: [u8; MAX_DIGITS + 1],
    len: u8,
}

impl TimeoutValue {
    /// The encoded text, e.g. `"1500000u"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and unit letters are ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or("0n")
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The value as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Digits and letters are always valid header bytes; the fallback is unreachable.
        HeaderValue::from_bytes(self.as_bytes()).unwrap_or(HeaderValue::from_static("0n"))
    }
}

impl fmt::Debug for TimeoutValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimeoutValue").field(&self.as_str()).finish()
    }
}

impl fmt::Display for TimeoutValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encodes `timeout` in the finest unit whose value fits in 8 digits, rounding down (so the
/// receiver never gets more time than the sender has). Timeouts above [`MAX_TIMEOUT`] are
/// clamped to it.
///
/// The finest fitting unit keeps the loss below one unit and below one part in 10⁵ of the
/// timeout: a value that did not fit the next finer unit is at least 100,000 of this one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::http::encode_timeout;
///
/// assert_eq!(encode_timeout(Duration::from_millis(50)).as_str(), "50000000n");
/// assert_eq!(encode_timeout(Duration::from_millis(1500)).as_str(), "1500000u");
/// assert_eq!(encode_timeout(Duration::from_secs(5 * 60)).as_str(), "300000m");
/// assert_eq!(encode_timeout(Duration::ZERO).as_str(), "0n");
/// ```
pub fn encode_timeout(timeout: Duration) -> TimeoutValue {
    let nanos = timeout.as_nanos();
    let (unit, value) = UNITS
        .iter()
        .map(|&(unit, len)| (unit, nanos / len))
        .find(|&(_, value)| value <= MAX_VALUE)
        .unwrap_or((b'H', MAX_VALUE));
    let mut bytes = [0; MAX_DIGITS + 1];
    let mut digits = [0; MAX_DIGITS];
    let mut n = digits.len();
    let mut rest = value;
    loop {
        n -= 1;
        // `rest % 10` is a single digit.
        digits[n] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 || n == 0 {
            break;
        }
    }
    let len = digits.len() - n;
    bytes[..len].copy_from_slice(&digits[n..]);
    bytes[len] = unit;
    TimeoutValue {
        bytes,
        len: (len + 1) as u8,
    }
}

/// Decodes a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (surrounding spaces and tabs
/// are allowed, as in any HTTP field value). `None` for anything else: no unit, an unknown unit,
/// 9 or more digits, signs, non-ASCII. Never panics.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use staunch::http::decode_timeout;
///
/// assert_eq!(decode_timeout(b"250m"), Some(Duration::from_millis(250)));
/// assert_eq!(decode_timeout(b"2H"), Some(Duration::from_secs(7200)));
/// assert_eq!(decode_timeout(b"250"), None);
/// assert_eq!(decode_timeout(b"123456789S"), None);
/// assert_eq!(decode_timeout(b"-1S"), None);
/// ```
pub fn decode_timeout(value: &[u8]) -> Option<Duration> {
    let value = value.trim_ascii();
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    // At most 99,999,999: every product below fits a u64.
    Some(match unit {
        b'H' => Duration::from_secs(value * 3600),
        b'M' => Duration::from_secs(value * 60),
        b'S' => Duration::from_secs(value),
        b'm' => Duration::from_millis(value),
        b'u' => Duration::from_micros(value),
        b'n' => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn encodes_in_the_finest_unit_that_fits() {
        let table = [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            (Duration::from_nanos(100_000_000), "100000u"),
            (Duration::from_nanos(100_000_999), "100000u"),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (Duration::from_secs(99_999_999), "99999999S"),
            (Duration::from_secs(100_000_000), "1666666M"),
            (Duration::from_secs(99_999_999 * 60 + 59), "99999999M"),
            (Duration::from_secs(99_999_999 * 60 + 60), "1666666H"),
            (MAX_TIMEOUT, "99999999H"),
            (Duration::MAX, "99999999H"),
        ];
        for (timeout, expected) in table {
            assert_eq!(encode_timeout(timeout).as_str(), expected, "{timeout:?}");
        }
        assert_eq!(
            format!("{}", encode_timeout(Duration::from_secs(1))),
            "1000000u"
        );
        assert_eq!(
            encode_timeout(Duration::from_secs(1)).to_header_value(),
            "1000000u"
        );
    }

    #[test]
    fn decodes_every_unit_and_rejects_the_rest() {
        let table: &[(&[u8], Option<Duration>)] = &[
            (b"1H", Some(Duration::from_secs(3600))),
            (b"1M", Some(Duration::from_secs(60))),
            (b"1S", Some(Duration::from_secs(1))),
            (b"1m", Some(Duration::from_millis(1))),
            (b"1u", Some(Duration::from_micros(1))),
            (b"1n", Some(Duration::from_nanos(1))),
            (b"0n", Some(Duration::ZERO)),
            (b"00000001S", Some(Duration::from_secs(1))),
            (b" 5S\t", Some(Duration::from_secs(5))),
            (b"99999999H", Some(MAX_TIMEOUT)),
            (b"", None),
            (b"S", None),
            (b"5", None),
            (b"5s", None),
            (b"5h", None),
            (b"5 S", None),
            (b"5SS", None),
            (b"+5S", None),
            (b"-5S", None),
            (b"5.0S", None),
            (b"123456789S", None),
            (b"18446744073709551616n", None),
            ("５S".as_bytes(), None),
            (b"\xff5S", None),
        ];
        for (value, expected) in table {
            assert_eq!(
                decode_timeout(value),
                *expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    fn unit_of(value: &TimeoutValue) -> Duration {
        match value.as_bytes().last() {
            Some(b'H') => Duration::from_secs(3600),
            Some(b'M') => Duration::from_secs(60),
            Some(b'S') => Duration::from_secs(1),
            Some(b'm') => Duration::from_millis(1),
            Some(b'u') => Duration::from_micros(1),
            _ => Duration::from_nanos(1),
        }
    }

    proptest! {
        #[test]
        fn round_trip_within_one_unit_never_more(nanos in any::<u64>(), secs in any::<u64>()) {
            for timeout in [Duration::from_nanos(nanos), Duration::from_secs(secs)] {
                let encoded = encode_timeout(timeout);
                prop_assert!(encoded.as_bytes().len() <= 9);
                let decoded = decode_timeout(encoded.as_bytes()).expect("own output decodes");
                let bound = timeout.min(MAX_TIMEOUT);
                prop_assert!(decoded <= bound, "{timeout:?} -> {encoded} -> {decoded:?}");
                prop_assert!(bound - decoded < unit_of(&encoded), "{timeout:?} -> {encoded}");
            }
        }

        #[test]
        fn every_valid_value_round_trips_exactly(
            value in 0u64..=99_999_999,
            unit in proptest::sample::select(vec!['H', 'M', 'S', 'm', 'u', 'n']),
        ) {
            let text = format!("{value}{unit}");
            let decoded = decode_timeout(text.as_bytes()).expect("valid");
            let reencoded = encode_timeout(decoded);
            prop_assert_eq!(decode_timeout(reencoded.as_bytes()), Some(decoded));
        }

        #[test]
        fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Some(timeout) = decode_timeout(&value) {
                prop_assert!(timeout <= MAX_TIMEOUT);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(value in "\\PC{0,12}") {
            let _ = decode_timeout(value.as_bytes());
        }
    }
}
