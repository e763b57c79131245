//! deploy/grafana/copydesk.json: its shape (current schema, uid, templated datasource, `role`
//! and `queue` variables) and every panel query, run against the test's Prometheus.

use serde_json::Value;

use crate::harness::{deploy_dir, Prometheus};

/// The dashboard JSON.
fn dashboard() -> Value {
    let path = deploy_dir().join("grafana").join("copydesk.json");
    let text = std::fs::read_to_string(&path).expect("copydesk.json is readable");
    serde_json::from_str(&text).expect("copydesk.json is JSON")
}

/// Every (panel title, PromQL) of the dashboard, rows included.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    while let Some(panel) = stack.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            stack.extend(inner);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push((
                    panel["title"].as_str().unwrap_or("?").to_owned(),
                    expr.to_owned(),
                ));
            }
        }
    }
    queries
}

/// A query as Grafana would send it with every variable at "All" and a 1 m rate interval.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$queue", ".*")
        .replace("$role", ".*")
}

#[test]
fn the_dashboard_is_templated_and_every_panel_has_a_query() {
    let d = dashboard();
    assert_eq!(d["uid"], "copydesk-overview");
    assert!(
        d["schemaVersion"].as_i64().is_some_and(|v| v >= 36),
        "current schema"
    );
    let variables: Vec<(&str, &str)> = d["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or(""),
                v["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for wanted in [
        ("datasource", "datasource"),
        ("role", "query"),
        ("queue", "query"),
    ] {
        assert!(variables.contains(&wanted), "{wanted:?} in {variables:?}");
    }
    let panels: Vec<&Value> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .collect();
    assert!(panels.len() >= 16, "{} panels", panels.len());
    let mut ids = std::collections::BTreeSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{title}: templated datasource"
        );
        assert!(ids.insert(panel["id"].as_i64()), "{title}: unique id");
        let targets = panel["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "{title} has a query");
        assert!(
            panel["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title}: description"
        );
    }
    let queries = panel_queries(&d);
    assert!(
        queries.iter().any(|(_, q)| q.contains("$queue")),
        "the queue variable is used"
    );
    assert!(
        queries.iter().any(|(_, q)| q.contains("$role")),
        "the role variable is used"
    );
}

/// Every `label_values(metric, label)` query of the dashboard's variables, as (metric, label).
fn variable_queries(dashboard: &Value) -> Vec<(String, String)> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["definition"].as_str())
        .filter_map(|q| {
            let inner = q.strip_prefix("label_values(")?.strip_suffix(')')?;
            let (metric, label) = inner.split_once(',')?;
            Some((metric.trim().to_owned(), label.trim().to_owned()))
        })
        .collect()
}

/// Runs every panel query (variables at "All") against `prometheus`: each must parse and
/// return at least one series; each variable's `label_values` must offer at least one value.
pub(crate) async fn every_panel_returns_data(http: &reqwest::Client, prometheus: &Prometheus) {
    let variables = variable_queries(&dashboard());
    assert_eq!(
        variables.len(),
        2,
        "the role and queue variables: {variables:?}"
    );
    for (metric, label) in &variables {
        let values = prometheus
            .api(
                http,
                &format!("label/{label}/values"),
                &[("match[]", metric)],
            )
            .await
            .unwrap_or_else(|e| panic!("label_values({metric}, {label}): {e}"));
        let count = values.as_array().map_or(0, Vec::len);
        assert!(count > 0, "label_values({metric}, {label}) offers nothing");
        println!("variable label_values({metric}, {label}): {count} values");
    }
    let queries = panel_queries(&dashboard());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let mut empty = Vec::new();
        for (title, expr) in &queries {
            let query = expand(expr);
            match prometheus.api(http, "query", &[("query", &query)]).await {
                Ok(data) if data["result"].as_array().is_some_and(|r| !r.is_empty()) => {}
                Ok(_) => empty.push(format!("{title}: {query}")),
                Err(error) => panic!("panel {title}: {query} does not run: {error}"),
            }
        }
        if empty.is_empty() {
            println!(
                "dashboard: {} panel queries, each returns data",
                queries.len()
            );
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "panel queries without data: {empty:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
