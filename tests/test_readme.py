"""The README's "Use NAL in your own training loop" block runs as printed and shows what it says."""

import os
import subprocess
import sys

from readmelib import REPO, check_output, readme_example


def test_readme_example_is_self_contained():
    code = readme_example()
    compile(code, "README.md", "exec")  # a syntax error names the README
    for name in ("with_attention", "TargetStore", "nal_loss", "es", "index"):
        assert name in code


def test_readme_example_runs(tmp_path):
    script = tmp_path / "readme_example.py"
    script.write_text(readme_example())
    # Run from outside the repository with this checkout's nalkit first on the path. One thread: this
    # tiny model is faster single-threaded, and threads spin against whatever else holds the cores.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_output(proc.stdout)
