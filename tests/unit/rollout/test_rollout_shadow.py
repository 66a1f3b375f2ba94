"""Shadow mode analysis on plain numbers: every statistic against scipy / statsmodels on the same
pairs (1e-12), the degenerate cases (None and a reason, never NaN), and the canary verdict."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from mlops.rollout.shadow import (
    EXACT_BELOW,
    ShadowAnalysis,
    ShadowInputError,
    ShadowPair,
    ShadowPolicy,
    analyze_shadow,
    shadow_verdict,
)

TIGHT = {"rel": 1e-12, "abs": 1e-12}


def make_pairs(n: int, *, seed: int, shift: float = 0.0, noise: float = 0.08, labelled: float = 0.5,
               ties: float = 0.0, shadow_skill: float = 0.0) -> list[ShadowPair]:
    """Production and shadow probabilities on the same requests; ``ties`` of them identical;
    ground truth for a ``labelled`` share (the shadow is better when ``shadow_skill`` > 0)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    prod = np.clip(0.5 + 0.25 * (2 * truth - 1) + rng.normal(0, 0.25, n), 0, 1)
    shadow = np.clip(prod + shift + rng.normal(0, noise, n) + shadow_skill * (2 * truth - 1), 0, 1)
    same = rng.random(n) < ties
    shadow[same] = prod[same]
    has_label = rng.random(n) < labelled
    return [ShadowPair(float(p), float(s), int(p >= 0.5), int(s >= 0.5), int(t) if has else None)
            for p, s, t, has in zip(prod, shadow, truth, has_label)]


def arrays(pairs: list[ShadowPair]):
    prod = np.array([p.production_probability for p in pairs])
    shadow = np.array([p.shadow_probability for p in pairs])
    return prod, shadow


def json_safe(analysis: ShadowAnalysis) -> dict:
    return json.loads(json.dumps(analysis.to_dict(), allow_nan=False))


# ------------------------------------------------------------------------------ against references


@pytest.mark.parametrize(("n", "seed", "ties"), [(8, 1, 0.0), (7, 2, 0.3), (16, 12, 0.3), (40, 3, 0.0), (45, 4, 0.2),
                                                 (120, 5, 0.0), (600, 6, 0.1)])
def test_every_statistic_equals_its_reference(n, seed, ties) -> None:
    pairs = make_pairs(n, seed=seed, ties=ties, shift=0.01)
    a = analyze_shadow(pairs, confidence=0.9)
    prod, shadow = arrays(pairs)
    prod_l = np.array([p.production_label for p in pairs])
    shadow_l = np.array([p.shadow_label for p in pairs])

    agree = int(np.sum(prod_l == shadow_l))
    assert (a.n, a.agreements) == (n, agree)
    assert a.agreement_rate == pytest.approx(agree / n, **TIGHT)
    low, high = proportion_confint(agree, n, alpha=0.1, method="wilson")
    assert a.agreement_ci == (pytest.approx(low, **TIGHT), pytest.approx(high, **TIGHT))
    assert a.production_positive_rate == pytest.approx(prod_l.mean(), **TIGHT)
    assert a.shadow_positive_rate == pytest.approx(shadow_l.mean(), **TIGHT)

    diff = shadow - prod
    assert a.mean_difference == pytest.approx(diff.mean(), **TIGHT)
    assert a.mean_abs_difference == pytest.approx(np.abs(diff).mean(), **TIGHT)
    assert a.max_abs_difference == pytest.approx(np.abs(diff).max(), **TIGHT)

    t = stats.ttest_rel(shadow, prod)
    ci = t.confidence_interval(0.9)
    assert a.paired_t is not None
    assert (a.paired_t.statistic, a.paired_t.p_value) == (pytest.approx(t.statistic, **TIGHT),
                                                          pytest.approx(t.pvalue, **TIGHT))
    assert a.paired_t.df == n - 1
    assert (a.paired_t.ci_low, a.paired_t.ci_high) == (pytest.approx(ci.low, **TIGHT), pytest.approx(ci.high, **TIGHT))

    w = stats.wilcoxon(shadow, prod)
    assert a.wilcoxon is not None
    assert (a.wilcoxon.statistic, a.wilcoxon.p_value) == (pytest.approx(w.statistic, **TIGHT),
                                                          pytest.approx(w.pvalue, **TIGHT))
    assert a.wilcoxon.nonzero == int(np.count_nonzero(diff)) and a.wilcoxon.zero_method == "wilcox"

    labelled = [p for p in pairs if p.label is not None]
    y = np.array([p.label for p in labelled])
    prod_ok = np.array([p.production_label for p in labelled]) == y
    shadow_ok = np.array([p.shadow_label for p in labelled]) == y
    assert a.labeled == len(labelled)
    assert a.production_accuracy == pytest.approx(prod_ok.mean(), **TIGHT)
    assert a.shadow_accuracy == pytest.approx(shadow_ok.mean(), **TIGHT)
    table = [[np.sum(prod_ok & shadow_ok), np.sum(prod_ok & ~shadow_ok)],
             [np.sum(~prod_ok & shadow_ok), np.sum(~prod_ok & ~shadow_ok)]]
    b, c = int(table[0][1]), int(table[1][0])
    ref = mcnemar(table, exact=b + c < EXACT_BELOW, correction=True)
    assert a.mcnemar is not None
    assert (a.mcnemar.production_only, a.mcnemar.shadow_only) == (b, c)
    assert a.mcnemar.method == ("exact" if b + c < EXACT_BELOW else "chi2")
    assert (a.mcnemar.statistic, a.mcnemar.p_value) == (pytest.approx(ref.statistic, **TIGHT),
                                                        pytest.approx(ref.pvalue, **TIGHT))
    assert a.unavailable == {}
    json_safe(a)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (3, 0), (0, 7), (12, 12), (20, 4), (24, 0), (25, 0), (13, 12),
                                      (30, 18), (90, 140), (400, 330)])
