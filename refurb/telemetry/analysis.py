"""Numeric checks that turn a test run's telemetry into verdicts (pure module: stdlib, numpy, scipy).

Every function validates its inputs first (the error message names the parameter), takes plain arrays or numbers and
returns a float, an enum or a frozen dataclass. Formulas and test vectors: ``shared/reference/standards.md``
sections 2 (ISO 9283) and 3 (ISO 10816 vibration severity, rolling-bearing defect frequencies).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.signal  # type: ignore[import-untyped, unused-ignore]
import scipy.stats  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "ISO_10816_ZONES",
    "BearingFrequencies",
    "CheckResult",
    "Comparison",
    "DefectPeak",
    "LinearTrend",
    "MachineClass",
    "PoseReport",
    "PoseStats",
    "Spectrum",
    "TemperatureRise",
    "VibrationZone",
    "ZoneBoundaries",
    "band_energy_ratio",
    "bearing_frequencies",
    "defect_peak",
    "detect_bearing_defect",
    "envelope_spectrum",
    "evaluate_limit",
    "linear_trend",
    "pose_accuracy_repeatability",
    "pose_stats_by_pose",
    "rms",
    "run_in_hours",
    "temperature_rise",
    "velocity_rms_mm_s",
    "vibration_zone",
    "welch_spectrum",
]

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------------------------------------------
# validation helpers


def _finite_scalar(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {result!r}")
    return result


def _positive(value: object, name: str) -> float:
    result = _finite_scalar(value, name)
    if result <= 0:
        raise ValueError(f"{name} must be > 0, got {result!r}")
    return result


def _array(values: npt.ArrayLike, name: str, *, ndim: int = 1, min_len: int = 1) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.shape[0] < min_len:
        raise ValueError(f"{name} needs at least {min_len} entries, got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must contain only finite numbers")
    return array


def _band(band_hz: tuple[float, float], rate_hz: float, name: str = "band_hz") -> tuple[float, float]:
    if not isinstance(band_hz, tuple | list) or len(band_hz) != 2:
        raise TypeError(f"{name} must be a (low_hz, high_hz) pair")
    low = _positive(band_hz[0], f"{name}[0]")
    high = _positive(band_hz[1], f"{name}[1]")
    if high <= low:
        raise ValueError(f"{name} must have high > low, got {band_hz}")
    if high > rate_hz / 2:
        raise ValueError(f"{name} upper edge {high} Hz is above the Nyquist frequency {rate_hz / 2} Hz")
    return low, high


# ---------------------------------------------------------------------------------------------------------------
# ISO 9283 pose accuracy and repeatability


@dataclass(frozen=True, slots=True)
class PoseStats:
    """ISO 9283 figures for one commanded pose attained ``n`` times (all lengths in mm).

    ``ap_xyz_mm`` is the barycentre minus the commanded position, ``mean_l_mm`` and ``std_l_mm`` are
    :math:`\\bar l` and :math:`S_l` of the repeatability formula.
    """

    ap_mm: float
    rp_mm: float
    barycentre_xyz_mm: tuple[float, float, float]
    n: int
    ap_xyz_mm: tuple[float, float, float]
    mean_l_mm: float
    std_l_mm: float


@dataclass(frozen=True, slots=True)
class PoseReport:
    """Per-pose ISO 9283 figures and the robot's figures, which are those of its worst pose."""

    by_pose: tuple[tuple[str, PoseStats], ...]
    worst_ap_pose: str
    worst_rp_pose: str
    ap_mm: float
    rp_mm: float

    def stats_for(self, pose: str) -> PoseStats:
        """Return the figures of one pose id (KeyError if absent)."""
        for pose_id, stats in self.by_pose:
            if pose_id == pose:
                return stats
        raise KeyError(pose)


def _xyz_tuple(array: FloatArray) -> tuple[float, float, float]:
    return float(array[0]), float(array[1]), float(array[2])


def pose_accuracy_repeatability(
    commanded_xyz_mm: npt.ArrayLike, attained_xyz_mm: npt.ArrayLike, *, commanded_tol_mm: float = 1e-3
) -> PoseStats:
    r"""Compute ISO 9283 pose accuracy AP and pose repeatability RP for one commanded pose.

    Parameters
    ----------
    commanded_xyz_mm : array_like, shape (3,) or (n, 3)
        Commanded position in mm; one row per attempt is accepted if all rows agree within ``commanded_tol_mm``.
    attained_xyz_mm : array_like, shape (n, 3)
        Attained positions in mm, n >= 2 (the standard cycle uses n = 30).
    commanded_tol_mm : float, optional
        Largest allowed spread of the commanded rows.

    Returns
    -------
    PoseStats

    Notes
    -----
    ISO 9283:1998, sections 7.2.1 and 7.2.2 (position part)::

        barycentre  x̄ = mean(x_j), ȳ, z̄
        AP_P = sqrt((x̄ - x_c)² + (ȳ - y_c)² + (z̄ - z_c)²)
        l_j  = sqrt((x_j - x̄)² + (y_j - ȳ)² + (z_j - z̄)²),  l̄ = mean(l_j),  S_l = std(l_j, ddof=1)
        RP_l = l̄ + 3 S_l      (a radius; datasheets write it "±RP")

    Examples
    --------
    >>> attained = [(500.12, 0.05, 399.91), (500.10, 0.07, 399.93), (500.15, 0.02, 399.90),
    ...             (500.11, 0.06, 399.95), (500.13, 0.04, 399.92)]
    >>> stats = pose_accuracy_repeatability((500.0, 0.0, 400.0), attained)
    >>> round(stats.ap_mm, 6), round(stats.rp_mm, 6), stats.n
    (0.152552, 0.070521, 5)
    """
    attained = _array(attained_xyz_mm, "attained_xyz_mm", ndim=2, min_len=2)
    if attained.shape[1] != 3:
        raise ValueError(f"attained_xyz_mm must have shape (n, 3), got {attained.shape}")
    tol = _finite_scalar(commanded_tol_mm, "commanded_tol_mm")
    commanded_raw = np.asarray(commanded_xyz_mm, dtype=np.float64)
    if commanded_raw.shape == (3,):
        commanded = _array(commanded_raw, "commanded_xyz_mm")
    else:
        rows = _array(commanded_raw, "commanded_xyz_mm", ndim=2)
        if rows.shape != attained.shape:
            raise ValueError(
                f"commanded_xyz_mm must have shape (3,) or {attained.shape} like attained_xyz_mm, got {rows.shape}"
            )
        if float(np.ptp(rows, axis=0).max()) > tol:
            raise ValueError(f"commanded_xyz_mm rows differ by more than {tol} mm: not one commanded pose")
        commanded = rows.mean(axis=0)
    barycentre = attained.mean(axis=0)
    offset = barycentre - commanded
    distances = np.linalg.norm(attained - barycentre, axis=1)
    mean_l = float(distances.mean())
    std_l = float(distances.std(ddof=1))
    return PoseStats(
        ap_mm=float(np.linalg.norm(offset)),
        rp_mm=mean_l + 3.0 * std_l,
        barycentre_xyz_mm=_xyz_tuple(barycentre),
        n=int(attained.shape[0]),
        ap_xyz_mm=_xyz_tuple(offset),
        mean_l_mm=mean_l,
        std_l_mm=std_l,
    )


