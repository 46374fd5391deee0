"""PostgreSQL: the reader role's sessions are not tracked (track_activities = off), so
users of `footage sql` cannot read each other's SQL in pg_stat_activity. Needs a superuser;
elsewhere the parser's refusal of the server's views stands alone (issue 15, item 10).

Revision ID: 0009
Revises: 0008
"""

from migrations.sql_reader_role import hide_reader_activity

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    hide_reader_activity()


def downgrade() -> None:
    pass  # the setting goes with the role (0004's downgrade drops it)
