"""Import every table so SQLModel.metadata is complete (for migrations and tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from refurb import auth  # noqa: F401
from refurb.consulting import models as consulting_models  # noqa: F401
from refurb.metrics import models as metrics_models  # noqa: F401
from refurb.parts import models as parts_models  # noqa: F401
from refurb.telemetry import models as telemetry_models  # noqa: F401
from refurb.telemetry import runs as telemetry_runs  # noqa: F401

metadata = SQLModel.metadata
