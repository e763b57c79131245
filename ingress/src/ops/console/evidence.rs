//! What the draft page shows of how a draft was made: the recent conversation as the
//! drafter saw it, where its confidence came from, and its sources with their passages.

use copydesk::approval_facts::DraftEvidence;
use maud::{html, Markup};

/// The conversation lines the drafter got, oldest first.
pub(super) fn conversation_lines(evidence: Option<&DraftEvidence>) -> Markup {
    html! {
        @match evidence {
            None => { p.hint id="context-missing" { "Not recorded for this draft." } }
            Some(e) if e.context.is_empty() => { p.hint id="context-empty" { "No earlier messages: this was the first." } }
            Some(e) => {
                @if e.context_omitted > 0 {
                    p.hint { (e.context_omitted) " older message(s) not shown." }
                }
                ol.context id="context" {
                    @for line in &e.context {
                        li class=(if line.from_customer { "from-customer" } else { "from-agent" }) {
                            span.who { @if line.from_customer { "Customer" } @else { "Agent" } ": " }
                            (line.text) @if line.cut { "…" }
                        }
                    }
                }
            }
        }
    }
}

/// What the confidence came from: retrieval relevance, coverage, penalties, safety words.
pub(super) fn why(
    doc: &copydesk::approvals::DraftDoc,
    evidence: Option<&DraftEvidence>,
    top: f32,
) -> Markup {
    let basis = evidence.map(|e| &e.basis);
    html! {
        ul.why id="why" {
            li { "Retrieval relevance (best passage used): "
                strong { (format!("{:.2}", basis.map_or(top, |b| b.retrieval))) }
                " across " (doc.sources.len()) " source(s)" }
            @if let Some(b) = basis {
                li { "Coverage (share of the question's terms the passages contain): "
                    strong { (format!("{:.0}%", b.coverage * 100.0)) } }
                @if b.degraded { li { "Knowledge lookup failed: confidence halved" } }
                @if b.out_of_scope { li { "The knowledge refers the question elsewhere: confidence lowered" } }
                li id="safety-words" { "Safety words: "
                    @if b.safety_words.is_empty() { "none" } @else { strong { (b.safety_words.join(", ")) } } }
            } @else {
                li { "Safety words: " @if doc.safety { "found" } @else { "none" } }
            }
            li { "Drafted by: " (doc.drafter) }
        }
    }
}

/// The passages, each expandable to its text; without stored evidence, the draft's sources.
pub(super) fn sources(
    doc: &copydesk::approvals::DraftDoc,
    evidence: Option<&DraftEvidence>,
) -> Markup {
    html! {
        @match evidence {
            Some(e) if !e.passages.is_empty() => {
                h3 { "Sources" }
                ul.sources id="sources" {
                    @for p in &e.passages {
                        li { details {
                            summary { (p.title) " (" (format!("{:.2}", p.relevance)) ")"
                                @if p.used { " " span.flag { "used" } } }
                            p.source-path { (p.source) }
                            blockquote.passage { (p.text) @if p.cut { "…" } }
                        } }
                    }
                }
            }
            _ => { @if !doc.sources.is_empty() {
                h3 { "Sources" }
                ul.sources id="sources" {
                    @for source in &doc.sources {
                        li { details {
                            summary { (source.title) " (" (format!("{:.2}", source.relevance)) ")" }
                            p.source-path { (source.source) }
                            p.hint { "The passage text was not recorded for this draft." }
                        } }
                    }
                }
            } }
        }
    }
}
