"""Where a function finds its tables and buckets.

Nothing in a function knows whether it runs in AWS, in `sam local` or in localcloud: the
template declares the names as environment variables and this module reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TABLE_VARIABLES = {
    "features": "FEATURES_TABLE",
    "registry": "REGISTRY_TABLE",
    "deployments": "DEPLOYMENTS_TABLE",
    "predictions": "PREDICTIONS_TABLE",
    "audit": "AUDIT_TABLE",
    "experiments": "EXPERIMENTS_TABLE",
    "idempotency": "IDEMPOTENCY_TABLE",
}
BUCKET_VARIABLES = {"artifacts": "ARTIFACTS_BUCKET", "data": "DATA_BUCKET"}


@dataclass(frozen=True)
class Resources:
    """Physical names of the stack's tables and buckets, keyed by their role."""

    tables: Mapping[str, str]
    buckets: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Resources":
        """Read the names the template declared; a role whose variable is unset is left out."""
        env = os.environ if environ is None else environ
        return cls(
            tables={role: env[var] for role, var in TABLE_VARIABLES.items() if env.get(var)},
            buckets={role: env[var] for role, var in BUCKET_VARIABLES.items() if env.get(var)},
        )
