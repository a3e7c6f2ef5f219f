//! The shortened demo: the direction of every claim, with bounds taken from the configuration.

use staunch_lab::demo::{
    Build, DEADLINE, Dependency, INVENTORY_TIMEOUT, MAX_BACKOFF, NAIVE_ATTEMPTS, PRICING_ATTEMPTS,
    PRICING_TIMEOUT,
};

use crate::support::{DOWN, SLOW, short_run};

#[test]
fn staunch_bounds_the_slow_phase_by_its_caps_and_naive_does_not() {
    let report = short_run();
    let naive = report.stats(Build::Naive, Some(SLOW));
    let staunch = report.stats(Build::Staunch, Some(SLOW));
    let (naive_p99, staunch_p99) = (naive.p99.unwrap(), staunch.p99.unwrap());

    // Staunch: at most every pricing attempt timing out, a backoff, and a healthy inventory.
    let bound = PRICING_TIMEOUT * PRICING_ATTEMPTS + MAX_BACKOFF + INVENTORY_TIMEOUT;
    assert!(
        staunch_p99 <= bound,
        "staunch p99 {staunch_p99:?} > {bound:?}"
    );
    assert!(staunch_p99 < DEADLINE);
    // Naive waits for pricing however slow it is: past the cap staunch puts on it.
    assert!(naive_p99 > PRICING_TIMEOUT, "naive p99 {naive_p99:?}");
    assert!(naive_p99 > staunch_p99, "{naive_p99:?} vs {staunch_p99:?}");
    // Staunch answered with the fallback price where pricing was too slow (inventory, healthy
    // but capped at 200 ms, may still fail a request on a starved CI machine).
    assert!(staunch.fallback > 0, "{staunch:?}");
    assert!(
        staunch.succeeded * 10 >= staunch.requests * 9,
        "{staunch:?}"
    );
    assert!(staunch.breaker_trips.unwrap() >= 1, "{staunch:?}");
}

#[test]
fn staunch_sends_fewer_calls_to_a_down_dependency() {
    let report = short_run();
    let naive = report.stats(Build::Naive, Some(DOWN));
    let staunch = report.stats(Build::Staunch, Some(DOWN));
    assert!(naive.requests > 0 && naive.requests == staunch.requests);
    let naive_rate = naive.per_request(Dependency::Pricing);
    let staunch_rate = staunch.per_request(Dependency::Pricing);
    // Naive retries every call; staunch's breaker is open and lets only probes through.
    assert!(naive_rate > 1.0, "naive {naive_rate}");
    assert!(naive_rate <= f64::from(NAIVE_ATTEMPTS));
    assert!(staunch_rate < 1.0, "staunch {staunch_rate}");
    assert!(
        staunch.pricing_calls < naive.pricing_calls,
        "{staunch:?} vs {naive:?}"
    );
    assert!(staunch.breaker_open.unwrap() > 0.5, "{staunch:?}");
}

#[test]
fn every_request_got_exactly_one_response() {
    let report = short_run();
    for build in Build::ALL {
        let responses = report.responses(build);
        assert!(responses.exactly_once(), "{build:?}: {responses:?}");
        assert_eq!(responses.requests, report.requests());
        assert_eq!(
            report.samples().iter().filter(|s| s.build == build).count() as u64,
            report.requests()
        );
    }
    // The counts at the dependencies add up to what the table reports.
    for dependency in Dependency::ALL {
        let total: u64 = Build::ALL
            .iter()
            .map(|&b| match dependency {
                Dependency::Pricing => report.stats(b, None).pricing_calls,
                Dependency::Inventory => report.stats(b, None).inventory_calls,
            })
            .sum();
        assert_eq!(total, report.calls(dependency).len() as u64);
    }
}

#[test]
fn the_json_report_parses_and_holds_every_phase() {
    let report = short_run();
    let mut out = Vec::new();
    report.write_json(&mut out).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    let phases = json["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), report.schedule().phases().len());
    for phase in phases {
        for build in ["naive", "staunch"] {
            let stats = &phase["builds"][build];
            assert!(stats["requests"].as_u64().is_some(), "{stats}");
            assert!(stats["p99_ms"].is_number(), "{stats}");
            assert!(stats["pricing_per_request"].is_number(), "{stats}");
        }
    }
    assert_eq!(
        json["whole_run"]["staunch"]["requests"].as_u64(),
        Some(report.requests())
    );
    assert_eq!(json["responses"]["naive"]["exactly_once"], true);
    assert!(json["breaker"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn the_html_report_is_self_contained() {
    let report = short_run();
    let mut out = Vec::new();
    report.write_html(&mut out).unwrap();
    let html = String::from_utf8(out).expect("UTF-8");
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.matches("<svg").count() >= 4,
        "latency, breaker and two load charts"
    );
    for external in [
        "http://", "https://", "//", "<script", "src=", "@import", "url(", "<link",
    ] {
        assert!(!html.contains(external), "the HTML references {external}");
    }
    for name in ["pricing slow", "naive", "staunch", "half-open"] {
        assert!(html.contains(name), "{name}");
    }
}

#[test]
fn the_table_shows_every_phase_and_build() {
    let report = short_run();
    let mut out = Vec::new();
    report.write_table(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for phase in report.schedule().phases() {
        assert!(text.contains(&phase.name), "{text}");
    }
    assert!(
        text.contains("breaker (staunch, pricing): 0.0 s closed -> "),
        "{text}"
    );
    assert!(!text.contains("not exactly once"), "{text}");
    let rows = text
        .lines()
        .filter(|l| l.starts_with("naive ") || l.starts_with("staunch "))
        .count();
    assert_eq!(rows, 2 * (report.schedule().phases().len() + 1), "{text}");
}