def pose_stats_by_pose(
    pose_ids: Sequence[str],
    commanded_xyz_mm: npt.ArrayLike,
    attained_xyz_mm: npt.ArrayLike,
    *,
    commanded_tol_mm: float = 1e-3,
) -> PoseReport:
    """Group pose measurements by pose id, compute ISO 9283 AP/RP per pose and pick the worst pose.

    Parameters
    ----------
    pose_ids : sequence of str
        Pose id of each measurement (``"P1"`` .. ``"P5"`` in the standard cycle).
    commanded_xyz_mm, attained_xyz_mm : array_like, shape (n, 3)
        Commanded and attained positions in mm, row i belonging to ``pose_ids[i]``; each pose needs >= 2 rows.
    commanded_tol_mm : float, optional
        Largest allowed spread of one pose's commanded rows.

    Returns
    -------
    PoseReport
        Poses in first-seen order; ``ap_mm``/``rp_mm`` are the maxima over poses and ``worst_*_pose`` where they occur.

    Notes
    -----
    ISO 9283 reports AP and RP per pose; a robot's figure is its worst pose (``shared/reference/standards.md`` §2).

    Examples
    --------
    >>> report = pose_stats_by_pose(
    ...     ["P1", "P1", "P2", "P2"],
    ...     [(0, 0, 0), (0, 0, 0), (100, 0, 0), (100, 0, 0)],
    ...     [(0.01, 0, 0), (0.03, 0, 0), (100.2, 0, 0), (100.2, 0.02, 0)])
    >>> report.worst_ap_pose, round(report.ap_mm, 4)
    ('P2', 0.2002)
    """
    commanded = _array(commanded_xyz_mm, "commanded_xyz_mm", ndim=2)
    attained = _array(attained_xyz_mm, "attained_xyz_mm", ndim=2)
    if isinstance(pose_ids, str) or len(pose_ids) != attained.shape[0] or commanded.shape != attained.shape:
        raise ValueError(
            "pose_ids, commanded_xyz_mm and attained_xyz_mm must describe the same rows: "
            f"{len(pose_ids)} ids, shapes {commanded.shape} and {attained.shape}"
        )
    groups: dict[str, list[int]] = {}
    for index, pose in enumerate(pose_ids):
        if not isinstance(pose, str) or not pose:
            raise TypeError(f"pose_ids[{index}] must be a non-empty string, got {pose!r}")
        groups.setdefault(pose, []).append(index)
    by_pose: list[tuple[str, PoseStats]] = []
    for pose, rows in groups.items():
        if len(rows) < 2:
            raise ValueError(f"pose {pose!r} has {len(rows)} measurement; ISO 9283 needs at least 2")
        by_pose.append(
            (pose, pose_accuracy_repeatability(commanded[rows], attained[rows], commanded_tol_mm=commanded_tol_mm))
        )
    worst_ap = max(by_pose, key=lambda item: item[1].ap_mm)
    worst_rp = max(by_pose, key=lambda item: item[1].rp_mm)
    return PoseReport(
        by_pose=tuple(by_pose),
        worst_ap_pose=worst_ap[0],
        worst_rp_pose=worst_rp[0],
        ap_mm=worst_ap[1].ap_mm,
        rp_mm=worst_rp[1].rp_mm,
    )


# ---------------------------------------------------------------------------------------------------------------
# rolling-bearing defect frequencies


@dataclass(frozen=True, slots=True)
class BearingFrequencies:
    """Kinematic defect frequencies of a rolling bearing in Hz (in orders of shaft speed when ``shaft_hz`` is 1).

    ``ftf_hz`` cage (fundamental train), ``bpfo_hz`` ball pass outer race, ``bpfi_hz`` ball pass inner race,
    ``bsf_hz`` ball spin (a spall on a ball shows at ``2 * bsf_hz``).
    """

    ftf_hz: float
    bpfo_hz: float
    bpfi_hz: float
    bsf_hz: float


def bearing_frequencies(
    shaft_hz: float, n_elements: int, ball_d: float, pitch_d: float, contact_angle_deg: float = 0.0
) -> BearingFrequencies:
    """Compute the kinematic defect frequencies of a rolling bearing with a stationary outer race.

    Parameters
    ----------
    shaft_hz : float
        Shaft (inner race) rotation frequency f_r, > 0.
    n_elements : int
        Number of rolling elements N, >= 1.
    ball_d, pitch_d : float
        Rolling-element diameter d and pitch diameter D in the same length unit, 0 < d < D.
    contact_angle_deg : float, optional
        Contact angle phi in degrees, 0 <= phi < 90.

    Returns
    -------
    BearingFrequencies

    Notes
    -----
    Standard rolling-bearing kinematics (``shared/reference/standards.md`` §3), no slip::

        FTF  = f_r/2 (1 - d/D cos phi)        BPFO = N f_r/2 (1 - d/D cos phi)
        BPFI = N f_r/2 (1 + d/D cos phi)      BSF  = D/(2d) f_r (1 - (d/D cos phi)²)

    Real bearings slip 1-2 %, so search for these lines with a relative tolerance.

    Examples
    --------
    CWRU drive-end bearing 6205 in orders of shaft speed:

    >>> f = bearing_frequencies(1.0, 9, 0.3126, 1.537)
    >>> round(f.ftf_hz, 4), round(f.bpfo_hz, 4), round(f.bpfi_hz, 4), round(2 * f.bsf_hz, 4)
    (0.3983, 3.5848, 5.4152, 4.7134)

    The published CWRU table (FTF 0.39828, BPFO 3.5848, BPFI 5.4152, 2 BSF 4.7135) agrees to within 1e-4
    relative; its last digits come from rounding upstream.
    """
    shaft = _positive(shaft_hz, "shaft_hz")
    if isinstance(n_elements, bool) or not isinstance(n_elements, int | np.integer) or n_elements < 1:
        raise ValueError(f"n_elements must be an integer >= 1, got {n_elements!r}")
    d = _positive(ball_d, "ball_d")
    big_d = _positive(pitch_d, "pitch_d")
    if d >= big_d:
        raise ValueError(f"ball_d ({d}) must be smaller than pitch_d ({big_d})")
    phi_deg = _finite_scalar(contact_angle_deg, "contact_angle_deg")
    if not 0.0 <= phi_deg < 90.0:
        raise ValueError(f"contact_angle_deg must be in [0, 90), got {phi_deg}")
    ratio = d / big_d * math.cos(math.radians(phi_deg))
    n = int(n_elements)
    return BearingFrequencies(
        ftf_hz=shaft / 2 * (1 - ratio),
        bpfo_hz=n * shaft / 2 * (1 - ratio),
        bpfi_hz=n * shaft / 2 * (1 + ratio),
        bsf_hz=big_d / (2 * d) * shaft * (1 - ratio**2),
    )


