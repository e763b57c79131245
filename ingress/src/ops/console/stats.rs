//! The stats page (`/ui/stats`): the last 24 h and 7 d of drafts, decisions (approval / edit
//! / reject / escalation rates, median time from draft to decision, median edit distance,
//! how often each recommended action was followed), first response and resolution times per
//! priority and SLA breaches, with server-rendered SVG charts (no script).
//!
//! Everything comes from [`copydesk::stats`] with bounded reads: at most [`MAX_DECISIONS`]
//! decisions and [`MAX_LIFECYCLE_SAMPLES`] lifecycle samples for the 7-day window (newest
//! first); when a cap is hit the page says so.

use copydesk::approvals::now_ms;
use copydesk::stats::{self, DecisionKind, Durations, WindowStats, ACTIONS, PRIORITIES};
use http::{Response, StatusCode};
use maud::{html, Markup};

use super::http::html as html_response;
use super::pages::{self, age, layout, Page};
use super::Ctx;
use crate::ops::OpsBody;

/// Most decisions read for the page (the 7-day window, newest first).
pub const MAX_DECISIONS: usize = 5_000;
/// Most lifecycle samples read for the page.
pub const MAX_LIFECYCLE_SAMPLES: usize = 20_000;

const HOUR_MS: i64 = 3600 * 1000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What the page shows.
pub(crate) struct StatsView {
    pub(crate) day: WindowStats,
    pub(crate) week: WindowStats,
    /// Drafts per day, oldest first (7 values).
    pub(crate) per_day: Vec<u64>,
    pub(crate) decisions_capped: bool,
    pub(crate) lifecycle_capped: bool,
}

/// Reads and aggregates both windows.
pub(crate) async fn load(ctx: &Ctx<'_>, now: i64) -> Result<StatsView, redis::RedisError> {
    let keys = ctx.ops.queue.keys();
    let mut conn = ctx.ops.queue.connection();
    let since = now - 7 * DAY_MS;
    let per_day = stats::count_drafts(&mut conn, keys, now, 7).await?;
    let (decisions, decisions_capped) =
        stats::read_decisions(&mut conn, keys, since, MAX_DECISIONS).await?;
    let (lifecycle, lifecycle_capped) =
        stats::read_lifecycle(&mut conn, keys, since, MAX_LIFECYCLE_SAMPLES).await?;
    let day_drafts = per_day.last().copied().unwrap_or(0);
    let week_drafts = per_day.iter().sum();
    Ok(StatsView {
        day: stats::aggregate(DAY_MS, now, day_drafts, &decisions, &lifecycle),
        week: stats::aggregate(7 * DAY_MS, now, week_drafts, &decisions, &lifecycle),
        per_day,
        decisions_capped,
        lifecycle_capped,
    })
}

/// `GET /ui/stats`.
pub(crate) async fn page(ctx: &Ctx<'_>) -> Response<OpsBody> {
    let view = match load(ctx, now_ms()).await {
        Ok(view) => view,
        Err(error) => {
            tracing::warn!(%error, "console: stats not loaded");
            return pages::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The stats cannot be read from Redis right now; try again in a moment.",
            );
        }
    };
    let page = Page {
        title: "Stats · Copydesk".into(),
        name: "stats",
        user: Some(&ctx.user),
        data: Vec::new(),
    };
    html_response(StatusCode::OK, layout(page, render(&view)))
}

/// "40%" or "–".
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{:.0}%", v * 100.0))
}

/// A duration in ms as "45 s", "3 min", "2 h"; "–" when unknown.
fn duration_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |ms| age(ms.round() as i64))
}

fn window_name(stats: &WindowStats) -> &'static str {
    if stats.window_ms <= DAY_MS {
        "24h"
    } else {
        "7d"
    }
}

/// The page's markup.
pub(crate) fn render(view: &StatsView) -> Markup {
    html! {
        h1 { "Stats" }
        @if view.decisions_capped {
            p.notice role="status" id="decisions-capped" {
                "Only the newest " (MAX_DECISIONS) " decisions were read; older ones of the 7 days are not counted."
            }
        }
        @if view.lifecycle_capped {
            p.notice role="status" id="lifecycle-capped" {
                "Only the newest " (MAX_LIFECYCLE_SAMPLES) " first-response, resolution and SLA samples were read."
            }
        }
        section aria-labelledby="per-day-h" {
            h2 id="per-day-h" { "Drafts per day" }
            (columns("chart-drafts-per-day", "Drafts per day, last 7 days", &view.per_day))
        }
        div.stats-windows {
            (window(&view.day, "Last 24 hours"))
            (window(&view.week, "Last 7 days"))
        }
        p.hint {
            "Followed: a send recommendation was approved unchanged, a review was sent (approved or edited), "
            "an escalate was escalated. Edit distance counts changed characters of edited replies. "
            "First response and resolution are measured from the customer's first message of an episode."
        }
    }
}

