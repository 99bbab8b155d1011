"""Each app id keeps its table stores apart: the offsets stored with them belong to that app's
changelog topics, so a worker whose PARLEY_APP_ID changed must not find another app's stores."""

from __future__ import annotations

from parley.app import create_app
from parley.settings import Settings


def test_two_app_ids_on_one_data_dir_use_different_table_stores(tmp_path):
    first = create_app(Settings(app_id="shop", data_dir=tmp_path))
    second = create_app(Settings(app_id="shop-v2", data_dir=tmp_path))
    assert first.conf.tabledir != second.conf.tabledir
    assert first.conf.tabledir.is_relative_to(tmp_path / "tables" / "shop")
    assert second.conf.tabledir.is_relative_to(tmp_path / "tables" / "shop-v2")
