"""core: organizations, tokens, releases, sources

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import feeds.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('content_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('changed_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('heartbeats',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('node', sa.String(length=128), nullable=False),
    sa.Column('at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=True),
    sa.Column('website', sa.String(length=2048), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_organization_id'), ['organization_id'], unique=False)

    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('interval_minutes', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=True),
    sa.Column('etag', sa.String(length=1024), nullable=True),
    sa.Column('last_modified', sa.String(length=128), nullable=True),
    sa.Column('next_check_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=128), nullable=True),
    sa.Column('lease_until', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_warning', sa.Text(), nullable=True),
    sa.Column('error_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('disabled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('moved_to', sa.String(length=2048), nullable=True),
    sa.Column('moved_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('releases_ingested', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.create_index('ix_sources_due', ['disabled', 'next_check_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sources_organization_id'), ['organization_id'], unique=False)

    op.create_table('releases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('guid', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('country_code', sa.String(length=2), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('lead', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=500), nullable=True),
    sa.Column('attachments', sa.JSON(), nullable=False),
    sa.Column('published_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', feeds.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', feeds.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('view_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('search_text', sa.Text(), server_default=sa.text("''"), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('source_entry_key', sa.String(length=2048), nullable=True),
    sa.Column('canonical_url', sa.String(length=2048), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('import_key', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('guid'),
    sa.UniqueConstraint('organization_id', 'import_key', name='uq_releases_import_key'),
    sa.UniqueConstraint('source_id', 'source_entry_key', name='uq_releases_source_entry')
    )
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.create_index('ix_releases_country_newest', ['country_code', 'published_at', 'id'], unique=False, postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))
        batch_op.create_index('ix_releases_org_newest', ['organization_id', 'published_at', 'id'], unique=False, postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))
        batch_op.create_index('ix_releases_updated', ['updated_at'], unique=False)
        batch_op.create_index('ix_releases_visible_newest', ['published_at', 'id'], unique=False, postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))

    content_state = sa.table(
        "content_state",
        sa.column("id", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("changed_at", feeds.db.UTCDateTime()),
    )
    op.bulk_insert(content_state, [{"id": 1, "version": 0, "changed_at": feeds.db.utcnow()}])



def downgrade() -> None:
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_index('ix_releases_visible_newest', postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))
        batch_op.drop_index('ix_releases_updated')
        batch_op.drop_index('ix_releases_org_newest', postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))
        batch_op.drop_index('ix_releases_country_newest', postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))

    op.drop_table('releases')
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sources_organization_id'))
        batch_op.drop_index('ix_sources_due')

    op.drop_table('sources')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_organization_id'))

    op.drop_table('api_tokens')
    op.drop_table('organizations')
    op.drop_table('heartbeats')
    op.drop_table('content_state')
