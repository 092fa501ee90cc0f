"""The GP regressor against scikit-learn's GaussianProcessRegressor."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor as SkGP
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from galexplorer.active.gp import GaussianProcessRegressor, GPHyperparameters
from galexplorer.errors import ConfigError


def _data(case: str, n_all=1500, k=8, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_all, k)).astype(np.float32)
    lab = rng.choice(n_all, n, replace=False)
    if case == "smooth":       # long length scale: large cancelling weights, float64 needed
        y = np.clip(np.round(2 + 1.5 * X[lab, 0] + rng.normal(0, 0.5, n)), 0, 5)
    elif case == "cluster":    # a rare bump
        y = np.where(np.linalg.norm(X[lab, :3] - 1, axis=1) < 1.5, 5.0, 0.0)
    else:                      # noise
        y = rng.integers(0, 6, n).astype(float)
    return X, lab, y


def _sklearn(hyper: GPHyperparameters, X, y, optimise=False):
    kernel = ConstantKernel(hyper.amplitude) * Matern(hyper.length_scale, nu=1.5) + WhiteKernel(hyper.noise)
    return SkGP(kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if optimise else None,
                random_state=0).fit(X, y)


@pytest.mark.parametrize("case", ["smooth", "cluster", "noise"])
def test_same_hyperparameters_same_predictions(case):
    X, lab, y = _data(case)
    gp = GaussianProcessRegressor().fit(X[lab], y)
    sk = _sklearn(gp.hyper, X[lab].astype(np.float64), y)
    m_ref, s_ref = sk.predict(X.astype(np.float64), return_std=True)
    np.testing.assert_allclose(gp.predict_mean(X), m_ref, atol=1e-4, rtol=0)
    np.testing.assert_allclose(gp.predict_std(X), s_ref, atol=1e-4, rtol=0)
    # the rows-subset path gives the same values
    rows = np.array([5, 0, 77, 5])
    np.testing.assert_allclose(gp.predict_std(X, rows), s_ref[rows], atol=1e-4, rtol=0)
    assert gp.log_marginal_likelihood() == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-9)


@pytest.mark.parametrize("case", ["smooth", "cluster", "noise"])
def test_fitted_likelihood_at_least_sklearns(case):
    X, lab, y = _data(case, seed=3)
    gp = GaussianProcessRegressor().fit(X[lab], y)
    sk = _sklearn(GPHyperparameters(), X[lab].astype(np.float64), y, optimise=True)
    assert gp.log_marginal_likelihood_value >= sk.log_marginal_likelihood_value_ - 1e-4 * abs(
        sk.log_marginal_likelihood_value_)


def test_learns_in_high_dimensional_features():
    """Standardised PCA features of a real store have ~100 dimensions: labelled points lie ~15
    apart, where scikit-learn's start (length scale 1) is flat and its fit never moves."""
    rng = np.random.default_rng(7)
    k, n_all = 120, 3000
    X = rng.standard_normal((n_all, k)).astype(np.float32)
    X[:150, :10] += 3.0                                 # a rare class, offset in a few dimensions
    truth = np.where(np.arange(n_all) < 150, 5.0, 0.0)
    lab = np.concatenate([rng.choice(150, 10, replace=False), 150 + rng.choice(n_all - 150, 30, replace=False)])
    gp = GaussianProcessRegressor().fit(X[lab], truth[lab])
    sk = _sklearn(GPHyperparameters(), X[lab].astype(np.float64), truth[lab], optimise=True)
    assert sk.kernel_.k1.k2.length_scale == pytest.approx(1.0, rel=1e-3)   # stuck at its start
    assert gp.hyper.length_scale > 3.0
    assert gp.log_marginal_likelihood_value > sk.log_marginal_likelihood_value_ + 1.0
    mean = gp.predict_mean(X)
    unlabelled = np.setdiff1d(np.arange(n_all), lab)
    rare = unlabelled[unlabelled < 150]
    common = unlabelled[unlabelled >= 150]
    assert mean[rare].mean() > mean[common].mean() + 1.0   # it ranks the unlabelled rare objects higher


