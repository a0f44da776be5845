"""Import every table so SQLModel.metadata is complete (for migrations and tests)."""

from __future__ import annotations

from sqlmodel import SQLModel

from refurb import auth  # noqa: F401
from refurb.parts import models as parts_models  # noqa: F401

metadata = SQLModel.metadata
