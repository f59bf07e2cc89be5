"""alembic environment: always run online, on the connection PageLedger hands in.

The schema is the read models' tables (projections) and the login throttle's working table
(adapters.throttle) and the console's revoked sessions (adapters.session_revocations): three owners, one database, one history of migrations.
"""
from alembic import context

from adapters import session_revocations, throttle
from projections.follower import all_projections, metadata

all_projections()  # imports every read-model module, so each one's tables are on the metadata
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=[metadata, throttle.metadata,
                                                                session_revocations.metadata])
with context.begin_transaction():
    context.run_migrations()