# ---------------------------------------------------------------------------------------------------------------
# vibration severity (ISO 10816)


class MachineClass(StrEnum):
    """Machine groups of the ISO 10816 evaluation tables refurb knows."""

    ISO10816_1_CLASS_I = "iso10816-1_class_i"
    ISO10816_1_CLASS_II = "iso10816-1_class_ii"
    ISO10816_3_GROUP2_RIGID = "iso10816-3_group2_rigid"
    ISO10816_3_GROUP2_FLEXIBLE = "iso10816-3_group2_flexible"


class VibrationZone(StrEnum):
    """ISO 10816 evaluation zones."""

    A = "A"
    """Newly commissioned machines."""
    B = "B"
    """Unrestricted long-term operation."""
    C = "C"
    """Restricted, short-term operation only."""
    D = "D"
    """Vibration severe enough to cause damage."""


@dataclass(frozen=True, slots=True)
class ZoneBoundaries:
    """Zone boundaries in mm/s RMS (10-1000 Hz) for one machine class, with where they come from."""

    machine_class: MachineClass
    a_b_mm_s: float
    b_c_mm_s: float
    c_d_mm_s: float
    source: str

    def __post_init__(self) -> None:
        if not 0 < self.a_b_mm_s < self.b_c_mm_s < self.c_d_mm_s:
            raise ValueError(f"zone boundaries of {self.machine_class} must increase: 0 < A/B < B/C < C/D")


_ZONE_SOURCE: Final = "as tabulated in shared/reference/standards.md §3"
# Configuration, not physics: rows not listed here (10816-3 group 1, 10816-1 classes III/IV) must be checked against a
# licensed copy of the standard before they are added.
ISO_10816_ZONES: Final[Mapping[MachineClass, ZoneBoundaries]] = MappingProxyType(
    {
        MachineClass.ISO10816_1_CLASS_I: ZoneBoundaries(
            MachineClass.ISO10816_1_CLASS_I,
            0.71,
            1.8,
            4.5,
            f"ISO 10816-1 class I (small machines, <= 15 kW), {_ZONE_SOURCE}",
        ),
        MachineClass.ISO10816_1_CLASS_II: ZoneBoundaries(
            MachineClass.ISO10816_1_CLASS_II, 1.12, 2.8, 7.1, f"ISO 10816-1 class II (medium machines), {_ZONE_SOURCE}"
        ),
        MachineClass.ISO10816_3_GROUP2_RIGID: ZoneBoundaries(
            MachineClass.ISO10816_3_GROUP2_RIGID,
            1.4,
            2.8,
            4.5,
            f"ISO 10816-3 group 2 (15-300 kW), rigid foundation, {_ZONE_SOURCE}",
        ),
        MachineClass.ISO10816_3_GROUP2_FLEXIBLE: ZoneBoundaries(
            MachineClass.ISO10816_3_GROUP2_FLEXIBLE,
            2.3,
            4.5,
            7.1,
            f"ISO 10816-3 group 2 (15-300 kW), flexible foundation, {_ZONE_SOURCE}",
        ),
    }
)


def vibration_zone(
    velocity_rms_mm_s: float,
    machine_class: MachineClass | str,
    *,
    table: Mapping[MachineClass, ZoneBoundaries] = ISO_10816_ZONES,
) -> VibrationZone:
    """Classify a broadband RMS vibration velocity into an ISO 10816 evaluation zone.

    Parameters
    ----------
    velocity_rms_mm_s : float
        Broadband RMS velocity in mm/s over 10-1000 Hz (see :func:`velocity_rms_mm_s`), >= 0.
    machine_class : MachineClass or str
        Machine class or group; robot joint motors (< 15 kW) are ISO 10816-1 class I.
    table : mapping, optional
        Zone boundaries per class; defaults to :data:`ISO_10816_ZONES`.

    Returns
    -------
    VibrationZone

    Notes
    -----
    ISO 10816-1 / ISO 10816-3 evaluation zones. refurb's rule: a value equal to a boundary stays in the lower zone::

        zone = A if v <= A/B, B if v <= B/C, C if v <= C/D, else D

    Examples
    --------
    >>> vibration_zone(1.8, "iso10816-1_class_i")
    <VibrationZone.B: 'B'>
    >>> vibration_zone(1.81, MachineClass.ISO10816_1_CLASS_I)
    <VibrationZone.C: 'C'>
    """
    velocity = _finite_scalar(velocity_rms_mm_s, "velocity_rms_mm_s")
    if velocity < 0:
        raise ValueError(f"velocity_rms_mm_s must be >= 0, got {velocity}")
    try:
        key = MachineClass(machine_class)
    except ValueError:
        raise ValueError(
            f"machine_class must be one of {[member.value for member in MachineClass]}, got {machine_class!r}"
        ) from None
    if key not in table:
        raise ValueError(f"machine_class {key.value!r} has no row in the zone table")
    bounds = table[key]
    if velocity <= bounds.a_b_mm_s:
        return VibrationZone.A
    if velocity <= bounds.b_c_mm_s:
        return VibrationZone.B
    if velocity <= bounds.c_d_mm_s:
        return VibrationZone.C
    return VibrationZone.D


