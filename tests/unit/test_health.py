"""The health report, without AWS: a describe callable stands in for DescribeTable."""

from __future__ import annotations

from mlops import __version__
from mlops.config import Resources
from mlops.health import health_report


def test_shallow_check_reports_version_only() -> None:
    assert health_report({"registry": "t"}) == {"status": "ok", "version": __version__, "checks": {}}


def test_deep_check_names_each_failing_table() -> None:
    def describe(name: str) -> str:
        if name == "missing":
            raise LookupError("Requested resource not found")
        return {"ready": "ACTIVE", "busy": "UPDATING"}[name]

    report = health_report({"a": "ready", "b": "busy", "c": "missing"}, describe)
    assert report["status"] == "degraded"
    assert report["checks"] == {
        "a": "ok",
        "b": "not ready: UPDATING",
        "c": "error: LookupError: Requested resource not found",
    }


def test_resources_come_from_the_declared_variables() -> None:
    env = {"REGISTRY_TABLE": "reg", "DATA_BUCKET": "data", "AUDIT_TABLE": ""}
    resources = Resources.from_env(env)
    assert resources.tables == {"registry": "reg"}
    assert resources.buckets == {"data": "data"}
