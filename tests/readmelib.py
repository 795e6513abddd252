"""The README's "own training loop" example, extracted exactly as printed (shared by the README and packaging tests)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADING = "## Use NAL in your own training loop"


def readme_example(readme: Path = REPO / "README.md") -> str:
    """The first ```python block under :data:`HEADING` in README.md, verbatim."""
    text = readme.read_text(encoding="utf-8")
    start = text.find(HEADING + "\n")
    assert start >= 0, f"README.md has no heading {HEADING!r}"
    section = text[start + len(HEADING):]
    next_heading = re.search(r"^## ", section, flags=re.M)
    section = section[: next_heading.start()] if next_heading else section
    m = re.search(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)
    assert m, f"no ```python block under {HEADING!r} in README.md"
    return m.group(1)


def check_output(stdout: str) -> dict[str, float]:
    """Parse the example's four lines and check what the README says they show."""
    patterns = {
        "mislabeled": r"^mislabeled: (\d+)% of 2000 labels$",
        "accuracy": r"^accuracy against the clean labels: (\d+)%$",
        "tau_clean": r"^mean tau: clean ([0-9.]+), mislabeled [0-9.]+$",
        "tau_mislabeled": r"^mean tau: clean [0-9.]+, mislabeled ([0-9.]+)$",
        "corrected": r"^corrected labels \(argmax q\) equal to the clean label: (\d+)%$",
    }
    values = {}
    for key, pattern in patterns.items():
        m = re.search(pattern, stdout, flags=re.M)
        assert m, f"the README example printed no line matching {pattern!r}:\n{stdout}"
        values[key] = float(m.group(1))
    # sym noise at rate 0.4 redraws 40 % of the labels uniformly over 10 classes: about 36 % change
    assert 30 <= values["mislabeled"] <= 42, values
    # what the README promises: the mislabeled samples get the lower tau; the model fits the clean labels
    assert values["tau_clean"] > values["tau_mislabeled"] + 0.1, values
    assert values["accuracy"] >= 80 and values["corrected"] >= 80, values
    return values
