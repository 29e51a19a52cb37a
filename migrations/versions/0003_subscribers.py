"""subscribers: subscriptions, deliveries outbox, arrivals, sign-up attempts

Subscribers and their subscriptions (filters, schedule), the deliveries
outbox (one row per mail, unique per subscription, kind and period), the
numbered log of releases that became visible, and sign-up attempts counted
for rate limits.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import feeds.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signup_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signup_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_signup_attempts_key', ['scope', 'key_hash', 'created_at'], unique=False)

    op.create_table('subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('token_key', sa.String(length=32), nullable=False),
    sa.Column('organizations', sa.JSON(), nullable=False),
    sa.Column('countries', sa.JSON(), nullable=False),
    sa.Column('keywords', sa.String(length=300), server_default=sa.text("''"), nullable=False),
    sa.Column('frequency', sa.String(length=16), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmation_sent_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('suspended_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_seq', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_due_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_planned_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_digest_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('hard_failures', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_key')
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index('ix_subscriptions_due', ['status', 'next_due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_subscriptions_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=40), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('release_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscriptions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'kind', 'period', name='uq_deliveries_period')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_due', ['status', 'next_attempt_at'], unique=False)

    op.create_table('digest_arrivals',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=False),
    sa.Column('arrived_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('release_id')
    )
    with op.batch_alter_table('digest_arrivals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_arrivals_arrived_at'), ['arrived_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('digest_arrivals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_arrivals_arrived_at'))

    op.drop_table('digest_arrivals')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_due')

    op.drop_table('deliveries')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_subscriber_id'))
        batch_op.drop_index('ix_subscriptions_due')

    op.drop_table('subscriptions')
    op.drop_table('subscribers')
    with op.batch_alter_table('signup_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_signup_attempts_key')

    op.drop_table('signup_attempts')
