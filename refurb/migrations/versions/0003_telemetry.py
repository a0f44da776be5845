"""telemetry ingest: samples, aggregates, waveform blocks, poses, connectivity, seq gaps, quarantine, counters

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_counter',
    sa.Column('worker_id', sa.String(length=100), nullable=False),
    sa.Column('counters', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('worker_id')
    )
    op.create_table('telemetry_quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('topic', sa.String(length=300), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('payload_size', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    with op.batch_alter_table('telemetry_quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemetry_quarantine_reason'), ['reason'], unique=False)
        batch_op.create_index(batch_op.f('ix_telemetry_quarantine_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_telemetry_quarantine_serial'), ['serial'], unique=False)

    op.create_table('robot_connection',
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('state_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('robot_id')
    )
    op.create_table('telemetry_pose',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('pose', sa.String(length=64), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('commanded_x_mm', sa.Float(), nullable=False),
    sa.Column('commanded_y_mm', sa.Float(), nullable=False),
    sa.Column('commanded_z_mm', sa.Float(), nullable=False),
    sa.Column('attained_x_mm', sa.Float(), nullable=False),
    sa.Column('attained_y_mm', sa.Float(), nullable=False),
    sa.Column('attained_z_mm', sa.Float(), nullable=False),
    sa.Column('orientation', sa.JSON(), nullable=True),
    sa.Column('received_at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('robot_id', 'pose', 'cycle', 'ts_ms', name='uq_pose_identity')
    )
    with op.batch_alter_table('telemetry_pose', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemetry_pose_robot_id'), ['robot_id'], unique=False)

    op.create_table('telemetry_sample',
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('ts_ms', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('text', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('received_at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('robot_id', 'key', 'ts_ms')
    )
    op.create_table('telemetry_sample_agg',
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('interval_ms', sa.BigInteger(), nullable=False),
    sa.Column('bucket_ms', sa.BigInteger(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('min', sa.Float(), nullable=False),
    sa.Column('max', sa.Float(), nullable=False),
    sa.Column('sum', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('robot_id', 'key', 'interval_ms', 'bucket_ms')
    )
    op.create_table('telemetry_seq',
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('received_at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('robot_id', 'seq')
    )
    op.create_table('telemetry_waveform',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('t0_ms', sa.BigInteger(), nullable=False),
    sa.Column('rate_hz', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('received_at_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('robot_id', 'channel', 't0_ms', name='uq_waveform_identity')
    )
    with op.batch_alter_table('telemetry_waveform', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemetry_waveform_robot_id'), ['robot_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('telemetry_waveform', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telemetry_waveform_robot_id'))

    op.drop_table('telemetry_waveform')
    op.drop_table('telemetry_seq')
    op.drop_table('telemetry_sample_agg')
    op.drop_table('telemetry_sample')
    with op.batch_alter_table('telemetry_pose', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telemetry_pose_robot_id'))

    op.drop_table('telemetry_pose')
    op.drop_table('robot_connection')
    with op.batch_alter_table('telemetry_quarantine', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_telemetry_quarantine_serial'))
        batch_op.drop_index(batch_op.f('ix_telemetry_quarantine_received_at'))
        batch_op.drop_index(batch_op.f('ix_telemetry_quarantine_reason'))

    op.drop_table('telemetry_quarantine')
    op.drop_table('ingest_counter')
