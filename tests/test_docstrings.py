"""Numpydoc docstrings on every public name (issue 11, item 5).

The walk: every public module of the package (no path component starting with ``_``), every
class and function defined there whose name does not start with ``_``, and every public method
and property of those classes. A name is documented when :func:`inspect.getdoc` finds a
docstring for it, its own or inherited (an override of a documented base method counts).
"""

import importlib
import inspect
import pkgutil
import re
import warnings

import pytest
from sklearn.base import BaseEstimator

import neurostat


def _public_modules():
    """The public modules of the package, imported (an import error fails the test)."""
    out = []
    for info in pkgutil.walk_packages(neurostat.__path__, "neurostat."):
        parts = info.name.split(".")[1:]
        if any(p.startswith("_") for p in parts):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation shims warn on import
            out.append(importlib.import_module(info.name))
    return out


def _own_public(mod):
    """``(name, object)`` of the classes and functions ``mod`` defines, public names only."""
    return [(k, v) for k, v in vars(mod).items()
            if not k.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
            and getattr(v, "__module__", None) == mod.__name__]


def _undocumented(modules):
    missing = []
    for mod in modules:
        for name, obj in _own_public(mod):
            if not inspect.getdoc(obj):
                missing.append(f"{mod.__name__}.{name}")
            if not inspect.isclass(obj):
                continue
            for k, v in vars(obj).items():
                if k.startswith("_") or not (inspect.isfunction(v) or isinstance(v, property)):
                    continue
                if not inspect.getdoc(getattr(obj, k)):
                    missing.append(f"{mod.__name__}.{name}.{k}")
    return missing


def _sections(doc):
    """``{section title: its lines}`` of a numpydoc docstring (a title underlined by dashes
    of its own length)."""
    lines = doc.splitlines()
    out, current = {}, None
    for i, line in enumerate(lines):
        title = line.strip()
        under = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if title and re.fullmatch(r"-+", under) and len(under) == len(title):
            current = title
            out[current] = []
        elif current is not None and not re.fullmatch(r"-+", title):
            out[current].append(line)
    return out


def _documented_parameters(lines):
    """The names a Parameters section documents: the ``a, b : type`` lines at its indent."""
    names = set()
    for line in lines:
        if not line or line[0].isspace() or ":" not in line and not line.rstrip().endswith(":"):
            continue
        head = line.split(" :", 1)[0].rstrip(":")
        names |= {n.strip() for n in head.split(",") if n.strip()}
    return names


@pytest.fixture(scope="module")
def modules():
    return _public_modules()


@pytest.fixture(scope="module")
def estimators(modules):
    found = {}
    for mod in modules:
        for name, obj in _own_public(mod):
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                found[f"{mod.__name__}.{name}"] = obj
    return found


def test_the_walk_sees_the_package(modules, estimators):
    # the two tests below would pass on an empty walk: check it reaches what we know exists
    names = {m.__name__ for m in modules}
    assert {"neurostat.inference.likelihood", "neurostat.engine.networks",
            "neurostat.estimators.neural", "neurostat.demo"} <= names
    assert {"neurostat.estimators.neural.NeuralClassifier",
            "neurostat.estimators.neural.NeuralRegressor",
            "neurostat.survival.estimator.NeuralCoxRegressor",
            "neurostat.gp.regressor.NNGPRegressor"} <= set(estimators)
    assert not any(m.__name__.split(".")[-1].startswith("_") for m in modules)


def test_every_public_name_has_a_docstring(modules):
    missing = _undocumented(modules)
    assert missing == [], (
        f"{len(missing)} public names have no docstring (write a numpydoc one, or make the "
        "name private with a leading underscore):\n" + "\n".join(missing))


def test_estimator_docstrings_have_parameters_and_attributes(estimators):
    bad = {}
    for name, cls in estimators.items():
        sections = _sections(inspect.getdoc(cls) or "")
        lacking = [s for s in ("Parameters", "Attributes") if s not in sections]
        if lacking:
            bad[name] = lacking
    assert bad == {}, f"estimator docstrings without numpydoc sections: {bad}"


def test_estimator_docstrings_name_every_constructor_parameter(estimators):
    bad = {}
    for name, cls in estimators.items():
        sections = _sections(inspect.getdoc(cls) or "")
        documented = _documented_parameters(sections.get("Parameters", []))
        params = set(cls._get_param_names())
        if params - documented:
            bad[name] = sorted(params - documented)
    assert bad == {}, f"constructor parameters missing from the Parameters section: {bad}"


def test_section_parser_reads_numpydoc():
    doc = inspect.cleandoc("""Summary.

    Parameters
    ----------
    a, b : int
        Two.
    c : str
        Three, continued : not a name.

    Attributes
    ----------
    x_ : float
    """)
    sections = _sections(doc)
    assert set(sections) == {"Parameters", "Attributes"}
    assert _documented_parameters(sections["Parameters"]) == {"a", "b", "c"}
    assert _sections("Parameters\n---------\n") == {}  # underline of the wrong length