def test_mcnemar_exact_below_25_discordant_chi2_from_there_on(b, c) -> None:
    both, neither = 40, 15
    # pairs of (production correct?, shadow correct?), all labelled with truth 1
    cells = [(1, 1)] * both + [(1, 0)] * b + [(0, 1)] * c + [(0, 0)] * neither
    pairs = [ShadowPair(0.7 if p else 0.3, 0.7 if s else 0.3, p, s, 1) for p, s in cells]
    m = analyze_shadow(pairs).mcnemar
    assert m is not None and (m.production_only, m.shadow_only, m.discordant) == (b, c, b + c)
    exact = b + c < 25
    ref = mcnemar([[both, b], [c, neither]], exact=exact, correction=True)
    assert m.method == ("exact" if exact else "chi2")
    assert m.statistic == pytest.approx(ref.statistic, **TIGHT)
    assert m.p_value == pytest.approx(ref.pvalue, **TIGHT)


def test_wilcoxon_drops_zero_differences() -> None:
    """zero_method="wilcox": identical probabilities are dropped before ranking, so adding
    requests on which both versions agree exactly changes neither the statistic nor n."""
    pairs = make_pairs(30, seed=9)
    same = [ShadowPair(0.4, 0.4, 0, 0), ShadowPair(0.9, 0.9, 1, 1)] * 5
    a, b = analyze_shadow(pairs), analyze_shadow(pairs + same)
    assert a.wilcoxon is not None and b.wilcoxon is not None
    prod, shadow = arrays(pairs)
    assert b.wilcoxon.nonzero == a.wilcoxon.nonzero == np.count_nonzero(shadow - prod) > 20
    assert b.wilcoxon.statistic == a.wilcoxon.statistic
    prod, shadow = arrays(pairs + same)
    ref = stats.wilcoxon(shadow, prod)  # scipy's defaults, on all 40 pairs
    assert b.wilcoxon.p_value == pytest.approx(ref.pvalue, **TIGHT)
    assert b.paired_t is not None and b.paired_t.df == 39  # the t-test keeps the zeros


def test_differences_are_shadow_minus_production() -> None:
    pairs = make_pairs(200, seed=11, shift=0.1, noise=0.02)
    a = analyze_shadow(pairs)
    assert a.mean_difference is not None and a.mean_difference > 0.05
    assert a.paired_t is not None and a.paired_t.statistic > 0 and a.paired_t.ci_low > 0


