"""Exact path-dependent TreeSHAP (Lundberg et al. 2020, "From local explanations to global
understanding with explainable AI for trees", Algorithm 2) for a tree ensemble, in numpy.

The value of a feature set S for a row x is the path-dependent conditional expectation of the
ensemble's output: at a split on a feature in S follow x, at any other split average both
children weighted by their training covers. TreeSHAP gives the exact Shapley values of that
game. As in GPUTreeShap and Linear TreeShap (Yu et al. 2022), the work is done per leaf: for a
leaf with value v the game depends only on the m distinct features split on along its path,
and factorizes per feature j into o_j (1 if x satisfies every split on j along the path, else
0) when j is in S, and z_j (the product of the cover fractions of the path's splits on j) when
it is not. With the Shapley weight k! (m - k - 1)! / m! = integral_0^1 t^k (1 - t)^(m-k-1) dt,
the leaf's share of feature i's Shapley value is

    v (o_i - z_i) integral_0^1 prod_{j != i} (z_j (1 - t) + o_j t) dt,

the integral of a polynomial of degree m - 1, which Gauss-Legendre quadrature with
ceil(m / 2) nodes computes exactly (to rounding). Every path of the same width m is done at
once in numpy; values are summed over leaves and trees. This is the same quantity as
Lundberg's EXTEND/UNWIND recursion, computed without per-node Python loops.

Properties the tests check: the attributions sum to the output minus the expected value
(additivity, to rounding); they equal brute-force Shapley values over feature subsets and
`shap.TreeExplainer` on the scikit-learn model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Split modes (ONNX TreeEnsemble ``nodes_modes``); the row goes to the true child when the
#: comparison holds.
MODES = ("LEAF", "BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
#: Upper bound of float64 elements per work array (rows x paths x features x nodes): 8 MiB.
CHUNK_ELEMENTS = 1_000_000


def split_goes_true(mode: np.ndarray, x: np.ndarray, threshold: np.ndarray, missing_true: np.ndarray) -> np.ndarray:
    """Whether value(s) `x` take the true branch of splits with these modes and thresholds.

    Compared in float32, as the ONNX runtime does. A missing value (NaN) takes the true branch
    where ``missing_true`` is set, else the false branch (every comparison with NaN is false).
    """
    x = np.asarray(x, dtype=np.float32)
    t = np.asarray(threshold, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        out = np.select(
            [mode == 1, mode == 2, mode == 3, mode == 4, mode == 5, mode == 6],
            [x <= t, x < t, x >= t, x > t, x == t, x != t],
            default=False,
        )
    return np.where(np.isnan(x), missing_true, out)


@dataclass(frozen=True)
class _PathGroup:
    """The root-to-leaf paths that split on the same number m of distinct features.

    Slot axis first, so the per-slot arrays the inner loops read are contiguous.
    """

    step_node: np.ndarray     # [P, D] split node of each step (-1: padding)
    step_true: np.ndarray     # [P, D] the path takes the split's true branch
    step_slot: np.ndarray     # [P, D] the step's feature slot, 0..m-1 (m: padding)
    slot_feature: np.ndarray  # [m, P] feature index of each slot
    z: np.ndarray             # [m, P] product of the cover fractions of the slot's splits
    value: np.ndarray         # [P] leaf value
    # Steps flattened path by path, sorted by slot (padding last), and where each (path, slot)
    # segment starts: whether a row satisfies a slot is one reduceat over its segment.
    gather_node: np.ndarray = field(init=False)
    gather_true: np.ndarray = field(init=False)
    gather_pad: np.ndarray = field(init=False)
    starts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        order = np.argsort(self.step_slot, axis=1, kind="stable")
        node = np.take_along_axis(self.step_node, order, axis=1)
        slot = np.take_along_axis(self.step_slot, order, axis=1)
        first = np.ones_like(slot, dtype=bool)
        first[:, 1:] = slot[:, 1:] != slot[:, :-1]
        object.__setattr__(self, "gather_node", np.where(node < 0, 0, node).ravel())
        object.__setattr__(self, "gather_true", np.take_along_axis(self.step_true, order, axis=1).ravel())
        object.__setattr__(self, "gather_pad", (node < 0).ravel())
        object.__setattr__(self, "starts", np.flatnonzero((first & (slot < self.m)).ravel()))

    @property
    def m(self) -> int:
        return self.z.shape[0]

    @property
    def quadrature(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes and weights on [0, 1], exact for polynomials of degree m - 1."""
        x, w = np.polynomial.legendre.leggauss(max(1, (self.m + 1) // 2))
        return (x + 1.0) / 2.0, w / 2.0


@dataclass(frozen=True)
class TreeEnsemble:
    """A tree ensemble as flat node arrays (all trees together) whose output is
    ``base + sum of the reached leaves' values``.

    Internal nodes have a feature, a float32 threshold, a mode (index in `MODES`), a true and a
    false child (indices into the same arrays) and whether a missing value goes true; leaves
    have ``mode == 0`` and a value. ``cover`` is each node's training weight (the number of
    weighted training rows that reached it), which the expectation needs.
    """

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    missing_true: np.ndarray
    cover: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    base: float
    n_features: int
    _paths: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        internal = self.mode != 0
        n = self.mode.shape[0]
        if internal.any():
            kids = np.concatenate([self.true_child[internal], self.false_child[internal]])
            if kids.min() < 0 or kids.max() >= n:
                raise ValueError("a split points at a node that does not exist")
            if self.feature[internal].min() < 0 or self.feature[internal].max() >= self.n_features:
                raise ValueError("a split uses a feature outside the model's input")
            if not (self.cover > 0).all():
                raise ValueError("every node needs a positive cover (training weight)")
            covered = self.cover[self.true_child[internal]] + self.cover[self.false_child[internal]]
            if not np.allclose(covered, self.cover[internal], rtol=1e-4):
                raise ValueError("node covers are not the sums of their children's covers")

    # -- structure ---------------------------------------------------------------------------
    def paths(self) -> list[_PathGroup]:
        """The path table, grouped by path width (built once, then cached on the instance)."""
        if not self._paths:
            self._paths.extend(self._build_paths())
        return self._paths

    def _build_paths(self) -> list[_PathGroup]:
        n = self.mode.shape[0]
        internal = np.flatnonzero(self.mode != 0)
        parent = np.full(n, -1, dtype=np.int64)
        went_true = np.zeros(n, dtype=bool)
        parent[self.true_child[internal]] = internal
        parent[self.false_child[internal]] = internal
        went_true[self.true_child[internal]] = True
        leaves = np.flatnonzero(self.mode == 0)
        steps_node, steps_true = [], []
        cur = leaves
        for _ in range(n + 1):  # walk every leaf up to its root, one level per iteration
            up = parent[cur]
            if (up < 0).all():
                break
            steps_node.append(up)
            steps_true.append(np.where(up >= 0, went_true[cur], False))
            cur = np.where(up >= 0, up, cur)
        if not np.isin(cur, self.roots).all():
            raise ValueError("a leaf is not under any root")
        p = leaves.shape[0]
        if steps_node:
            step_node = np.stack(steps_node, axis=1)
            step_true = np.stack(steps_true, axis=1)
        else:  # single-leaf trees only
            step_node = np.full((p, 1), -1, dtype=np.int64)
            step_true = np.zeros((p, 1), dtype=bool)
        pad = step_node < 0
        feats = np.where(pad, self.n_features, self.feature[np.where(pad, 0, step_node)])
        # Feature slots per path: the rank of the step's feature among the path's distinct
        # features; padding (feature n_features) sorts last and gets slot m.
        order = np.argsort(feats, axis=1, kind="stable")
        sorted_f = np.take_along_axis(feats, order, axis=1)
        new = np.ones_like(sorted_f, dtype=bool)
        new[:, 1:] = sorted_f[:, 1:] != sorted_f[:, :-1]
        ranks_sorted = np.cumsum(new, axis=1) - 1
        step_slot = np.empty_like(ranks_sorted)
        np.put_along_axis(step_slot, order, ranks_sorted, axis=1)
        width = np.where(sorted_f[:, -1] == self.n_features, ranks_sorted[:, -1], ranks_sorted[:, -1] + 1)
        groups = []
        for m in np.unique(width):
            m = int(m)
            sel = np.flatnonzero(width == m)
            g_node, g_true, g_slot, g_feats = step_node[sel], step_true[sel], step_slot[sel], feats[sel]
            cols = np.arange(sel.shape[0])
            z = np.ones((m + 1, sel.shape[0]), dtype=np.float64)
            slot_feature = np.full((m + 1, sel.shape[0]), self.n_features, dtype=np.int64)
            for d in range(g_node.shape[1]):
                is_pad = g_node[:, d] < 0
                node = np.where(is_pad, 0, g_node[:, d])
                child = np.where(g_true[:, d], self.true_child[node], self.false_child[node])
                ratio = np.where(is_pad, 1.0, self.cover[np.where(is_pad, 0, child)] / self.cover[node])
                z[g_slot[:, d], cols] *= ratio
                slot_feature[g_slot[:, d], cols] = g_feats[:, d]
            groups.append(_PathGroup(g_node, g_true, g_slot, slot_feature[:m], z[:m],
                                     self.value[leaves[sel]].astype(np.float64)))
        return groups

    # -- values ------------------------------------------------------------------------------
    def expected_value(self) -> float:
        """The output averaged over the training covers: base + sum of leaf values times the
        share of their tree's root cover that reaches them."""
        return float(self.base + sum(np.sum(g.value * np.prod(g.z, axis=0)) for g in self.paths()))

    def _goes_true(self, x: np.ndarray) -> np.ndarray:
        return split_goes_true(self.mode[None, :], x[:, np.maximum(self.feature, 0)], self.threshold[None, :],
                               self.missing_true[None, :])

    @staticmethod
    def _on_path(g: _PathGroup, goes_true: np.ndarray) -> np.ndarray:
        """[m, R, P] whether each row satisfies every split on each slot's feature of each path."""
        r, p = goes_true.shape[0], g.step_node.shape[0]
        if g.m == 0:
            return np.ones((0, r, p), dtype=bool)
        bad = (goes_true[:, g.gather_node] != g.gather_true) & ~g.gather_pad  # [R, P * D]
        failed = np.logical_or.reduceat(bad, g.starts, axis=1)               # [R, P * m]
        return np.ascontiguousarray(np.logical_not(failed).reshape(r, p, g.m).transpose(2, 0, 1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The output (base + reached leaves' values) of each row of `x` [R, n_features], by
        walking each tree from its root (independent of the path table)."""
        x = self._rows(x)
        out = np.empty(x.shape[0], dtype=np.float64)
        size = max(1, CHUNK_ELEMENTS // max(1, self.mode.shape[0]))
        for start in range(0, x.shape[0], size):
            goes_true = self._goes_true(x[start:start + size])
            node = np.repeat(self.roots[None, :], goes_true.shape[0], axis=0)
            for _ in range(self.mode.shape[0]):
                internal = self.mode[node] != 0
                if not internal.any():
                    break
                step = np.where(np.take_along_axis(goes_true, node, axis=1), self.true_child[node],
                                self.false_child[node])
                node = np.where(internal, step, node)
            out[start:start + size] = self.base + self.value[node].sum(axis=1)
        return out

    def shap_values(self, x: np.ndarray) -> np.ndarray:
        """Exact path-dependent TreeSHAP values [R, n_features] of the rows of `x`."""
        x = self._rows(x)
        out = np.zeros((x.shape[0], self.n_features), dtype=np.float64)
        for start, stop in self._chunks(x.shape[0]):
            goes_true = self._goes_true(x[start:stop])
            for g in self.paths():
                if g.m:
                    out[start:stop] += self._shap_group(g, goes_true)
        return out

    def _rows(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {list(x.shape)}")
        return x

    def _chunks(self, n_rows: int) -> list[tuple[int, int]]:
        per_row = max(g.step_node.shape[0] * max(g.m * ((g.m + 1) // 2), g.step_node.shape[1]) for g in self.paths())
        size = max(1, CHUNK_ELEMENTS // per_row)
        return [(s, min(s + size, n_rows)) for s in range(0, n_rows, size)]

    def _shap_group(self, g: _PathGroup, goes_true: np.ndarray) -> np.ndarray:
        m = g.m
        o = self._on_path(g, goes_true).astype(np.float64)      # [m, R, P]
        z = g.z[:, None, :]                                     # [m, 1, P]
        t, weight = g.quadrature
        # f_jq = z_j (1 - t_q) + o_j t_q, and prod_{j != i} f_jq = prod_j f_jq / f_iq (f > 0).
        f = o[:, None] * t[None, :, None, None]                 # [m, Q, R, P]
        f += z[:, None] * (1.0 - t)[None, :, None, None]
        total = np.prod(f, axis=0)                              # [Q, R, P]
        np.reciprocal(f, out=f)
        f *= total                                              # prod over j != i
        integral = np.einsum("q,mqrp->mrp", weight, f)
        phi = (o - z) * integral * g.value
        r = o.shape[1]
        f1 = self.n_features + 1
        index = g.slot_feature[:, None, :] + (np.arange(r) * f1)[None, :, None]
        sums = np.bincount(index.ravel(), weights=phi.ravel(), minlength=r * f1).reshape(r, f1)
        return sums[:, :self.n_features]
