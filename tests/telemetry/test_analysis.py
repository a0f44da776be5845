"""Tests for the pure test-run maths, against the vectors in shared/reference/standards.md and synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from numpy.testing import assert_allclose

from refurb.telemetry.analysis import (
    ISO_10816_ZONES,
    Comparison,
    MachineClass,
    VibrationZone,
    ZoneBoundaries,
    band_energy_ratio,
    bearing_frequencies,
    defect_peak,
    detect_bearing_defect,
    envelope_spectrum,
    evaluate_limit,
    linear_trend,
    pose_accuracy_repeatability,
    pose_stats_by_pose,
    rms,
    run_in_hours,
    temperature_rise,
    velocity_rms_mm_s,
    vibration_zone,
    welch_spectrum,
)

FloatArray = npt.NDArray[np.float64]

# ---------------------------------------------------------------------------------------------------------------
# ISO 9283 (standards.md §2)

ISO_9283_COMMANDED = (500.0, 0.0, 400.0)
ISO_9283_ATTAINED = [
    (500.12, 0.05, 399.91),
    (500.10, 0.07, 399.93),
    (500.15, 0.02, 399.90),
    (500.11, 0.06, 399.95),
    (500.13, 0.04, 399.92),
]


def test_iso_9283_reference_vector() -> None:
    stats = pose_accuracy_repeatability(ISO_9283_COMMANDED, ISO_9283_ATTAINED)
    assert_allclose([stats.ap_mm, stats.rp_mm], [0.152552, 0.070521], atol=5e-7)
    assert_allclose(stats.barycentre_xyz_mm, (500.122, 0.048, 399.922), atol=1e-9)
    assert_allclose(stats.ap_xyz_mm, (0.122, 0.048, -0.078), atol=1e-9)
    assert stats.n == 5
    assert_allclose(stats.rp_mm, stats.mean_l_mm + 3 * stats.std_l_mm)


def test_iso_9283_accepts_one_commanded_row_per_attempt() -> None:
    rows = [ISO_9283_COMMANDED] * 5
    assert pose_accuracy_repeatability(rows, ISO_9283_ATTAINED) == pose_accuracy_repeatability(
        ISO_9283_COMMANDED, ISO_9283_ATTAINED
    )
    rows[2] = (500.1, 0.0, 400.0)
    with pytest.raises(ValueError, match="commanded_xyz_mm rows differ"):
        pose_accuracy_repeatability(rows, ISO_9283_ATTAINED)


@pytest.mark.parametrize(
    ("commanded", "attained", "match"),
    [
        (ISO_9283_COMMANDED, ISO_9283_ATTAINED[:1], "at least 2"),
        (ISO_9283_COMMANDED, [(1.0, 2.0), (1.0, 2.0)], r"shape \(n, 3\)"),
        ((1.0, 2.0), ISO_9283_ATTAINED, "commanded_xyz_mm"),
        (ISO_9283_COMMANDED, [(1.0, 2.0, math.nan), (1.0, 2.0, 3.0)], "finite"),
        ([ISO_9283_COMMANDED] * 4, ISO_9283_ATTAINED, "commanded_xyz_mm must have shape"),
    ],
)
def test_iso_9283_validates(commanded: object, attained: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pose_accuracy_repeatability(commanded, attained)  # type: ignore[arg-type]


def test_pose_report_picks_the_worst_pose() -> None:
    rng = np.random.default_rng(9283)
    cube = {"P1": (0.0, 0.0, 0.0), "P2": (100.0, 100.0, 100.0), "P3": (-100.0, -100.0, -100.0)}
    bias_mm = {"P1": 0.02, "P2": 0.30, "P3": 0.05}
    spread_mm = {"P1": 0.01, "P2": 0.01, "P3": 0.08}
    ids: list[str] = []
    commanded: list[tuple[float, float, float]] = []
    attained: list[FloatArray] = []
    for _cycle in range(30):
        for pose, position in cube.items():
            ids.append(pose)
            commanded.append(position)
            attained.append(np.add(position, bias_mm[pose]) + rng.normal(0, spread_mm[pose], 3))

    report = pose_stats_by_pose(ids, commanded, attained)

    assert [pose for pose, _ in report.by_pose] == ["P1", "P2", "P3"]
    assert report.worst_ap_pose == "P2"
    assert report.worst_rp_pose == "P3"
    assert report.ap_mm == report.stats_for("P2").ap_mm == max(stats.ap_mm for _, stats in report.by_pose)
    assert report.rp_mm == report.stats_for("P3").rp_mm
    assert report.stats_for("P2").ap_mm == pytest.approx(0.30 * math.sqrt(3), abs=0.02)
    assert all(stats.n == 30 for _, stats in report.by_pose)
    with pytest.raises(KeyError):
        report.stats_for("P9")


def test_pose_report_validates() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        pose_stats_by_pose(["P1", "P1", "P2"], [(0, 0, 0)] * 3, [(0, 0, 0)] * 3)
    with pytest.raises(ValueError, match="same rows"):
        pose_stats_by_pose(["P1", "P1"], [(0, 0, 0)] * 3, [(0, 0, 0)] * 3)
    with pytest.raises(TypeError, match=r"pose_ids\[1\]"):
        pose_stats_by_pose(["P1", ""], [(0, 0, 0)] * 2, [(0, 0, 0)] * 2)


# ---------------------------------------------------------------------------------------------------------------
# bearing defect frequencies (standards.md §3)


def test_cwru_6205_defect_orders() -> None:
    f = bearing_frequencies(1.0, 9, 0.3126, 1.537)
    # published CWRU orders; the formula agrees to within 1e-4 relative (the table's last digit is rounded upstream)
    assert_allclose([f.ftf_hz, f.bpfo_hz, f.bpfi_hz, 2 * f.bsf_hz], [0.39828, 3.5848, 5.4152, 4.7135], rtol=1e-4)
    assert_allclose(f.bpfo_hz + f.bpfi_hz, 9.0)  # N f_r
    assert_allclose(f.bpfo_hz, 9 * f.ftf_hz)


def test_bearing_frequencies_scale_with_shaft_speed_and_contact_angle() -> None:
    orders = bearing_frequencies(1.0, 9, 0.3126, 1.537)
    at_speed = bearing_frequencies(29.95, 9, 0.3126, 1.537)
    assert_allclose(at_speed.bpfo_hz, 29.95 * orders.bpfo_hz)
    angled = bearing_frequencies(1.0, 9, 0.3126, 1.537, contact_angle_deg=15.0)
    assert angled.bpfo_hz > orders.bpfo_hz  # cos(phi) < 1 shrinks d/D
    assert angled.bpfi_hz < orders.bpfi_hz


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0, 9, 0.3, 1.5), "shaft_hz"),
        ((1.0, 0, 0.3, 1.5), "n_elements"),
        ((1.0, 9.5, 0.3, 1.5), "n_elements"),
        ((1.0, 9, 1.5, 1.5), "smaller than pitch_d"),
        ((1.0, 9, -0.3, 1.5), "ball_d"),
        ((1.0, 9, 0.3, 1.5, 90.0), "contact_angle_deg"),
        ((math.inf, 9, 0.3, 1.5), "shaft_hz"),
    ],
)
def test_bearing_frequencies_validate(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bearing_frequencies(*args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# vibration velocity and zones


def sine(freq_hz: float, amplitude: float, rate_hz: float, duration_s: float, phase: float = 0.3) -> FloatArray:
    t = np.arange(int(rate_hz * duration_s)) / rate_hz
    return amplitude * np.sin(2 * np.pi * freq_hz * t + phase)


@pytest.mark.parametrize("freq_hz", [12.3, 50.0, 100.0, 333.3, 987.0])
@pytest.mark.parametrize("duration_s", [1.0, 3.7])
def test_velocity_of_a_sine_is_a_over_2_pi_f(freq_hz: float, duration_s: float) -> None:
    accel_amplitude_m_s2 = 3.0
    expected_mm_s = accel_amplitude_m_s2 / (2 * np.pi * freq_hz) / math.sqrt(2) * 1000.0
    measured = velocity_rms_mm_s(sine(freq_hz, accel_amplitude_m_s2, 25_600.0, duration_s), 25_600.0)
    assert_allclose(measured, expected_mm_s, rtol=5e-3 if freq_hz * duration_s < 30 else 1e-3)


def test_velocity_ignores_out_of_band_content_and_offsets() -> None:
    rate_hz = 10_000.0
    in_band = sine(100.0, 2.0, rate_hz, 2.0)
    polluted = in_band + sine(2.0, 5.0, rate_hz, 2.0) + sine(3_000.0, 5.0, rate_hz, 2.0) + 9.81
    assert_allclose(velocity_rms_mm_s(polluted, rate_hz), velocity_rms_mm_s(in_band, rate_hz), rtol=5e-3)


def test_velocity_of_two_sines_adds_in_quadrature() -> None:
    rate_hz = 10_000.0
    a = sine(60.0, 4.0, rate_hz, 2.0)
    b = sine(400.0, 10.0, rate_hz, 2.0, phase=1.1)
    expected = math.hypot(velocity_rms_mm_s(a, rate_hz), velocity_rms_mm_s(b, rate_hz))
    assert_allclose(velocity_rms_mm_s(a + b, rate_hz), expected, rtol=1e-3)


def test_velocity_custom_band_and_nyquist_edge() -> None:
    signal = sine(150.0, 1.0, 2_000.0, 2.0)
    assert velocity_rms_mm_s(signal, 2_000.0, band_hz=(10.0, 1000.0)) > 0
    assert velocity_rms_mm_s(signal, 2_000.0, band_hz=(200.0, 900.0)) < 0.01 * velocity_rms_mm_s(signal, 2_000.0)


@pytest.mark.parametrize(
    ("signal", "rate_hz", "band_hz", "match"),
    [
        (np.zeros(20_000), 1_500.0, (10.0, 1000.0), "Nyquist"),
        (np.zeros(100), 10_000.0, (10.0, 1000.0), "at least 0.1 s"),
        (np.zeros(20_000), 10_000.0, (500.0, 100.0), "high > low"),
        (np.zeros(20_000), 10_000.0, (0.0, 100.0), r"band_hz\[0\]"),
        (np.array([0.0, math.nan] * 10_000), 10_000.0, (10.0, 1000.0), "accel_m_s2"),
        (np.zeros((2, 10_000)), 10_000.0, (10.0, 1000.0), "1-D"),
        (np.zeros(20_000), -1.0, (10.0, 1000.0), "rate_hz"),
    ],
)
def test_velocity_validates(signal: FloatArray, rate_hz: float, band_hz: tuple[float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        velocity_rms_mm_s(signal, rate_hz, band_hz)


@pytest.mark.parametrize("machine_class", list(MachineClass))
def test_zone_boundaries_stay_in_the_lower_zone(machine_class: MachineClass) -> None:
    bounds = ISO_10816_ZONES[machine_class]
    assert bounds.source
    assert vibration_zone(0.0, machine_class) is VibrationZone.A
    for boundary, lower, upper in (
        (bounds.a_b_mm_s, VibrationZone.A, VibrationZone.B),
        (bounds.b_c_mm_s, VibrationZone.B, VibrationZone.C),
        (bounds.c_d_mm_s, VibrationZone.C, VibrationZone.D),
    ):
        assert vibration_zone(boundary, machine_class) is lower
        assert vibration_zone(math.nextafter(boundary, math.inf), machine_class) is upper


def test_zone_table_matches_the_reference() -> None:
    table = {cls.value: (b.a_b_mm_s, b.b_c_mm_s, b.c_d_mm_s) for cls, b in ISO_10816_ZONES.items()}
    assert table == {
        "iso10816-1_class_i": (0.71, 1.8, 4.5),
        "iso10816-1_class_ii": (1.12, 2.8, 7.1),
        "iso10816-3_group2_rigid": (1.4, 2.8, 4.5),
        "iso10816-3_group2_flexible": (2.3, 4.5, 7.1),
    }
    with pytest.raises(TypeError):
        ISO_10816_ZONES[MachineClass.ISO10816_1_CLASS_I] = ISO_10816_ZONES[MachineClass.ISO10816_1_CLASS_II]  # type: ignore[index]


def test_zone_accepts_strings_and_custom_tables() -> None:
    assert vibration_zone(3.0, "iso10816-1_class_i") is VibrationZone.C
    custom = {MachineClass.ISO10816_1_CLASS_I: ZoneBoundaries(MachineClass.ISO10816_1_CLASS_I, 1, 2, 3, "site rule")}
    assert vibration_zone(3.0, MachineClass.ISO10816_1_CLASS_I, table=custom) is VibrationZone.C
    with pytest.raises(ValueError, match="no row"):
        vibration_zone(3.0, MachineClass.ISO10816_1_CLASS_II, table=custom)
    with pytest.raises(ValueError, match="machine_class must be one of"):
        vibration_zone(1.0, "class_v")
    with pytest.raises(ValueError, match="velocity_rms_mm_s"):
        vibration_zone(-0.1, "iso10816-1_class_i")
    with pytest.raises(ValueError, match="must increase"):
        ZoneBoundaries(MachineClass.ISO10816_1_CLASS_I, 2, 1, 3, "bad")


def test_class_i_motor_with_a_sine_vibration_lands_in_its_zone() -> None:
    accel = sine(50.0, 2 * np.pi * 50.0 * 1.0e-3 * math.sqrt(2), 10_000.0, 2.0)  # 1.0 mm/s RMS at 50 Hz
    velocity = velocity_rms_mm_s(accel, 10_000.0)
    assert_allclose(velocity, 1.0, rtol=2e-3)
    assert vibration_zone(velocity, MachineClass.ISO10816_1_CLASS_I) is VibrationZone.B


# ---------------------------------------------------------------------------------------------------------------
# spectra and bearing-fault detection

RATE_HZ = 20_000.0
SHAFT_HZ = 29.95  # 1797 rpm, the CWRU test rig
CWRU = bearing_frequencies(SHAFT_HZ, 9, 0.3126, 1.537)
RESONANCE_BAND_HZ = (2_000.0, 4_000.0)


def impacts(rng: np.random.Generator, rate_hz_of_impacts: float, *, noise: float = 0.5, duration_s: float = 4.0,
            slip: float = 0.0) -> FloatArray:  # fmt: skip
    """Impacts at a defect frequency ringing a 3 kHz resonance, plus shaft imbalance and white noise."""
    n = int(RATE_HZ * duration_s)
    ring_t = np.arange(int(0.005 * RATE_HZ)) / RATE_HZ
    ring = np.exp(-ring_t * 1_500.0) * np.sin(2 * np.pi * 3_000.0 * ring_t)
    period_s = 1.0 / (rate_hz_of_impacts * (1 + slip))
    times = np.arange(0.0, duration_s, period_s)
    times = times + rng.normal(0, 0.01 * period_s, times.size)  # rolling elements slip a little
    pulses = np.zeros(n)
    index = (times * RATE_HZ).astype(int)
    pulses[index[(index >= 0) & (index < n)]] = 1.0
    return np.convolve(pulses, ring)[:n] + healthy(rng, noise=noise, duration_s=duration_s)


def healthy(rng: np.random.Generator, *, noise: float = 0.5, duration_s: float = 4.0) -> FloatArray:
    n = int(RATE_HZ * duration_s)
    t = np.arange(n) / RATE_HZ
    return 0.3 * np.sin(2 * np.pi * SHAFT_HZ * t) + rng.normal(0, noise, n)


def test_welch_spectrum_finds_the_line_and_keeps_the_power() -> None:
    signal = sine(50.0, 2.0, 1_024.0, 8.0) + np.random.default_rng(0).normal(0, 0.1, 8192)
    spectrum = welch_spectrum(signal, 1_024.0)
    assert spectrum.resolution_hz == 1.0
    assert spectrum.freqs_hz[np.argmax(spectrum.psd)] == 50.0
    assert_allclose(spectrum.psd.sum() * spectrum.resolution_hz, signal.var(), rtol=0.05)
    assert welch_spectrum(signal, 1_024.0, nperseg=256).resolution_hz == 4.0
    with pytest.raises(ValueError, match="nperseg"):
        welch_spectrum(signal, 1_024.0, nperseg=4)


@pytest.mark.parametrize("seed", range(5))
def test_outer_race_fault_is_detected(seed: int) -> None:
    signal = impacts(np.random.default_rng(seed), CWRU.bpfo_hz)
    result = detect_bearing_defect(signal, RATE_HZ, CWRU.bpfo_hz, band_hz=RESONANCE_BAND_HZ)
    assert result.detected
    assert result.peak_hz[0] == pytest.approx(CWRU.bpfo_hz, rel=0.01)
    assert all(ratio > 10.0 for ratio in result.ratio_db)


def test_outer_race_fault_is_detected_with_slip_and_without_a_demodulation_band() -> None:
    signal = impacts(np.random.default_rng(11), CWRU.bpfo_hz, slip=-0.015)
    assert detect_bearing_defect(signal, RATE_HZ, CWRU.bpfo_hz, band_hz=RESONANCE_BAND_HZ).detected
    assert detect_bearing_defect(signal, RATE_HZ, CWRU.bpfo_hz).detected


@pytest.mark.parametrize("seed", range(20))
def test_healthy_bearing_is_not_flagged(seed: int) -> None:
    signal = healthy(np.random.default_rng(1000 + seed))
    result = detect_bearing_defect(signal, RATE_HZ, CWRU.bpfo_hz, band_hz=RESONANCE_BAND_HZ)
    assert not result.detected
    assert result.ratio_db[0] < 6.0 or sum(r >= 6.0 for r in result.ratio_db) < 2


def test_inner_race_fault_does_not_read_as_outer_race() -> None:
    signal = impacts(np.random.default_rng(5), CWRU.bpfi_hz)
    assert detect_bearing_defect(signal, RATE_HZ, CWRU.bpfi_hz, band_hz=RESONANCE_BAND_HZ).detected
    assert not detect_bearing_defect(signal, RATE_HZ, CWRU.bpfo_hz, band_hz=RESONANCE_BAND_HZ).detected


def test_band_energy_ratio_separates_faulty_from_healthy() -> None:
    centres = [CWRU.bpfo_hz]
    faulty_env = envelope_spectrum(impacts(np.random.default_rng(2), CWRU.bpfo_hz), RATE_HZ, band_hz=RESONANCE_BAND_HZ)
    healthy_env = envelope_spectrum(healthy(np.random.default_rng(2)), RATE_HZ, band_hz=RESONANCE_BAND_HZ)
    faulty_ratio = band_energy_ratio(faulty_env.freqs_hz, faulty_env.psd, centres)
    healthy_ratio = band_energy_ratio(healthy_env.freqs_hz, healthy_env.psd, centres)
    assert 0.0 <= healthy_ratio < 0.05 < 0.15 < faulty_ratio <= 1.0


def test_band_energy_ratio_on_a_flat_spectrum_is_the_band_share() -> None:
    freqs = np.arange(0.0, 1001.0)
    psd = np.ones_like(freqs)
    # bands 100 ± 3, 200 ± 6, 300 ± 9 -> 7 + 13 + 19 lines out of 1000 positive-frequency lines
    assert_allclose(band_energy_ratio(freqs, psd, [100.0]), 39 / 1000)
    # overlapping centres are counted once
    assert_allclose(band_energy_ratio(freqs, psd, [100.0, 100.5], harmonics=1), 7 / 1000)
    assert band_energy_ratio(freqs, np.zeros_like(freqs), [100.0]) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"centres_hz": [0.0]}, "centres_hz"),
        ({"rel_width": 0.6}, "rel_width"),
        ({"harmonics": 0}, "harmonics"),
        ({"psd": -np.ones(11)}, "psd must be >= 0"),
        ({"freqs_hz": np.arange(10.0)}, "same shape"),
        ({"freqs_hz": np.zeros(11)}, "strictly increasing"),
    ],
)
def test_band_energy_ratio_validates(kwargs: dict[str, object], match: str) -> None:
    arguments: dict[str, object] = {"freqs_hz": np.arange(11.0), "psd": np.ones(11), "centres_hz": [2.0]}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=match):
        band_energy_ratio(**arguments)  # type: ignore[arg-type]


def test_defect_peak_needs_enough_background_and_range() -> None:
    freqs = np.arange(0.0, 400.0, 10.0)
    with pytest.raises(ValueError, match="background lines"):
        defect_peak(freqs, np.ones_like(freqs), 20.0)
    with pytest.raises(ValueError, match="beyond the spectrum"):
        defect_peak(freqs, np.ones_like(freqs), 350.0)
    with pytest.raises(ValueError, match="min_harmonics"):
        defect_peak(freqs, np.ones_like(freqs), 100.0, min_harmonics=4)


def test_defect_peak_skips_harmonics_past_the_last_line() -> None:
    freqs = np.arange(0.0, 260.0, 0.5)
    psd = np.ones_like(freqs)
    psd[freqs == 100.0] = 10.0
    result = defect_peak(freqs, psd, 100.0, harmonics=3)
    assert len(result.ratio_db) == 1
    assert result.min_harmonics == 1
    assert result.detected


# ---------------------------------------------------------------------------------------------------------------
# scalar checks


def test_rms() -> None:
    assert rms([3.0, -3.0]) == 3.0
    assert_allclose(rms(sine(50.0, 2.0, 1000.0, 1.0)), 2.0 / math.sqrt(2))
    with pytest.raises(ValueError, match="at least 1"):
        rms([])
    with pytest.raises(ValueError, match="finite"):
        rms([1.0, math.inf])


def test_linear_trend() -> None:
    t_h = np.arange(0.0, 16.0, 0.25)
    noise = np.random.default_rng(4).normal(0, 0.2, t_h.size)
    trend = linear_trend(t_h, 35.0 + 0.5 * t_h + noise)
    assert trend.slope == pytest.approx(0.5, abs=0.03)
    assert trend.intercept == pytest.approx(35.0, abs=0.2)
    assert trend.p_value < 1e-6
    assert trend.n == t_h.size
    with pytest.raises(ValueError, match="t must not be constant"):
        linear_trend([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="same length"):
        linear_trend([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])


def test_temperature_rise_of_a_motor_reaching_equilibrium() -> None:
    t_s = np.arange(0.0, 16 * 3600.0, 10.0)
    rng = np.random.default_rng(7)
    temp_c = 24.0 + 35.0 * (1 - np.exp(-t_s / 1800.0)) + rng.normal(0, 0.1, t_s.size)
    result = temperature_rise(t_s, temp_c)
    assert result.rise_k == pytest.approx(35.0, abs=0.3)
    assert result.initial_c == pytest.approx(24.0, abs=0.5)
    assert result.steady_state
    shuffled = rng.permutation(t_s.size)
    assert temperature_rise(t_s[shuffled], temp_c[shuffled]) == result


def test_temperature_rise_still_climbing_is_not_steady() -> None:
    t_s = np.arange(0.0, 3600.0, 10.0)
    temp_c = 24.0 + 35.0 * (1 - np.exp(-t_s / 1800.0))
    result = temperature_rise(t_s, temp_c)
    assert not result.steady_state
    assert result.final_slope_k_per_h > 2.0
    assert result.rise_k == pytest.approx(35.0 * (1 - math.exp(-3590 / 1800)), abs=0.2)


def test_temperature_rise_of_a_cooling_run_is_negative() -> None:
    t_s = np.linspace(0.0, 1000.0, 50)
    assert temperature_rise(t_s, 60.0 - 0.01 * t_s).rise_k == pytest.approx(-10.0)


def test_temperature_rise_validates() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        temperature_rise([0.0, 1.0, 2.0], [20.0, 21.0, 22.0])
    with pytest.raises(ValueError, match="start_fraction"):
        temperature_rise(np.arange(10.0), np.arange(10.0), start_fraction=0.9)


def test_run_in_hours() -> None:
    second_ms = 1000
    sixteen_hours_ms = np.arange(0, 16 * 3600 * second_ms + 1, second_ms)
    assert run_in_hours(sixteen_hours_ms) == pytest.approx(16.0)
    # a 2-hour pause in the middle is not run-in; duplicates and order do not matter
    paused = np.concatenate([np.arange(0, 3600_000 + 1, 1000), np.arange(3 * 3600_000, 4 * 3600_000 + 1, 1000)])
    shuffled = np.random.default_rng(1).permutation(np.concatenate([paused, paused[:100]]))
    assert run_in_hours(shuffled) == pytest.approx(2.0)
    assert run_in_hours(paused, max_gap_s=3 * 3600) == pytest.approx(4.0)
    assert run_in_hours([]) == 0.0
    assert run_in_hours([5]) == 0.0
    with pytest.raises(ValueError, match="max_gap_s"):
        run_in_hours([0, 1], max_gap_s=0)
    with pytest.raises(ValueError, match="1-D"):
        run_in_hours([[0, 1]])


@pytest.mark.parametrize(
    ("measured", "comparison", "passed"),
    [
        (1.8, "<=", True),
        (1.81, "<=", False),
        (1.8, "<", False),
        (1.79, "<", True),
        (1.8, ">=", True),
        (1.79, ">=", False),
        (1.8, ">", False),
        (1.81, ">", True),
    ],
)
def test_evaluate_limit_comparisons(measured: float, comparison: str, passed: bool) -> None:
    result = evaluate_limit("j3_velocity_rms_mm_s", measured, 1.8, comparison, unit="mm/s")
    assert result.passed is passed
    assert result.comparison is Comparison(comparison)
    assert result.measured == measured
    assert result.limit == 1.8
    assert result.explanation.endswith("pass" if passed else "fail")
    assert "mm/s" in result.explanation


@pytest.mark.parametrize("measured", [None, math.nan, math.inf])
def test_evaluate_limit_without_a_measurement_fails(measured: float | None) -> None:
    result = evaluate_limit("ap_mm", measured, 0.2, Comparison.AT_MOST)
    assert not result.passed
    assert "not measured" in result.explanation


def test_evaluate_limit_validates() -> None:
    with pytest.raises(ValueError, match="comparison"):
        evaluate_limit("x", 1.0, 2.0, "==")
    with pytest.raises(ValueError, match="limit"):
        evaluate_limit("x", 1.0, math.nan, "<=")
    with pytest.raises(ValueError, match="name"):
        evaluate_limit("", 1.0, 2.0, "<=")
    with pytest.raises(TypeError, match="measured"):
        evaluate_limit("x", "1.0", 2.0, "<=")  # type: ignore[arg-type]
