"""crash counts and callback secret versions

Crash counters in the database, so the poison-page guard and the delivery count hold on every broker
(Redis or RabbitMQ): one row per key (a content being decoded, a message being run), counting the
attempts that never ended. ``api_clients.secret_version``: ``docsort apikey rotate`` changes the
callback signing secret too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('crash_counts',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_crash_counts'))
    )
    with op.batch_alter_table('crash_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crash_counts_updated_at'), ['updated_at'], unique=False)
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('secret_version')
    with op.batch_alter_table('crash_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crash_counts_updated_at'))
    op.drop_table('crash_counts')
