"""Committed records and chapters are portable: no file under results/ or book/ names a path of the machine that
made it (a home or work directory, the repository's own location, papermill's absolute input/output paths)."""

import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from nalkit.experiment import make_portable

REPO = Path(__file__).resolve().parents[1]
HOST_ROOTS = re.compile(r"""(?:^|[\s"'=(\[,:])(/(?:home|Users|root|tmp|work|mnt|scratch|private|var/folders)/[^\s"']*)""")
TEXT = {".ipynb", ".json", ".csv", ".yaml", ".yml", ".md", ".txt", ".py", ".bib", ".css", ".html"}


def committed_files(*dirs: str) -> list[Path]:
    """Files git would commit under ``dirs`` (tracked, or untracked and not ignored)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", *dirs], cwd=REPO, capture_output=True,
                             text=True, check=True, timeout=60).stdout.split("\n")
        return [REPO / line for line in out if line and (REPO / line).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): every file
        return [p for d in dirs for p in (REPO / d).rglob("*") if p.is_file()]


def host_paths(text: str) -> list[str]:
    found = [m.group(1) for m in HOST_ROOTS.finditer(text)]
    for own in {str(REPO), os.path.expanduser("~")} - {"/", ""}:
        if own in text:
            found.append(own)
    return found


def test_no_committed_record_or_chapter_carries_an_absolute_path_of_its_machine():
    files = [p for p in committed_files("results", "book") if p.suffix in TEXT]
    assert len(files) > 50, "the committed records are missing"
    bad = {}
    for path in files:
        hits = host_paths(path.read_text(encoding="utf-8", errors="replace"))
        if hits:
            bad[str(path.relative_to(REPO))] = sorted(set(hits))[:3]
    assert not bad, f"{len(bad)} files carry absolute paths, e.g. {dict(list(bad.items())[:5])}"


def test_the_scanner_finds_what_it_must():
    assert host_paths('"input_path": "/home/alice/nal/book/x.ipynb"') == ["/home/alice/nal/book/x.ipynb"]
    assert host_paths("File /tmp/pytest-1/run/x.py, line 3")
    assert not host_paths("data in /usr/share/datasets/fashion-mnist/ and https://example.org/work/x")


def test_make_portable_rewrites_a_papermill_notebook(tmp_path):
    root = tmp_path / "repo"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Experiment\n\ntext"),
                nbformat.v4.new_code_cell('config = "x"', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f'config = "configs/a.yaml"\nrepo_root = "{root}"',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output(
                    "stream", name="stderr", text=f"warning in {root}/nalkit/train.py line 3\n")])]
    nb.metadata["papermill"] = {"input_path": f"{root}/book/experiments/experiment.ipynb",
                                "output_path": f"{root}/results/runs/r/.experiment.partial.ipynb",
                                "parameters": {"config": "configs/a.yaml", "repo_root": str(root)}}
    out = make_portable(nb, root, "r")
    assert out.cells[0].source.startswith("# Experiment: r")
    assert [c.metadata.get("tags") for c in out.cells[1:2]] == [["injected-parameters"]], "default parameters dropped"
    assert out.metadata.papermill.input_path == "book/experiments/experiment.ipynb"
    assert "repo_root" not in out.metadata.papermill.parameters
    assert out.cells[2].outputs[0].text == "warning in nalkit/train.py line 3\n"
    assert str(root) not in nbformat.writes(out)


@pytest.mark.parametrize("path", ["results/grids/default.json"])
def test_grid_manifests_name_repository_relative_paths(path):
    text = (REPO / path).read_text()
    assert '"grid_file": "configs/grids/' in text and '"config": "configs/fmnist/cpu.yaml"' in text
