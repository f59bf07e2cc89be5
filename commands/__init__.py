"""Application services: one entry point per use case. All writes go through here."""
