"""The README's configuration table is the one generated from the settings."""

from pathlib import Path

from parley.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_matches_settings():
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, (
        "README's configuration table is stale: replace it with the output of "
        "`python -c 'from parley.settings import settings_table; print(settings_table())'`"
    )


def test_readme_first_screen_gives_the_two_commands():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:30])
    assert "make dev" in first_screen and "make test" in first_screen
