"""The house is one-way: the core (losses, models, noise, datasets, methods, targets, data, the trainer, the run
record, the config...) never reaches up into the analysis (nalkit.results, nalkit.plotting) or the runner (runner,
executors, experiment, slurm). Checked on the source with ``ast``, not by importing: an import inside a function
counts as much as one at the top of a module, and every nalkit module a core module imports is followed in turn."""

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the modules (and packages: every module below them) that form the core
CORE = ("nalkit.losses", "nalkit.models", "nalkit.noise", "nalkit.datasets", "nalkit.methods", "nalkit.targets",
        "nalkit.train", "nalkit.data", "nalkit.records", "nalkit.config", "nalkit.detectors", "nalkit.checkpoint",
        "nalkit.loader", "nalkit.metrics")
#: what the core must never import, directly or through another nalkit module
UPSTAIRS = ("nalkit.results", "nalkit.runner", "nalkit.executors", "nalkit.experiment", "nalkit.slurm",
            "nalkit.plotting")


def _source(module: str, root: Path) -> Path | None:
    """The file of ``module`` below ``root`` (a module file or a package's ``__init__.py``), or None."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported_modules(module: str, root: Path, package: str = "nalkit") -> set[str]:
    """The ``package`` modules that the source of ``module`` imports anywhere in the file (top level, functions,
    ``TYPE_CHECKING`` blocks; ``import_module("...")`` with a literal name too), relative imports resolved; for
    ``from X import name`` also ``X.name`` when that is a module."""
    path = _source(module, root)
    if path is None:
        return set()
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if _source(f"{base}.{alias.name}", root))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            found.add(node.args[0].value)
    out = set()
    for name in found:
        if not _within(name, (package,)):
            continue
        parts = name.split(".")
        # importing a.b.c runs a/__init__ and a/b/__init__ too
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if _source(".".join(parts[:i]), root))
    return out


def upward_imports(starts: list[str], forbidden: tuple[str, ...], root: Path,
                   package: str = "nalkit") -> list[list[str]]:
    """Every chain of imports from one of ``starts`` to a module within ``forbidden`` (shortest per target)."""
    parent: dict[str, str | None] = dict.fromkeys(starts)
    queue = deque(starts)
    chains = []
    while queue:
        mod = queue.popleft()
        for dep in sorted(imported_modules(mod, root, package)):
            if dep in parent:
                continue
            parent[dep] = mod
            if _within(dep, forbidden):
                chain, at = [dep], mod
                while at is not None:
                    chain.insert(0, at)
                    at = parent[at]
                chains.append(chain)
            else:
                queue.append(dep)
    return chains


def core_modules(root: Path = ROOT) -> list[str]:
    """The modules of :data:`CORE`, every module of a package (``nalkit.datasets``) included."""
    out = []
    for name in CORE:
        path = _source(name, root)
        assert path is not None, f"{name} is listed as core but has no source under {root}"
        out.append(name)
        if path.name == "__init__.py":
            out += [".".join(p.relative_to(root).with_suffix("").parts) for p in sorted(path.parent.rglob("*.py"))
                    if p.name != "__init__.py"]
    return out


def test_no_core_module_imports_the_analysis_or_the_runner():
    chains = upward_imports(core_modules(), UPSTAIRS, ROOT)
    assert chains == [], "a core module reaches up (move the code up, or pass what it reads in the config):\n" + \
        "\n".join(" -> ".join(c) for c in chains)


def test_the_run_record_does_not_import_plotting():
    assert upward_imports(["nalkit.records"], ("nalkit.plotting",), ROOT) == []


def test_the_check_sees_imports_in_functions_relative_and_transitive(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for rel, text in {
        "__init__.py": "",
        "core.py": "from . import helper\n",
        "helper.py": "def f():\n    from .sub.deep import g\n    return g\n",
        "sub/__init__.py": "",
        "sub/deep.py": "import importlib\n\ndef g():\n    return importlib.import_module('pkg.analysis')\n",
        "analysis.py": "",
        "clean.py": "from .sub import deep as _  # noqa\n",
        "other.py": "from .. import outside\n",
    }.items():
        (pkg / rel).write_text(text)
    chains = upward_imports(["pkg.core"], ("pkg.analysis",), tmp_path, "pkg")
    assert chains == [["pkg.core", "pkg.helper", "pkg.sub.deep", "pkg.analysis"]]
    assert upward_imports(["pkg.clean"], ("pkg.helper",), tmp_path, "pkg") == []
    assert "pkg.sub.deep" in imported_modules("pkg.clean", tmp_path, "pkg")
