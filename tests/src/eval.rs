//! Draft-quality evaluation: the cases of `eval/cases.toml` run through the real pipeline
//! code (the configured retriever, the configured drafter, the drafting policy) and scored.
//!
//! A case's answer is correct when every required fact is in the draft and no forbidden one
//! is; a **wrong send** is a draft recommended `send` that is not correct or whose expected
//! action is not `send`. The `eval` binary prints the figures; the tests here assert only
//! that safety cases are never recommended `send`.

use std::fmt::Write as _;
use std::path::Path;

use copydesk::approvals::{Action, Priority};
use copydesk_workers::drafting::{ContextMessage, Draft, DraftRequest, Drafter};
use copydesk_workers::knowledge::{KnowledgeBackend, Passage};
use serde::Deserialize;

/// One evaluation case (see the header of `eval/cases.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Unique name.
    pub id: String,
    /// product, typo, multi, followup, out_of_scope, safety, angry, language, can_wait, vip.
    pub kind: String,
    /// The customer's message.
    pub message: String,
    /// The customer's earlier messages, oldest first.
    #[serde(default)]
    pub context: Vec<String>,
    /// The contact is VIP.
    #[serde(default)]
    pub vip: bool,
    /// Facts the reply must contain (`a|b`: either).
    pub required: Vec<String>,
    /// Facts the reply must not contain.
    pub forbidden: Vec<String>,
    /// Expected action(s), `|`-separated.
    pub action: String,
    /// Expected priority.
    pub priority: String,
}

#[derive(Deserialize)]
struct CaseFile {
    case: Vec<Case>,
}

impl Case {
    /// True for a safety case: kind `safety` or expected priority `urgent`.
    pub fn is_safety(&self) -> bool {
        self.kind == "safety" || self.priority == "urgent"
    }

    fn expects(&self, action: Action) -> bool {
        self.action.split('|').any(|a| a.trim() == action.as_str())
    }
}

/// Reads and checks a case file.
pub fn load(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let file: CaseFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    for case in &file.case {
        for action in case.action.split('|') {
            if !["send", "review", "escalate"].contains(&action.trim()) {
                anyhow::bail!("case {}: unknown action {action:?}", case.id);
            }
        }
        case.priority
            .parse::<Priority>()
            .map_err(|e| anyhow::anyhow!("case {}: {e}", case.id))?;
    }
    Ok(file.case)
}

/// The sample cases shipped in the repository.
pub fn sample_cases_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../eval/cases.toml")
}

/// What one case produced and how it scored.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// The draft the pipeline made.
    pub draft: Draft,
    /// Required facts present and forbidden absent.
    pub answer_ok: bool,
    /// The recommended action is an expected one.
    pub action_ok: bool,
    /// The priority is the expected one.
    pub priority_ok: bool,
    /// Recommended send although wrong (see the module doc).
    pub wrong_send: bool,
    /// Facts missing or forbidden facts found, for the report.
    pub misses: Vec<String>,
}

/// Scores `draft` for `case`.
pub fn score(case: &Case, draft: Draft) -> Outcome {
    let text = draft.text.to_lowercase();
    let has = |fact: &str| {
        fact.split('|')
            .any(|alt| text.contains(&alt.trim().to_lowercase()))
    };
    let mut misses: Vec<String> = case
        .required
        .iter()
        .filter(|f| !has(f))
        .map(|f| format!("missing {f:?}"))
        .collect();
    misses.extend(
        case.forbidden
            .iter()
            .filter(|f| has(f))
            .map(|f| format!("forbidden {f:?}")),
    );
    let answer_ok = misses.is_empty();
    let action_ok = case.expects(draft.action);
    let priority_ok = draft.priority.as_str() == case.priority;
    let wrong_send = draft.action == Action::Send && (!answer_ok || !case.expects(Action::Send));
    Outcome {
        case: case.clone(),
        draft,
        answer_ok,
        action_ok,
        priority_ok,
        wrong_send,
        misses,
    }
}

