"""Operator tools: PA6 migration, sample data."""
