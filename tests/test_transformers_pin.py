"""backtrack/lm/kv_cache.py builds on transformers internals (cache layer classes), so bbm allows
only the transformers versions it was tested with: pyproject.toml pins that range, and an
installed transformers without the internals fails at import with a message naming it."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from backtrack.lm.kv_cache import SUPPORTED_TRANSFORMERS

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_pins_the_tested_range_and_the_installed_version_is_in_it():
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == "transformers"]
    assert req.specifier == Requirement("transformers" + SUPPORTED_TRANSFORMERS).specifier
    assert any(s.operator in ("<", "<=", "~=", "==") for s in req.specifier)  # an upper bound
    assert req.specifier.contains(version("transformers"))


def test_missing_internals_fail_at_import_naming_the_supported_range():
    # what a transformers release that moved the cache internals looks like to kv_cache
    code = ("import transformers.cache_utils as c; del c.get_layer_types_and_kwargs; "
            "import backtrack.lm.kv_cache")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and f"transformers{SUPPORTED_TRANSFORMERS}" in last
    assert version("transformers") in last
