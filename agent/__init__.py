"""PageLedger client agent: the CUPS backend wrapper, page counting, offline outbox and installer.

It talks to the server only over HTTP and imports nothing of the server packages, so a print
server can run it with few dependencies (the ``agent`` install extra).
"""

__version__ = "0.1.0"