# ------------------------------------------------------------------------------ degenerate input


def test_no_pairs_is_all_none_with_reasons() -> None:
    a = analyze_shadow([])
    assert a.n == 0 and a.agreement_rate is None and a.agreement_ci is None and a.mean_difference is None
    assert a.paired_t is None and a.wilcoxon is None and a.mcnemar is None and a.shadow_error_rate is None
    assert set(a.unavailable) == {"agreement_rate", "paired_t", "wilcoxon", "mcnemar"}
    assert json_safe(a)["unavailable"]["paired_t"] == "needs at least 2 pairs, got 0"
    ok, reasons = shadow_verdict(a, ShadowPolicy())
    assert not ok and reasons == ["only 0 paired predictions; the policy needs at least 100"]


def test_one_pair() -> None:
    a = analyze_shadow([ShadowPair(0.2, 0.6, 0, 1, 1)])
    assert a.n == 1 and a.agreement_rate == 0.0 and a.mean_difference == pytest.approx(0.4)
    assert a.paired_t is None and a.unavailable["paired_t"] == "needs at least 2 pairs, got 1"
    ref = stats.wilcoxon([0.6], [0.2])
    assert a.wilcoxon is not None and a.wilcoxon.p_value == ref.pvalue == 1.0
    assert a.mcnemar is not None and (a.mcnemar.shadow_only, a.mcnemar.p_value) == (1, 1.0)
    json_safe(a)


def test_identical_versions_have_no_shift_tests_and_pass() -> None:
    pairs = [ShadowPair(p, p, int(p >= 0.5), int(p >= 0.5)) for p in np.linspace(0, 1, 150)]
    a = analyze_shadow(pairs)
    assert a.agreement_rate == 1.0 and a.mean_difference == 0.0 and a.max_abs_difference == 0.0
    assert a.paired_t is None and a.wilcoxon is None and a.mcnemar is None
    assert a.unavailable == {"paired_t": "all differences are zero: both versions gave the same probabilities",
                             "wilcoxon": "all differences are zero: both versions gave the same probabilities",
                             "mcnemar": "no feedback labels for these requests"}
    assert shadow_verdict(a, ShadowPolicy()) == (True, [])


def test_a_constant_difference_has_no_t_test_and_is_judged_on_the_mean() -> None:
    pairs = [ShadowPair(0.25, 0.5, 0, 1)] * 120  # exactly representable: the difference is 0.25 each time
    a = analyze_shadow(pairs)
    assert a.paired_t is None and "no variance" in a.unavailable["paired_t"]
    assert a.wilcoxon is not None  # signed ranks are defined (all positive, all tied)
    assert a.wilcoxon.p_value == pytest.approx(stats.wilcoxon([0.5] * 120, [0.25] * 120).pvalue, **TIGHT)
    ok, reasons = shadow_verdict(a, ShadowPolicy(min_agreement=0.0))
    assert not ok and reasons[0].startswith("mean probability shift +0.2500 exceeds +/-0.05")
    json_safe(a)


def test_every_pair_labelled_but_no_discordant_pair() -> None:
    pairs = [ShadowPair(0.8, 0.7, 1, 1, 1), ShadowPair(0.2, 0.3, 0, 0, 1)] * 10
    m = analyze_shadow(pairs).mcnemar
    ref = mcnemar([[10, 0], [0, 10]], exact=True)
    assert m is not None and (m.statistic, m.p_value, m.method) == (ref.statistic, ref.pvalue, "exact") == (0, 1.0, "exact")


pair_strategy = st.builds(
    ShadowPair,
    st.floats(0, 1), st.floats(0, 1), st.integers(0, 1), st.integers(0, 1), st.one_of(st.none(), st.integers(0, 1)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(pair_strategy, st.sampled_from([ShadowPair(0.5, 0.5, 1, 1, 1), ShadowPair(0.0, 1.0, 0, 1)])),
                max_size=10),
       st.integers(0, 5))