fn window(stats: &WindowStats, title: &str) -> Markup {
    let w = window_name(stats);
    let rates: Vec<(String, f64, String)> = DecisionKind::ALL
        .iter()
        .zip(stats.by_kind)
        .map(|(kind, n)| {
            let rate = stats.rate_of(*kind);
            (
                kind.as_str().to_owned(),
                rate.unwrap_or(0.0),
                format!("{} ({n})", percent(rate)),
            )
        })
        .collect();
    let followed: Vec<(String, f64, String)> = ACTIONS
        .iter()
        .zip(stats.followed)
        .map(|(action, (yes, all))| {
            let rate = stats::rate(yes, all);
            (
                action.as_str().to_owned(),
                rate.unwrap_or(0.0),
                format!("{} ({yes} of {all})", percent(rate)),
            )
        })
        .collect();
    let times = |d: &[Durations; 4]| -> Vec<(String, f64, String)> {
        PRIORITIES
            .iter()
            .zip(d)
            .map(|(p, d)| {
                (
                    p.as_str().to_owned(),
                    d.median_secs.unwrap_or(0.0),
                    match d.median_secs {
                        Some(s) => format!("{} (n={})", age((s * 1000.0).round() as i64), d.count),
                        None => "–".to_owned(),
                    },
                )
            })
            .collect()
    };
    let breaches: Vec<(String, f64, String)> = PRIORITIES
        .iter()
        .zip(stats.breaches)
        .map(|(p, (frt, ttr))| {
            (
                p.as_str().to_owned(),
                (frt + ttr) as f64,
                format!("{} (first response {frt}, resolution {ttr})", frt + ttr),
            )
        })
        .collect();
    let max_of = |rows: &[(String, f64, String)]| rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let frt = times(&stats.frt);
    let ttr = times(&stats.ttr);
    html! {
        section.stats-window id={ "window-" (w) } aria-label=(title) {
            h2 { (title) }
            dl.detail.summary {
                dt { "Drafts" } dd data-stat="drafts" { (stats.drafts) }
                dt { "Decisions" } dd data-stat="decisions" { (stats.decisions) }
                dt { "Approved" } dd data-stat="approve-rate" { (percent(stats.rate_of(DecisionKind::Approve))) }
                dt { "Edited" } dd data-stat="edit-rate" { (percent(stats.rate_of(DecisionKind::Edit))) }
                dt { "Rejected" } dd data-stat="reject-rate" { (percent(stats.rate_of(DecisionKind::Reject))) }
                dt { "Escalated" } dd data-stat="escalate-rate" { (percent(stats.rate_of(DecisionKind::Escalate))) }
                dt { "Median draft → decision" } dd data-stat="median-decision" { (duration_ms(stats.median_decision_ms)) }
                dt { "Median edit distance" } dd data-stat="median-edit" {
                    @match stats.median_edit_distance { Some(d) => { (format!("{d:.0}")) " characters" } None => { "–" } }
                }
                dt { "SLA breaches" } dd data-stat="breaches" { (stats.breaches_total()) }
            }
            h3 { "Decisions" }
            (bars(&format!("chart-decisions-{w}"), &format!("Decisions, {title}"), &rates, 1.0))
            h3 { "Recommended action followed" }
            (bars(&format!("chart-followed-{w}"), &format!("Recommended action followed, {title}"), &followed, 1.0))
            h3 { "Median first response per priority" }
            (bars(&format!("chart-frt-{w}"), &format!("Median first response time per priority, {title}"), &frt, max_of(&frt)))
            h3 { "Median resolution per priority" }
            (bars(&format!("chart-ttr-{w}"), &format!("Median resolution time per priority, {title}"), &ttr, max_of(&ttr)))
            h3 { "SLA breaches per priority" }
            (bars(&format!("chart-breaches-{w}"), &format!("SLA breaches per priority, {title}"), &breaches, max_of(&breaches)))
        }
    }
}

/// Chart geometry (SVG user units).
const LABEL_W: f64 = 70.0;
const BAR_W: f64 = 150.0;
const ROW_H: f64 = 22.0;
const CHART_W: f64 = 400.0;

