"""review documents

An operator's answer on a whole document under review: its split into documents and each one's class,
delivered once the undo window has passed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('document_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('output_document_id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.Enum('confirm', 'relabel', 'split', 'reject', name='document_action', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_document_reviews_operator_id_operators')),
    sa.ForeignKeyConstraint(['output_document_id'], ['output_documents.id'], name=op.f('fk_document_reviews_output_document_id_output_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_document_reviews')),
    sa.UniqueConstraint('output_document_id', name=op.f('uq_document_reviews_output_document_id'))
    )
    with op.batch_alter_table('document_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_reviews_decided_at'), ['decided_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_reviews_operator_id'), ['operator_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('document_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_reviews_operator_id'))
        batch_op.drop_index(batch_op.f('ix_document_reviews_decided_at'))

    op.drop_table('document_reviews')
