# The two commands of the README:
#   make book   -- environment, Fashion-MNIST, the default experiment grid (CPU), the HTML book
#   make check  -- environment, Fashion-MNIST, Chromium, a single-node Slurm (root on Debian), every test
#   make test       -- the everyday suite: every test but the Slurm ones and the wheel one
#   make test-wheel -- sdist + wheel, the wheel in a fresh venv runs the README example
#   make test-slurm -- the tests marked slurm, on a single-node Slurm it brings up (root on Debian)
#   make test-fast  -- without the slow, book, browser and Slurm tests
# Everything lands in .venv/ (created on first use); already-complete runs in results/ are skipped.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FMNIST := data/fashion-mnist/t10k-labels-idx1-ubyte.gz
GRID   ?= configs/grids/default.yaml
# one single-threaded run per core: these small models use cores better side by side than threaded
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST_ARGS ?=
# make publish: the built book goes to branch PUBLISH_BRANCH of PUBLISH_REMOTE (a remote's name, a URL or a path)
PUBLISH_REMOTE ?= origin
PUBLISH_BRANCH ?= gh-pages
BOOK_HTML      ?= _build/html
GHP_IMPORT     ?= $(VENV)/bin/ghp-import

.PHONY: setup data browser grid book book-only publish test test-fast test-wheel test-slurm check clean-book bench

setup: $(STAMP)

# the library's requirements are ranges (pyproject.toml); the versions this environment uses are pinned in
# constraints.txt, so that the book and CI are reproducible
$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e ".[book,dev,cluster,vision,detect]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Fashion-MNIST: Debian's package when we are root on Debian, else torchvision's download.
data: $(FMNIST)

$(FMNIST): | $(STAMP)
	mkdir -p data/fashion-mnist
	if [ ! -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] && [ "$$(id -u)" = 0 ] \
	   && command -v apt-get >/dev/null; then \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1) || true; \
	fi
	if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then \
	  cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/; \
	else \
	  $(PY) -c "import nalkit.datasets as d; d.load_dataset('fashion_mnist', 'data', download=True)"; \
	  for f in data/FashionMNIST/raw/*.gz; do cp $$f data/fashion-mnist/; done; \
	fi
	test -f $(FMNIST)

grid: data
	$(VENV)/bin/nalkit run $(GRID) --executor local --workers $(WORKERS)

book-only: | $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

book: grid
	$(MAKE) book-only
	@echo "open _build/html/index.html"

# Publish the book already built in $(BOOK_HTML) (make book or make book-only first): ghp-import commits that
# folder, with a .nojekyll file so that GitHub Pages serves Sphinx's _static/ folders, onto the local branch
# $(PUBLISH_BRANCH) and force-pushes it. .github/workflows/book.yml is the other way: Pages from a workflow.
publish:
	@test -f $(BOOK_HTML)/index.html || { echo "no $(BOOK_HTML)/index.html: run 'make book-only' first" >&2; exit 1; }
	@command -v $(GHP_IMPORT) >/dev/null || { echo "$(GHP_IMPORT) not found: run 'make setup' (ghp-import is in the book extra)" >&2; exit 1; }
	$(GHP_IMPORT) -n -p -f -r $(PUBLISH_REMOTE) -b $(PUBLISH_BRANCH) \
	  -m "Publish the book built from $$(git rev-parse --short HEAD 2>/dev/null || echo 'an unknown commit')" $(BOOK_HTML)

# Headless Chromium for the browser test (tests/test_browser.py): Debian's packages when we are root on Debian;
# elsewhere the test is skipped and says why.
browser:
	if ! command -v chromedriver >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
	  || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || true; \
	fi

# the everyday suite: everything but the Slurm tests and the fresh-venv wheel test, one pytest-xdist worker per
# core; a test file runs whole in one worker (the fault suite's zygote and the runner's grids are per file),
# the book is built once and shared (tests/conftest.py)
test: data browser
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile -m "not slurm and not wheel" $(PYTEST_ARGS)

# the sdist and wheel, installed into a fresh venv without extras, run the README's example (a few minutes)
test-wheel: | $(STAMP)
	$(PY) -m pytest -q -m wheel -rP $(PYTEST_ARGS)

test-fast: data
	$(PY) -m pytest -q -m "not slow and not book and not browser and not slurm and not wheel" $(PYTEST_ARGS)

# What CI runs (.ci/run) and the README's test command: every test that can run here, the Slurm ones included
check: test test-wheel test-slurm

# the tests marked slurm on a real Slurm: where sinfo does not answer, tests/test_slurm.py first brings up a
# single-node one with tools/slurm-up.sh (root on Debian; tools/slurm-down.sh stops it again)
test-slurm: data
	NALKIT_SLURM_UP=1 $(PY) -m pytest -q -m slurm --durations=0 -rP $(PYTEST_ARGS)

bench: data
	$(PY) benchmarks/run_all.py

clean-book:
	rm -rf _build