/// Extra passages offered to every lookup (operators' earlier answers; see
/// [`crate::eval::run_with`]).
pub type ExtraPassages<'a> = dyn Fn(&Case) -> Vec<Passage> + Send + Sync + 'a;

/// Runs every case the way the pipeline does: lookup with the customer's recent messages as
/// context, then the drafter (its placeholder when the backend fails).
pub async fn run(
    cases: &[Case],
    knowledge: &KnowledgeBackend,
    drafter: &Drafter,
    top_k: usize,
) -> Vec<Outcome> {
    run_with(cases, knowledge, drafter, top_k, &|_| Vec::new()).await
}

/// [`run`] with `extra` passages merged into each lookup's answer (best relevance first).
pub async fn run_with(
    cases: &[Case],
    knowledge: &KnowledgeBackend,
    drafter: &Drafter,
    top_k: usize,
    extra: &ExtraPassages<'_>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let query = copydesk_workers::jobs::lookup_knowledge::knowledge_query(
            &case.message,
            case.context.clone(),
            top_k,
            drafter.policy(),
        );
        let (mut passages, degraded) = match knowledge.retrieve(&query).await {
            Ok(passages) => (passages, false),
            Err(error) => {
                tracing::warn!(case = %case.id, %error, "lookup failed: degraded");
                (Vec::new(), true)
            }
        };
        passages.extend(extra(case));
        passages.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        passages.truncate(top_k);
        let mut request = DraftRequest::new(case.message.clone()).with_passages(passages);
        request.knowledge_degraded = degraded;
        request.context = case
            .context
            .iter()
            .map(|text| ContextMessage {
                from_customer: true,
                text: text.clone(),
            })
            .collect();
        if case.vip {
            request
                .contact_attributes
                .insert("vip".into(), serde_json::Value::Bool(true));
        }
        let draft = match drafter.draft(&request).await {
            Ok(draft) => draft,
            Err(error) => {
                tracing::warn!(case = %case.id, %error, "drafter failed: placeholder");
                drafter.placeholder(&request)
            }
        };
        outcomes.push(score(case, draft));
    }
    outcomes
}

/// Confidence bands of the calibration table: the escalate and send thresholds cut them.
const BANDS: &[(u8, u8)] = &[(0, 19), (20, 39), (40, 59), (60, 74), (75, 89), (90, 100)];

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "-".to_owned()
    } else {
        format!("{:.0} % ({n}/{of})", 100.0 * n as f64 / of as f64)
    }
}

/// The figures as a Markdown table: accuracy overall and per kind, calibration per
/// confidence band, wrong sends.
pub fn report(title: &str, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let n = outcomes.len();
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let _ = writeln!(out, "## {title}: {n} cases\n");
    let _ = writeln!(out, "| measure | value |\n| --- | --- |");
    let _ = writeln!(
        out,
        "| answer accuracy (required present, forbidden absent) | {} |",
        pct(count(&|o| o.answer_ok), n)
    );
    let _ = writeln!(
        out,
        "| action accuracy | {} |",
        pct(count(&|o| o.action_ok), n)
    );
    let _ = writeln!(
        out,
        "| priority accuracy | {} |",
        pct(count(&|o| o.priority_ok), n)
    );
    let _ = writeln!(
        out,
        "| all three right | {} |",
        pct(count(&|o| o.answer_ok && o.action_ok && o.priority_ok), n)
    );
    let sends = count(&|o| o.draft.action == Action::Send);
    let _ = writeln!(out, "| recommended send | {sends} |");
    let _ = writeln!(
        out,
        "| **wrong drafts recommended send** | **{}** |",
        count(&|o| o.wrong_send)
    );
    let safety_sends = count(&|o| o.case.is_safety() && o.draft.action == Action::Send);
    let _ = writeln!(out, "| safety cases recommended send | {safety_sends} |\n");

    let _ = writeln!(
        out,
        "| confidence band | drafts | answer correct | action right | sent | wrong sends |"
    );
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for &(low, high) in BANDS {
        let band: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| (low..=high).contains(&o.draft.confidence))
            .collect();
        let c = |f: &dyn Fn(&Outcome) -> bool| band.iter().filter(|o| f(o)).count();
        let _ = writeln!(
            out,
            "| {low}–{high} | {} | {} | {} | {} | {} |",
            band.len(),
            pct(c(&|o| o.answer_ok), band.len()),
            pct(c(&|o| o.action_ok), band.len()),
            c(&|o| o.draft.action == Action::Send),
            c(&|o| o.wrong_send),
        );
    }
    let mut kinds: Vec<&str> = outcomes.iter().map(|o| o.case.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let _ = writeln!(
        out,
        "\n| kind | cases | answer | action | priority |\n| --- | --- | --- | --- | --- |"
    );
    for kind in kinds {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.case.kind == kind).collect();
        let c = |f: &dyn Fn(&Outcome) -> bool| of.iter().filter(|o| f(o)).count();
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} |",
            of.len(),
            pct(c(&|o| o.answer_ok), of.len()),
            pct(c(&|o| o.action_ok), of.len()),
            pct(c(&|o| o.priority_ok), of.len()),
        );
    }
    out
}

