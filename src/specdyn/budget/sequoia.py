"""Sequoia's dynamic program, kept under its old name: it lives in :mod:`specdyn.treeopt.sequoia`, where the
adaptive engine can use it too."""

from specdyn.treeopt.sequoia import TIE, BestTree, SequoiaTable, best_trees, expected_accepted, sequoia_table

__all__ = ["TIE", "BestTree", "SequoiaTable", "best_trees", "expected_accepted", "sequoia_table"]
