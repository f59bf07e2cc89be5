"""PageLedger's composition root: typed settings, wiring of stores and application, the CLI."""
