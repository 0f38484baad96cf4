"""Smoothers against R's supsmu, scipy's smoothing splines and brute-force closed forms."""

import numpy as np
import pytest
from scipy.interpolate import make_smoothing_spline

from neurostat.ppr.smoothers import gcv_spline, running_line, smoothing_spline, spline_df, supsmu

# Reference values from R 4.2 (stats::supsmu, Friedman's Fortran), produced by:
#   x <- (1:40)^1.3 / 40^1.3; y <- sin(6 * x) + 0.3 * cos(37 * x^2); w <- 1 + (1:40 %% 3)
#   supsmu(x, y)$y; supsmu(x, y, bass = 5)$y; supsmu(x, y, span = 0.3)$y; supsmu(x, y, wt = w)$y
#   ties: x <- round(((1:60)^1.3 / 60^1.3) * 12) / 12
#         y <- sin(6 * x) + 0.3 * cos(37 * (1:60)^2 / 3600)
#         supsmu(x, y)$y   (one value per unique x)
R_SUPSMU = np.array([
    0.353838914405, 0.421416180045, 0.500389189128, 0.585096575243, 0.670762975301,
    0.752498056079, 0.825061501107, 0.883036933246, 0.921298002853, 0.936083607967,
    0.926479187762, 0.895952239327, 0.853175241069, 0.811019616234, 0.782749697213,
    0.775611866055, 0.784293011063, 0.788952383560, 0.762064880656, 0.682889537567,
    0.552790726888, 0.388658809275, 0.208614279250, 0.031171536892, -0.127043025846,
    -0.267585678654, -0.401116459590, -0.522445040638, -0.627564709646, -0.726479231794,
    -0.800382757120, -0.839116499128, -0.861314215738, -0.856310860841, -0.808541051489,
    -0.740703549166, -0.663273244805, -0.563718991241, -0.454306943772, -0.344049940796
])

R_SUPSMU_BASS5 = np.array([
    0.353839163339, 0.421416177394, 0.500388892467, 0.585095722109, 0.670760698121,
    0.752490640029, 0.825038085164, 0.882989110601, 0.921220083141, 0.935977529140,
    0.926375055609, 0.895925425006, 0.853350724440, 0.811514559588, 0.783402633267,
    0.775795435282, 0.781738099109, 0.780263148441, 0.746763287157, 0.668517602134,
    0.549901726530, 0.397688736628, 0.223487355137, 0.049068953462, -0.107599954659,
    -0.253824782151, -0.388830317901, -0.499221305473, -0.591099015241, -0.686986209252,
    -0.762967764486, -0.807745060291, -0.839499092050, -0.844223008366, -0.803703478964,
    -0.742470815722, -0.671306789889, -0.578491257805, -0.476078206477, -0.372874250731
])

R_SUPSMU_SPAN03 = np.array([
    0.489959090205, 0.522049866253, 0.559552199683, 0.601066625555, 0.645844753328,
    0.693408202134, 0.743420216012, 0.782831434293, 0.809916692583, 0.827294116251,
    0.839595753922, 0.851290624561, 0.863122312952, 0.868888482105, 0.855877722772,
    0.811760630460, 0.735880800003, 0.645192588831, 0.563316830277, 0.495929293397,
    0.419928631385, 0.311321392907, 0.183627100699, 0.069305334216, -0.043897781990,
    -0.198447246473, -0.369837715708, -0.492322596309, -0.584542373621, -0.672919013069,
    -0.707134055515, -0.732917790235, -0.791659416955, -0.781249714859, -0.742971599109,
    -0.704363936782, -0.665433164189, -0.626185420596, -0.586626569429, -0.546762217452
])

R_SUPSMU_WT = np.array([
    0.353399704968, 0.421108088175, 0.500234325547, 0.585881331232, 0.672750605306,
    0.752186825739, 0.827721423220, 0.888365570613, 0.920720748445, 0.940075096891,
    0.932943701293, 0.895779425774, 0.852223466984, 0.807574086966, 0.783841312940,
    0.770551209555, 0.778722544902, 0.787811564699, 0.777605930240, 0.707158590155,
    0.547277075014, 0.371857950022, 0.187009672477, 0.026828141808, -0.125223109007,
    -0.261916783968, -0.403813970114, -0.541499539444, -0.661408373205, -0.747796630734,
    -0.818100295585, -0.846660401141, -0.841730894553, -0.818624808267, -0.765944271056,
    -0.688132521896, -0.603326514715, -0.485087821076, -0.346452757771, -0.206747058619
])

R_SUPSMU_TIES = np.array([
    0.297762866577, 0.662290146962, 0.651282930902, 0.910372257757, 1.090753009891,
    0.367716418496, 0.311177688685, -0.534674576025, -0.692111530520, -0.884346462251,
    -1.081434588462, -0.683353562210, -0.216231205241
])


def _r_data():
    i = np.arange(1, 41)
    x = i**1.3 / 40**1.3
    return x, np.sin(6 * x) + 0.3 * np.cos(37 * x**2), 1.0 + i % 3


@pytest.mark.parametrize(
    "kwargs, ref",
    [({}, R_SUPSMU), ({"bass": 5}, R_SUPSMU_BASS5), ({"span": 0.3}, R_SUPSMU_SPAN03),
     ({"weights": True}, R_SUPSMU_WT)],
    ids=["cv", "bass5", "span0.3", "weights"],
)
def test_supsmu_matches_r(kwargs, ref):
    x, y, w = _r_data()
    # a shuffled input must give the same smooth at each x
    perm = np.random.default_rng(0).permutation(x.size)
    if kwargs.pop("weights", False):
        kwargs["w"] = w[perm]
    fit = np.empty_like(x)
    fit[perm] = supsmu(x[perm], y[perm], **kwargs)
    np.testing.assert_allclose(fit, ref, rtol=0, atol=1e-8)


