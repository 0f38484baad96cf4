"""The engine: the three parts of a net and what trains them.

``networks`` (structure: torch modules returning the linear predictor), ``families`` (the output
layer's likelihood: link, variance, log-likelihood and its derivatives in eta, residuals,
simulation), ``penalties`` (ridge, lasso, elastic net on the weights) and ``solvers`` (the
minibatch and L-BFGS solvers, schedules, stopping, the Newton finish). The engine imports
nothing from the estimators or from inference: it is the floor the rest stands on.
"""