def test_never_nan_for_valid_input(pairs, errors) -> None:
    a = analyze_shadow(pairs, shadow_errors=errors)
    out = json_safe(a)  # raises on NaN or infinity
    for name in ("paired_t", "wilcoxon", "mcnemar", "agreement_rate"):
        assert (out[name] is None) == (name in a.unavailable)
    for test in (a.paired_t, a.wilcoxon, a.mcnemar):
        if test is not None:
            assert 0.0 <= test.p_value <= 1.0
    ok, reasons = shadow_verdict(a, ShadowPolicy(min_pairs=1))
    assert ok is (not reasons)


@pytest.mark.parametrize(("pair", "field", "problem"), [
    (ShadowPair(1.2, 0.5, 1, 1), "pairs[1].production_probability", "expected a probability within 0-1"),
    (ShadowPair(0.2, math.nan, 0, 0), "pairs[1].shadow_probability", "expected a probability within 0-1"),
    (ShadowPair(0.2, 0.1, 2, 0), "pairs[1].production_label", "expected 0 or 1"),
    (ShadowPair(0.2, 0.1, 0, True), "pairs[1].shadow_label", "expected 0 or 1"),
    (ShadowPair(0.2, 0.1, 0, 0, -1), "pairs[1].label", "expected 0 or 1"),
])
def test_invalid_pairs_are_refused_naming_the_field(pair, field, problem) -> None:
    with pytest.raises(ShadowInputError) as info:
        analyze_shadow([ShadowPair(0.5, 0.5, 1, 1), pair])
    assert info.value.problems == {field: problem}
    with pytest.raises(ShadowInputError, match="shadow_errors"):
        analyze_shadow([], shadow_errors=-1)


# ------------------------------------------------------------------------------ the verdict


def agreeing(n_agree: int, n: int) -> list[ShadowPair]:
    return [ShadowPair(0.6, 0.6 if i < n_agree else 0.4, 1, 1 if i < n_agree else 0) for i in range(n)]


@pytest.mark.parametrize(("n_agree", "n"), [(80, 100), (90, 100), (94, 100), (100, 100), (930, 1000), (938, 1000),
                                            (27, 30)])
def test_agreement_fails_only_when_significantly_below_the_minimum(n_agree, n) -> None:
    policy = ShadowPolicy(min_pairs=1, min_agreement=0.95, max_mean_shift=1.0)
    _, upper = proportion_confint(n_agree, n, alpha=2 * policy.alpha, method="wilson")  # one-sided 95% bound
    ok, reasons = shadow_verdict(analyze_shadow(agreeing(n_agree, n)), policy)
    assert ok is (upper >= 0.95), (upper, reasons)
    if not ok:
        assert reasons == [f"label agreement {n_agree / n:.4f} is significantly below 0.95 (upper 95% Wilson bound "
                           f"{upper:.4f})"]


def test_a_shift_must_be_both_significant_and_beyond_the_tolerance() -> None:
    policy = ShadowPolicy(min_pairs=8, min_agreement=0.0, max_mean_shift=0.05)
    big = analyze_shadow(make_pairs(300, seed=21, shift=0.08, noise=0.05))
    ok, reasons = shadow_verdict(big, policy)
    assert not ok and len(reasons) == 1 and "is significant (paired t-test" in reasons[0]
    small = analyze_shadow(make_pairs(300, seed=22, shift=0.02, noise=0.05))  # significant, within tolerance
    assert small.paired_t is not None and small.paired_t.p_value < 0.001
    assert shadow_verdict(small, policy) == (True, [])
    diffs = [0.45, -0.3, 0.4, -0.31, 0.35, -0.25, 0.2, -0.15]  # mean +0.049 + 0.01: beyond tolerance, not significant
    noisy = analyze_shadow([ShadowPair(0.5, 0.51 + d, 1, int(d > 0)) for d in diffs])
    assert noisy.paired_t is not None and noisy.paired_t.p_value >= 0.05 and abs(noisy.mean_difference) > 0.05
    assert shadow_verdict(noisy, policy) == (True, [])


