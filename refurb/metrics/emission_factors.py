"""Emission factors as versioned configuration with sources (standards.md section 6), never constants in code.

The shipped table is ``emission_factors.json`` next to this module; ``Settings.emission_factors_file`` points at
another file of the same shape. Materials are matched by name, case-insensitively, on the key or an alias.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).with_name("emission_factors.json")


@dataclass(frozen=True)
class EmissionFactors:
    """One version of the table: kg CO2e per kg by material, the grid factor and the reman-energy assumption."""

    version: str
    factors: dict[str, float]
    aliases: dict[str, str]
    sources: dict[str, str]
    grid_kg_per_kwh: float
    grid_source: str
    reman_energy_kwh_per_kg: float
    reman_energy_source: str

    def material_key(self, name: str) -> str | None:
        """Return the table key a material name maps to, or None when the table has no factor for it."""
        return self.aliases.get(name.strip().lower())

    def factor(self, name: str) -> float | None:
        """Return kg CO2e per kg for a material name, or None when unknown."""
        key = self.material_key(name)
        return None if key is None else self.factors[key]

    def describe(self) -> dict[str, Any]:
        """Return the table as JSON for answers that must name their factors and sources."""
        return {
            "version": self.version,
            "materials": {k: {"factor_kg_co2e_per_kg": v, "source": self.sources[k]} for k, v in self.factors.items()},
            "electricity": {"factor_kg_per_kwh": self.grid_kg_per_kwh, "source": self.grid_source},
            "reman_energy_kwh_per_kg": {"value": self.reman_energy_kwh_per_kg, "source": self.reman_energy_source},
        }


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def parse(data: dict[str, Any], *, origin: str = "emission factors") -> EmissionFactors:
    """Validate a table (as loaded from JSON) and return it; errors name the offending entry."""
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError(f"{origin}: 'version' must be a non-empty string")
    materials = data.get("materials")
    if not isinstance(materials, dict) or not materials:
        raise ValueError(f"{origin}: 'materials' must be a non-empty object")
    factors: dict[str, float] = {}
    aliases: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, entry in materials.items():
        name = key.strip().lower()
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str) or not entry["source"]:
            raise ValueError(f"{origin}: materials.{key} needs a 'factor' and a non-empty 'source'")
        factors[name] = _number(entry.get("factor"), f"{origin}: materials.{key}.factor")
        sources[name] = entry["source"]
        for alias in [name, *entry.get("aliases", [])]:
            alias_key = str(alias).strip().lower()
            if aliases.get(alias_key, name) != name:
                raise ValueError(f"{origin}: alias {alias!r} names two materials")
            aliases[alias_key] = name
    electricity = data.get("electricity") or {}
    energy = data.get("reman_energy_kwh_per_kg") or {}
    return EmissionFactors(
        version=version,
        factors=factors,
        aliases=aliases,
        sources=sources,
        grid_kg_per_kwh=_number(electricity.get("factor_kg_per_kwh"), f"{origin}: electricity.factor_kg_per_kwh"),
        grid_source=str(electricity.get("source", "")),
        reman_energy_kwh_per_kg=_number(energy.get("value"), f"{origin}: reman_energy_kwh_per_kg.value"),
        reman_energy_source=str(energy.get("source", "")),
    )


@lru_cache(maxsize=8)
def load(path: Path | None = None) -> EmissionFactors:
    """Load and validate a table (default: the one shipped with refurb); cached per path."""
    source = path or SHIPPED
    return parse(json.loads(source.read_text(encoding="utf-8")), origin=str(source))
