"""JupyterLab works as the README and the explore page say (`jupyter lab book/explore.ipynb` after `make setup`):
a server on 127.0.0.1 with a token serves JupyterLab and the notebook, refuses a request without the token, and the
notebook executes in this environment with its figures and no error."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.usefixtures("fashion_mnist"), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (urllib.error.URLError, ConnectionError):  # not listening yet
        return 0, b""


@pytest.mark.timeout(300)
def test_jupyterlab_serves_the_explore_notebook_with_a_token_and_it_executes(tmp_path):
    lab = BIN / "jupyter-lab"
    assert lab.is_file(), "make setup must install JupyterLab (the book extra)"
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen(
        [lab, "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={REPO}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if os.geteuid() == 0 else [])],  # as root Jupyter refuses to start without it
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # up to a minute to start
            status, _ = get(f"{base}/api/status?token={token}")
            if status == 200 or server.poll() is not None:
                break
            time.sleep(0.5)
        if status != 200:
            pytest.fail("the Jupyter server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        status, page = get(f"{base}/lab?token={token}")
        assert status == 200 and b"JupyterLab" in page
        status, body = get(f"{base}/api/contents/book/explore.ipynb?token={token}")
        assert status == 200 and json.loads(body)["type"] == "notebook"
        assert get(f"{base}/api/contents/book/explore.ipynb")[0] in (401, 403)  # no token, no notebook
    finally:
        server.terminate()
        server.wait(timeout=30)
    # the notebook runs in this environment, as it would from JupyterLab's "Run all"
    out = tmp_path / "explore.ipynb"
    done = subprocess.run([BIN / "jupyter-nbconvert", "--to", "notebook", "--execute", "--output", str(out),
                           "--ExecutePreprocessor.timeout=240", "book/explore.ipynb"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "runs  the long tier (200 epochs), every variant" in text
    assert shutil.which("jupyter-lab", path=str(BIN))