@pytest.mark.parametrize("case", ["smooth", "cluster", "noise"])
def test_rounding_error_estimates_are_upper_bounds(case):
    X, lab, y = _data(case, seed=1)
    gp64 = GaussianProcessRegressor(precision="float64").fit(X[lab], y)
    ref = gp64.predict_mean(X)
    for mode, estimate in (("float32", gp64.float32_error), ("mixed", gp64.mixed_error)):
        gp = GaussianProcessRegressor(precision=mode).fit(X[lab], y, gp64.hyper, optimise=False)
        assert np.abs(gp.predict_mean(X) - ref).max() <= estimate, mode
    auto = GaussianProcessRegressor(precision="auto", tolerance=1e-4).fit(X[lab], y, gp64.hyper, optimise=False)
    want = "float32" if gp64.float32_error <= 1e-4 else "mixed" if gp64.mixed_error <= 1e-4 else "float64"
    assert auto.mode == want


@pytest.mark.parametrize("case", ["smooth", "cluster", "noise"])
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_std_upper_bounds_hold(case, precision):
    X, lab, y = _data(case, seed=2)
    gp = GaussianProcessRegressor(precision=precision).fit(X[lab], y)
    exact = gp.predict_std(X)
    mean, bound = gp.predict_mean(X, std_bound=True)
    np.testing.assert_array_equal(mean, gp.predict_mean(X))
    assert np.all(bound >= exact)
    assert np.all(gp.std_upper_bound(mean) >= exact - 1e-6)
    assert np.all(exact <= gp.prior_std + 1e-5)
    if case != "noise":  # the low-rank bound is tight where the data are
        assert np.median(bound / exact) < 1.2


def test_threads_and_chunks_do_not_change_results():
    X, lab, y = _data("cluster", seed=4)
    a = GaussianProcessRegressor(n_threads=1, chunk_rows=97).fit(X[lab], y)
    b = GaussianProcessRegressor(n_threads=2, chunk_rows=97).fit(X[lab], y)
    c = GaussianProcessRegressor(n_threads=2, chunk_rows=100000).fit(X[lab], y)
    np.testing.assert_array_equal(a.predict_mean(X), b.predict_mean(X))   # bit-identical across threads
    np.testing.assert_allclose(a.predict_mean(X), c.predict_mean(X), atol=1e-5, rtol=0)


def test_bad_input():
    with pytest.raises(ConfigError, match="at least one"):
        GaussianProcessRegressor().fit(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ConfigError, match="NaN"):
        GaussianProcessRegressor().fit(np.array([[0.0, np.nan]]), np.array([1.0]))
    with pytest.raises(ConfigError, match="precision"):
        GaussianProcessRegressor(precision="float16")


@pytest.mark.parametrize("theta", [(1.0, 1.0, 1.0), (3.0, 0.5, 0.1), (0.2, 4.0, 1e-3)])
def test_gradient_matches_finite_differences(theta):
    from galexplorer.active.gp_likelihood import lml_and_grad as _lml_and_grad
    from galexplorer.active.kernels import pairwise_distances64

    rng = np.random.default_rng(0)
    R = pairwise_distances64(rng.standard_normal((60, 5)))
    y = rng.standard_normal(60)
    t = np.log(theta)
    _, grad = _lml_and_grad(t, R, y, 1e-10)
    h = 1e-5
    num = [(_lml_and_grad(t + h * e, R, y, 1e-10)[0] - _lml_and_grad(t - h * e, R, y, 1e-10)[0]) / (2 * h)
           for e in np.eye(3)]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)


def _with_covariate(seed=0, n_all=1200, n=100):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_all, 6)).astype(np.float32)
    h = np.clip(5 * np.abs(X[:, 1]) / 3 + rng.normal(0, 0.3, n_all), 0, 5)     # an "anomaly score" 0–5
    lab = rng.choice(n_all, n, replace=False)
    y = np.clip(np.round(0.5 + 0.8 * h[lab] + 0.5 * np.sin(2 * X[lab, 0]) + rng.normal(0, 0.4, n)), 0, 5)
    return X, h, lab, y


def test_prior_mean_with_zero_slope_is_the_plain_gp():
    X, h, lab, y = _with_covariate()
    plain = GaussianProcessRegressor().fit(X[lab], y)
    zero = GaussianProcessRegressor().fit(X[lab], y, mean_covariate=h[lab], mean_coef=(0.0, 0.0))
    assert zero.hyper == plain.hyper
    assert zero.log_marginal_likelihood_value == plain.log_marginal_likelihood_value
    np.testing.assert_array_equal(zero.predict_mean(X, mean_covariate=h), plain.predict_mean(X))
    np.testing.assert_array_equal(zero.predict_std(X, np.arange(50)), plain.predict_std(X, np.arange(50)))


