"""The canary gate on plain numbers: each check against its reference test, and the decisions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare, mannwhitneyu
from statsmodels.stats.proportion import proportions_ztest

from mlops.monitoring.version_stats import summarize
from mlops.rollout.gate import GatePolicy, evaluate_stage, short_of_samples

POLICY = GatePolicy(min_samples=30, min_labelled=30)


def rows(n, *, errors=0, latency=10.0, spread=1.0, correct=None, labelled=0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        row = {"version": 1, "latency_ms": float(latency + spread * rng.standard_normal())}
        if i < errors:
            row["error"] = "boom"
        else:
            row.update(probability=0.2, predicted_label=0)
            if i - errors < labelled:
                ok = (i - errors) < (correct if correct is not None else labelled)
                row["label"] = 0 if ok else 1
        out.append(row)
    return out


def decide(champ_rows, chall_rows, percent=10.0, last=False, extensions=0, policy=POLICY, counts=None):
    champion, challenger = summarize(champ_rows), summarize(chall_rows)
    counts = counts or {"champion": champion.n, "challenger": challenger.n}
    return evaluate_stage(champion=champion, challenger=challenger, stage_counts=counts, percent=percent,
                          last_stage=last, extensions=extensions, policy=policy,
                          champion_latencies=[r["latency_ms"] for r in champ_rows],
                          challenger_latencies=[r["latency_ms"] for r in chall_rows])


def test_the_champion_is_not_needed_while_the_challenger_waits() -> None:
    """The canary reads the champion only once the challenger has its samples (its rows are
    the bulk of what an evaluation reads); short of them, the answer is the same without it."""
    chall = summarize(rows(5))
    assert short_of_samples(chall, POLICY) and not short_of_samples(summarize(rows(30)), POLICY)
    labels = GatePolicy(min_samples=30, min_labelled=30, require_labels=True)
    assert short_of_samples(summarize(rows(40, labelled=10)), labels)
    assert not short_of_samples(summarize(rows(40, labelled=30)), labels)
    common = {"challenger": chall, "stage_counts": {"champion": None, "challenger": 5}, "percent": 1.0,
              "last_stage": False, "policy": POLICY}
    waiting = evaluate_stage(champion=None, extensions=0, **common)
    assert (waiting.decision, waiting.checks[0].note) == ("extend", "waiting for challenger")
    assert waiting.decision == decide(rows(900), rows(5)).decision
    late = evaluate_stage(champion=None, extensions=POLICY.max_extensions, **common)
    assert (late.decision, late.reasons) == ("rollback", ("insufficient_data",))
    with pytest.raises(ValueError, match="champion"):
        evaluate_stage(champion=None, challenger=summarize(rows(40)), stage_counts={"champion": None,
                       "challenger": 40}, percent=1.0, last_stage=False, extensions=0, policy=POLICY)


def check(result, name):
    return next(c for c in result.checks if c.name == name)


def test_healthy_challenger_continues_then_promotes() -> None:
    champ, chall = rows(900, seed=1), rows(100, seed=2)
    assert decide(champ, chall).decision == "continue"
    assert decide(champ, chall, last=True).decision == "promote"


def test_too_few_rows_extends_then_rolls_back() -> None:
    champ, chall = rows(900), rows(5)
    result = decide(champ, chall)
    assert (result.decision, result.reasons) == ("extend", ())
    late = decide(champ, chall, extensions=POLICY.max_extensions)
    assert (late.decision, late.reasons) == ("rollback", ("insufficient_data",))
    # at 100% the champion's baseline comes from before the rollout; it still needs rows
    assert decide(rows(0), rows(40), percent=100, last=True).decision == "extend"
    assert decide(rows(40), rows(40), percent=100, last=True).decision == "promote"


def test_require_labels_waits_for_feedback() -> None:
    policy = GatePolicy(min_samples=30, min_labelled=30, require_labels=True)
    champ = rows(900, labelled=400, correct=380)
    assert decide(champ, rows(100, labelled=10, correct=10), policy=policy).decision == "extend"
    assert decide(champ, rows(100, labelled=40, correct=39), policy=policy).decision == "continue"
    late = decide(champ, rows(100, labelled=10), policy=policy, extensions=policy.max_extensions)
    assert late.reasons == ("insufficient_data",) and "30 labels" in late.checks[0].note


def test_errors_roll_back_with_the_z_test_of_statsmodels() -> None:
    champ, chall = rows(900, errors=2), rows(100, errors=8)
    result = decide(champ, chall)
    assert result.decision == "rollback" and result.reasons == ("error_rate",)
    c = check(result, "error_rate")
    stat, p = proportions_ztest([8, 2], [100, 900], alternative="larger")
    assert c.p_value == pytest.approx(p, rel=1e-12) and c.statistic == pytest.approx(stat, rel=1e-12)
    assert c.observed == pytest.approx(0.08)


def test_error_rate_over_the_threshold_but_not_significant_passes() -> None:
    # 2/100 (2% > 1%) against the champion's 18/900 (2%): no evidence the challenger is worse
    result = decide(rows(900, errors=18), rows(100, errors=2))
    c = check(result, "error_rate")
    assert c.passed and c.p_value > 0.05 and result.decision == "continue"


def test_every_request_failing_rolls_back() -> None:
    result = decide(rows(900), rows(40, errors=40))
    assert result.decision == "rollback" and "error_rate" in result.reasons


def test_slow_challenger_rolls_back_with_mann_whitney() -> None:
    champ, chall = rows(900, latency=10, seed=3), rows(100, latency=30, seed=4)
    result = decide(champ, chall)
    assert result.reasons == ("latency",)
    c = check(result, "latency")
    ref = mannwhitneyu([r["latency_ms"] for r in chall], [r["latency_ms"] for r in champ], alternative="greater")
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    assert c.limit == pytest.approx(np.percentile([r["latency_ms"] for r in champ], 95) * 1.5)
    # 20% slower is within the 50% allowance
    assert decide(champ, rows(100, latency=12, seed=4)).decision == "continue"


def test_worse_accuracy_rolls_back() -> None:
    champ = rows(900, labelled=400, correct=380, seed=5)     # 95%
    chall = rows(100, labelled=100, correct=75, seed=6)      # 75%
    result = decide(champ, chall)
    assert result.reasons == ("accuracy",)
    c = check(result, "accuracy")
    stat, p = proportions_ztest([75, 380], [100, 400], alternative="smaller")
    assert c.p_value == pytest.approx(p, rel=1e-12)
    # a 2-point dip is within the 5% relative allowance
    assert decide(champ, rows(100, labelled=100, correct=93, seed=6)).decision == "continue"
    # too few labels: accuracy is not judged yet
    few = decide(champ, rows(100, labelled=10, correct=0, seed=6))
    assert few.decision == "continue" and "not judged" in check(few, "accuracy").note


def test_sample_ratio_mismatch_rolls_back() -> None:
    champ, chall = rows(900), rows(100)
    # the stage's split should be 10%: 300 of 1000 on the challenger is a mismatch
    result = decide(champ, chall, counts={"champion": 700, "challenger": 300})
    assert result.reasons == ("sample_ratio",)
    c = check(result, "sample_ratio")
    ref = chisquare([700, 300], [900, 100])
    assert c.p_value == pytest.approx(ref.pvalue, rel=1e-9) and c.statistic == pytest.approx(ref.statistic)
    assert decide(champ, chall, counts={"champion": 905, "challenger": 95}).decision == "continue"


def test_policy_is_checked() -> None:
    with pytest.raises(ValueError, match="max_error_rate"):
        GatePolicy(max_error_rate=1.5)
    with pytest.raises(ValueError, match="bogus: unknown"):
        GatePolicy.from_dict({"bogus": 1})
    assert GatePolicy.from_dict({"min_samples": 5}).min_samples == 5


def test_alpha_is_shared_by_every_test_of_the_rollout() -> None:
    """89/100 correct against the champion's 95%: one-sided p = 0.013. A one-stage rollout tests
    at 0.05/3 and rolls back; a four-stage rollout tests at 0.05/12 and does not."""
    champion, challenger = summarize(rows(900, labelled=400, correct=380)), summarize(rows(100, labelled=100, correct=89))

    def decision(stages: int) -> str:
        return evaluate_stage(champion=champion, challenger=challenger, stage_counts={"champion": 900, "challenger": 100},
                              percent=10, last_stage=False, extensions=0, policy=POLICY, stages=stages).decision

    assert decision(1) == "rollback" and decision(4) == "continue"
