"""The audit trail: an append-only, hash-chained log of who changed what, when.

- `events`: what one audit event holds (action, actor, model, entity, details, at) and its checks.
- `chain`: canonical encoding, hashes, chain linking and `verify` (pure).
- `store`: the chains in DynamoDB (AuditTable), their query and their archive in S3.
- `predictions`: which predictions are audited (all, none or a deterministic sample).
- `trail`: the rule handlers follow when they audit their own changes.
"""
