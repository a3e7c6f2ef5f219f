//! No scenario file panics: every shipped scenario, mangled line by line (lines dropped,
//! doubled, values swapped for hostile ones, tables and settings added), is read, and those that
//! read are run within tight limits; every outcome is a value or an error, never a panic.

use std::path::Path;

use proptest::prelude::*;
use staunch_lab::simulate::{self, Limits, Scenario};

use crate::support::{all_scenarios, temp_dir};

const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "3",
    "1e400",
    "-0.0",
    "nan",
    "inf",
    "0.5",
    "2.0",
    "99999999999999999999",
    "\"\"",
    "\"x\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1ns\"",
    "\"25h\"",
    "\"1h\"",
    "\"10ms\"",
    "[]",
    "[[]]",
    "[\"pricing\"]",
    "[\"nope\"]",
    "{}",
    "true",
    "{ fixed = \"1ms\" }",
    "{ distribution = \"lognormal\", mean = \"0s\", sd = \"0s\" }",
    "{ rule = \"consecutive_failures\", failures = 1 }",
    "{ max_attempts = 4294967295 }",
    "{ max_attempts = 2, delay = \"20ms\" }",
    "{ delay = { percentile = 95, min = \"0s\", max = \"25h\" } }",
    "{ kind = \"fixed\", limit = 1 }",
    "{ kind = \"aimd\", min_limit = 0, max_limit = 1 }",
    "{ k = 0.5 }",
    "{ calls = 0, period = \"1s\" }",
    "{ distribution = \"uniform\", min = \"2ms\", max = \"1ms\" }",
    "{ distribution = \"mixture\", parts = [] }",
    "{ distribution = \"mixture\", parts = [ { weight = 1.7e308, distribution = \"constant\", value = \"1ms\" }, { weight = 1.7e308, distribution = \"uniform\", min = \"0s\", max = \"24h\" } ] }",
];

/// Settings a line may become, in whatever table it lands: the policies and latencies of every
/// kind, hedging and the overload protections among them.
const SETTINGS: &[&str] = &[
    "hedge = { max_attempts = 3, delay = \"1ms\" }",
    "hedge = { delay = { percentile = 50 } }",
    "retry = { max_attempts = 3 }",
    "limit = { kind = \"fixed\", limit = 2, max_queue = 1, max_wait = \"1ms\" }",
    "limit = { kind = \"aimd\", min_limit = 1, max_limit = 3 }",
    "throttle = { k = 1.1 }",
    "rate_limit = { calls = 5, period = \"1s\", burst = 1 }",
    "budget = { kind = \"ratio\", ratio = 0.1 }",
    "fallback = true",
    "latency = { distribution = \"mixture\", parts = [ { weight = 0.5, distribution = \"constant\", value = \"1s\" }, { weight = 0.5, distribution = \"uniform\", min = \"1ms\", max = \"2ms\" } ] }",
    "max_concurrency = 1",
];

const TABLES: &[&str] = &[
    "[fleet]",
    "[request]",
    "[dependencies.a]",
    "[dependency]",
    "[policy]",
    "[policy.pricing]",
    "[policy.x]",
    "[[dependencies.pricing.phase]]",
    "[[dependency.phase]]",
    "[load]",
];

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Double(usize),
    Value(usize, usize),
    Table(usize, usize),
    Setting(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Double),
        (any::<usize>(), 0..VALUES.len()).prop_map(|(l, v)| Edit::Value(l, v)),
        (any::<usize>(), 0..TABLES.len()).prop_map(|(l, t)| Edit::Table(l, t)),
        (any::<usize>(), 0..SETTINGS.len()).prop_map(|(l, k)| Edit::Setting(l, k)),
    ]
}

fn mangle(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for edit in edits {
        if lines.is_empty() {
            break;
        }
        let at = |l: usize| l % lines.len();
        match *edit {
            Edit::Drop(l) => {
                lines.remove(at(l));
            }
            Edit::Double(l) => {
                let line = lines[at(l)].clone();
                lines.insert(at(l), line);
            }
            Edit::Value(l, v) => {
                let i = at(l);
                if let Some((key, _)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{key} = {}", VALUES[v]);
                }
            }
            Edit::Table(l, t) => lines.insert(at(l), TABLES[t].to_owned()),
            Edit::Setting(l, k) => lines.insert(at(l), SETTINGS[k].to_owned()),
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_mangled_scenario_never_panics(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let files = all_scenarios();
        let path = which.get(&files);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let original = std::fs::read_to_string(path).unwrap();
        let text = mangle(&original, &edits);
        let dir = temp_dir("fuzz");
        let file = dir.join(format!("{stem}.toml"));
        std::fs::write(&file, &text).unwrap();
        let read = Scenario::from_file(Path::new(&file));
        if let Ok(mut scenario) = read {
            // Small runs: a few seconds of load, tight ceilings.
            scenario.load.duration = scenario.load.duration.min(std::time::Duration::from_secs(3));
            scenario.load.rate = scenario.load.rate.min(50.0);
            scenario.clients = scenario.clients.min(4);
            let limits = Limits { max_events: 20_000, max_in_flight: 1_000 };
            let policies = [scenario.policy.clone()];
            if let Ok(report) = simulate::simulate_with(&scenario, &policies, 1, limits, false) {
                let mut out = Vec::new();
                report.write_table(&mut out).unwrap();
                report.write_json(&mut out).unwrap();
                report.write_html(&mut out).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
