"""The package's floors (README, Layout): each module imports only from its own floor or the floors below —
base (records, pytrees, linear algebra, run directories) < core (nets, data, measurements, bounds, estimators,
optimisers, training) < experiments (shared helpers < registered experiments) < views (figures, report rows) <
front (the command line, paper_figs.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ["trust.base", "trust.core", "trust.experiments.shared", "trust.experiments", "trust.views", "trust.front"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor(module: str) -> int | None:
    """The floor of a trust module (the longest matching prefix); None for the package's face."""
    matches = [i for i, f in enumerate(FLOORS) if module == f or module.startswith(f + ".")]
    return max(matches, key=lambda i: len(FLOORS[i])) if matches else None


def imported(path: Path) -> set[str]:
    """Every trust module ``path`` imports (``from trust.x import y`` counts ``trust.x.y`` when that is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trust")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trust"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    ROOT / sub.replace(".", "/")
                ).is_dir()
                out.add(sub if is_module else node.module)
    return out


SOURCES = sorted((ROOT / "trust").rglob("*.py")) + [ROOT / "paper_figs.py"]


def test_floors_cover_every_module():
    faces = {"trust", "trust._moved"}
    homeless = [module_name(p) for p in SOURCES if p.name != "paper_figs.py" and floor(module_name(p)) is None]
    assert set(homeless) <= faces, homeless


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    mine = FLOORS.index("trust.front") if path.name == "paper_figs.py" else floor(module_name(path))
    if mine is None:
        return
    upward = [m for m in imported(path) if (f := floor(m)) is not None and f > mine]
    assert not upward, f"{module_name(path)} (floor {FLOORS[mine]}) imports from a floor above: {sorted(upward)}"


def test_the_floor_rule_can_fail():
    """The checker itself: an import from a higher floor is found."""
    assert floor("trust.views.plots") > floor("trust.experiments.geometry") > floor("trust.experiments.shared.cell")
    assert floor("trust.core.measure") > floor("trust.base.tree")


# Reductions a view may not compute: every median, mean, spread, fit or count behind a figure or a row is a stored
# field of its Result, computed by the experiment's combine (README, Layout).
STATISTICS = {
    "median", "nanmedian", "mean", "nanmean", "average", "std", "nanstd", "var", "nanvar", "quantile",
    "nanquantile", "percentile", "nanpercentile", "polyfit", "lstsq", "mean_ci", "count_nonzero", "sum", "nansum",
}  # fmt: skip
VIEWS = sorted((ROOT / "trust" / "views").glob("*.py"))


def view_violations(path: Path) -> list[str]:
    """Statistics computed in a view: calls to a reduction in STATISTICS, and functions imported from the compute
    side (a view may import records and constants from an experiment, never a function that computes)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in STATISTICS:
                out.append(f"line {node.lineno}: {name}()")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("trust.experiments", "trust.core")):
            for a in node.names:
                if not (a.name[0].isupper()):  # records (classes) and CONSTANTS only
                    out.append(f"line {node.lineno}: imports {a.name} from {node.module}")
        if isinstance(node, ast.ImportFrom) and node.module in (
            "trust.experiments",
            "trust.core",
            "trust.experiments.shared",
        ):
            modules = [a.name for a in node.names if (ROOT / node.module.replace(".", "/") / f"{a.name}.py").exists()]
            out += [f"line {node.lineno}: imports the module {name}" for name in modules]
    return out


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_views_compute_no_statistic(path):
    assert not view_violations(path)


def test_the_view_rule_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom trust.experiments.geometry import width_exponent\nx = np.median([1])\n")
    assert len(view_violations(bad)) == 2
