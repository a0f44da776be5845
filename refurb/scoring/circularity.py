"""Material Circularity Indicator (Ellen MacArthur Foundation & Granta Design, methodology 2015).

Source: Ellen MacArthur Foundation and Granta Design, *Circularity Indicators: An Approach to Measuring
Circularity. Methodology* (2015). Formulas as summarised in ``shared/reference/standards.md`` section 1::

    V    = M (1 - F_R - F_U)                  virgin feedstock mass
    W_0  = M (1 - C_R - C_U)                  mass going to landfill / energy recovery
    W_C  = M (1 - E_C) C_R                    waste from recycling the collected product
    W_F  = M (1 - E_F) F_R / E_F              waste from producing the recycled feedstock
    W    = W_0 + (W_F + W_C) / 2              unrecoverable waste
    LFI  = (V + W) / (2M + (W_F - W_C) / 2)   linear flow index
    X    = (L / L_av) (U / U_av)              utility
    F(X) = 0.9 / X
    MCI  = max(0, 1 - LFI F(X))

A product made of several components or materials sums V, W_0, W_C, W_F and M over its items and applies the
LFI step once to the totals (not a mass-weighted mean of per-item MCIs, which differs whenever E_C or E_F < 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Component", "MCIGroups", "MCIResult", "company_mci", "mci", "mci_many"]

#: Tolerance on ``F_R + F_U <= 1`` and ``C_R + C_U <= 1``: fractions derived from masses rarely sum exactly.
SUM_TOLERANCE = 1e-9

_FRACTIONS = ("recycled_input", "reused_input", "recycled_collection", "reused_collection")
_EFFICIENCIES = ("collection_recycling_efficiency", "feedstock_recycling_efficiency")

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Component:
    """One component or material of a product, as the MCI methodology describes it.

    Attributes
    ----------
    mass_kg : float
        Mass M of the component in kg (> 0).
    recycled_input : float
        F_R, fraction of the feedstock from recycled sources, in [0, 1].
    reused_input : float
        F_U, fraction of the feedstock from reused sources (reused or remanufactured parts), in [0, 1].
    recycled_collection : float
        C_R, fraction of the mass collected for recycling at end of use, in [0, 1].
    reused_collection : float
        C_U, fraction of the mass going to component reuse at end of use, in [0, 1].
    collection_recycling_efficiency : float
        E_C, efficiency of the recycling process applied to the collected mass, in (0, 1].
    feedstock_recycling_efficiency : float
        E_F, efficiency of the recycling process that produced the recycled feedstock, in (0, 1].

    Values are checked by :func:`mci`, which names the offending component by its index.
    """

    mass_kg: float
    recycled_input: float = 0.0
    reused_input: float = 0.0
    recycled_collection: float = 0.0
    reused_collection: float = 0.0
    collection_recycling_efficiency: float = 1.0
    feedstock_recycling_efficiency: float = 1.0


@dataclass(frozen=True)
class MCIResult:
    """Material Circularity Indicator of one product and its intermediate flows.

    Attributes
    ----------
    mass_kg : float
        Total mass M of the product in kg.
    V : float
        Virgin feedstock mass in kg.
    W0 : float
        Mass going straight to landfill or energy recovery in kg.
    WC : float
        Waste from recycling the collected product in kg.
    WF : float
        Waste from producing the recycled feedstock in kg.
    W : float
        Unrecoverable waste ``W0 + (WF + WC) / 2`` in kg.
    LFI : float
        Linear flow index, 0 (restorative) .. 1 (fully linear).
    X : float
        Utility ``(L / L_av) (U / U_av)``.
    MCI : float
        Material Circularity Indicator in [0, 1].
    """

    mass_kg: float
    V: float
    W0: float
    WC: float
    WF: float
    W: float
    LFI: float
    X: float
    MCI: float


@dataclass(frozen=True, eq=False)
class MCIGroups:
    """Per-group MCI results from :func:`mci_many`; every field is a float array of shape ``(n_groups,)``.

    Fields mean the same as in :class:`MCIResult`. A group with no rows has ``mass_kg == 0`` and NaN ``LFI`` and
    ``MCI`` (its MCI is undefined, not zero).
    """

    mass_kg: FloatArray
    V: FloatArray
    W0: FloatArray
    WC: FloatArray
    WF: FloatArray
    W: FloatArray
    LFI: FloatArray
    X: FloatArray
    MCI: FloatArray


def _check_ratio(value: float, name: str) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _validate_component(component: Component, index: int) -> None:
    where = f"components[{index}]"
    if not isinstance(component, Component):
        raise ValueError(f"{where} must be a Component, got {type(component).__name__}")
    mass = component.mass_kg
    if not (isinstance(mass, int | float) and math.isfinite(mass) and mass > 0):
        raise ValueError(f"{where}.mass_kg must be a finite number > 0, got {mass!r}")
    for name in _FRACTIONS:
        value = getattr(component, name)
        if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise ValueError(f"{where}.{name} must be in [0, 1], got {value!r}")
    for name in _EFFICIENCIES:
        value = getattr(component, name)
        if not (isinstance(value, int | float) and 0.0 < value <= 1.0):
            raise ValueError(f"{where}.{name} must be in (0, 1], got {value!r}")
    feedstock = component.recycled_input + component.reused_input
    if feedstock > 1.0 + SUM_TOLERANCE:
        raise ValueError(f"{where}.recycled_input + {where}.reused_input must be <= 1, got {feedstock!r}")
    collection = component.recycled_collection + component.reused_collection
    if collection > 1.0 + SUM_TOLERANCE:
        raise ValueError(f"{where}.recycled_collection + {where}.reused_collection must be <= 1, got {collection!r}")


def mci(components: Sequence[Component], lifetime_ratio: float = 1.0, intensity_ratio: float = 1.0) -> MCIResult:
    """Compute the Material Circularity Indicator of a product made of one or more components.

    Parameters
    ----------
    components : sequence of Component
        The product's components or materials (at least one).
    lifetime_ratio : float
        ``L / L_av``: the product's lifetime over the industry-average lifetime (> 0). A remanufactured robot
        given a second service life has a ratio above 1.
    intensity_ratio : float
        ``U / U_av``: the product's intensity of use over the industry average (> 0).

    Returns
    -------
    MCIResult
        Totals V, W0, WC, WF, W (kg), LFI, X and MCI.

    Raises
    ------
    ValueError
        If there is no component, a ratio is not a finite positive number, or a component field is out of range;
        the message names the field and the component index, e.g. ``components[2].recycled_input``.

    Notes
    -----
    Ellen MacArthur Foundation & Granta Design, *Circularity Indicators — Methodology* (2015)::

        V = M (1 - F_R - F_U)          W_0 = M (1 - C_R - C_U)
        W_C = M (1 - E_C) C_R          W_F = M (1 - E_F) F_R / E_F
        W = W_0 + (W_F + W_C) / 2      LFI = (V + W) / (2M + (W_F - W_C) / 2)
        X = (L / L_av)(U / U_av)       MCI = max(0, 1 - LFI * 0.9 / X)

    V, W_0, W_C, W_F and M are summed over the components before LFI is computed once on the totals.
    V and W_0 are floored at 0 so that sums within the 1e-9 tolerance above 1 cannot make MCI exceed 1.

    Examples
    --------
    A fully linear product has MCI 0.1, not 0; doubling its lifetime lifts it to 0.55:

    >>> round(mci([Component(mass_kg=10.0)]).MCI, 6)
    0.1
    >>> round(mci([Component(mass_kg=10.0)], lifetime_ratio=2.0).MCI, 6)
    0.55
    >>> result = mci([Component(mass_kg=6.0, reused_input=1.0, reused_collection=1.0), Component(mass_kg=4.0)])
    >>> round(result.V, 6), round(result.LFI, 6), round(result.MCI, 6)
    (4.0, 0.4, 0.64)
    """
    if isinstance(components, Component) or not isinstance(components, Sequence):
        raise ValueError(f"components must be a sequence of Component, got {type(components).__name__}")
    if len(components) == 0:
        raise ValueError("components must contain at least one Component, got none")
    lifetime = _check_ratio(lifetime_ratio, "lifetime_ratio")
    intensity = _check_ratio(intensity_ratio, "intensity_ratio")
    for index, component in enumerate(components):
        _validate_component(component, index)

    mass = virgin = landfill = collection_waste = feedstock_waste = 0.0
    for c in components:
        m = float(c.mass_kg)
        mass += m
        virgin += max(0.0, m * (1.0 - c.recycled_input - c.reused_input))
        landfill += max(0.0, m * (1.0 - c.recycled_collection - c.reused_collection))
        collection_waste += m * (1.0 - c.collection_recycling_efficiency) * c.recycled_collection
        feedstock_waste += (
            m * (1.0 - c.feedstock_recycling_efficiency) * c.recycled_input / c.feedstock_recycling_efficiency
        )
    waste = landfill + (feedstock_waste + collection_waste) / 2.0
    lfi = (virgin + waste) / (2.0 * mass + (feedstock_waste - collection_waste) / 2.0)
    utility = lifetime * intensity
    value = max(0.0, 1.0 - lfi * 0.9 / utility)
    return MCIResult(
        mass_kg=mass,
        V=virgin,
        W0=landfill,
        WC=collection_waste,
        WF=feedstock_waste,
        W=waste,
        LFI=lfi,
        X=utility,
        MCI=value,
    )


def company_mci(product_mcis: npt.ArrayLike, weights: npt.ArrayLike) -> float:
    """Compute a company-level MCI as the weighted mean of product MCIs.

    Parameters
    ----------
    product_mcis : array_like of float
        MCI of each product, each in [0, 1].
    weights : array_like of float
        Normaliser R_i of each product (mass or revenue, as the company chooses), each finite and >= 0, with a
        positive sum. Same length as ``product_mcis``.

    Returns
    -------
    float
        ``sum(MCI_i R_i) / sum(R_i)``.

    Raises
    ------
    ValueError
        If the inputs are empty, of different lengths, out of range or the weights sum to 0.

    Notes
    -----
    Ellen MacArthur Foundation & Granta Design, *Circularity Indicators — Methodology* (2015), company-level
    indicator: ``MCI_company = sum_i(MCI_i R_i) / sum_i(R_i)``.

    Examples
    --------
    >>> round(company_mci([0.5, 0.8, 0.1], [2.0, 1.0, 1.0]), 6)
    0.475
    """
    values = np.asarray(product_mcis, dtype=np.float64)
    r = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"product_mcis must be a non-empty 1-D array, got shape {values.shape}")
    if r.shape != values.shape:
        raise ValueError(f"weights must have the same shape as product_mcis {values.shape}, got {r.shape}")
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"product_mcis[{i}] must be in [0, 1], got {float(values[i])!r}")
    bad = ~(np.isfinite(r) & (r >= 0.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"weights[{i}] must be a finite number >= 0, got {float(r[i])!r}")
    total = float(r.sum())
    if total <= 0.0:
        raise ValueError("weights must have a positive sum, got 0")
    return float(np.dot(values, r) / total)


def _as_rows(value: npt.ArrayLike, name: str, n: int) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) like mass_kg, got {array.shape}")
    return array


def _first_bad(bad: npt.NDArray[np.bool_], values: FloatArray, name: str, rule: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] must be {rule}, got {float(values[i])!r}")


def mci_many(
    mass_kg: npt.ArrayLike,
    *,
    recycled_input: npt.ArrayLike = 0.0,
    reused_input: npt.ArrayLike = 0.0,
    recycled_collection: npt.ArrayLike = 0.0,
    reused_collection: npt.ArrayLike = 0.0,
    collection_recycling_efficiency: npt.ArrayLike = 1.0,
    feedstock_recycling_efficiency: npt.ArrayLike = 1.0,
    group: npt.ArrayLike | None = None,
    n_groups: int | None = None,
    lifetime_ratio: npt.ArrayLike = 1.0,
    intensity_ratio: npt.ArrayLike = 1.0,
) -> MCIGroups:
    """Compute the MCI of many products at once from one row per component.

    Parameters
    ----------
    mass_kg : array_like of float, shape (n,)
        Mass of each component row in kg (> 0).
    recycled_input, reused_input, recycled_collection, reused_collection : array_like of float
        F_R, F_U, C_R, C_U per row, scalars or shape (n,), each in [0, 1], with ``F_R + F_U <= 1`` and
        ``C_R + C_U <= 1`` (tolerance 1e-9).
    collection_recycling_efficiency, feedstock_recycling_efficiency : array_like of float
        E_C and E_F per row, scalars or shape (n,), each in (0, 1].
    group : array_like of int, shape (n,), optional
        Product (group) code of each row, integers in ``[0, n_groups)``; e.g. the inverse from
        ``np.unique(robot_ids, return_inverse=True)``. Default: all rows form group 0.
    n_groups : int, optional
        Number of groups; default ``max(group) + 1``. Groups without rows get NaN LFI and MCI.
    lifetime_ratio, intensity_ratio : array_like of float
        ``L / L_av`` and ``U / U_av``, scalars or shape (n_groups,), each finite and > 0.

    Returns
    -------
    MCIGroups
        Arrays of shape (n_groups,) with the same meaning as the fields of :class:`MCIResult`.

    Raises
    ------
    ValueError
        If shapes disagree or a value is out of range; the message names the parameter and the first bad row,
        e.g. ``recycled_input[17] must be in [0, 1], got 1.5``.

    Notes
    -----
    Same formulas as :func:`mci` (Ellen MacArthur Foundation & Granta Design, 2015): V, W_0, W_C, W_F and M are
    computed per row, summed per group with ``np.bincount`` and the LFI and MCI steps are applied to the group
    totals. Equal to calling :func:`mci` once per group.

    Examples
    --------
    Two robots: robot 0 is fully linear, robot 1 is one reused 6 kg part plus one linear 4 kg part.

    >>> groups = mci_many([10.0, 6.0, 4.0], reused_input=[0.0, 1.0, 0.0], reused_collection=[0.0, 1.0, 0.0],
    ...                   group=[0, 1, 1])
    >>> np.round(groups.MCI, 6).tolist()
    [0.1, 0.64]
    """
    mass = np.asarray(mass_kg, dtype=np.float64)
    if mass.ndim != 1 or mass.size == 0:
        raise ValueError(f"mass_kg must be a non-empty 1-D array, got shape {mass.shape}")
    n = mass.size
    _first_bad(~(np.isfinite(mass) & (mass > 0.0)), mass, "mass_kg", "a finite number > 0")
    columns: dict[str, FloatArray] = {}
    for name, value in (
        ("recycled_input", recycled_input),
        ("reused_input", reused_input),
        ("recycled_collection", recycled_collection),
        ("reused_collection", reused_collection),
    ):
        array = _as_rows(value, name, n)
        _first_bad(~((array >= 0.0) & (array <= 1.0)), array, name, "in [0, 1]")
        columns[name] = array
    for name, value in (
        ("collection_recycling_efficiency", collection_recycling_efficiency),
        ("feedstock_recycling_efficiency", feedstock_recycling_efficiency),
    ):
        array = _as_rows(value, name, n)
        _first_bad(~((array > 0.0) & (array <= 1.0)), array, name, "in (0, 1]")
        columns[name] = array
    f_r, f_u = columns["recycled_input"], columns["reused_input"]
    c_r, c_u = columns["recycled_collection"], columns["reused_collection"]
    e_c, e_f = columns["collection_recycling_efficiency"], columns["feedstock_recycling_efficiency"]
    feedstock = f_r + f_u
    _first_bad(feedstock > 1.0 + SUM_TOLERANCE, feedstock, "recycled_input + reused_input", "<= 1")
    collection = c_r + c_u
    _first_bad(collection > 1.0 + SUM_TOLERANCE, collection, "recycled_collection + reused_collection", "<= 1")

    if group is None:
        codes = np.zeros(n, dtype=np.intp)
    else:
        raw = np.asarray(group)
        if raw.shape != (n,):
            raise ValueError(f"group must have shape ({n},) like mass_kg, got {raw.shape}")
        if raw.dtype.kind not in "iu":
            raise ValueError(f"group must hold integer group codes, got dtype {raw.dtype}")
        codes = raw.astype(np.intp)
        if (codes < 0).any():
            i = int(np.flatnonzero(codes < 0)[0])
            raise ValueError(f"group[{i}] must be >= 0, got {int(codes[i])}")
    highest = int(codes.max()) + 1
    if n_groups is None:
        size = highest
    else:
        if isinstance(n_groups, bool) or not isinstance(n_groups, int | np.integer) or n_groups < highest:
            raise ValueError(f"n_groups must be an integer >= max(group) + 1 = {highest}, got {n_groups!r}")
        size = int(n_groups)

    ratios: list[FloatArray] = []
    for name, value in (("lifetime_ratio", lifetime_ratio), ("intensity_ratio", intensity_ratio)):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 0:
            array = np.full(size, float(array))
        elif array.shape != (size,):
            raise ValueError(f"{name} must be a scalar or have shape ({size},) (one per group), got {array.shape}")
        _first_bad(~(np.isfinite(array) & (array > 0.0)), array, name, "a finite number > 0")
        ratios.append(array)

    def per_group(row_values: FloatArray) -> FloatArray:
        return np.bincount(codes, weights=row_values, minlength=size).astype(np.float64)

    total_mass = per_group(mass)
    virgin = per_group(np.maximum(0.0, mass * (1.0 - f_r - f_u)))
    landfill = per_group(np.maximum(0.0, mass * (1.0 - c_r - c_u)))
    collection_waste = per_group(mass * (1.0 - e_c) * c_r)
    feedstock_waste = per_group(mass * (1.0 - e_f) * f_r / e_f)
    waste = landfill + (feedstock_waste + collection_waste) / 2.0
    denominator = 2.0 * total_mass + (feedstock_waste - collection_waste) / 2.0
    has_rows = total_mass > 0.0
    lfi = np.full(size, np.nan)
    np.divide(virgin + waste, denominator, out=lfi, where=has_rows)
    utility = ratios[0] * ratios[1]
    value = np.where(has_rows, np.maximum(0.0, 1.0 - lfi * 0.9 / utility), np.nan)
    return MCIGroups(
        mass_kg=total_mass,
        V=virgin,
        W0=landfill,
        WC=collection_waste,
        WF=feedstock_waste,
        W=waste,
        LFI=lfi,
        X=utility,
        MCI=value,
    )
