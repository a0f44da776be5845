"""Tables and API shapes of the metrics domain: reuse-score snapshots, the scoring configurations they used, the
fleet reliability models per part type, and the circularity calculator's request and answer."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from refurb.db import EnumText, UTCDateTime, utcnow
from refurb.scoring.reuse import Disposition


class ScoreTrigger(StrEnum):
    """Why a snapshot was computed."""

    EVENT = "event"  # a part event (including consulting verdicts, which arrive as part events)
    FLEET_MODEL = "fleet_model"  # the part type's reliability model was refitted after a failure elsewhere
    RECOMPUTE = "recompute"  # POST /scores/recompute or `refurb score recompute`
    READ = "read"  # first read of a part that had no snapshot under the current configuration


class ScoreConfig(SQLModel, table=True):
    """A scoring configuration (weights, thresholds, warranty, reliability and cost rules), stored once per version
    so that every snapshot can be explained with the exact rules it was computed under."""

    __tablename__ = "score_config"
    version: str = SQLField(primary_key=True, max_length=40)
    config: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class PartScore(SQLModel, table=True):
    """One reuse-score snapshot of a part with the inputs it came from. Append-only: a new snapshot is stored when
    the inputs or the configuration change; exactly one per part is current (partial unique index)."""

    __tablename__ = "part_score"
    __table_args__ = (
        Index("uq_part_score_current", "part_id", unique=True, sqlite_where=text("is_current"),
              postgresql_where=text("is_current")),
    )
    id: int | None = SQLField(default=None, primary_key=True)
    part_id: int = SQLField(foreign_key="part.id", index=True)
    score: float
    raw_score: float
    recommendation: Disposition = SQLField(sa_type=EnumText(Disposition))
    hold: bool = False
    capped: bool = False
    factors: list[dict[str, Any]] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    inputs: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    inputs_hash: str = SQLField(max_length=64)
    config_version: str = SQLField(foreign_key="score_config.version", max_length=40)
    trigger: ScoreTrigger = SQLField(sa_type=EnumText(ScoreTrigger))
    is_current: bool = True
    computed_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class ReliabilityModel(SQLModel, table=True):
    """The fleet reliability model of a part type used by the reuse score (refitted on failures and by a full
    recompute; the reliability endpoint always fits live)."""

    __tablename__ = "reliability_model"
    part_type_id: int = SQLField(foreign_key="part_type.id", primary_key=True)
    method: str = SQLField(max_length=20)  # weibull | design_life | none
    shape: float | None = None
    scale_h: float | None = None
    n_failures: int = 0
    n_censored: int = 0
    detail: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    fitted_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


# --- API shapes ------------------------------------------------------------------------------------------------


class FactorPublic(BaseModel):
    name: str
    value: str
    weight: float
    subscore: float
    contribution: float
    missing: bool
    explanation: str


class PartScorePublic(BaseModel):
    part_id: int
    score: float
    raw_score: float
    recommendation: str
    hold: bool
    capped: bool
    reasons: list[str]
    factors: list[FactorPublic]
    inputs: dict[str, Any]
    computed_at: datetime
    trigger: str
    config_version: str
    snapshot_id: int


class PartScoreHistory(BaseModel):
    data: list[PartScorePublic]
    count: int


class RecomputeResult(BaseModel):
    parts: int
    changed: int
    unchanged: int
    part_types_fitted: int
    config_version: str
    timings_s: dict[str, float]


# --- the MCI calculator ----------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid")


class MCIComponentIn(BaseModel):
    """One component or material of the product (EMF & Granta 2015 notation in the descriptions)."""

    model_config = _STRICT
    mass_kg: float = Field(gt=0, allow_inf_nan=False, description="M, kg")
    recycled_input: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False, description="F_R")
    reused_input: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False, description="F_U")
    recycled_collection: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False, description="C_R")
    reused_collection: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False, description="C_U")
    collection_recycling_efficiency: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False, description="E_C")
    feedstock_recycling_efficiency: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False, description="E_F")

    @model_validator(mode="after")
    def _sums(self) -> MCIComponentIn:
        tolerance = 1e-9  # the same tolerance as refurb.scoring.circularity
        if self.recycled_input + self.reused_input > 1 + tolerance:
            raise ValueError(f"recycled_input + reused_input must be <= 1, got "
                             f"{self.recycled_input + self.reused_input:g}")
        if self.recycled_collection + self.reused_collection > 1 + tolerance:
            raise ValueError(f"recycled_collection + reused_collection must be <= 1, got "
                             f"{self.recycled_collection + self.reused_collection:g}")
        return self


class MCIRequest(BaseModel):
    model_config = _STRICT
    components: list[MCIComponentIn] = Field(min_length=1, max_length=1000)
    lifetime_ratio: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="L / L_av")
    intensity_ratio: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="U / U_av")


class MCIResponse(BaseModel):
    V: float
    W: float
    LFI: float
    X: float
    MCI: float


def finite_or_none(value: float | None) -> float | None:
    """Return None for None, NaN or infinity (JSON has no such numbers)."""
    return None if value is None or not math.isfinite(value) else float(value)
