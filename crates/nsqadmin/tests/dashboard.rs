//! The Grafana dashboard (`contrib/grafana/nsq-rs.json`) and the alert rules in
//! `docs/monitoring.md`: well-formed, every query parses (promtool checks them as recording and
//! alerting rules) and uses only metric names the daemons expose.
use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Every metric family nsqd, nsqlookupd and nsqadmin expose (docs/monitoring.md has the table).
const GAUGES_AND_COUNTERS: &[&str] = &[
    "nsq_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_threads",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    // nsqd
    "nsq_healthy",
    "nsq_topics",
    "nsq_channels",
    "nsq_topic_depth",
    "nsq_topic_backend_depth",
    "nsq_topic_messages_total",
    "nsq_topic_message_bytes_total",
    "nsq_topic_paused",
    "nsq_channel_depth",
    "nsq_channel_backend_depth",
    "nsq_channel_in_flight",
    "nsq_channel_deferred",
    "nsq_channel_messages_total",
    "nsq_channel_requeued_total",
    "nsq_channel_timed_out_total",
    "nsq_channel_clients",
    "nsq_channel_ready",
    "nsq_channel_paused",
    "nsq_clients",
    "nsq_client_connections_total",
    "nsq_store_writes_total",
    "nsq_store_written_bytes_total",
    "nsq_store_fsyncs_total",
    "nsq_store_damaged_records_total",
    "nsq_store_cut_bytes_total",
    // nsqlookupd
    "nsq_lookupd_producers",
    "nsq_lookupd_topics",
    "nsq_lookupd_channels",
    "nsq_lookupd_tombstones",
    "nsq_lookupd_topic_producers",
    "nsq_lookupd_client_connections",
    // nsqadmin
    "nsq_admin_nodes",
    "nsq_admin_node_up",
    "nsq_admin_lookupd_up",
    "nsq_channel_e2e_processing_latency_quantile_seconds",
];

const HISTOGRAMS: &[&str] = &[
    "nsq_channel_e2e_processing_latency_seconds",
    "nsq_store_fsync_duration_seconds",
];

/// Families the dashboard is not expected to chart.
const NOT_CHARTED: &[&str] = &[
    "process_virtual_memory_bytes",
    "process_threads",
    "process_start_time_seconds",
];

fn known_series() -> HashSet<String> {
    let mut out: HashSet<String> = GAUGES_AND_COUNTERS.iter().map(|s| s.to_string()).collect();
    for h in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            out.insert(format!("{h}{suffix}"));
        }
    }
    out
}

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Metric names in a query: identifiers starting `nsq_` or `process_`, outside quoted strings.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut ident = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in expr.chars().chain(std::iter::once(' ')) {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        if ch.is_ascii_alphanumeric() || ch == '_' || ch == ':' {
            ident.push(ch);
            continue;
        }
        if ident.starts_with("nsq_") || ident.starts_with("process_") {
            names.push(ident.clone());
        }
        ident.clear();
        if ch == '"' || ch == '\'' || ch == '`' {
            quote = Some(ch);
        }
    }
    names
}