def test_prior_mean_agrees_with_sklearn_on_the_residuals():
    """The fitted a + b·h removed from the labels, scikit-learn's GP (same kernel) on the rest,
    and the mean added back: the same predictions, std and likelihood."""
    X, h, lab, y = _with_covariate(seed=2)
    gp = GaussianProcessRegressor(precision="float64").fit(X[lab], y, mean_covariate=h[lab])
    a, b = gp.mean_coef
    assert b > 0.1                                               # the labels do follow h
    r = (y - gp.y_mean) / gp.y_std - a - b * h[lab]              # normalised residuals
    hy = gp.hyper
    kernel = ConstantKernel(hy.amplitude) * Matern(hy.length_scale, nu=1.5) + WhiteKernel(hy.noise)
    sk = SkGP(kernel, normalize_y=False, optimizer=None).fit(X[lab].astype(np.float64), r)
    m_sk, s_sk = sk.predict(X.astype(np.float64), return_std=True)
    expect = gp.y_mean + gp.y_std * (m_sk + a + b * h)
    np.testing.assert_allclose(gp.predict_mean(X, mean_covariate=h), expect, atol=1e-4, rtol=0)
    np.testing.assert_allclose(gp.predict_std(X), s_sk * gp.y_std, atol=1e-4, rtol=0)
    assert gp.log_marginal_likelihood_value == pytest.approx(sk.log_marginal_likelihood_value_, rel=1e-9)
    # (a, b) maximise the likelihood at these hyper-parameters: moving either lowers it
    for da, db in ((0.05, 0), (-0.05, 0), (0, 0.05), (0, -0.05)):
        moved = GaussianProcessRegressor().fit(X[lab], y, hyper=hy, optimise=False, mean_covariate=h[lab],
                                               mean_coef=(a + da, b + db))
        assert moved.log_marginal_likelihood_value < gp.log_marginal_likelihood_value
    # and the joint fit is at least as likely as the plain GP's
    plain = GaussianProcessRegressor().fit(X[lab], y)
    assert gp.log_marginal_likelihood_value >= plain.log_marginal_likelihood_value - 1e-6


def test_prior_mean_slope_held_non_negative():
    X, h, lab, y = _with_covariate(seed=4)
    gp = GaussianProcessRegressor().fit(X[lab], 5 - y, mean_covariate=h[lab])        # labels fall with h
    assert gp.mean_coef[1] == 0.0
    free = GaussianProcessRegressor(nonnegative_slope=False).fit(X[lab], 5 - y, mean_covariate=h[lab])
    assert free.mean_coef[1] < 0
    with pytest.raises(ConfigError, match="mean_covariate"):
        free.predict_mean(X)


@pytest.mark.parametrize("covariate", [False, True])
def test_leave_one_out_matches_refitting_without_each_point(covariate):
    """The closed-form LOO mean and std equal a refit on n − 1 points at the same hyper-parameters."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(25, 3))
    y = np.clip(2 + X[:, 0] + 0.3 * rng.normal(size=25), 0, 5)
    h = rng.uniform(0, 5, 25) if covariate else None
    gp = GaussianProcessRegressor().fit(X, y, mean_covariate=h)
    mean, std = gp.loo_predictions()
    for i in (0, 7, 24):
        keep = np.arange(25) != i
        # the same normalisation, hyper-parameters and prior-mean coefficients, without point i
        other = GaussianProcessRegressor(normalize_y=False).fit(
            X[keep], (y[keep] - gp.y_mean) / gp.y_std, hyper=gp.hyper, optimise=False,
            mean_covariate=None if h is None else h[keep], mean_coef=gp.mean_coef if covariate else None)
        m1 = other.predict_mean(X[i:i + 1], mean_covariate=None if h is None else h[i:i + 1])
        s1 = other.predict_std(X[i:i + 1])
        assert mean[i] == pytest.approx(float(m1[0]) * gp.y_std + gp.y_mean, abs=1e-4)
        assert std[i] == pytest.approx(float(s1[0]) * gp.y_std, rel=1e-4)
