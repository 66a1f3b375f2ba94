"""The model card of a version, as a JSON-able dict and as Markdown.

Built from a training record (`TrainedModel.to_record()`, as the registry stores it) plus
what only people can say: the intended use, out-of-scope uses, known limitations. The fairness
summary (the record's ``fairness``, `mlops.governance.fairness`, or one given explicitly) and
the global feature importance (the record's ``explanations``, `mlops.explain.importance`)
are shown when they exist. Limitations that follow from the record itself
(class weighting, how the threshold was chosen, slices with undefined metrics, small slices)
are added automatically. Output is deterministic: the same inputs give the same JSON text and
the same Markdown, byte for byte (no clock is read; `created_at` is passed in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

CARD_SCHEMA = "mlops.model_card/1"
#: Slices smaller than this get a "noisy metrics" limitation.
SMALL_SLICE_ROWS = 30
_SCALAR_METRICS = (
    "roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier", "ece",
    "threshold", "predicted_positive_rate", "n", "positives", "positive_rate",
)


def derived_limitations(record: Mapping[str, Any]) -> list[str]:
    """Limitations that the training record itself implies, in a fixed order."""
    out: list[str] = []
    config = record.get("parameters", {}).get("config", {})
    if config.get("class_weight") == "balanced":
        out.append(
            "Trained with balanced class weights: the probabilities over-state the positive rate "
            "and are not calibrated to the base rate (see the calibration table); use them to rank "
            "and with the chosen threshold, not as failure rates."
        )
    policy = record.get("threshold", {}).get("policy", {})
    if policy.get("kind") and policy.get("kind") != "fixed":
        out.append(
            "The threshold was chosen on the same validation rows that the metrics are reported "
            "on, so the metrics at the threshold are optimistic."
        )
    val = record.get("data", {}).get("validation", {})
    if val:
        out.append(
            f"Validated on {val['start']} to {val['end']} only ({val['rows']} rows, "
            f"{val['positives']} positives); testers, sites or products absent from the training "
            "window are not covered."
        )
    for column, entries in sorted(record.get("slices", {}).items()):
        for entry in entries:
            for metric, reason in sorted(entry.get("undefined", {}).items()):
                if metric in ("roc_auc", "pr_auc"):
                    out.append(f"Slice {column}={entry['value']}: {metric} undefined ({reason}).")
            if entry["n"] < SMALL_SLICE_ROWS:
                out.append(
                    f"Slice {column}={entry['value']} has {entry['n']} validation rows (< {SMALL_SLICE_ROWS}); "
                    "its metrics are noisy."
                )
    return out


def build_model_card(
    *,
    name: str,
    version: int | str,
    record: Mapping[str, Any],
    intended_use: str,
    out_of_scope: Sequence[str] = (),
    limitations: Sequence[str] = (),
    fairness: Mapping[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """The card of model `name` version `version` as a JSON-able dict.

    `record` is a training record (keys sha256, signature, parameters, data, code_version,
    metrics, slices, threshold, parity, and optionally fairness and explanations).
    `limitations` come first, then the derived ones (duplicates dropped). `fairness` is kept
    as given; when None, the record's fairness summary is used, if it has one.
    """
    if not intended_use.strip():
        raise ValueError("a model card needs an intended use")
    metrics = record["metrics"]
    data = record["data"]
    config = record.get("parameters", {}).get("config", {})
    all_limits: list[str] = []
    for item in [*limitations, *derived_limitations(record)]:
        if item not in all_limits:
            all_limits.append(item)
    signature = record["signature"]
    if fairness is None:
        fairness = record.get("fairness")
    importance = record.get("explanations")
    return {
        "schema": CARD_SCHEMA,
        "model": {
            "name": name,
            "version": version,
            "created_at": created_at,
            "sha256": record["sha256"],
            "artifact_bytes": record.get("artifact_bytes"),
            "algorithm": config.get("model"),
            "code_version": record.get("code_version"),
            "parameters": record.get("parameters", {}),
            "environment": record.get("environment", {}),
        },
        "intended_use": {"summary": intended_use, "out_of_scope": list(out_of_scope)},
        "data": {
            "content_sha256": data["content_sha256"],
            "time_range": data["time_range"],
            "split_time": data["split_time"],
            "validation_fraction": data["validation_fraction"],
            "rows": data["rows"],
            "label_balance": {
                "overall": {"rows": data["rows"], "positives": data["positives"], "positive_rate": data["positive_rate"]},
                "train": data["train"],
                "validation": data["validation"],
            },
        },
        "inputs": {
            "features": [f["name"] for f in sorted(signature["features"], key=lambda f: f["position"])],
            "dtype": signature["dtype"],
            "missing_values": "NaN or absent; filled by the pipeline's imputer unless the deployment refuses them",
        },
        "metrics": {k: metrics.get(k) for k in _SCALAR_METRICS},
        "undefined_metrics": dict(sorted(metrics.get("undefined", {}).items())),
        "calibration": list(metrics.get("calibration", [])),
        "slices": {
            column: [{k: v for k, v in entry.items() if k != "confusion"} for entry in entries]
            for column, entries in sorted(record.get("slices", {}).items())
        },
        "threshold": dict(record["threshold"]),
        "parity": dict(record.get("parity", {})),
        "limitations": all_limits,
        "fairness": None if fairness is None else json.loads(json.dumps(fairness, sort_keys=True)),
        "feature_importance": None if importance is None else json.loads(json.dumps(importance, sort_keys=True)),
    }


def card_json(card: Mapping[str, Any]) -> str:
    """Canonical JSON text of a card (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(card, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def table_cell(value: Any, float_format: str = ".4f") -> str:
    """``value`` as one Markdown table cell: ``n/a`` for None, yes/no, floats to ``float_format``,
    pipes escaped and newlines flattened."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format(value, float_format)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(table_cell(c) for c in row) + " |" for row in rows]
    return lines


def _render_value(key: str, value: Any) -> list[str]:
    """Generic, deterministic rendering of a fairness summary of unknown shape."""
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        columns = sorted({k for v in value.values() for k in v})
        return ["", f"**{key}**", "", *_table(["group", *columns], [[g, *(value[g].get(c) for c in columns)] for g in sorted(value)]), ""]
    if isinstance(value, Sequence) and not isinstance(value, str) and value and all(isinstance(v, Mapping) for v in value):
        columns = sorted({k for v in value for k in v})
        return ["", f"**{key}**", "", *_table(columns, [[v.get(c) for c in columns] for v in value]), ""]
    if isinstance(value, Mapping):
        return ["", f"**{key}**", "", *[f"- {k}: {table_cell(v)}" for k, v in sorted(value.items())], ""]
    return [f"- {key}: {table_cell(value)}"]


def _fairness_lines(summary: Mapping[str, Any]) -> list[str]:
    """A `mlops.governance.fairness` summary: per attribute, its groups and the verdicts."""
    lines = [f"A row is selected when it is {summary.get('selection', 'predicted positive')}; threshold "
             f"{table_cell(summary.get('threshold'))}, {table_cell(summary.get('rows'))} validation rows. Definitions as "
             "fairlearn's (between groups, worst case); disparate impact: a group's selection rate over the "
             "highest one, the four-fifths rule passes at 0.8 or more.", ""]
    for column, audit in sorted(summary["attributes"].items()):
        di = audit.get("disparate_impact") or {}
        verdict = {True: "passes", False: "fails", None: "cannot be judged"}[di.get("passed")]
        lines += [
            f"### {column}",
            "",
            *_table(["group", "rows", "positives", "selected", "selection rate", "TPR", "FPR", "disparate impact"],
                    [[g["value"], g["n"], g["positives"], g["selected"], g["selection_rate"], g["tpr"], g["fpr"],
                      g["disparate_impact"]] for g in audit["groups"]]),
            "",
            f"- Demographic parity difference {table_cell(audit['demographic_parity_difference'])}, "
            f"ratio {table_cell(audit['demographic_parity_ratio'])}",
            f"- Equalized odds difference {table_cell(audit['equalized_odds_difference'])}, "
            f"ratio {table_cell(audit['equalized_odds_ratio'])}",
            f"- Disparate impact {table_cell(di.get('ratio'))} ({table_cell(di.get('lowest_group'))} vs "
            f"{table_cell(di.get('highest_group'))}): the four-fifths rule {verdict}",
            *[f"- Undefined {k}: {v}" for k, v in sorted(audit.get("undefined", {}).items())],
            "",
        ]
    return lines


def _importance_lines(importance: Mapping[str, Any]) -> list[str]:
    if "unavailable" in importance:
        return [f"Not available: {importance['unavailable']}", ""]
    method = {"tree_shap_path_dependent": "exact path-dependent TreeSHAP",
              "linear_shap": "linear SHAP (independent features)"}.get(importance["method"], importance["method"])
    mean_abs = importance["mean_abs"]
    return [
        f"Mean |SHAP value| over {importance['rows']} validation rows ({method}, of the {importance['output']}; "
        f"expected value {table_cell(importance['expected_value'])}).",
        "",
        *_table(["rank", "feature", "mean abs SHAP"],
                [[i + 1, f, mean_abs[f]] for i, f in enumerate(importance["ranking"])]),
        "",
    ]


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown: intended use, data, inputs, metrics, calibration, slices,
    threshold, limitations and, when they exist, the feature importance and fairness summary."""
    m = card["model"]
    d = card["data"]
    lines = [f"# Model card: {m['name']} version {m['version']}", ""]
    lines += [
        f"- Algorithm: {table_cell(m['algorithm'])}",
        f"- Artifact sha256: `{m['sha256']}` ({table_cell(m['artifact_bytes'])} bytes, ONNX)",
        f"- Code version: {table_cell(m['code_version'])}",
        f"- Created: {table_cell(m['created_at'])}",
        "",
        "## Intended use",
        "",
        card["intended_use"]["summary"],
        "",
    ]
    if card["intended_use"]["out_of_scope"]:
        lines += ["Out of scope:", "", *[f"- {item}" for item in card["intended_use"]["out_of_scope"]], ""]
    bal = d["label_balance"]
    lines += [
        "## Data",
        "",
        f"- Time range: {d['time_range']['start']} to {d['time_range']['end']}; validation from {d['split_time']} "
        f"(latest {d['validation_fraction']:g} of rows by time)",
        f"- Content sha256: `{d['content_sha256']}`",
        "",
        *_table(
            ["split", "rows", "positives", "positive rate", "from", "to"],
            [
                ["all", bal["overall"]["rows"], bal["overall"]["positives"], bal["overall"]["positive_rate"],
                 d["time_range"]["start"], d["time_range"]["end"]],
                *[[s, bal[s]["rows"], bal[s]["positives"], bal[s]["positive_rate"], bal[s]["start"], bal[s]["end"]]
                  for s in ("train", "validation")],
            ],
        ),
        "",
        "## Inputs",
        "",
        f"{len(card['inputs']['features'])} {card['inputs']['dtype']} features, in this order: "
        + ", ".join(f"`{f}`" for f in card["inputs"]["features"]) + ".",
        f"Missing values: {card['inputs']['missing_values']}.",
        "",
        "## Metrics (validation set)",
        "",
        *_table(["metric", "value"], [[k, card["metrics"][k]] for k in _SCALAR_METRICS if k in card["metrics"]]),
        "",
    ]
    if card["undefined_metrics"]:
        lines += [*[f"- {k} undefined: {v}" for k, v in sorted(card["undefined_metrics"].items())], ""]
    if card["calibration"]:
        lines += [
            "### Calibration",
            "",
            *_table(["bin", "count", "mean predicted", "observed rate"],
                    [[f"{'[' if i == 0 else '('}{b['lower']:.2f}, {b['upper']:.2f}]", b["count"], b["mean_predicted"], b["observed_rate"]]
                     for i, b in enumerate(card["calibration"])]),
            "",
        ]
    lines += ["## Slices", ""]
    if not card["slices"]:
        lines += ["No slice columns were declared.", ""]
    for column, entries in sorted(card["slices"].items()):
        lines += [
            f"### {column}",
            "",
            *_table(
                ["value", "rows", "positives", "ROC AUC", "PR AUC", "precision", "recall", "F1", "notes"],
                [[e["value"], e["n"], e["positives"], e["roc_auc"], e["pr_auc"], e["precision"], e["recall"], e["f1"],
                  "; ".join(f"{k}: {v}" for k, v in sorted(e.get("undefined", {}).items())) or ""]
                 for e in entries],
            ),
            "",
        ]
    t = card["threshold"]
    lines += [
        "## Threshold",
        "",
        f"Policy: {t['policy']['kind']} ({t.get('description', '')}). Threshold {t['threshold']:.6g}: "
        f"precision {table_cell(t['precision'])}, recall {table_cell(t['recall'])}, F1 {table_cell(t['f1'])}, "
        f"predicted positive rate {table_cell(t['predicted_positive_rate'])}.",
        "",
    ]
    if card["parity"]:
        p = card["parity"]
        lines += [f"ONNX parity on {p['rows']} validation rows: max |p_onnx - p_sklearn| = {p['max_abs_diff']:.2e} "
                  f"(tolerance {p['tolerance']:.0e}).", ""]
    lines += ["## Limitations", "", *[f"- {item}" for item in card["limitations"]], ""]
    if card.get("feature_importance") is not None:
        lines += ["## Feature importance", "", *_importance_lines(card["feature_importance"])]
    if card["fairness"] is not None:
        lines += ["## Fairness", ""]
        if isinstance(card["fairness"].get("attributes"), Mapping):
            lines += _fairness_lines(card["fairness"])
        else:
            for key, value in sorted(card["fairness"].items()):
                lines += _render_value(key, value)
        lines.append("")
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"
