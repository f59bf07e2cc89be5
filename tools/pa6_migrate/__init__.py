"""The PA6 Database Migration Tool: replays a legacy print-accounting database (Print Audit 6, a
Job Manager export, or any schema a mapping file describes) as PageLedger events, through the
live system's command handlers; resumable, with rejects set aside and a reconciliation per month.
See docs/migration.md."""
