"""The API reference covers the library: every public module is on a page, every public function and class has
a docstring, and every configuration key has a type, a default and a description (no book build here;
tests/test_book.py checks the rendered pages)."""

import dataclasses
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import nalkit
from nalkit.config import Config, ConfigError, FieldDoc, describe_fields
from nalkit.methods import METHODS, NALOptions

REPO = Path(__file__).resolve().parents[1]
API_PAGES = sorted((REPO / "book" / "api").glob("*.md"))


def _public_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(nalkit.__path__, "nalkit.")
            if not any(part.startswith("_") for part in m.name.split("."))]


def test_every_public_module_is_on_an_api_page():
    text = "\n".join(p.read_text() for p in API_PAGES)
    documented = set(re.findall(r"^\.\. (?:automodule|py:module):: (nalkit[\w.]*)", text, flags=re.M))
    assert set(_public_modules()) - documented == set(), "add the module to a page under book/api/"
    toc = (REPO / "_toc.yml").read_text()
    assert [p.stem for p in API_PAGES if f"book/api/{p.stem}" not in toc] == [], "an API page is missing from _toc.yml"


@pytest.mark.parametrize("module", _public_modules())
def test_public_functions_and_classes_have_docstrings(module):
    mod = importlib.import_module(module)
    missing = [name for name, obj in vars(mod).items()
               if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
               and obj.__module__ == module and not (obj.__doc__ or "").strip()]
    assert missing == [], f"{module}: public names without a docstring"


def _flat_keys(d: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        if isinstance(v, dict) and (prefix == "method." or not prefix):
            keys += _flat_keys(v, f"{prefix}{k}.")
        else:
            keys.append(prefix + k)
    return keys


def test_describe_fields_lists_every_config_key_once_with_a_description():
    docs = describe_fields()
    keys = [d.key for d in docs]
    assert sorted(keys) == sorted(_flat_keys(Config().to_dict()))
    assert len(keys) == len(set(keys))
    undocumented = [d.key for d in docs if not d.doc]
    assert undocumented == [], "write a comment beside these fields (nalkit/config.py, nalkit/methods.py)"
    cfg = Config()
    for d in docs:  # defaults are the dataclasses' own
        obj = cfg
        for part in d.key.split("."):
            obj = getattr(obj, part)
        assert d.default == obj, d.key


def test_describe_fields_of_one_section():
    nal = describe_fields("method.nal")
    assert [d.key for d in nal] == [f"method.nal.{f.name}" for f in dataclasses.fields(NALOptions)]
    lam = next(d for d in nal if d.key == "method.nal.lam")
    assert lam == FieldDoc("method.nal.lam", "float", 0.5, lam.doc) and "-log(tau)" in lam.doc
    assert [d.key for d in describe_fields("method")] == ["method.name"]
    with_options = {name for name in METHODS.names() if dataclasses.fields(METHODS.get(name).Options)}
    assert {d.key.split(".")[1] for d in describe_fields() if d.key.startswith("method.") and d.key != "method.name"} \
        == with_options == {"gce", "sce", "elr", "selc", "nal"}
    # a comment block above a field is joined with the comment on its line
    val = next(d for d in describe_fields("data") if d.key == "data.noisy_val_size")
    assert val.type == "int | None" and val.doc.startswith("Noisy validation set of this many images") \
        and "without shrinking the training subset" in val.doc
    with pytest.raises(ConfigError, match="unknown config section 'optimizer'.*optim"):
        describe_fields("optimizer")