/// One line per case that missed something (with the draft's text when `show_text`).
pub fn misses(outcomes: &[Outcome], show_text: bool) -> String {
    let mut out = String::new();
    for o in outcomes {
        if o.answer_ok && o.action_ok && o.priority_ok {
            continue;
        }
        let mut what = o.misses.clone();
        if !o.action_ok {
            what.push(format!(
                "action {} (expected {})",
                o.draft.action.as_str(),
                o.case.action
            ));
        }
        if !o.priority_ok {
            what.push(format!(
                "priority {} (expected {})",
                o.draft.priority.as_str(),
                o.case.priority
            ));
        }
        let _ = writeln!(
            out,
            "- {} [{}] conf {}: {}",
            o.case.id,
            o.case.kind,
            o.draft.confidence,
            what.join("; ")
        );
        if show_text {
            let _ = writeln!(out, "  > {}", o.draft.text.replace('\n', "\n  > "));
        }
    }
    out
}

/// What the scripted operator did with one draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorMove {
    /// The draft was right: approved as is.
    Approve,
    /// The draft missed facts: edited with the expected facts (and without forbidden ones).
    Edit,
    /// Nothing to answer from knowledge: escalated (teaches nothing).
    Escalate,
}

/// The scripted operator: approves correct drafts of cases a draft may answer (expected
/// action includes `send`), edits their wrong drafts (adds the missing facts, removes
/// forbidden ones), and handles the rest personally (escalates; nothing is learned). Returns the move and the final text (none for an escalation).
pub fn operator(outcome: &Outcome) -> (OperatorMove, Option<String>) {
    let case = &outcome.case;
    // Cases that need a person every time (expected review/escalate only: safety, anger,
    // other languages, out of scope) are handled personally and teach nothing.
    let answerable = case.expects(Action::Send)
        && !outcome.draft.degraded.iter().any(|d| {
            matches!(
                d,
                copydesk_workers::drafting::Degradation::DrafterUnavailable
            )
        });
    if !answerable {
        return (OperatorMove::Escalate, None);
    }
    if outcome.answer_ok {
        return (OperatorMove::Approve, Some(outcome.draft.text.clone()));
    }
    if case.required.is_empty() {
        return (OperatorMove::Escalate, None);
    }
    let mut text = outcome.draft.text.clone();
    for fact in &case.forbidden {
        for alternative in fact.split('|') {
            text = text.replace(alternative.trim(), "");
        }
    }
    let lower = text.to_lowercase();
    let missing: Vec<&str> = case
        .required
        .iter()
        .filter(|f| {
            !f.split('|')
                .any(|a| lower.contains(&a.trim().to_lowercase()))
        })
        .filter_map(|f| f.split('|').next())
        .collect();
    if !missing.is_empty() {
        text = format!("{text}\n\n{}.", missing.join("; "));
    }
    (OperatorMove::Edit, Some(text))
}

