"""Every experiment's results read through their labels only: each array in ``--json`` / ``results.json`` and in
``arrays.npz`` names its axes, and has as many entries along each as the label's coordinates there."""

from __future__ import annotations

import json

import numpy as np
import pytest
from labels import check_array_labels, check_labels

from trust.experiments import REGISTRY
from trust.front import cli

# the smallest run of each experiment (a few seconds each on 2 cores)
TINY = {
    "breakdown": ["--depth", "3", "--width", "8", "--eta-steps", "4", "--n-examples", "40"],
    "train": ["--depth", "2", "--width", "8", "--epochs", "1", "--checkpoints", "0", "1"],
    "theorem1": ["--n-cases", "3", "--max-width", "6", "--max-depth", "3", "--n-inputs", "4"],
    "constants": ["--depth", "2", "3", "--width", "8", "--eta-steps", "4", "--n-examples", "40"],
    "descent": ["--depths", "2", "--width", "8", "--epochs", "0", "--eta-steps", "6", "--n-examples", "40"],
    "cosgamma": ["--sizes", "10", "--trials", "20", "--depth", "2", "--width", "8", "--epochs", "0", "1",
                 "--seeds", "2"],
    "study depth": ["--dataset", "digits", "--width", "8", "--depths", "2", "3", "--optimizers", "fromage", "--seeds",
                    "2", "--epochs", "1"],
    "assumptions": ["--model", "mlp3", "--width", "8", "--epochs", "1", "--eta-steps", "4", "--n-measure", "40"],
    "reviewers": ["--questions", "biases", "lr_grid", "--quick", "--width", "8", "--epochs", "1"],
}  # fmt: skip


# the two large studies are read through their labels where their own tests build them (their runs cost ~12 s)
ELSEWHERE = {
    "study breakdown": "tests/test_study.py::test_study_breakdown_sweeps_measures_and_reuses_cells",
    "geometry": "tests/test_geometry.py::test_the_json_is_read_through_its_labels_only",
}


def test_every_experiment_is_read_through_its_labels():
    assert sorted([*TINY, *ELSEWHERE]) == sorted(REGISTRY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_results_read_through_their_labels(name, tmp_path, capsys):
    assert cli.main([*name.split(), *TINY[name], "--json", "--out", str(tmp_path / "run")]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((tmp_path / "run" / "results.json").read_text())
    n_json = check_labels(printed)
    assert check_labels(stored) == n_json
    with np.load(tmp_path / "run" / "arrays.npz", allow_pickle=False) as npz:
        assert n_json + check_array_labels(dict(npz)) > 0
