//! A dependency's own policy may hedge or limit, as a `[policy]` may: its rows, its JSON, a
//! fleet and the HTML report say what it did.

use crate::support::{staunch_lab, stdout_of, temp_dir};

/// A search that is slow one call in fifty, hedged after 20 ms, called in parallel with a
/// stock service of 200 ms behind a limit of 10 calls in flight, at 100 requests/s: some 20
/// calls want to be in flight, so about half of them are refused and answered by the fallback.
const FAN_OUT: &str = "[load]\nrate = 100\nduration = \"20s\"\narrivals = \"uniform\"\n\
    [dependencies.search]\n\
    latency = { distribution = \"mixture\", parts = [ { weight = 0.98, distribution = \"uniform\", min = \"5ms\", max = \"15ms\" }, { weight = 0.02, distribution = \"constant\", value = \"1s\" } ] }\n\
    [dependencies.stock]\nlatency = \"200ms\"\n\
    [request]\nparallel = [\"search\", \"stock\"]\n\
    [policy]\nname = \"fanout\"\ntimeout = \"2s\"\n\
    [policy.search]\nhedge = { max_attempts = 2, delay = \"20ms\" }\n\
    [policy.stock]\nlimit = { kind = \"fixed\", limit = 10 }\nfallback = true\n";

fn refused(stop_reasons: &serde_json::Value) -> u64 {
    stop_reasons
        .as_array()
        .expect("stop reasons")
        .iter()
        .filter(|r| r["reason"] == "refused_limit_full")
        .map(|r| r["fallback"].as_u64().unwrap() + r["failed"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_dependency_that_hedges_or_limits_shows_it_in_its_own_rows() {
    let dir = temp_dir("per-dependency");
    let file = dir.join("fan-out.toml");
    std::fs::write(&file, FAN_OUT).unwrap();
    let path = file.to_string_lossy();

    let json = stdout_of(&["simulate", &path, "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let policy = &value["policies"][0];
    let (search, stock) = (&policy["dependencies"][0], &policy["dependencies"][1]);
    assert_eq!(search["name"], "search");
    assert_eq!(stock["name"], "stock");
    // The hedges are search's, about one per slow call, and they cut its tail to ~30 ms.
    let hedges = search["overall"]["hedges_per_request"].as_f64().unwrap();
    assert!((0.01..0.03).contains(&hedges), "{search}");
    assert!(
        search["overall"]["p999_ms"].as_f64().unwrap() < 40.0,
        "{search}"
    );
    assert_eq!(stock["overall"]["hedges_per_request"].as_f64(), Some(0.0));
    // The refusals are stock's, by its own limit, and each is a request's too.
    let by_stock = refused(&stock["stop_reasons"]);
    assert!((600..1400).contains(&by_stock), "{stock}");
    assert_eq!(refused(&search["stop_reasons"]), 0, "{search}");
    assert_eq!(refused(&policy["stop_reasons"]), by_stock);
    // Per phase too.
    let phase = &policy["phases"][0]["dependencies"][0]["stats"];
    assert!(phase["p999_ms"].is_number() && phase["hedges_per_request"].is_number());

    let table = stdout_of(&["simulate", &path]);
    for needle in [
        "    latency p99.9",
        "    hedges per call",
        "    stock calls: refused_limit_full",
        "    search calls: none",
        "hedges per request",
    ] {
        assert!(table.contains(needle), "no {needle:?} in\n{table}");
    }
    let verdict = table.lines().next().unwrap();
    assert!(
        verdict.contains("p99.9") && verdict.contains("hedges per request"),
        "{verdict}"
    );

    // A fleet: each client has its own limit of 10, so two clients refuse far fewer calls.
    let json = stdout_of(&["simulate", &path, "--clients", "2", "--format", "json"]);
    let fleet: serde_json::Value = serde_json::from_str(&json).unwrap();
    let fleet = &fleet["policies"][0];
    assert!(
        refused(&fleet["dependencies"][1]["stop_reasons"]) < by_stock / 4,
        "{fleet}"
    );
    let hedges = fleet["dependencies"][0]["overall"]["hedges_per_request"]
        .as_f64()
        .unwrap();
    assert!((0.01..0.03).contains(&hedges), "{fleet}");

    let html = dir.join("report.html");
    let output = staunch_lab(&["simulate", &path, "--html", &html.to_string_lossy()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("<th>p99.9</th>") && html.contains("<th>hedges / request</th>"));
    assert!(html.contains("p99.9") && html.contains("hedges per request"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dependency_policy_that_retries_and_hedges_is_refused_by_name() {
    let dir = temp_dir("per-dependency-errors");
    let file = dir.join("both.toml");
    let text = FAN_OUT.replace(
        "hedge = { max_attempts = 2, delay = \"20ms\" }",
        "hedge = { max_attempts = 2, delay = \"20ms\" }\nretry = { max_attempts = 2 }",
    );
    std::fs::write(&file, text).unwrap();
    let output = staunch_lab(&["simulate", &file.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("policy.search.hedge") && stderr.contains("retries or hedges"),
        "{stderr}"
    );
    let text = FAN_OUT.replace("limit = 10", "limit = 0");
    std::fs::write(&file, text).unwrap();
    let output = staunch_lab(&["simulate", &file.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("policy.stock.limit"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