def velocity_rms_mm_s(
    accel_m_s2: npt.ArrayLike, rate_hz: float, band_hz: tuple[float, float] = (10.0, 1000.0)
) -> float:
    r"""Compute the band-limited RMS vibration velocity in mm/s from an acceleration record in m/s².

    Parameters
    ----------
    accel_m_s2 : array_like, 1-D
        Acceleration samples in m/s², equally spaced.
    rate_hz : float
        Sampling rate; ``band_hz[1]`` must not exceed ``rate_hz / 2``.
    band_hz : (float, float), optional
        Integration band, ISO 10816's broadband 10-1000 Hz by default. The record must last at least
        ``1 / band_hz[0]`` seconds so the lower edge is resolved.

    Returns
    -------
    float
        RMS velocity in mm/s.

    Notes
    -----
    Integration in the frequency domain (ISO 10816 measures broadband RMS velocity). The mean is removed, a
    periodic Hann window w applied, ``A_k = rfft(a w)``, and each in-band line divided by ``j 2 pi f_k``; Parseval
    with the window's energy gives::

        v_rms² = 1 / (N sum(w²)) * sum_{f_lo <= f_k <= f_hi} c_k |A_k|² / (2 pi f_k)²,   c_k = 2 (1 at Nyquist)

    For a sine of amplitude a at f this is ``a / (2 pi f) / sqrt(2)``: v = a / (2 pi f) in amplitude.
    Out-of-band content and a DC offset are excluded. The window makes the result insensitive to records that are
    not a whole number of periods; it spreads each line over about two neighbours, so a component within two lines
    of a band edge is partly cut, and a sine holding fewer than ~30 periods in the record is off by up to ~0.5 %
    (well under 0.1 % beyond that).

    Examples
    --------
    >>> t = np.arange(25_600) / 25_600.0
    >>> accel = 10.0 * np.sin(2 * np.pi * 100.0 * t)                 # 10 m/s² peak at 100 Hz
    >>> round(velocity_rms_mm_s(accel, 25_600.0), 2)                 # 10 / (2 pi 100) / sqrt 2 * 1000
    11.25
    """
    rate = _positive(rate_hz, "rate_hz")
    accel = _array(accel_m_s2, "accel_m_s2", min_len=4)
    low, high = _band(band_hz, rate)
    n = accel.shape[0]
    resolution_hz = rate / n
    if resolution_hz > low:
        raise ValueError(
            f"accel_m_s2 lasts {n / rate:.4g} s: at least {1 / low:.4g} s is needed to resolve band_hz[0] = {low} Hz"
        )
    window = np.asarray(scipy.signal.get_window("hann", n), dtype=np.float64)
    spectrum = np.fft.rfft((accel - accel.mean()) * window)
    freqs = np.fft.rfftfreq(n, d=1.0 / rate)
    weights = np.full(freqs.shape, 2.0)
    if n % 2 == 0:
        weights[-1] = 1.0
    in_band = (freqs >= low) & (freqs <= high)
    power = weights[in_band] * np.abs(spectrum[in_band]) ** 2 / (2 * np.pi * freqs[in_band]) ** 2
    velocity_ms2 = float(power.sum()) / (n * float(np.sum(window**2)))
    return math.sqrt(velocity_ms2) * 1000.0


# ---------------------------------------------------------------------------------------------------------------
# spectra and bearing-fault detection


@dataclass(frozen=True, slots=True, eq=False)
class Spectrum:
    """A one-sided power spectral density: ``psd`` in (input unit)²/Hz at ``freqs_hz`` (equally spaced)."""

    freqs_hz: FloatArray
    psd: FloatArray

    @property
    def resolution_hz(self) -> float:
        """Return the spacing of the frequency lines."""
        return float(self.freqs_hz[1] - self.freqs_hz[0]) if len(self.freqs_hz) > 1 else math.inf


def _default_nperseg(n: int, rate_hz: float, resolution_hz: float) -> int:
    wanted = 1 << math.ceil(math.log2(max(rate_hz / resolution_hz, 8.0)))
    return min(n, wanted)


def _nperseg(nperseg: int | None, n: int, default: int) -> int:
    if nperseg is None:
        return default
    if isinstance(nperseg, bool) or not isinstance(nperseg, int | np.integer) or not 8 <= nperseg <= n:
        raise ValueError(f"nperseg must be an integer in [8, len(values)={n}], got {nperseg!r}")
    return int(nperseg)


def _welch(values: FloatArray, rate_hz: float, nperseg: int) -> Spectrum:
    freqs, psd = scipy.signal.welch(
        values, fs=rate_hz, window="hann", nperseg=nperseg, detrend="constant", scaling="density"
    )
    return Spectrum(freqs_hz=np.asarray(freqs, dtype=np.float64), psd=np.asarray(psd, dtype=np.float64))


def welch_spectrum(values: npt.ArrayLike, rate_hz: float, *, nperseg: int | None = None) -> Spectrum:
    """Estimate the power spectral density of a record by Welch's method.

    Parameters
    ----------
    values : array_like, 1-D
        At least 8 equally spaced samples.
    rate_hz : float
        Sampling rate.
    nperseg : int, optional
        Segment length; by default the power of two giving about 1 Hz resolution, capped at ``len(values)``.

    Returns
    -------
    Spectrum
        ``scipy.signal.welch`` with a Hann window, 50 % overlap, constant detrend and density scaling, so that
        ``sum(psd) * resolution_hz`` is the signal's variance.

    Notes
    -----
    P. D. Welch (1967), "The use of fast Fourier transform for the estimation of power spectra", IEEE Trans. Audio
    Electroacoustics 15(2): averaged modified periodograms.

    Examples
    --------
    >>> t = np.arange(4096) / 1024.0
    >>> spectrum = welch_spectrum(np.sin(2 * np.pi * 50.0 * t), 1024.0)
    >>> float(spectrum.freqs_hz[np.argmax(spectrum.psd)])
    50.0
    """
    rate = _positive(rate_hz, "rate_hz")
    array = _array(values, "values", min_len=8)
    return _welch(array, rate, _nperseg(nperseg, array.shape[0], _default_nperseg(array.shape[0], rate, 1.0)))