/// Brackets balance and nest properly outside quoted strings.
fn balanced(expr: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in expr.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' | '`' => quote = Some(ch),
            '(' | '{' | '[' => stack.push(ch),
            ')' | '}' | ']' => {
                let want = match ch {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("unbalanced {ch:?} at {i}"));
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("unterminated string".into());
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {stack:?}"));
    }
    Ok(())
}

/// Grafana's variables replaced by values PromQL accepts.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("${topic}", ".*")
        .replace("${channel}", ".*")
        .replace("$topic", ".*")
        .replace("$channel", ".*")
}

/// Runs `promtool check rules` on a rules file; panics with promtool's output on failure.
fn promtool_rules(yaml: &str, what: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, yaml).expect("write rules");
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    let out = Command::new(&bin)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} ({e})"));
    assert!(
        out.status.success(),
        "promtool check rules failed for {what}:\n{}{}\n--- rules ---\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

struct Panel<'a> {
    value: &'a Value,
}

fn panels(dashboard: &Value) -> Vec<Panel<'_>> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        out.push(Panel { value: p });
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(Panel { value: inner });
        }
    }
    out
}

#[test]
fn dashboard_is_importable_and_its_queries_parse() {
    let path = repo_file("contrib/grafana/nsq-rs.json");
    let text = std::fs::read_to_string(&path).expect("read dashboard");
    let d: Value = serde_json::from_str(&text).expect("dashboard is JSON");

    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    assert!(d["schemaVersion"].as_i64().is_some_and(|v| v >= 36));
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(vars, ["topic", "channel"]);

    let known = known_series();
    let mut used = BTreeSet::new();
    let mut ids = HashSet::new();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut boxes: Vec<(String, i64, i64, i64, i64)> = Vec::new();
    let mut exprs = 0;
    for p in panels(&d) {
        let p = p.value;
        let title = p["title"].as_str().unwrap_or("?").to_string();
        let id = p["id"].as_i64().expect("panel id");
        assert!(ids.insert(id), "panel id {id} repeated");
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_i64().expect("x"),
            g["y"].as_i64().expect("y"),
            g["w"].as_i64().expect("w"),
            g["h"].as_i64().expect("h"),
        );
        assert!(x >= 0 && w > 0 && x + w <= 24 && h > 0, "{title}: {g}");
        for (other, ox, oy, ow, oh) in &boxes {
            let overlap = x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h;
            assert!(!overlap, "{title} overlaps {other}");
        }
        boxes.push((title.clone(), x, y, w, h));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
            let expr = t["expr"].as_str().expect("expr");
            balanced(expr).unwrap_or_else(|e| panic!("{title}: {e} in {expr}"));
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{title}: no metric in {expr}");
            for n in names {
                assert!(known.contains(&n), "{title}: unknown metric {n} in {expr}");
                used.insert(n);
            }
            exprs += 1;
            rules.push_str(&format!(
                "      - record: dashboard:expr{exprs}\n        expr: {}\n",
                serde_json::to_string(&substitute(expr)).expect("quote")
            ));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().expect("variable query");
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.rsplit_once(','))
            .map(|(series, _)| series)
            .unwrap_or_else(|| panic!("unexpected variable query {q}"));
        for n in metric_names(inner) {
            assert!(known.contains(&n), "variable: unknown metric {n}");
        }
        exprs += 1;
        rules.push_str(&format!(
            "      - record: dashboard:expr{exprs}\n        expr: {}\n",
            serde_json::to_string(&substitute(inner)).expect("quote")
        ));
    }
    promtool_rules(&rules, "the dashboard's queries");

    // Every family is charted (histograms through their buckets).
    for name in GAUGES_AND_COUNTERS {
        if NOT_CHARTED.contains(name) {
            continue;
        }
        assert!(used.contains(*name), "no panel uses {name}");
    }
    for h in HISTOGRAMS {
        assert!(used.contains(&format!("{h}_bucket")), "no panel uses {h}");
    }
}

#[test]
fn the_checks_catch_what_they_are_meant_to_catch() {
    assert!(balanced(r#"sum(rate(x{a="("}[5m]))"#).is_ok());
    assert!(balanced("sum(rate(x[5m])").is_err());
    assert!(balanced("sum(x})").is_err());
    assert_eq!(
        metric_names(r#"sum by (topic) (nsq_topic_depth{topic=~"nsq_fake"}) / process_open_fds"#),
        ["nsq_topic_depth", "process_open_fds"]
    );
    assert!(!known_series().contains("nsq_topic_depths"));
}

/// The Prometheus part of the monitoring page: from `## Prometheus` to the next `## ` heading
/// other than its own subsections. Other sections may name other systems' metrics.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("no '## {heading}' in docs/monitoring.md"));
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    &rest[..end]
}

#[test]
fn documented_metrics_and_alert_rules_are_real() {
    let doc = std::fs::read_to_string(repo_file("docs/monitoring.md")).expect("read docs");
    let known = known_series();
    // Prose, not PromQL: quotes and apostrophes do not delimit anything.
    let prometheus = section(&doc, "Prometheus").replace(['`', '\'', '"'], " ");
    let mut documented = BTreeSet::new();
    for n in metric_names(&prometheus) {
        let base = n
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        assert!(
            known.contains(&n) || HISTOGRAMS.contains(&base),
            "docs name unknown metric {n}"
        );
        documented.insert(n);
    }
    for name in GAUGES_AND_COUNTERS.iter().chain(HISTOGRAMS) {
        assert!(documented.contains(*name), "docs do not describe {name}");
    }

    let alerting = section(&doc, "Alerting ideas");
    let yaml = alerting
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block of rules under '## Alerting ideas'");
    assert!(yaml.contains("alert:"), "{yaml}");
    for n in metric_names(yaml) {
        assert!(known.contains(&n), "alert rule uses unknown metric {n}");
    }
    promtool_rules(yaml, "the documented alert rules");
}
