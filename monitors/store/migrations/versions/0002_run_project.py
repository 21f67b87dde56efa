"""where a run's contracts came from: project and contract file on runs and queued alerts

Rows written before this revision keep NULL here; their alerts are addressed as before, by the
packaged contract of their dataset's name.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('fg_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('contract', sa.Text(), nullable=True))
    with op.batch_alter_table('fg_alert_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('project', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('contract', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fg_alert_outbox', schema=None) as batch_op:
        batch_op.drop_column('contract')
        batch_op.drop_column('project')
    with op.batch_alter_table('fg_runs', schema=None) as batch_op:
        batch_op.drop_column('contract')
        batch_op.drop_column('project')
