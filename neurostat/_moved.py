"""The first wave's module paths, kept importable after the redesign moved them.

``import neurostat.families`` (and every other path in :data:`MOVED`) still works: a finder
at the end of ``sys.meta_path`` answers only for these names, after the normal finders found
nothing, and hands back the module at its new path with a ``DeprecationWarning`` naming it.
Public names (``from neurostat import ...``, ``neurostat.gp``, ``neurostat.inference``) never
moved; this is for code that imported a module directly.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module path -> new module path
MOVED = {
    "neurostat.networks": "neurostat.engine.networks",
    "neurostat.families": "neurostat.engine.families",
    "neurostat.penalties": "neurostat.engine.penalties",
    "neurostat.training": "neurostat.engine.solvers",
    "neurostat.augment": "neurostat.engine.augment",
    "neurostat._base": "neurostat.estimators._base",
    "neurostat.convnet": "neurostat.estimators.convnet",
    "neurostat.cox": "neurostat.survival.estimator",
    "neurostat.cox_family": "neurostat.survival.family",
    "neurostat.cox_inference": "neurostat.survival.inference",
    "neurostat.cox_metrics": "neurostat.survival.metrics",
    "neurostat.smoothers": "neurostat.ppr.smoothers",
    "neurostat.ppr_display": "neurostat.ppr.display",
    "neurostat.paths": "neurostat.regularization",
    "neurostat.inference.demo": "neurostat.demo",
    "neurostat.inference.core": "neurostat.inference.api",
    "neurostat.inference.mlp_hessian": "neurostat.inference.closed_forms",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of :data:`MOVED` and loads them as the module at the new path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there.",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):
        """Nothing to run: the module at the new path is already executed."""


def install():
    """Append the finder to ``sys.meta_path`` once."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
