"""Adapters: what touches the outside world — the event store's recorders and compact mapper,
the read-model engines, the spool store, directory sources (LDAP, local accounts), licence
keys and files, the login throttle's table, session cookies, PIN digests, mail, the clock."""
