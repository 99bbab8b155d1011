"""Each app id keeps its table stores apart: the offsets stored with them belong to that app's
changelog topics, so a worker whose PARLEY_APP_ID changed must not find another app's stores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from parley.app import create_app
from parley.settings import Settings


def test_two_app_ids_on_one_data_dir_use_different_table_stores(tmp_path):
    first = create_app(Settings(app_id="shop", data_dir=tmp_path))
    second = create_app(Settings(app_id="shop-v2", data_dir=tmp_path))
    assert first.conf.tabledir != second.conf.tabledir
    assert first.conf.tabledir.is_relative_to(tmp_path / "tables" / "shop")
    assert second.conf.tabledir.is_relative_to(tmp_path / "tables" / "shop-v2")


@pytest.mark.parametrize("app_id", ["shop/v2", "..", "a{b}", "x" * 201])
def test_an_app_id_that_cannot_name_topics_and_a_directory_is_refused_at_start(app_id, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_APP_ID=app_id, PARLEY_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "parley", "dev"], env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    assert "invalid settings" in done.stderr and "PARLEY_APP_ID must be" in done.stderr
    assert not (tmp_path / "tables").exists()