def cells(both: int, prod_only: int, shadow_only: int, neither: int) -> list[ShadowPair]:
    spec = [(1, 1)] * both + [(1, 0)] * prod_only + [(0, 1)] * shadow_only + [(0, 0)] * neither
    return [ShadowPair(0.7 if p else 0.3, 0.7 if s else 0.3, p, s, 1) for p, s in spec]


def test_mcnemar_fails_only_a_significantly_less_accurate_shadow() -> None:
    policy = ShadowPolicy(min_pairs=1, min_agreement=0.0, max_mean_shift=1.0, alpha=0.05)
    worse = analyze_shadow(cells(100, 30, 8, 10))
    ok, reasons = shadow_verdict(worse, policy)
    assert not ok and len(reasons) == 1 and reasons[0].startswith("shadow is significantly less accurate")
    assert "b=30, c=8" in reasons[0]
    better = analyze_shadow(cells(100, 8, 30, 10))
    assert better.mcnemar is not None and better.mcnemar.p_value < 0.05
    assert shadow_verdict(better, policy) == (True, [])
    # One-sided at alpha: two-sided p between alpha and 2 alpha with the shadow worse still fails.
    edge = analyze_shadow(cells(50, 9, 2, 0))
    assert edge.mcnemar is not None and 0.05 < edge.mcnemar.p_value < 0.1
    assert shadow_verdict(edge, policy)[0] is False
    assert shadow_verdict(edge, ShadowPolicy(min_pairs=1, min_agreement=0.0, max_mean_shift=1.0, alpha=0.025))[0]


def test_min_labeled_and_min_pairs() -> None:
    a = analyze_shadow(make_pairs(50, seed=31, labelled=0.2, noise=0.0))
    ok, reasons = shadow_verdict(a, ShadowPolicy(min_pairs=60, min_labeled=a.labeled + 1, min_agreement=0.0))
    assert not ok and reasons == ["only 50 paired predictions; the policy needs at least 60",
                                  f"only {a.labeled} predictions with feedback; the policy needs at least {a.labeled + 1}"]
    assert shadow_verdict(a, ShadowPolicy(min_pairs=50, min_labeled=a.labeled, min_agreement=0.0)) == (True, [])


@pytest.mark.parametrize(("errors", "n"), [(1, 500), (5, 500), (12, 500), (3, 0), (0, 10)])
def test_shadow_errors_fail_when_significantly_above_the_limit(errors, n) -> None:
    policy = ShadowPolicy(min_pairs=1 if n else 0 + 1, min_agreement=0.0, max_error_rate=0.01)
    a = analyze_shadow(agreeing(n, n), shadow_errors=errors)
    assert a.shadow_error_rate == (errors / (n + errors) if n + errors else None)
    low = proportion_confint(errors, n + errors, alpha=0.1, method="wilson")[0] if errors else 0.0
    ok, reasons = shadow_verdict(a, policy)
    error_reasons = [r for r in reasons if r.startswith("shadow error rate")]
    assert bool(error_reasons) is (low > 0.01)


def test_policy_from_json_names_each_bad_field() -> None:
    assert ShadowPolicy.from_dict(None) == ShadowPolicy()
    assert ShadowPolicy.from_dict({"min_pairs": 10.0, "alpha": 0.01}) == ShadowPolicy(min_pairs=10, alpha=0.01)
    assert ShadowPolicy.from_dict({"min_pairs": 10}).to_dict()["min_pairs"] == 10
    with pytest.raises(ShadowInputError) as info:
        ShadowPolicy.from_dict({"min_pairs": 0, "min_agreement": 1.5, "alpha": 0.5, "max_mean_shift": "x",
                                "min_labeled": True, "colour": 1, "max_error_rate": math.inf})
    assert info.value.problems == {
        "policy.min_pairs": "expected an integer >= 1", "policy.min_agreement": "expected a number within 0-1",
        "policy.alpha": "expected a number strictly between 0 and 0.5", "policy.max_mean_shift": "expected a number",
        "policy.min_labeled": "expected an integer >= 0", "policy.colour": "unknown field",
        "policy.max_error_rate": "expected a number"}
    with pytest.raises(ShadowInputError) as info:
        ShadowPolicy.from_dict([1])
    assert info.value.problems == {"policy": "expected an object"}
