"""The compliance report of one model version: a single Markdown document an auditor can read
and re-check, built from what the platform already stores.

Sections, in order: summary; model card (the card itself, `mlops.models.card.card_markdown`);
lineage (data window, training-set hash, parent and champion, code version and training spec,
artifact); approvals and alias history (who moved what, when, from the registry and the audit
records); rollout history (canary stages, each decision with its checks' statistics, and the
retraining runs that produced or judged the version); fairness (per attribute, the groups'
rates and the four-fifths verdict); drift (the latest drift report); the audit-chain proof
(verified or not, records checked, head hash, the first bad record, and the hash of every
audit record the report cites, so that each can be recomputed from the chain). A part with
nothing stored says so ("No rollout recorded ..."); nothing is left out silently.

`render` is pure: it takes plain values (`ReportInputs`) and returns the text.
`mlops.governance.compliance_sources` reads those values from the stack's tables and buckets.
The command (``python -m mlops.governance.compliance_report --model yield --version 2 --out
reports/compliance/yield-v2.md``) does both; see `main`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.models.card import card_markdown, table_cell

ROLLOUT_PREFIXES = ("rollout.", "deployment.", "canary.", "retraining.")
APPROVAL_ACTIONS = ("approval.set", "alias.moved", "alias.removed", "registry.version_registered")
HASH_RECIPE = ("sha256 of the canonical JSON (keys sorted, no spaces, UTF-8) of "
               '`{"chain", "seq", "prev_hash", "content": {action, actor, at, model, entity, details}}` '
               "(`mlops.audit.chain.record_hash`); each record's `prev_hash` is the hash of the record before it")


@dataclass(frozen=True)
class ReportInputs:
    """Everything one report shows, as plain JSON-like values.

    ``version``: `ModelVersion.to_api()` (with ``record`` too, when known); ``card``: the card
    JSON or None; ``aliases``: where each alias points now; ``alias_moves``: `AliasMove.to_api()`
    of every move to or from this version; ``audit_records``: `AuditRecord.to_api()` of the
    model chain's records about this version; ``runs``: retraining run records (`RunStore.runs`)
    about it; ``drift``: the latest drift report document (with ``key``) or None;
    ``verifications``: `Verification.to_api()` of each chain checked (``against_archive``
    tells whether the archive's hashes were used).
    """

    model: str
    version_number: int
    generated_at: str
    version: Mapping[str, Any] | None
    card: Mapping[str, Any] | None = None
    aliases: Mapping[str, int] = field(default_factory=dict)
    alias_moves: Sequence[Mapping[str, Any]] = ()
    audit_records: Sequence[Mapping[str, Any]] = ()
    runs: Sequence[Mapping[str, Any]] = ()
    drift: Mapping[str, Any] | None = None
    verifications: Sequence[Mapping[str, Any]] = ()
    against_archive: bool = False
    notes: Sequence[str] = ()


# ------------------------------------------------------------------ formatting
def _fmt(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return table_cell(value, ".4g")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows], ""]


def _short(digest: Any) -> str:
    return f"`{digest[:16]}`" if isinstance(digest, str) and digest else "n/a"


def _demote(markdown: str, levels: int = 2) -> str:
    """The card's headings moved down ``levels`` levels, to sit under this report's section."""
    return re.sub(r"^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown, flags=re.M)


# ------------------------------------------------------------------ sections
def _summary(inp: ReportInputs) -> list[str]:
    v = inp.version or {}
    now_at = sorted(a for a, n in inp.aliases.items() if n == inp.version_number)
    lines = [f"# Compliance report: {inp.model} version {inp.version_number}", "",
             f"Generated {inp.generated_at}.", ""]
    if inp.version is None:
        return lines + [f"**Version {inp.version_number} of model {inp.model!r} is not registered**; "
                        "nothing else is reported about it.", *[f"- Note: {n}" for n in inp.notes], ""]
    lines += [
        f"- Approval status: **{v.get('approval_status', 'n/a')}**",
        f"- Aliases now: {', '.join(now_at) if now_at else 'none'}",
        f"- Artifact sha256: `{(v.get('artifact') or {}).get('sha256', 'n/a')}`",
        f"- {_chain_line(inp)}",
        *[f"- Note: {n}" for n in inp.notes],
        "",
    ]
    return lines


def _card(inp: ReportInputs) -> list[str]:
    lines = ["## Model card", ""]
    if inp.card is None:
        return lines + ["No model card stored for this version.", ""]
    try:
        return lines + [_demote(card_markdown(inp.card)).rstrip(), ""]
    except (KeyError, TypeError) as exc:  # a card of another shape: still show it, as JSON
        return lines + [f"The stored card could not be rendered ({type(exc).__name__}: {exc}); as stored:", "",
                        "```json", json.dumps(inp.card, indent=2, sort_keys=True), "```", ""]


def _lineage(inp: ReportInputs) -> list[str]:
    v = inp.version or {}
    data = v.get("training_data") or {}
    window = data.get("time_range") or {}
    params = v.get("parameters") or {}
    source = v.get("feature_source")
    champion = inp.aliases.get("champion")
    lines = ["## Lineage", ""]
    if not data:
        lines += ["No training-data reference recorded for this version.", ""]
    else:
        lines += [
            f"- Data window: {_fmt(window.get('start'))} to {_fmt(window.get('end'))} "
            f"(validation from {_fmt(data.get('split_time'))}, fraction {_fmt(data.get('validation_fraction'))})",
            f"- Training set content sha256: `{data.get('content_sha256', 'n/a')}`",
            f"- Rows: {_fmt(data.get('rows'))}, positives {_fmt(data.get('positives'))} "
            f"(rate {_fmt(data.get('positive_rate'))})",
        ]
    lines += [
        f"- Feature source: {_fmt(source) if source else 'explicit features only (no feature views recorded)'}",
        f"- Parent version: {_fmt(v.get('parent_version')) if v.get('parent_version') is not None else 'none recorded'}",
        f"- Champion now: {'none' if champion is None else f'version {champion}'}"
        + (" (this version)" if champion == inp.version_number else ""),
        f"- Code version: {_fmt(v.get('code_version'))}",
        f"- Training spec: {_fmt(params.get('config')) if params.get('config') else 'not recorded'}",
        f"- Registered: {_fmt(v.get('created_at'))} by {_fmt(v.get('created_by') or None)}",
        f"- Artifact: `{(v.get('artifact') or {}).get('key', 'n/a')}` "
        f"({_fmt((v.get('artifact') or {}).get('bytes'))} bytes)",
        "",
    ]
    return lines


def _approvals(inp: ReportInputs) -> list[str]:
    v = inp.version or {}
    approval = v.get("approval") or {}
    lines = ["## Approvals and alias history", ""]
    if approval:
        lines += [f"Current approval: **{v.get('approval_status')}** by {_fmt(approval.get('by') or None)} "
                  f"at {_fmt(approval.get('at'))}, reason: {_fmt(approval.get('reason') or None)}.", ""]
    else:
        lines += [f"Current approval: **{v.get('approval_status', 'n/a')}**; no approval decision recorded.", ""]
    lines += ["### Registry alias moves", ""]
    if inp.alias_moves:
        lines += _table(["at", "alias", "to", "from", "by", "reason"],
                        [[m.get("at"), m.get("alias"), m.get("version"), m.get("previous_version"), m.get("by"),
                          m.get("reason")] for m in sorted(inp.alias_moves, key=lambda m: (m.get("at"), m.get("seq")))])
    else:
        lines += ["No alias was moved to or from this version.", ""]
    records = [r for r in inp.audit_records if r.get("action") in APPROVAL_ACTIONS]
    lines += ["### Audit records (registration, approvals, alias moves)", ""]
    if records:
        lines += _table(["seq", "at", "action", "actor", "entity", "details", "hash"],
                        [[r.get("seq"), r.get("at"), r.get("action"), r.get("actor"), r.get("entity"),
                          {k: x for k, x in (r.get("details") or {}).items() if k != "request"}, _short(r.get("hash"))]
                         for r in records])
    else:
        lines += ["No registration, approval or alias audit record about this version.", ""]
    return lines


def _check_rows(checks: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [[c.get("name"), "pass" if c.get("passed") else "FAIL", c.get("observed"), c.get("limit"),
             c.get("p_value"), c.get("statistic"), c.get("note")] for c in checks]


def _rollout(inp: ReportInputs) -> list[str]:
    lines = ["## Rollout history", ""]
    records = [r for r in inp.audit_records if str(r.get("action", "")).startswith(ROLLOUT_PREFIXES)]
    if not records:
        lines += ["No rollout recorded for this version (no canary, shadow or traffic-weight audit record).", ""]
    for r in records:
        d = r.get("details") or {}
        head = f"- seq {r.get('seq')} {r.get('at')} **{r.get('action')}** by {_fmt(r.get('actor'))}"
        if r.get("action") == "rollout.decision":
            lines += [f"{head}: stage {_fmt(d.get('stage'))} at {_fmt(d.get('percent'))}% -> "
                      f"**{_fmt(d.get('decision'))}**"
                      + (f" (reasons: {', '.join(map(str, d.get('reasons')))})" if d.get("reasons") else "")
                      + f"; counts {_fmt(d.get('stage_counts'))}; hash {_short(r.get('hash'))}", ""]
            if d.get("checks"):
                lines += _table(["check", "result", "observed", "limit", "p-value", "statistic", "note"],
                                _check_rows(d["checks"]))
        else:
            shown = {k: x for k, x in d.items() if k not in ("model", "request")}
            lines += [f"{head}: {_fmt(shown)}; hash {_short(r.get('hash'))}"]
    if records:
        lines += [""]
    lines += ["### Retraining runs", ""]
    if inp.runs:
        lines += _table(["started", "run", "status", "reason", "window", "gate", "canary outcome"],
                        [[r.get("started_at"), r.get("run_id"), r.get("status"), r.get("reason"), r.get("window"),
                          (r.get("gate") or {}).get("decision", (r.get("gate") or {}).get("passed")),
                          (r.get("canary") or {}).get("outcome")] for r in inp.runs])
    else:
        lines += ["No retraining run recorded for this version.", ""]
    return lines


def _fairness(inp: ReportInputs) -> list[str]:
    lines = ["## Fairness", ""]
    summary = (inp.card or {}).get("fairness") or ((inp.version or {}).get("record") or {}).get("fairness")
    if not summary or not summary.get("attributes"):
        return lines + ["No fairness audit recorded for this version (the training named no sensitive attribute).", ""]
    lines += [f"Selection: {_fmt(summary.get('selection'))} at threshold {_fmt(summary.get('threshold'))}, "
              f"{_fmt(summary.get('rows'))} validation rows. Four-fifths (80%) rule: the lowest group's selection "
              "rate over the highest must be at least 0.8.", ""]
    for column, audit in sorted(summary["attributes"].items()):
        di = audit.get("disparate_impact") or {}
        verdict = {True: "PASSES", False: "FAILS", None: "cannot be judged"}[di.get("passed")]
        lines += [f"### {column}: the 80% rule {verdict}", "",
                  *_table(["group", "rows", "selection rate", "TPR", "FPR", "disparate impact"],
                          [[g.get("value"), g.get("n"), g.get("selection_rate"), g.get("tpr"), g.get("fpr"),
                            g.get("disparate_impact")] for g in audit.get("groups", [])]),
                  f"- Disparate impact {_fmt(di.get('ratio'))} (threshold {_fmt(di.get('threshold'))}; "
                  f"{_fmt(di.get('lowest_group'))} vs {_fmt(di.get('highest_group'))})",
                  f"- Demographic parity difference {_fmt(audit.get('demographic_parity_difference'))}, "
                  f"equalized odds difference {_fmt(audit.get('equalized_odds_difference'))}", ""]
    return lines


def _drift(inp: ReportInputs) -> list[str]:
    lines = ["## Drift", ""]
    doc = inp.drift
    if not doc:
        return lines + [f"No drift report stored for model {inp.model}.", ""]
    drift = doc.get("drift") or {}
    concept = doc.get("concept") or {}
    window = doc.get("window") or {}
    about = "" if doc.get("version") == inp.version_number else \
        f" (the latest report is about version {_fmt(doc.get('version'))}, none is about this version)"
    lines += [
        f"Latest drift report: `{_fmt(doc.get('key'))}`{about}.", "",
        f"- Generated {_fmt(doc.get('generated_at'))}, window {_fmt(window.get('start'))} to "
        f"{_fmt(window.get('end'))}, {_fmt(doc.get('rows'))} predictions",
        f"- Dataset drift: **{_fmt(drift.get('dataset_drift'))}** (share {_fmt(drift.get('share'))} under "
        f"{_fmt(drift.get('correction'))}, threshold {_fmt(drift.get('drift_share_threshold'))})",
        f"- Drifted features: {', '.join(drift.get('drifted_features') or []) or 'none'}; worst "
        f"{_fmt(drift.get('worst_feature'))}",
        f"- Accuracy on labelled rows {_fmt(concept.get('accuracy'))} (at training "
        f"{_fmt(concept.get('baseline_accuracy'))}); detector alarms: {', '.join(concept.get('alarms') or []) or 'none'}",
        "",
    ]
    features = drift.get("features") or {}
    if features:
        lines += _table(["feature", "method", "score", "threshold", "drifted"],
                        [[n, f.get("method"), f.get("score"), f.get("threshold"), f.get("drifted")]
                         for n, f in sorted(features.items())])
    return lines


def _chain_line(inp: ReportInputs) -> str:
    if not inp.verifications:
        return "Audit chain: NOT VERIFIED (no audit chain was read)"
    parts = []
    for v in inp.verifications:
        if v.get("ok"):
            parts.append(f"Audit chain: verified ({v.get('chain')}: {v.get('records')} records checked)")
        else:
            bad = v.get("first_bad") or {}
            parts.append(f"Audit chain: FAILED ({v.get('chain')}: first bad record seq {bad.get('seq')}, "
                         f"{bad.get('kind')}: {bad.get('detail')})")
    return "; ".join(parts)


def _proof(inp: ReportInputs) -> list[str]:
    lines = ["## Audit-chain proof", "", f"**{_chain_line(inp)}**", ""]
    if inp.verifications:
        lines += _table(["chain", "verified", "records checked", "head seq", "head hash", "first bad record"],
                        [[v.get("chain"), v.get("ok"), v.get("records"), (v.get("head") or {}).get("seq"),
                          (v.get("head") or {}).get("hash"),
                          None if v.get("ok") else
                          f"seq {(v.get('first_bad') or {}).get('seq')} ({(v.get('first_bad') or {}).get('kind')})"]
                         for v in inp.verifications])
        lines += ["Checked against the Object Lock archive's hashes too." if inp.against_archive else
                  "Checked on the table alone (no archive bucket was given): the last records could be cut or "
                  "rewritten without this check seeing it.", ""]
    lines += ["### Records cited in this report", ""]
    if inp.audit_records:
        lines += _table(["chain", "seq", "action", "at", "prev_hash", "hash"],
                        [[r.get("chain"), r.get("seq"), r.get("action"), r.get("at"), r.get("prev_hash"), r.get("hash")]
                         for r in inp.audit_records])
        lines += [f"To re-check a record: its hash is the {HASH_RECIPE}.", ""]
    else:
        lines += ["No audit record about this version was found.", ""]
    return lines


def render(inp: ReportInputs) -> str:
    """The whole report, Markdown."""
    lines = _summary(inp)
    if inp.version is not None:
        for section in (_card, _lineage, _approvals, _rollout, _fairness, _drift):
            lines += section(inp)
    lines += _proof(inp)
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------ command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlops.governance.compliance_report",
        description="Write the compliance report of a model version (Markdown). Tables and buckets come from "
                    "REGISTRY_TABLE, ARTIFACTS_BUCKET, AUDIT_TABLE and, optionally, AUDIT_ARCHIVE_BUCKET; the "
                    "endpoint from AWS_ENDPOINT_URL (a local cloud) or the usual AWS settings.")
    p.add_argument("--model", required=True)
    p.add_argument("--version", required=True, type=int)
    p.add_argument("--out", type=Path, help="file to write (default: reports/compliance/<model>-v<version>.md)")
    p.add_argument("--no-archive", action="store_true", help="verify on the table alone, even with an archive bucket")
    return p


def main(argv: Sequence[str] | None = None, *, env: Mapping[str, str] | None = None,
         dynamodb: Any = None, s3: Any = None) -> int:
    """The command; ``env`` (default: os.environ) names the tables and buckets, ``dynamodb``/``s3``
    are clients to use instead of `mlops.aws`'s. Exit status 0 when the report was written and
    the chain verified, 1 when written but the chain failed, 2 on a usage error."""
    from mlops.governance.compliance_sources import Sources, gather

    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    missing = [k for k in ("REGISTRY_TABLE", "ARTIFACTS_BUCKET", "AUDIT_TABLE") if not env.get(k)]
    if missing:
        print(f"error: set {', '.join(missing)} (the stack's table and bucket names)", file=sys.stderr)
        return 2
    archive = None if args.no_archive else env.get("AUDIT_ARCHIVE_BUCKET") or None
    sources = Sources(env["REGISTRY_TABLE"], env["ARTIFACTS_BUCKET"], env["AUDIT_TABLE"], archive_bucket=archive,
                      dynamodb=dynamodb, s3=s3)
    inputs = gather(sources, args.model, args.version)
    out = args.out or Path("reports/compliance") / f"{args.model}-v{args.version}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(inputs), encoding="utf-8")
    ok = bool(inputs.verifications) and all(v.get("ok") for v in inputs.verifications)
    print(f"wrote {out}: {_chain_line(inputs)}")
    return 0 if ok and inputs.version is not None else 1


if __name__ == "__main__":
    sys.exit(main())
