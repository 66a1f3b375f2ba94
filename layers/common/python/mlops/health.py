"""Health of the service: the library version and, on a deep check, whether each table answers.

The check takes a `describe` callable (table name -> status string) so that it is tested
without AWS; the handler passes DynamoDB's DescribeTable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlops import __version__


def health_report(
    tables: Mapping[str, str],
    describe: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Return ``{"status", "version", "checks"}``.

    Without ``describe`` only the version is reported (a shallow check). With it, every table
    is described; the status is ``"ok"`` when all are ACTIVE, else ``"degraded"``, and each
    failing table's check names the problem.
    """
    report: dict[str, Any] = {"status": "ok", "version": __version__, "checks": {}}
    if describe is None:
        return report
    for role, name in sorted(tables.items()):
        try:
            state = describe(name)
        except Exception as exc:  # any failure to answer is a failed check, reported by name
            report["checks"][role] = f"error: {type(exc).__name__}: {exc}"
            continue
        report["checks"][role] = "ok" if state == "ACTIVE" else f"not ready: {state}"
    if any(v != "ok" for v in report["checks"].values()):
        report["status"] = "degraded"
    return report
