"""The domain model: aggregates and their events. Pure Python on the eventsourcing library, no I/O."""
