"""Which model version answers a request: the deployment record and the sticky router.

The deployment record of a model (DeploymentsTable, key ``{model, sk: "DEPLOYMENT"}``) is what
the inference function routes by. Its schema (this module owns it; the canary-rollout state
machine and the registry's alias moves write it):

============================  =============================================================
``champion`` (N)              the version that takes the traffic the challenger does not
``challenger`` (N, optional)  the version under rollout
``challenger_percent`` (N)    its share of the traffic, 0-100 (decimals allowed)
``shadow`` (N, optional)      a version scored on the side for every request, never returned
``faults`` (S, optional)      injected faults per version, JSON (`mlops.rollout.faults`;
                              honoured only when the stack enables fault injection)
``updated_at`` (S)            when it last changed (ISO-8601)
============================  =============================================================

So the weights per version are ``{champion: 100 - p, challenger: p}``. A request is routed by
a hash of its routing key (the entity id when there is one, else the request id) into one of
10 000 buckets; buckets below ``p * 100`` go to the challenger. The same entity therefore sees
the same variant for the whole of a stage, and when the percentage grows the entities already
on the challenger stay there (a bucket below 10% is also below 50%). The hash is salted with
the model and the challenger version, so each rollout samples its own entities.
A running experiment on the model (`mlops.experiments.router`) routes the entities it enrolls
before these weights apply; `serving.Predictor` asks it first.
Pure: plain values in and out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.rollout.faults import Fault, parse_faults

BUCKETS = 10_000
DEPLOYMENT_SK = "DEPLOYMENT"


class DeploymentError(ValueError):
    """A deployment record that cannot be routed by (the message says which attribute)."""


@dataclass(frozen=True)
class Deployment:
    """A model's traffic split: champion, optional challenger with its percentage, optional shadow."""

    model: str
    champion: int | None
    challenger: int | None = None
    challenger_percent: float = 0.0
    shadow: int | None = None
    updated_at: str | None = None
    faults: dict[int, Fault] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenger_percent <= 100.0:
            raise DeploymentError(f"challenger_percent must be within 0-100, got {self.challenger_percent}")

    @property
    def effective_challenger(self) -> int | None:
        """The challenger when it takes traffic (set, above 0%, and not the champion itself)."""
        if self.challenger is None or self.challenger_percent <= 0.0 or self.challenger == self.champion:
            return None
        return self.challenger

    def weights(self) -> dict[int, float]:
        """Percent of the traffic per version (versions with no traffic are left out)."""
        out: dict[int, float] = {}
        challenger = self.effective_challenger
        share = self.challenger_percent if challenger is not None else 0.0
        if self.champion is not None and share < 100.0:
            out[self.champion] = 100.0 - share
        if challenger is not None:
            out[challenger] = out.get(challenger, 0.0) + share
        return out

    def to_api(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model, "champion": self.champion, "challenger": self.challenger,
            "challenger_percent": self.challenger_percent, "shadow": self.shadow,
            "weights": {str(v): w for v, w in self.weights().items()}, "updated_at": self.updated_at,
        }


def _number(item: Mapping[str, Any], name: str) -> float | None:
    attr = item.get(name)
    if attr is None or "NULL" in attr:
        return None
    if "N" in attr:
        return float(attr["N"])
    if "S" in attr:  # tolerate a number written as a string (e.g. by hand in the console)
        try:
            return float(attr["S"])
        except ValueError:
            raise DeploymentError(f"{name} must be a number, got {attr['S']!r}") from None
    raise DeploymentError(f"{name} must be a number, got {attr!r}")


def _version(item: Mapping[str, Any], name: str) -> int | None:
    value = _number(item, name)
    if value is None:
        return None
    if value != int(value) or value < 1:
        raise DeploymentError(f"{name} must be a positive integer version, got {value}")
    return int(value)


def deployment_from_item(item: Mapping[str, Any]) -> Deployment:
    """Read a deployment record from its DynamoDB item (low-level attribute values)."""
    return Deployment(
        model=item["model"]["S"],
        champion=_version(item, "champion"),
        challenger=_version(item, "challenger"),
        challenger_percent=_number(item, "challenger_percent") or 0.0,
        shadow=_version(item, "shadow"),
        updated_at=item.get("updated_at", {}).get("S"),
        faults=_faults(item),
    )


def _faults(item: Mapping[str, Any]) -> dict[int, Fault]:
    try:
        return parse_faults(item.get("faults", {}).get("S"))
    except ValueError as exc:
        raise DeploymentError(str(exc)) from None


def bucket_of(routing_key: str, salt: str) -> int:
    """The bucket (0 to BUCKETS - 1) of a routing key: a hash, uniform and stable."""
    digest = hashlib.blake2b(f"{salt}\x1f{routing_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class Route:
    """The version that answers and its variant: ``champion`` or ``challenger``."""

    version: int
    variant: str


def route(deployment: Deployment, routing_key: str) -> Route | None:
    """The version that answers the request with this routing key; None when nothing is
    deployed (no champion, and no challenger at 100%)."""
    challenger = deployment.effective_challenger
    if challenger is not None:
        threshold = round(deployment.challenger_percent * BUCKETS / 100.0)
        if bucket_of(routing_key, f"{deployment.model}/{challenger}") < threshold:
            return Route(challenger, "challenger")
    if deployment.champion is None:
        return None
    return Route(deployment.champion, "champion")
