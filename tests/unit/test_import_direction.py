"""The wrong-way imports issue 10 removed stay removed: the foundation (validation, file types,
attachments) imports nothing of Parley's above it, the channels and the platform-file fetcher do
not import the web layer, and the file store does not import the model port. (The layering as a
whole is the import contract's; these are the edges that once pointed up.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def loaded_by(module: str) -> set[str]:
    """The ``parley`` modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(m for m in sys.modules if m.startswith('parley'))))"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["parley.validation", "parley.filetypes", "parley.attachments"])
def test_the_foundation_imports_nothing_above_it(module: str) -> None:
    assert loaded_by(module) <= {"parley", "parley.validation", "parley.filetypes", "parley.attachments"}


@pytest.mark.parametrize("module", ["parley.channels", "parley.streams.platform_files"])
def test_channels_and_the_file_fetcher_do_not_import_the_web_layer(module: str) -> None:
    assert not {m for m in loaded_by(module) if m.startswith("parley.web")}


def test_the_file_store_does_not_import_the_model_port() -> None:
    assert not {m for m in loaded_by("parley.storage.files") if m.startswith("parley.llm")}