def test_supsmu_matches_r_with_ties():
    i = np.arange(1, 61)
    x = np.round(i**1.3 / 60**1.3 * 12) / 12
    y = np.sin(6 * x) + 0.3 * np.cos(37 * i**2 / 3600)
    fit = supsmu(x, y)
    ux, first = np.unique(x, return_index=True)
    # tied x get one common value
    for u in ux:
        assert np.ptp(fit[x == u]) < 1e-12
    np.testing.assert_allclose(fit[first], R_SUPSMU_TIES, rtol=0, atol=1e-8)


@pytest.mark.parametrize("span", [0.05, 0.2, 0.5])
def test_running_line_is_local_least_squares(span):
    rng = np.random.default_rng(1)
    n = 50
    x = np.sort(rng.uniform(0, 3, n))
    y = np.sin(2 * x) + rng.normal(0, 0.3, n)
    w = rng.uniform(0.5, 2.0, n)
    ibw = max(int(0.5 * span * n + 0.5), 2)
    k = min(2 * ibw + 1, n)
    brute = np.empty(n)
    for i in range(n):
        lo = min(max(i - ibw, 0), n - k)
        sl = slice(lo, lo + k)
        brute[i] = np.polyval(np.polyfit(x[sl], y[sl], 1, w=np.sqrt(w[sl])), x[i])
    np.testing.assert_allclose(running_line(x, y, w, span=span), brute, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kwargs", [{}, {"bass": 10}, {"span": 0.1}])
def test_supsmu_reproduces_straight_lines(kwargs):
    x = np.random.default_rng(2).uniform(-1, 4, 80)
    np.testing.assert_allclose(supsmu(x, 3 - 2 * x, **kwargs), 3 - 2 * x, atol=1e-10)


def test_supsmu_bass_makes_smoother_fits_and_cv_tracks_truth():
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 1, 400))
    truth = np.sin(4 * np.pi * x)
    y = truth + rng.normal(0, 0.5, x.size)
    plain, bassy = supsmu(x, y), supsmu(x, y, bass=10)
    # roughness: sum of squared second differences
    assert np.sum(np.diff(bassy, 2) ** 2) < np.sum(np.diff(plain, 2) ** 2)
    # the noise variance is 0.25; a sensible smooth is far closer to the truth than y is
    assert np.mean((plain - truth) ** 2) < 0.05


def test_smoothing_spline_all_knots_equals_scipy():
    rng = np.random.default_rng(4)
    n = 60
    x = np.sort(rng.uniform(0, 3, n))
    y = np.sin(2 * x) + rng.normal(0, 0.3, n)
    w = rng.uniform(0.5, 2, n)
    fit, lam = smoothing_spline(x, y, w, df=6, n_knots=None, return_lam=True)
    ref = make_smoothing_spline(x, y, w=w, lam=lam)
    np.testing.assert_allclose(fit, ref(x), rtol=0, atol=1e-8)
    # df is the trace of scipy's hat matrix, built column by column
    hat = np.column_stack([make_smoothing_spline(x, e, w=w, lam=lam)(x) for e in np.eye(n)])
    assert np.trace(hat) == pytest.approx(6.0, abs=1e-6)
    assert spline_df(x, w, lam=lam) == pytest.approx(np.trace(hat), abs=1e-8)


def test_smoothing_spline_gcv_matches_scipy_gcv():
    rng = np.random.default_rng(5)
    x = np.sort(rng.uniform(0, 3, 80))
    y = np.sin(2 * x) + rng.normal(0, 0.3, 80)
    ours = smoothing_spline(x, y, df=None, n_knots=None)
    np.testing.assert_allclose(ours, make_smoothing_spline(x, y)(x), atol=1e-4)
    np.testing.assert_allclose(gcv_spline(x, y), make_smoothing_spline(x, y)(x), atol=1e-12)


def test_smoothing_spline_integer_weights_equal_repeated_rows():
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 1, 40)
    y = np.cos(5 * x) + rng.normal(0, 0.2, 40)
    w = rng.integers(1, 4, 40)
    fw = smoothing_spline(x, y, w.astype(float), df=5, n_knots=None)
    fr = smoothing_spline(np.repeat(x, w), np.repeat(y, w), df=5, n_knots=None)
    np.testing.assert_allclose(np.repeat(fw, w), fr, atol=1e-8)


def test_smoothing_spline_df_limits():
    x = np.linspace(0, 1, 30)
    y = x**3
    line = smoothing_spline(x, y, df=2, n_knots=None)
    np.testing.assert_allclose(line, np.polyval(np.polyfit(x, y, 1), x), atol=1e-8)
    reduced, lam = smoothing_spline(x, y, df=4.5, n_knots=8, return_lam=True)
    assert spline_df(x, lam=lam, n_knots=8) == pytest.approx(4.5, abs=1e-8)


def test_bad_input_raises():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="same length"):
        supsmu(x, x[:-1])
    with pytest.raises(ValueError, match="bass"):
        supsmu(x, x, bass=11)
    with pytest.raises(ValueError, match="non-negative"):
        supsmu(x, x, w=-np.ones(10))
    with pytest.raises(ValueError, match="finite"):
        supsmu(np.r_[x[:-1], np.nan], x)
    with pytest.raises(ValueError, match="df"):
        smoothing_spline(x, x, df=1)
