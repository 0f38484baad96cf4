"""Transfer learning as initialization: ``init=`` a fitted estimator, ``freeze=k``, for
NeuralClassifier and ConvNetClassifier."""

import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from neurostat import ConvNetClassifier, NeuralClassifier
from neurostat.datasets import load_digit_pairs, load_digits_except

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def mlp(**kw):
    return NeuralClassifier(**{"hidden_layer_sizes": (16, 8), "max_iter": 10,
                               "learning_rate_init": 1e-2, "batch_size": 64,
                               "random_state": 0, **kw})


def cnn(**kw):
    return ConvNetClassifier(**{"conv_layers": ((4, 3), "pool", (6, 3), "pool"),
                                "dense_layers": (8,), "max_iter": 10, "learning_rate_init": 1e-2,
                                "batch_size": 64, "random_state": 0, **kw})


KINDS = {"mlp": (mlp, lambda X: X.reshape(len(X), -1)), "cnn": (cnn, lambda X: X)}


@pytest.fixture(scope="module", params=list(KINDS))
def setup(request):
    """A source fitted on the eight digits other than 3 and 8, and the 3-vs-8 target data."""
    make, shape = KINDS[request.param]
    Xs, ys = load_digits_except((3, 8))
    source = make(max_iter=30).fit(shape(Xs[:600]), ys[:600])
    X, y = load_digit_pairs(3, 8)
    return make, shape(X[:120]), y[:120], source


def _state(est):
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


def _body_keys(est):
    return list(est.module_.body_state_dict())


def test_copied_weights_are_the_sources(setup):
    make, X, y, source = setup
    before = _state(source)
    # one epoch at a vanishing step: what we see is the initialization
    target = make(init=source, max_iter=1, learning_rate_init=1e-12, random_state=5).fit(X, y)
    after = _state(target)
    for key in _body_keys(source):
        torch.testing.assert_close(after[key], before[key], atol=1e-9, rtol=0)
    # the output layer is new: one logit for two classes instead of seven, freshly initialized
    out_t, out_s = target.module_.output_layer, source.module_.output_layer
    assert out_t.weight.shape[0] == 1 and out_s.weight.shape[0] == 7
    assert not torch.allclose(out_t.weight, out_s.weight[:1])
    # the source is untouched by the target's fit, and the two do not share storage
    for key, value in _state(source).items():
        torch.testing.assert_close(value, before[key], atol=0, rtol=0)
    first = _body_keys(source)[0]
    assert (target.module_.state_dict()[first].data_ptr()
            != source.module_.state_dict()[first].data_ptr())


@pytest.mark.parametrize("freeze", [1, 2])
def test_frozen_layers_do_not_move(setup, freeze):
    make, X, y, source = setup
    target = make(init=source, freeze=freeze, max_iter=60, random_state=1).fit(X, y)
    layers_t = target.module_.body_layers()
    layers_s = source.module_.body_layers()
    for lt, ls in zip(layers_t[:freeze], layers_s[:freeze]):
        assert torch.equal(lt.weight, ls.weight) and torch.equal(lt.bias, ls.bias)
        assert not lt.weight.requires_grad
    for lt, ls in zip(layers_t[freeze:], layers_s[freeze:]):
        assert (lt.weight - ls.weight).abs().max() > 1e-3
    assert target.score(X, y) > 0.85


def test_freeze_with_lbfgs_keeps_the_layer_bitwise():
    Xs, ys = load_digits_except((3, 8))
    X, y = load_digit_pairs(3, 8, flat=True)
    source = mlp().fit(Xs[:600].reshape(600, -1), ys[:600])
    target = mlp(init=source, freeze=1, solver="lbfgs", max_iter=30).fit(X[:120], y[:120])
    first_t, first_s = target.module_.layers[0], source.module_.layers[0]
    assert torch.equal(first_t.weight.float(), first_s.weight)
    assert torch.equal(first_t.bias.float(), first_s.bias)


def test_frozen_layers_do_not_move_under_l1(setup):
    make, X, y, source = setup
    target = make(init=source, freeze=1, alpha=1e-3, l1_ratio=1.0, max_iter=5).fit(X, y)
    lt, ls = target.module_.body_layers()[0], source.module_.body_layers()[0]
    assert torch.equal(lt.weight, ls.weight)


def test_clone_and_cross_validation_share_the_source(setup):
    make, X, y, source = setup
    target = make(init=source, freeze=1, max_iter=60)
    assert clone(target).init is source
    assert cross_val_score(target, X, y, cv=3).min() > 0.75


def test_mismatches_raise_clear_errors():
    Xs, ys = load_digits_except((3, 8))
    Xs = Xs[:300]
    ys = ys[:300]
    X, y = load_digit_pairs(3, 8)
    flat = X.reshape(len(X), -1)[:60]
    y = y[:60]
    source = mlp().fit(Xs.reshape(300, -1), ys)
    with pytest.raises(ValueError, match=r"has shape \(16, 64\) in the fitted estimator but "
                                         r"\(16, 16\) here"):
        mlp(init=source).fit(flat[:, :16], y)
    with pytest.raises(ValueError, match="shape"):
        mlp(init=source, hidden_layer_sizes=(12, 8)).fit(flat, y)
    with pytest.raises(ValueError, match="layers do not match"):
        mlp(init=source, hidden_layer_sizes=(16,)).fit(flat, y)
    with pytest.raises(ValueError, match="layers do not match"):
        cnn(init=source).fit(X[:60], y)
    csource = cnn().fit(Xs, ys)
    with pytest.raises(ValueError, match="shape"):
        cnn(init=csource, conv_layers=((5, 3), "pool", (6, 3), "pool")).fit(X[:60], y)
    with pytest.raises(ValueError, match=r"\(8, 6\) here"):  # 4x4 images: 6 conv features
        cnn(init=csource).fit(X[:60, :4, :4], y)
    with pytest.raises(ValueError, match="freeze=4 but the network has only 3 layers"):
        cnn(init=csource, freeze=4).fit(X[:60], y)
    with pytest.raises(NotFittedError):
        mlp(init=mlp()).fit(flat, y)
