"""Projections: follow the event log in order and keep the read-model tables, exactly once."""
