"""The cost model, kept under its old name: it lives in :mod:`specdyn.treeopt.costs`, where the adaptive engine
can use it too."""

from specdyn.treeopt.costs import COSTS_FILE, FORMAT_VERSION, POOR_FIT, CostModel, DraftCost, LinearFit, fit_linear

__all__ = ["COSTS_FILE", "FORMAT_VERSION", "POOR_FIT", "CostModel", "DraftCost", "LinearFit", "fit_linear"]