def _spectrum_arrays(freqs_hz: npt.ArrayLike, psd: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    freqs = _array(freqs_hz, "freqs_hz", min_len=2)
    power = _array(psd, "psd", min_len=2)
    if freqs.shape != power.shape:
        raise ValueError(f"freqs_hz and psd must have the same shape, got {freqs.shape} and {power.shape}")
    if np.any(np.diff(freqs) <= 0):
        raise ValueError("freqs_hz must be strictly increasing")
    if np.any(power < 0):
        raise ValueError("psd must be >= 0")
    return freqs, power


def _harmonics(harmonics: int) -> int:
    if isinstance(harmonics, bool) or not isinstance(harmonics, int | np.integer) or harmonics < 1:
        raise ValueError(f"harmonics must be an integer >= 1, got {harmonics!r}")
    return int(harmonics)


def _relative(value: float, name: str) -> float:
    result = _positive(value, name)
    if result >= 0.5:
        raise ValueError(f"{name} must be in (0, 0.5), got {result}")
    return result


def _window_mask(freqs: FloatArray, centre_hz: float, rel_width: float) -> npt.NDArray[np.bool_]:
    """Select lines within ``centre * (1 ± rel_width)``, or the nearest line when the window falls between lines."""
    mask = np.abs(freqs - centre_hz) <= rel_width * centre_hz
    if not mask.any():
        mask[int(np.argmin(np.abs(freqs - centre_hz)))] = True
    return mask


def band_energy_ratio(
    freqs_hz: npt.ArrayLike,
    psd: npt.ArrayLike,
    centres_hz: Sequence[float] | npt.ArrayLike,
    rel_width: float = 0.03,
    harmonics: int = 3,
) -> float:
    """Return the fraction of spectral energy lying near given frequencies and their harmonics.

    Parameters
    ----------
    freqs_hz, psd : array_like, 1-D
        A one-sided spectrum on an equally spaced grid (e.g. :func:`welch_spectrum` or :func:`envelope_spectrum`).
    centres_hz : sequence of float
        Frequencies of interest, e.g. ``(bpfo_hz, bpfi_hz, 2 * bsf_hz)``.
    rel_width : float, optional
        Half-width of each band relative to its centre (3 % allows for bearing slip).
    harmonics : int, optional
        Bands are placed at ``h * centre`` for h = 1..harmonics.

    Returns
    -------
    float
        In [0, 1]; overlapping bands are counted once and the DC line is excluded::

            ratio = sum(psd[f in union of bands]) / sum(psd[f > 0])

    Notes
    -----
    Spectral band energy around rolling-bearing defect frequencies (ISO 13373-3 style diagnosis; defect frequencies
    from ``shared/reference/standards.md`` §3). A healthy machine's ratio is roughly the bands' share of the
    spectrum's width; a defect concentrates energy in them.

    Examples
    --------
    >>> freqs = np.arange(0.0, 501.0)
    >>> psd = np.ones_like(freqs)
    >>> psd[100] = 97.0                                    # a line at 100 Hz on a flat floor
    >>> round(band_energy_ratio(freqs, psd, [100.0], rel_width=0.01, harmonics=1), 3)   # (97 + 1 + 1) / (499 + 97)
    0.166
    """
    freqs, power = _spectrum_arrays(freqs_hz, psd)
    centres = _array(centres_hz, "centres_hz")
    if np.any(centres <= 0):
        raise ValueError("centres_hz must be > 0")
    width = _relative(rel_width, "rel_width")
    count = _harmonics(harmonics)
    positive = freqs > 0
    total = float(power[positive].sum())
    if total == 0.0:
        return 0.0
    mask = np.zeros(freqs.shape, dtype=bool)
    for centre in centres:
        for order in range(1, count + 1):
            if order * centre <= freqs[-1]:
                mask |= _window_mask(freqs, float(order * centre), width)
    return float(power[mask & positive].sum()) / total


def envelope_spectrum(
    values: npt.ArrayLike,
    rate_hz: float,
    *,
    band_hz: tuple[float, float] | None = None,
    nperseg: int | None = None,
) -> Spectrum:
    """Compute the spectrum of a signal's envelope, where bearing impacts show at their repetition frequency.

    Parameters
    ----------
    values : array_like, 1-D
        Vibration samples (e.g. acceleration in m/s²).
    rate_hz : float
        Sampling rate.
    band_hz : (float, float), optional
        Band-pass (4th-order Butterworth, zero phase) around the structural resonance the impacts excite; without it
        the whole signal is demodulated.
    nperseg : int, optional
        Welch segment length for the envelope; default as in :func:`welch_spectrum`.

    Returns
    -------
    Spectrum
        PSD of the envelope in (input unit)²/Hz.

    Notes
    -----
    Envelope analysis (high-frequency resonance technique; ISO 13373-3, Randall & Antoni 2011, "Rolling element
    bearing diagnostics - a tutorial", MSSP 25)::

        x_b = bandpass(x);  e = |x_b + j H(x_b)|  (H: Hilbert transform);  S_e = welch(e - mean(e))

    Examples
    --------
    >>> t = np.arange(20_000) / 10_000.0
    >>> carrier = np.sin(2 * np.pi * 2_000.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 40.0 * t))
    >>> spectrum = envelope_spectrum(carrier, 10_000.0, band_hz=(1_500.0, 2_500.0))
    >>> round(float(spectrum.freqs_hz[1 + np.argmax(spectrum.psd[1:])]))
    40
    """
    rate = _positive(rate_hz, "rate_hz")
    array = _array(values, "values", min_len=32)
    if band_hz is not None:
        low, high = _band(band_hz, rate)
        if high >= rate / 2:
            raise ValueError(f"band_hz upper edge must be below the Nyquist frequency {rate / 2} Hz")
        sos = scipy.signal.butter(4, (low, high), btype="bandpass", fs=rate, output="sos")
        array = np.asarray(scipy.signal.sosfiltfilt(sos, array), dtype=np.float64)
    envelope = np.abs(np.asarray(scipy.signal.hilbert(array - array.mean())))
    envelope = envelope - envelope.mean()
    n = envelope.shape[0]
    return _welch(envelope, rate, _nperseg(nperseg, n, _default_nperseg(n, rate, 1.0)))


@dataclass(frozen=True, slots=True)
class DefectPeak:
    """How far the spectrum rises above its local background at a defect frequency and its harmonics.

    Tuples hold one entry per harmonic h = 1..len; ``ratio_db[i] = 10 log10(peak_psd[i] / background_psd[i])``.
    ``detected`` is True when the fundamental and at least ``min_harmonics`` harmonics (the fundamental included)
    reach ``threshold_db``.
    """

    defect_hz: float
    peak_hz: tuple[float, ...]
    peak_psd: tuple[float, ...]
    background_psd: tuple[float, ...]
    ratio_db: tuple[float, ...]
    threshold_db: float
    min_harmonics: int
    detected: bool


def defect_peak(
    freqs_hz: npt.ArrayLike,
    psd: npt.ArrayLike,
    defect_hz: float,
    *,
    rel_width: float = 0.03,
    background_rel_width: float = 0.3,
    harmonics: int = 3,
    threshold_db: float = 6.0,
    min_harmonics: int = 2,
) -> DefectPeak:
    """Compare the spectral peak near a defect frequency (and harmonics) with the local background.

    Parameters
    ----------
    freqs_hz, psd : array_like, 1-D
        A spectrum, normally :func:`envelope_spectrum`.
    defect_hz : float
        Expected defect frequency, e.g. ``bearing_frequencies(...).bpfo_hz``.
    rel_width : float, optional
        Half-width of the peak search window relative to ``h * defect_hz`` (slip tolerance).
    background_rel_width : float, optional
        Half-width of the background window; the background is the median PSD over it, the peak window excluded.
    harmonics : int, optional
        Number of harmonics examined, h = 1..harmonics (those above the spectrum's last line are skipped).
    threshold_db : float, optional
        Peak-to-background ratio in dB that counts as a line.
    min_harmonics : int, optional
        How many examined harmonics, the fundamental included, must reach the threshold.

    Returns
    -------
    DefectPeak

    Notes
    -----
    Peak-to-median background test on an envelope spectrum, the usual rule for declaring a bearing defect line
    (Randall & Antoni 2011)::

        P_h = max psd on |f - h f_d| <= rel h f_d,   B_h = median psd on rel h f_d < |f - h f_d| <= bg h f_d
        ratio_h = 10 log10(P_h / B_h) dB

    A median background makes the test robust to other lines (shaft harmonics) in the window; requiring several
    harmonics suppresses chance peaks of a noisy spectrum.

    Examples
    --------
    >>> freqs = np.arange(0.0, 500.0, 0.5)
    >>> psd = np.ones_like(freqs)
    >>> psd[np.isin(freqs, [107.5, 215.0, 322.5])] = 20.0
    >>> result = defect_peak(freqs, psd, 107.4)
    >>> result.detected, [round(r, 1) for r in result.ratio_db]
    (True, [13.0, 13.0, 13.0])
    """
    freqs, power = _spectrum_arrays(freqs_hz, psd)
    defect = _positive(defect_hz, "defect_hz")
    width = _relative(rel_width, "rel_width")
    background_width = _relative(background_rel_width, "background_rel_width")
    if background_width <= width:
        raise ValueError(f"background_rel_width ({background_width}) must exceed rel_width ({width})")
    count = _harmonics(harmonics)
    threshold = _finite_scalar(threshold_db, "threshold_db")
    if isinstance(min_harmonics, bool) or not isinstance(min_harmonics, int) or not 1 <= min_harmonics <= count:
        raise ValueError(f"min_harmonics must be an integer in [1, harmonics={count}], got {min_harmonics!r}")
    if defect * (1 + background_width) > freqs[-1]:
        raise ValueError(f"defect_hz {defect} Hz and its background window lie beyond the spectrum's last line")
    peak_hz: list[float] = []
    peak_psd: list[float] = []
    background_psd: list[float] = []
    ratio_db: list[float] = []
    for order in range(1, count + 1):
        centre = order * defect
        if centre * (1 + background_width) > freqs[-1]:
            break
        peak_mask = _window_mask(freqs, centre, width)
        background_mask = (np.abs(freqs - centre) <= background_width * centre) & ~peak_mask
        if int(background_mask.sum()) < 3:
            raise ValueError(
                f"the spectrum's {freqs[1] - freqs[0]:.3g} Hz resolution leaves fewer than 3 background lines around "
                f"{centre:.4g} Hz; use a longer segment"
            )
        peak_index = np.flatnonzero(peak_mask)[int(np.argmax(power[peak_mask]))]
        peak = float(power[peak_index])
        background = float(np.median(power[background_mask]))
        peak_hz.append(float(freqs[peak_index]))
        peak_psd.append(peak)
        background_psd.append(background)
        if background > 0:
            ratio_db.append(10 * math.log10(peak / background) if peak > 0 else -math.inf)
        else:
            ratio_db.append(math.inf if peak > 0 else 0.0)
    hits = sum(ratio >= threshold for ratio in ratio_db)
    needed = min(min_harmonics, len(ratio_db))
    return DefectPeak(
        defect_hz=defect,
        peak_hz=tuple(peak_hz),
        peak_psd=tuple(peak_psd),
        background_psd=tuple(background_psd),
        ratio_db=tuple(ratio_db),
        threshold_db=threshold,
        min_harmonics=needed,
        detected=ratio_db[0] >= threshold and hits >= needed,
    )


def detect_bearing_defect(
    values: npt.ArrayLike,
    rate_hz: float,
    defect_hz: float,
    *,
    band_hz: tuple[float, float] | None = None,
    rel_width: float = 0.03,
    background_rel_width: float = 0.3,
    harmonics: int = 3,
    threshold_db: float = 6.0,
    min_harmonics: int = 2,
) -> DefectPeak:
    """Detect a bearing defect: envelope spectrum, then a peak-over-background test at the defect frequency.

    Parameters
    ----------
    values : array_like, 1-D
        Vibration record (acceleration), long enough for a few averages at the needed resolution: about
        ``10 / (defect_hz * rel_width)`` seconds.
    rate_hz : float
        Sampling rate.
    defect_hz : float
        Expected defect frequency, e.g. BPFO from :func:`bearing_frequencies`.
    band_hz : (float, float), optional
        Demodulation band around the structural resonance (see :func:`envelope_spectrum`).
    rel_width, background_rel_width, harmonics, threshold_db, min_harmonics
        As in :func:`defect_peak`.

    Returns
    -------
    DefectPeak

    Notes
    -----
    The envelope is analysed with Welch segments giving a resolution of ``defect_hz * rel_width / 2`` or finer,
    so the peak window spans at least two lines. Method: envelope analysis plus peak-to-background test
    (Randall & Antoni 2011); defect frequencies per ``shared/reference/standards.md`` §3.

    Examples
    --------
    >>> rate_hz, bpfo_hz = 20_000.0, 107.4
    >>> t = np.arange(int(4 * rate_hz)) / rate_hz
    >>> ring = np.exp(-t[:200] * 1_500.0) * np.sin(2 * np.pi * 3_000.0 * t[:200])
    >>> pulses = np.zeros_like(t)
    >>> pulses[(np.arange(0, 4, 1 / bpfo_hz) * rate_hz).astype(int)] = 1.0
    >>> signal = np.convolve(pulses, ring)[: t.size] + np.random.default_rng(0).normal(0, 0.2, t.size)
    >>> detect_bearing_defect(signal, rate_hz, bpfo_hz, band_hz=(2_000.0, 4_000.0)).detected
    True
    >>> detect_bearing_defect(np.random.default_rng(1).normal(0, 0.2, t.size), rate_hz, bpfo_hz,
    ...                       band_hz=(2_000.0, 4_000.0)).detected
    False
    """
    rate = _positive(rate_hz, "rate_hz")
    defect = _positive(defect_hz, "defect_hz")
    width = _relative(rel_width, "rel_width")
    array = _array(values, "values", min_len=32)
    nperseg = _default_nperseg(array.shape[0], rate, defect * width / 2)
    spectrum = envelope_spectrum(array, rate, band_hz=band_hz, nperseg=nperseg)
    return defect_peak(
        spectrum.freqs_hz,
        spectrum.psd,
        defect,
        rel_width=width,
        background_rel_width=background_rel_width,
        harmonics=harmonics,
        threshold_db=threshold_db,
        min_harmonics=min_harmonics,
    )


# ---------------------------------------------------------------------------------------------------------------
# scalar checks


def rms(values: npt.ArrayLike) -> float:
    """Return the root mean square of a non-empty 1-D record.

    Parameters
    ----------
    values : array_like, 1-D
        Finite samples (e.g. motor current in A).

    Returns
    -------
    float
        ``sqrt(mean(x²))``, in the unit of ``values`` (IEC 60050-103 root-mean-square value).

    Examples
    --------
    >>> rms([3.0, -3.0, 3.0, -3.0])
    3.0
    """
    array = _array(values, "values")
    return float(np.sqrt(np.mean(array**2)))


@dataclass(frozen=True, slots=True)
class LinearTrend:
    """Least-squares line ``y = slope * t + intercept`` (slope in y units per t unit) with its statistics."""

    slope: float
    intercept: float
    r_value: float
    p_value: float
    slope_stderr: float
    n: int


def _paired(
    t: npt.ArrayLike, y: npt.ArrayLike, t_name: str, y_name: str, min_len: int
) -> tuple[FloatArray, FloatArray]:
    t_array = _array(t, t_name, min_len=min_len)
    y_array = _array(y, y_name, min_len=min_len)
    if t_array.shape != y_array.shape:
        raise ValueError(f"{t_name} and {y_name} must have the same length, got {t_array.size} and {y_array.size}")
    if float(np.ptp(t_array)) == 0.0:
        raise ValueError(f"{t_name} must not be constant")
    return t_array, y_array


def linear_trend(t: npt.ArrayLike, y: npt.ArrayLike) -> LinearTrend:
    """Fit a least-squares straight line to y(t), e.g. a temperature drift in K per hour.

    Parameters
    ----------
    t, y : array_like, 1-D
        At least 3 finite pairs; t not constant.

    Returns
    -------
    LinearTrend

    Notes
    -----
    Ordinary least squares via ``scipy.stats.linregress``::

        slope = sum((t - t̄)(y - ȳ)) / sum((t - t̄)²),   intercept = ȳ - slope t̄

    ``p_value`` tests slope = 0 (Wald test, t distribution with n - 2 degrees of freedom).

    Examples
    --------
    >>> trend = linear_trend([0.0, 1.0, 2.0, 3.0], [20.0, 22.0, 24.0, 26.0])
    >>> trend.slope, trend.intercept
    (2.0, 20.0)
    """
    t_array, y_array = _paired(t, y, "t", "y", 3)
    fit = scipy.stats.linregress(t_array, y_array)
    return LinearTrend(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r_value=float(fit.rvalue),
        p_value=float(fit.pvalue),
        slope_stderr=float(fit.stderr),
        n=int(t_array.size),
    )


@dataclass(frozen=True, slots=True)
class TemperatureRise:
    """Temperature at the start and end of a run (°C), their difference (K) and whether the end was steady."""

    initial_c: float
    final_c: float
    rise_k: float
    final_slope_k_per_h: float
    steady_state: bool
    n: int


def temperature_rise(
    t_s: npt.ArrayLike,
    temp_c: npt.ArrayLike,
    *,
    start_fraction: float = 0.02,
    end_fraction: float = 0.1,
    steady_slope_k_per_h: float = 2.0,
) -> TemperatureRise:
    """Estimate a run's temperature rise: the fitted final temperature minus the fitted initial temperature.

    Parameters
    ----------
    t_s : array_like, 1-D
        Sample times in seconds (any origin, any order).
    temp_c : array_like, 1-D
        Temperatures in °C, at least 4 samples.
    start_fraction : float, optional
        Share of the time span used for the initial fit (at least 3 samples). Keep it below the heating time
        constant (2 % of a 16 h run-in is 19 min).
    end_fraction : float, optional
        Share of the time span used for the final fit (at least 3 samples).
    steady_slope_k_per_h : float, optional
        The end counts as steady state when the final fit's slope is at most this, in K/h.

    Returns
    -------
    TemperatureRise

    Notes
    -----
    Method (local polynomial regression at the two ends): fit a least-squares quadratic in time to the samples in
    the first ``start_fraction`` of the span and evaluate it at the first time (the initial temperature); fit another
    to the last ``end_fraction`` and evaluate it, and its slope, at the last time::

        rise_k = q_end(t_last) - q_start(t_first)        final_slope_k_per_h = 3600 q_end'(t_last)

    Regression averages sensor noise; the quadratic term follows the curvature of a heating curve
    T(t) = T_inf - (T_inf - T_0) exp(-t / tau), which biases a straight-line fit (by about rise * w² / (12 tau²) for
    a window w) and a plain mean (by about rise * w / (2 tau)) at the start. Windows of 3-4 samples use a straight
    line. The final slope tells whether thermal equilibrium was reached; the 2 K/h default is the
    thermal-equilibrium criterion of IEC 60034-1 for rotating electrical machines (check against a licensed copy).
    A rise measured before equilibrium underestimates the steady-state rise, so a template may require
    ``steady_state``.

    Examples
    --------
    >>> t_s = np.arange(0.0, 7200.0, 60.0)
    >>> temp_c = 25.0 + 30.0 * (1 - np.exp(-t_s / 600.0))      # first-order heating, tau = 10 min
    >>> result = temperature_rise(t_s, temp_c)
    >>> round(result.initial_c, 1), round(result.final_c, 1), round(result.rise_k, 1), result.steady_state
    (25.0, 55.0, 30.0, True)
    """
    t_array, temp_array = _paired(t_s, temp_c, "t_s", "temp_c", 4)
    start_share = _relative(start_fraction, "start_fraction")
    end_share = _relative(end_fraction, "end_fraction")
    steady_limit = _positive(steady_slope_k_per_h, "steady_slope_k_per_h")
    order = np.argsort(t_array, kind="stable")
    t_sorted, temp_sorted = t_array[order], temp_array[order]
    start, end = float(t_sorted[0]), float(t_sorted[-1])
    span = end - start
    first = max(3, int(np.count_nonzero(t_sorted <= start + start_share * span)))
    last = max(3, int(np.count_nonzero(t_sorted >= end - end_share * span)))
    initial_c, _ = _line_at(t_sorted[:first], temp_sorted[:first], start)
    final_c, final_slope_k_per_s = _line_at(t_sorted[-last:], temp_sorted[-last:], end)
    final_slope_k_per_h = final_slope_k_per_s * 3600.0
    return TemperatureRise(
        initial_c=initial_c,
        final_c=final_c,
        rise_k=final_c - initial_c,
        final_slope_k_per_h=final_slope_k_per_h,
        steady_state=abs(final_slope_k_per_h) <= steady_limit,
        n=int(t_array.size),
    )


def _line_at(times: FloatArray, values: FloatArray, at: float) -> tuple[float, float]:
    """Return (fitted value at ``at``, slope there) of a least-squares quadratic (a line below 5 distinct times)."""
    distinct = np.unique(times).size
    if distinct == 1:
        return float(values.mean()), 0.0
    degree = 2 if distinct >= 5 else 1
    # Polynomial.fit maps the window onto [-1, 1], which keeps epoch-sized times well conditioned
    fit = np.polynomial.Polynomial.fit(times, values, degree)
    return float(fit(at)), float(fit.deriv()(at))


def run_in_hours(ts_ms: npt.ArrayLike, *, max_gap_s: float = 60.0) -> float:
    """Return the hours covered by samples, not counting gaps longer than ``max_gap_s``.

    Parameters
    ----------
    ts_ms : array_like, 1-D
        Sample times in epoch milliseconds (any order, duplicates allowed); empty gives 0.
    max_gap_s : float, optional
        Longest interval between consecutive samples still counted as running; pick a few sample periods.

    Returns
    -------
    float
        ``sum(d for d in diff(sorted(unique(ts_ms))) if d <= max_gap_s * 1000) / 3.6e6``.

    Notes
    -----
    Refurbishment practice requires a functional run-in of at least 16 hours (``shared/reference/standards.md`` §7);
    this counts only time the robot was reporting, so a weekend's pause does not count as run-in.

    Examples
    --------
    >>> minute_ms = 60_000
    >>> ts = [0, minute_ms, 2 * minute_ms, 10 * 60 * minute_ms, 10 * 60 * minute_ms + minute_ms]
    >>> round(run_in_hours(ts, max_gap_s=90.0), 4)                 # 3 one-minute steps; the 10 h gap is dropped
    0.05
    """
    gap_s = _positive(max_gap_s, "max_gap_s")
    array = np.asarray(ts_ms, dtype=np.float64) if np.size(ts_ms) else np.zeros(0)
    if array.ndim != 1:
        raise ValueError(f"ts_ms must be 1-D, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("ts_ms must contain only finite numbers")
    if array.size < 2:
        return 0.0
    steps_ms = np.diff(np.unique(array))
    return float(steps_ms[steps_ms <= gap_s * 1000.0].sum()) / 3_600_000.0


# ---------------------------------------------------------------------------------------------------------------
# limit checks


class Comparison(StrEnum):
    """How a measured value must relate to its limit to pass."""

    AT_MOST = "<="
    BELOW = "<"
    AT_LEAST = ">="
    ABOVE = ">"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of a test run: what was measured, the limit, the verdict and a sentence saying why."""

    name: str
    measured: float | None
    limit: float
    comparison: Comparison
    passed: bool
    explanation: str


def evaluate_limit(
    name: str,
    measured: float | None,
    limit: float,
    comparison: Comparison | str,
    *,
    unit: str = "",
) -> CheckResult:
    """Judge a measured value against a limit.

    Parameters
    ----------
    name : str
        Check name, e.g. ``"j3_velocity_rms_mm_s"``.
    measured : float or None
        The measurement; None or a non-finite value (no data) fails the check.
    limit : float
        Finite limit.
    comparison : Comparison or str
        ``"<="``, ``"<"``, ``">="`` or ``">"``: the relation that must hold for a pass.
    unit : str, optional
        Unit shown in the explanation.

    Returns
    -------
    CheckResult

    Notes
    -----
    ``passed = measured <comparison> limit``; a missing measurement never passes.

    Examples
    --------
    >>> result = evaluate_limit("run_in_h", 17.25, 16.0, ">=", unit="h")
    >>> result.passed, result.explanation
    (True, 'run_in_h = 17.25 h, required >= 16 h: pass')
    >>> evaluate_limit("ap_mm", None, 0.2, "<=").explanation
    'ap_mm was not measured (no data): fail'
    """
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    bound = _finite_scalar(limit, "limit")
    try:
        relation = Comparison(comparison)
    except ValueError:
        raise ValueError(
            f"comparison must be one of {[member.value for member in Comparison]}, got {comparison!r}"
        ) from None
    if not isinstance(unit, str):
        raise TypeError("unit must be a string")
    suffix = f" {unit}" if unit else ""
    value: float | None = None
    if measured is not None:
        if isinstance(measured, bool) or not isinstance(measured, int | float | np.integer | np.floating):
            raise TypeError(f"measured must be a real number or None, got {type(measured).__name__}")
        value = float(measured)
    if value is None or not math.isfinite(value):
        return CheckResult(
            name=name,
            measured=value,
            limit=bound,
            comparison=relation,
            passed=False,
            explanation=f"{name} was not measured (no data): fail",
        )
    passed = {
        Comparison.AT_MOST: value <= bound,
        Comparison.BELOW: value < bound,
        Comparison.AT_LEAST: value >= bound,
        Comparison.ABOVE: value > bound,
    }[relation]
    explanation = (
        f"{name} = {value:.6g}{suffix}, required {relation.value} {bound:.6g}{suffix}: {'pass' if passed else 'fail'}"
    )
    return CheckResult(
        name=name, measured=value, limit=bound, comparison=relation, passed=passed, explanation=explanation
    )