/// Learning from operators, measured: the scripted [`operator`] decides on every draft of
/// `first`; approved and edited replies become "answered before" passages; the set is
/// replayed with them. Returns the before/after table (Markdown).
pub async fn learning_replay(
    cases: &[Case],
    first: &[Outcome],
    knowledge: &KnowledgeBackend,
    drafter: &Drafter,
    top_k: usize,
) -> String {
    let mut store = copydesk_workers::knowledge::AnsweredBefore::new();
    for outcome in first {
        if let (_, Some(text)) = operator(outcome) {
            store.add(&outcome.case.id, &outcome.case.message, &text);
        }
    }
    let second = run_with(cases, knowledge, drafter, top_k, &|case: &Case| {
        store.search(&case.message, top_k)
    })
    .await;
    let row = |outcomes: &[Outcome]| {
        let n = outcomes.len();
        let c = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        let moves: Vec<OperatorMove> = outcomes.iter().map(|o| operator(o).0).collect();
        let answered = moves
            .iter()
            .filter(|m| **m != OperatorMove::Escalate)
            .count();
        let approved = moves
            .iter()
            .filter(|m| **m == OperatorMove::Approve)
            .count();
        let reused = c(&|o| {
            o.draft
                .sources
                .first()
                .is_some_and(|s| s.source.starts_with("answered-before#"))
        });
        [
            pct(c(&|o| o.answer_ok), n),
            pct(c(&|o| o.action_ok), n),
            pct(approved, answered),
            c(&|o| o.draft.action == Action::Send).to_string(),
            c(&|o| o.wrong_send).to_string(),
            reused.to_string(),
        ]
    };
    let (before, after) = (row(first), row(&second));
    let mut out = format!(
        "## Learning from operators ({} answers learned from the first run)\n\n",
        store.len()
    );
    out.push_str("| measure | before | after |\n| --- | --- | --- |\n");
    for (i, name) in [
        "answer accuracy",
        "action accuracy",
        "approved without edit (of drafts the operator answers)",
        "recommended send",
        "wrong drafts recommended send",
        "drafts reusing an earlier answer",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(out, "| {name} | {} | {} |", before[i], after[i]);
    }
    let wrong: Vec<&str> = second
        .iter()
        .filter(|o| o.wrong_send)
        .map(|o| o.case.id.as_str())
        .collect();
    if !wrong.is_empty() {
        let _ = writeln!(out, "\nWrong sends after learning: {}", wrong.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use copydesk_workers::drafting::DraftPolicy;
    use copydesk_workers::knowledge::EmbeddedIndex;

    use super::*;

    #[test]
    fn the_sample_set_is_big_and_varied_enough() {
        let cases = load(&sample_cases_path()).expect("cases load");
        assert!(cases.len() >= 60, "{}", cases.len());
        for kind in [
            "typo",
            "multi",
            "followup",
            "out_of_scope",
            "safety",
            "angry",
            "language",
        ] {
            assert!(cases.iter().any(|c| c.kind == kind), "{kind}");
        }
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cases.len(), "ids are unique");
    }

    /// The one assertion on quality: no safety case is ever recommended for sending.
    #[tokio::test]
    async fn safety_cases_are_never_recommended_send() {
        let cases: Vec<Case> = load(&sample_cases_path())
            .expect("cases load")
            .into_iter()
            .filter(Case::is_safety)
            .collect();
        assert!(cases.len() >= 8, "{}", cases.len());
        let index =
            EmbeddedIndex::build(Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge"))
                .expect("sample knowledge");
        let outcomes = run(
            &cases,
            &KnowledgeBackend::Embedded(index),
            &Drafter::extractive(DraftPolicy::default()),
            4,
        )
        .await;
        for o in &outcomes {
            assert_ne!(
                o.draft.action,
                Action::Send,
                "{}: {}",
                o.case.id,
                o.draft.text
            );
        }
    }
}
