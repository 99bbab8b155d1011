"""The `replay` and `dlq` subcommands: argument checks and settings errors (no services)."""

from __future__ import annotations

import pytest

from parley.cli import build_parser, main


@pytest.fixture(autouse=True)
def no_services(monkeypatch):
    for name in ("PARLEY_KAFKA_URL", "PARLEY_MONGO_URL"):
        monkeypatch.delenv(name, raising=False)


def test_all_commands_are_there():
    parser = build_parser()
    for argv in (["dev"], ["worker"], ["web"], ["replay"], ["dlq", "list"], ["dlq", "show", "x"],
                 ["dlq", "replay", "x"], ["dlq", "purge", "--yes"]):
        assert callable(parser.parse_args(argv).func)


def test_replay_arguments():
    args = build_parser().parse_args([
        "replay", "--since", "2025-01-02T03:04:05Z", "--until", "2025-01-03", "--conversation", "a",
        "--conversation", "b", "--application", "app", "--replay-id", "fix-1", "--deliver", "--dry-run", "--yes",
    ])
    assert (args.topic, args.since, args.until) == ("incoming", 1735787045.0, 1735862400.0)
    assert (args.conversation, args.application, args.replay_id) == (["a", "b"], ["app"], "fix-1")
    assert args.deliver and args.dry_run and args.yes and not args.include_replays


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--since", "last tuesday"], "not an ISO 8601 time"),
        (["replay", "--replay-id", "has space"], "replay id 'has space' must be"),
        (["replay", "--topic", "outgoing"], "invalid choice"),
        (["dlq", "purge", "--before", "soon"], "not an ISO 8601 time"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "--from-offset", "3", "--since", "2025-01-01"], "not both"),
        (["replay", "--from-offset", "5", "--to-offset", "4"], "after --to-offset"),
        (["dlq", "replay", "some-id", "--stage", "processor"], "ids or a --stage (not both)"),
        (["dlq", "replay"], "ids or a --stage"),
    ],
)
def test_inconsistent_arguments_exit_2_before_touching_anything(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["replay", "--dry-run"], ["dlq", "list"], ["dlq", "purge", "--yes"]])
def test_unset_service_urls_are_a_clear_error(argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert "set PARLEY_KAFKA_URL and PARLEY_MONGO_URL" in str(exit_.value.code)
