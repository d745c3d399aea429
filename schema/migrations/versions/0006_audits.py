"""audits

Documents routed automatically that are also put to an operator (audited auto-routing): the model's
class and confidence, and the operator's answer.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01 23:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('output_document_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('model_name', sa.String(length=100), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('chosen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('answer_label', sa.String(length=200), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('correct', sa.Boolean(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['document_id'], ['documents.id'], name=op.f('fk_audits_document_id_documents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_audits_operator_id_operators')),
    sa.ForeignKeyConstraint(['output_document_id'], ['output_documents.id'], name=op.f('fk_audits_output_document_id_output_documents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audits')),
    sa.UniqueConstraint('output_document_id', name=op.f('uq_audits_output_document_id'))
    )
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audits_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audits_chosen_at'), ['chosen_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audits_document_id'), ['document_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audits_document_id'))
        batch_op.drop_index(batch_op.f('ix_audits_chosen_at'))
        batch_op.drop_index(batch_op.f('ix_audits_answered_at'))

    op.drop_table('audits')
