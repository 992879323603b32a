"""The readable report of `qa eval`: the JSON report's figures in a table, with failures shown."""

from __future__ import annotations

from qa.evaluation.metrics import MRR_CUTOFF
from qa.evaluation.run import RECALL_AT

FAILURES_SHOWN = 5  # in the readable report; the JSON report lists them all


_LABELS = {
    "recall@1": "passage recall@1",
    "recall@5": "passage recall@5",
    f"mrr@{MRR_CUTOFF}": f"MRR@{MRR_CUTOFF}",
    **{f"answer_passage_recall@{k}": f"answer in a passage @{k}" for k in RECALL_AT},
    "answer_hit_rate": "answer hit rate",
    "sentence_containment": "sentence containment",
    "token_f1": "token F1",
    "exact_match": "exact match",
    "citation_accuracy": "citation accuracy",
    "abstention_accuracy": "abstention accuracy (unanswerable)",
    "false_abstention_rate": "false-abstention rate (answerable)",
}


def _short(text: object, width: int = 90) -> str:
    text = " ".join(str(text).split()) if text is not None else "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: dict) -> str:
    q, s = report["questions"], report["settings"]
    lines = [
        f"{report['file']} ({report['format']}): {q['evaluated']} of {q['total_in_file']} questions, "
        f"{q['answerable']} answerable, {q['unanswerable']} unanswerable",
        f"index {s['index_dir']} (generation {s['generation']}, {s['documents']} documents, {s['passages']} passages)",
        f"model {s['model']}, top_k {s['top_k']}, abstain below "
        + ("the reader's calibrated threshold" if s["abstain_threshold"] is None else f"{s['abstain_threshold']:.2f}"),
    ]
    corpus = report.get("corpus")
    if corpus:
        how = "reused" if corpus["reused"] else f"built in {corpus['build_seconds']:.0f}s"
        lines.append(f"corpus: {corpus['documents']} documents from {corpus['paragraphs']} paragraphs ({how})")
    lines.append("")

    table: list[tuple[str, str, str, str]] = []
    for section, title in (("retrieval", "retrieval (from retrieve(); recall and MRR by document)"),
                           ("answers", "answers (full pipeline)"),
                           ("right_by_confidence_words", "answers right, by confidence words")):
        if not report.get(section):
            continue
        table.append((title, "", "", ""))
        for key, metric in report[section].items():
            value = "n/a" if metric["value"] is None else f"{metric['value']:.3f}"
            spread = metric.get("ci95")
            table.append(("  " + _LABELS.get(key, key), value, str(metric["n"]),
                          f"{spread[0]:.3f}–{spread[1]:.3f}" if spread else ""))
    latency = report["latency_ms"]
    table.append(("latency of one ask (ms)", "", "", ""))
    for key in ("p50", "p95", "p99", "mean"):
        value = latency.get(key)
        table.append((f"  {key}", "n/a" if value is None else f"{value:.1f}", "", ""))
    if report["timings_mean_ms"]:
        table.append(("mean timings (ms)", "", "", ""))
        for part, value in report["timings_mean_ms"].items():
            table.append((f"  {part}", f"{value:.1f}", "", ""))
    width = max(len(row[0]) for row in table)
    lines.append(f"{'metric':<{width}}  {'value':>8}  {'n':>5}  95% interval")
    for label, value, n, spread in table:
        lines.append(f"{label:<{width}}  {value:>8}  {n:>5}  {spread}".rstrip() if value else label)

    for field_name, groups in report.get("breakdown", {}).items():
        lines.append("")
        lines.append(f"by {field_name}: {'':<8} {'n':>4} {'hit':>6} {'EM':>6} {'F1':>6} {'abstained (unanswerable)':>26}")
        for name, g in groups.items():
            def cell(key: str) -> str:
                return f"{g[key]:.3f}" if key in g else "-"
            unanswerable = f"{cell('abstention_accuracy')} of {g['unanswerable']}" if "unanswerable" in g else "-"
            lines.append(f"  {name:<16} {g['questions']:>4} {cell('answer_hit_rate'):>6} {cell('exact_match'):>6} "
                         f"{cell('token_f1'):>6} {unanswerable:>26}")
    for warning in report["warnings"][:10]:
        lines.append(f"warning: {warning}")
    if len(report["warnings"]) > 10:
        lines.append(f"... and {len(report['warnings']) - 10} more warnings (see --json)")

    failures = report["failures"]
    lines.append("")
    if not failures:
        lines.append("no failures")
        return "\n".join(lines)
    lines.append(f"failures: {len(failures)} of {q['evaluated']}"
                 + (f" (first {FAILURES_SHOWN}; --json lists all)" if len(failures) > FAILURES_SHOWN else ""))
    for failure in failures[:FAILURES_SHOWN]:
        lines.append(f"  {failure['id']}: {_short(failure['question'])}")
        gold = " | ".join(failure["gold"]) if failure["gold"] else "(unanswerable: should abstain)"
        lines.append(f"    gold:   {_short(gold)}")
        if failure["abstained"]:
            lines.append(f"    answer: (abstained, confidence {failure['confidence']:.2f})")
        else:
            lines.append(f"    answer: {_short(failure['answer'])} (confidence {failure['confidence']:.2f})")
        if failure["answerable"] and failure["gold_docs"]:
            rank = failure["gold_rank"]
            lines.append(f"    gold document rank: {rank if rank is not None else 'not retrieved'}")
    return "\n".join(lines)
