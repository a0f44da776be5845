"""The scoring configuration: what ``Settings`` says about weights, thresholds, the warranty period, the
reliability rules and the cost estimate, frozen and versioned (a short hash of its canonical JSON)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from refurb.config import Settings
from refurb.errors import ValidationError
from refurb.scoring.reuse import FACTOR_NAMES, ReuseThresholds, ReuseWeights


@dataclass(frozen=True)
class ScoringConfig:
    """Everything that turns gathered facts into a reuse score; ``version`` identifies it in every snapshot."""

    weights: ReuseWeights
    thresholds: ReuseThresholds
    warranty_years: float
    duty_hours_per_year: float
    duty_hours_per_year_by_category: tuple[tuple[str, float], ...]
    min_failures: int
    fallback_shape: float
    non_failure_reasons: tuple[str, ...]
    cost_fraction_default: float
    cost_fraction_by_category: tuple[tuple[str, float], ...]

    def warranty_h(self, category: str | None) -> float:
        """Return the warranty period in operating hours: years x the category's typical duty hours per year."""
        duty = dict(self.duty_hours_per_year_by_category).get(category or "", self.duty_hours_per_year)
        return self.warranty_years * duty

    def cost_fraction(self, category: str | None) -> float:
        """Return the default remanufacturing cost as a fraction of the new price for a part category."""
        return dict(self.cost_fraction_by_category).get(category or "", self.cost_fraction_default)

    def is_failure_reason(self, reason: str | None) -> bool:
        """Return False when a scrap/recycle reason names a non-failure cause (obsolete, surplus, ...)."""
        text = (reason or "").lower()
        return not any(word.lower() in text for word in self.non_failure_reasons)

    def as_dict(self) -> dict[str, Any]:
        """Return the configuration as plain JSON (what the version hashes and the score_config table keeps)."""
        return {
            "weights": {str(name): w for name, w in zip(FACTOR_NAMES, self.weights.as_tuple(), strict=True)},
            "thresholds": {"reuse": self.thresholds.reuse, "remanufacture": self.thresholds.remanufacture,
                           "recycle": self.thresholds.recycle},
            "warranty_years": self.warranty_years,
            "duty_hours_per_year": self.duty_hours_per_year,
            "duty_hours_per_year_by_category": dict(self.duty_hours_per_year_by_category),
            "reliability_min_failures": self.min_failures,
            "reliability_fallback_shape": self.fallback_shape,
            "reliability_non_failure_reasons": list(self.non_failure_reasons),
            "reman_cost_fraction_default": self.cost_fraction_default,
            "reman_cost_fraction_by_category": dict(self.cost_fraction_by_category),
        }

    @property
    def version(self) -> str:
        """Return ``cfg-`` and 12 hex digits of the SHA-256 of the canonical JSON configuration."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return "cfg-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringConfig:
        """Rebuild a stored configuration (inverse of :meth:`as_dict`)."""
        return cls(
            weights=ReuseWeights(**data["weights"]),
            thresholds=ReuseThresholds(**data["thresholds"]),
            warranty_years=data["warranty_years"],
            duty_hours_per_year=data["duty_hours_per_year"],
            duty_hours_per_year_by_category=tuple(sorted(data["duty_hours_per_year_by_category"].items())),
            min_failures=data["reliability_min_failures"],
            fallback_shape=data["reliability_fallback_shape"],
            non_failure_reasons=tuple(data["reliability_non_failure_reasons"]),
            cost_fraction_default=data["reman_cost_fraction_default"],
            cost_fraction_by_category=tuple(sorted(data["reman_cost_fraction_by_category"].items())),
        )


def _positive_map(values: dict[str, float], name: str, *, allow_zero: bool) -> tuple[tuple[str, float], ...]:
    for key, value in values.items():
        ok = isinstance(value, int | float) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
        if not ok:
            raise ValidationError(f"{name}[{key!r}] must be a finite number {'>= 0' if allow_zero else '> 0'}, "
                                  f"got {value!r}")
    return tuple(sorted((str(k), float(v)) for k, v in values.items()))


def scoring_config(settings: Settings) -> ScoringConfig:
    """Build the scoring configuration from settings; a clear error names the setting that is inconsistent."""
    try:
        weights = ReuseWeights(grade=settings.score_weight_grade, test=settings.score_weight_test,
                               reliability=settings.score_weight_reliability,
                               generation=settings.score_weight_generation,
                               economics=settings.score_weight_economics)
        thresholds = ReuseThresholds(reuse=settings.score_threshold_reuse,
                                     remanufacture=settings.score_threshold_remanufacture,
                                     recycle=settings.score_threshold_recycle)
    except ValueError as exc:
        raise ValidationError(f"scoring settings (REFURB_SCORE_WEIGHT_* / REFURB_SCORE_THRESHOLD_*): {exc}") from exc
    return ScoringConfig(
        weights=weights,
        thresholds=thresholds,
        warranty_years=float(settings.warranty_years),
        duty_hours_per_year=float(settings.duty_hours_per_year),
        duty_hours_per_year_by_category=_positive_map(settings.duty_hours_per_year_by_category,
                                                      "duty_hours_per_year_by_category", allow_zero=False),
        min_failures=int(settings.reliability_min_failures),
        fallback_shape=float(settings.reliability_fallback_shape),
        non_failure_reasons=tuple(settings.reliability_non_failure_reasons),
        cost_fraction_default=float(settings.reman_cost_fraction_default),
        cost_fraction_by_category=_positive_map(settings.reman_cost_fraction_by_category,
                                                "reman_cost_fraction_by_category", allow_zero=True),
    )
