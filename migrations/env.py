"""alembic environment: always run online, on the connection PageLedger hands in."""
from alembic import context

from projections.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
