"""The jobs read model says what the agent could not be sure of (issue 19): `uncertain`, "" for
a job whose pages and colour were both known (every job recorded before this revision).

Revision ID: 0008_agent
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_agent"
down_revision = "0004_release"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("uncertain", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("uncertain")