/// A horizontal bar chart: one row per `(label, value, text)`, bars scaled to `max`.
fn bars(id: &str, title: &str, rows: &[(String, f64, String)], max: f64) -> Markup {
    let height = ROW_H * rows.len() as f64 + 4.0;
    let title_id = format!("{id}-title");
    html! {
        svg.chart id=(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
            viewBox={ "0 0 " (CHART_W) " " (height) } width="100%" preserveAspectRatio="xMinYMin meet" {
            title id=(title_id) { (title) }
            @for (i, (label, value, text)) in rows.iter().enumerate() {
                @let y = 2.0 + ROW_H * i as f64;
                @let w = if max > 0.0 { (value / max).clamp(0.0, 1.0) * BAR_W } else { 0.0 };
                g data-label=(label) {
                    text x="0" y=(y + 15.0) font-size="12" fill="#52606d" { (label) }
                    rect x=(LABEL_W) y=(y + 3.0) width=(BAR_W) height=(ROW_H - 6.0) fill="#eef2f6" {}
                    rect.bar x=(LABEL_W) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW_H - 6.0) fill="#1f6feb" {}
                    text x=(LABEL_W + BAR_W + 6.0) y=(y + 15.0) font-size="12" fill="#1f2933" { (text) }
                }
            }
        }
    }
}

/// A column chart of daily counts, oldest first (the last column is the last 24 h).
fn columns(id: &str, title: &str, values: &[u64]) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (col_w, plot_h, top, bottom) = (48.0, 90.0, 16.0, 18.0);
    let width = col_w * values.len() as f64;
    let height = top + plot_h + bottom;
    let title_id = format!("{id}-title");
    let n = values.len();
    html! {
        svg.chart id=(id) xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby=(title_id)
            viewBox={ "0 0 " (width) " " (height) } width="100%" preserveAspectRatio="xMinYMin meet" {
            title id=(title_id) { (title) }
            @for (i, value) in values.iter().enumerate() {
                @let h = *value as f64 / max * plot_h;
                @let x = col_w * i as f64;
                @let ago = n - 1 - i;
                g data-day=(ago) {
                    rect.bar x=(x + 8.0) y=(format!("{:.1}", top + plot_h - h)) width=(col_w - 16.0)
                        height=(format!("{h:.1}")) fill="#1f6feb" {}
                    text x=(x + col_w / 2.0) y=(format!("{:.1}", top + plot_h - h - 3.0)) font-size="11"
                        text-anchor="middle" fill="#1f2933" { (value) }
                    text x=(x + col_w / 2.0) y=(height - 4.0) font-size="11" text-anchor="middle" fill="#52606d" {
                        @if ago == 0 { "24 h" } @else { "−" (ago) " d" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> StatsView {
        let decisions = vec![stats::DecisionSample {
            kind: DecisionKind::Edit,
            recommended: copydesk::approvals::Action::Review,
            priority: copydesk::approvals::Priority::Normal,
            edit_distance: Some(7),
            decided_at_ms: 1_000_000_000 - 10,
            draft_to_decision_ms: Some(90_000),
        }];
        let now = 1_000_000_000;
        StatsView {
            day: stats::aggregate(DAY_MS, now, 2, &decisions, &[]),
            week: stats::aggregate(7 * DAY_MS, now, 5, &decisions, &[]),
            per_day: vec![0, 1, 0, 2, 0, 0, 2],
            decisions_capped: true,
            lifecycle_capped: false,
        }
    }

    #[test]
    fn the_page_shows_numbers_and_svg_charts() {
        let html = render(&view()).into_string();
        assert!(html.contains(r#"data-stat="edit-rate">100%"#), "{html}");
        assert!(html.contains(r#"data-stat="median-decision">1 min"#));
        assert!(html.contains(r#"data-stat="median-edit">7 characters"#));
        assert_eq!(
            html.matches("<svg").count(),
            11,
            "one per-day chart, five per window"
        );
        assert!(html.contains("id=\"decisions-capped\""));
        assert!(!html.contains("id=\"lifecycle-capped\""));
        assert!(html.contains("1 of 1"), "review followed by an edit");
    }

    #[test]
    fn bars_are_scaled_and_bounded() {
        let rows = vec![
            ("a".to_owned(), 2.0, "two".to_owned()),
            ("b".to_owned(), 9.0, "nine".to_owned()),
        ];
        let svg = bars("x", "X", &rows, 4.0).into_string();
        assert!(svg.contains(r#"width="75.0""#), "{svg}");
        assert!(
            svg.contains(r#"width="150.0""#),
            "clamped at the full width"
        );
        let empty = bars("y", "Y", &rows, 0.0).into_string();
        assert!(empty.contains(r#"width="0.0""#));
    }

    #[test]
    fn unknown_values_read_as_a_dash() {
        assert_eq!(percent(None), "–");
        assert_eq!(percent(Some(0.333)), "33%");
        assert_eq!(duration_ms(None), "–");
        assert_eq!(duration_ms(Some(45_000.0)), "45 s");
    }
}
