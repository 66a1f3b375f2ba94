"""Continuous training and safe rollout: triggers, gates, state-machine steps."""
