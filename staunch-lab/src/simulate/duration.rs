//! Durations in scenario files (`"250ms"`, `"1.5s"`, `"2m"`) and in reports.
//!
//! The strict grammar of the `staunch` library's `serde` feature ([`staunch::parse_duration`]):
//! digits, an optional fraction, a unit (`ns`, `us`, `ms`, `s`, `m`, `h`).

use std::time::Duration;

/// Parses `"250ms"`, `"1.5s"`, `"2m"` with the library's grammar; the error names the value.
pub(crate) use staunch::parse_duration;

/// A duration written as a string in a scenario file, read with the library's grammar.
pub(crate) use staunch::Dur;

/// A duration for people: `"0s"`, `"850ms"`, `"1.5ms"`, `"1.25s"`, `"2m05s"`, `"1m00.24s"`;
/// whole units lose their zeros (`"30s"`, `"2m"`). Hundredths of a second at most above 1 s.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.is_zero() {
        "0s".to_owned()
    } else if ms < 1000 {
        let sub = d.as_secs_f64() * 1000.0;
        if sub.fract() == 0.0 {
            format!("{ms}ms")
        } else {
            format!("{sub:.1}ms")
        }
    } else if ms < 60_000 {
        let text = format!("{:.2}", d.as_secs_f64());
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}s")
    } else {
        // Hundredths of a second, rounded, carried into the minutes.
        let centis = (d.as_secs_f64() * 100.0).round() as u64;
        let (m, centis) = (centis / 6000, centis % 6000);
        let (s, frac) = (centis / 100, centis % 100);
        match (s, frac) {
            (0, 0) => format!("{m}m"),
            (s, 0) => format!("{m}m{s:02}s"),
            (s, f) if f % 10 == 0 => format!("{m}m{s:02}.{}s", f / 10),
            (s, f) => format!("{m}m{s:02}.{f:02}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "-1s", "1.5.2s", "2 m", "1x", ".5s", "0.1ns"] {
            let message = parse_duration(bad).unwrap_err();
            assert!(message.contains(&format!("{bad:?}")), "{bad}: {message}");
        }
    }

    #[test]
    fn formats_for_people() {
        let ms = Duration::from_millis;
        assert_eq!(format_duration(ms(0)), "0s");
        assert_eq!(format_duration(ms(850)), "850ms");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(format_duration(ms(1250)), "1.25s");
        assert_eq!(format_duration(ms(30_000)), "30s");
        assert_eq!(format_duration(ms(120_000)), "2m");
        assert_eq!(format_duration(ms(125_000)), "2m05s");
        assert_eq!(format_duration(ms(60_240)), "1m00.24s");
        assert_eq!(format_duration(ms(90_500)), "1m30.5s");
        assert_eq!(format_duration(ms(119_999)), "2m");
    }
}
