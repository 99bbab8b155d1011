"""The ``parley`` command: ``dev`` (everything in one process on embedded servers), ``worker``
(agents + web against the configured Kafka, MongoDB and Redis), ``web`` (the gateway alone),
the ops tools ``replay`` and ``dlq`` (``parley.ops``), ``tables`` and ``users`` (operator
accounts, ``parley.users.commands``)."""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from parley.settings import Settings

__all__ = ["main"]

logger = logging.getLogger("parley")


def _may_hold_secret(field: str) -> bool:
    """A key (typed ``SecretStr``, as ``parley.redact.register_settings_secrets`` finds them) or a
    URL (it may carry credentials)."""
    info = Settings.model_fields.get(field)
    annotation = info.annotation if info is not None else None
    return field.endswith("_url") or annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _setting_error(error: Any) -> str:
    """One line per bad setting: its environment variable, what is wrong, and the value given
    (not for a secret, nor where Parley's own validator wrote the message: it names the value)."""
    loc = [str(part) for part in error.get("loc") or ()]
    if not loc:
        return f"  {error['msg']}"
    name = f"PARLEY_{loc[0].upper()}" + "".join(f".{part}" for part in loc[1:])
    own_message = error["type"] == "value_error"
    shown = "" if own_message or _may_hold_secret(loc[0]) else f" (got {str(error.get('input'))[:80]!r})"
    return f"  {name}: {error['msg']}{shown}"


def _load_settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        sys.exit("parley: invalid settings:\n" + "\n".join(_setting_error(e) for e in exc.errors()))
    from parley.redact import register_settings_secrets

    register_settings_secrets(settings)  # the keys it holds never reach a log line or the CLI
    return settings


def _scrub_logs() -> None:
    from parley.redact import install_log_scrubbing

    install_log_scrubbing()


def use_event_loop(settings: Settings) -> str:
    """Install the event loop policy ``PARLEY_EVENT_LOOP`` asks for, before any loop exists;
    returns the loop in use."""
    if settings.event_loop == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if settings.event_loop == "uvloop":
            sys.exit("parley: PARLEY_EVENT_LOOP=uvloop, but uvloop is not installed: pip install uvloop")
        return "asyncio"
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _run_worker(settings: Settings) -> None:
    from faust.worker import Worker

    from parley.app import create_app, tables_dir
    from parley.redact import install_log_scrubbing

    class ScrubbedWorker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            install_log_scrubbing(logger)  # every record, tracebacks too: parley.redact

    tables_dir(settings).mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    logger.info("event loop: %s", use_event_loop(settings))
    app = create_app(settings)
    worker = ScrubbedWorker(app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG so it can spin on every record:
    # every library's debug record is then built and dropped (measured ~10 % of a busy worker).
    worker.spinner = None
    worker.execute_from_commandline()


def _port(text: str) -> int:
    """An argparse type: a TCP port (0: any free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535; 0 takes any free one)")
    return port


def _serving(settings: Settings, port: int | None, command: str) -> Settings:
    """``settings`` with the web port of ``--port`` (when given); leave at once, in one line,
    when that port is taken: before servers start and a sign-in link for another program's
    address is printed."""
    import socket

    if port is not None:
        settings = settings.model_copy(update={"web_port": port})
    if settings.web_port == 0:
        return settings
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.web_host, settings.web_port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
            probe.bind(address)
    except OSError as exc:
        sys.exit(
            f"{command}: cannot listen on {settings.web_host}:{settings.web_port}: {exc.strerror or exc}; "
            "stop what uses it, or give another port (--port, or PARLEY_WEB_PORT)"
        )
    return settings


def cmd_dev(args: argparse.Namespace) -> None:
    from parley.embedded import EmbeddedError, embedded_services

    settings = _load_settings()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    lock = _lock_data_dir(data_dir)  # noqa: F841 - held until the process exits
    settings = _serving(settings, args.port, "parley dev")
    try:
        with embedded_services(
            data_dir, broker=settings.kafka_url is None, documents=settings.mongo_url is None
        ) as servers:
            update: dict[str, object] = {"data_dir": data_dir, "seed_demo": True}
            if "broker" in servers:
                forget_tables(data_dir)
                update["kafka_url"] = servers["broker"].url
            if "documents" in servers:
                update["mongo_url"] = servers["documents"].url
            settings = settings.model_copy(update=update)
            print(
                f"Parley dev: broker {settings.kafka_url}, documents {settings.mongo_url.split('?')[0] if settings.mongo_url else '-'}, "
                f"model {'echo (no PARLEY_LLM_API_KEY)' if settings.uses_echo_model else settings.llm_model}",
                flush=True,
            )
            _run_worker(settings)
    except EmbeddedError as exc:
        sys.exit(f"parley dev: {exc}")


def _lock_data_dir(data_dir: Path) -> Any:
    """One ``parley dev`` per data directory (a second one would share the document server's
    files and remove the table stores the first one has open)."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "dev.lock", "w")  # noqa: SIM115 - kept open for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"parley dev: another `parley dev` is using {data_dir}; stop it, or give this one --data-dir")
    return lock


def forget_tables(data_dir: Path) -> None:
    """The embedded broker keeps its topics in memory: the table stores of an earlier run hold
    changelog offsets the new, empty topics never had (Faust would refuse to start), and state
    that is no longer anywhere else. Conversations start empty; the archive is kept."""
    import shutil

    from parley.app import all_tables_dir

    stores = all_tables_dir(data_dir)
    if stores.exists():
        shutil.rmtree(stores)
        print(
            f"Parley dev: the embedded broker starts empty, so the table stores of the last run "
            f"({stores}) were removed",
            flush=True,
        )


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _load_settings()
    missing = [name for name in ("kafka_url", "mongo_url") if getattr(settings, name) is None]
    if missing:
        env = ", ".join(f"PARLEY_{m.upper()}" for m in missing)
        sys.exit(f"parley worker: set {env} (or use `parley dev` for embedded servers)")
    _run_worker(_serving(settings, args.port, "parley worker"))


def cmd_web(args: argparse.Namespace) -> None:
    import asyncio

    from parley.gateway import GatewayConfigError, run_gateway

    settings = _serving(_load_settings(), args.port, "parley web")
    logging.basicConfig(level=settings.log_level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    _scrub_logs()
    logger.info("event loop: %s", use_event_loop(settings))
    try:
        asyncio.run(run_gateway(settings))
    except GatewayConfigError as exc:
        sys.exit(f"parley web: {exc}")


def _ops_run(command: str, make: Callable[[Settings], Coroutine[Any, Any, int]]) -> None:
    """Run an ops command (``replay``, ``dlq``): warnings to stderr, ``OpsError`` -> exit 1."""
    import asyncio

    from parley.ops import OpsError

    settings = _load_settings()
    logging.basicConfig(level=logging.WARNING, format=f"{command}: %(levelname)s: %(message)s")
    _scrub_logs()
    try:
        code = asyncio.run(make(settings))
    except OpsError as exc:
        from parley.redact import scrub

        sys.exit(scrub(f"{command}: {exc}"))
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code)


def _iso_time(text: str) -> float:
    from parley.ops.common import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ops_id(what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        from parley.ops.common import validate_id

        try:
            return validate_id(text, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def cmd_replay(args: argparse.Namespace) -> None:
    from parley.ops import commands
    from parley.ops.kafka_io import RangeSpec
    from parley.ops.replay import ReplayOptions

    try:
        spec = RangeSpec(args.from_offset, args.to_offset, args.since, args.until)
    except ValueError as exc:
        print(f"parley replay: {exc}", file=sys.stderr)
        sys.exit(2)
    options = ReplayOptions(
        topic=args.topic,
        spec=spec,
        conversations=tuple(args.conversation or ()),
        applications=tuple(args.application or ()),
        replay_id=args.replay_id,
        deliver=args.deliver,
        include_replays=args.include_replays,
        dry_run=args.dry_run,
    )
    _ops_run("parley replay", lambda settings: commands.replay(settings, options, yes=args.yes))


def cmd_dlq(args: argparse.Namespace) -> None:
    from parley.ops import commands

    def make(settings: Settings) -> Coroutine[Any, Any, int]:
        if args.dlq_command == "list":
            return commands.dlq_list(
                settings, stage=args.stage, limit=args.limit, as_json=args.json, include_purged=args.all
            )
        if args.dlq_command == "show":
            return commands.dlq_show(settings, args.dead_letter_id, as_json=args.json)
        if args.dlq_command == "replay":
            if bool(args.ids) == bool(args.stage):
                print("parley dlq replay: name dead letter ids or a --stage (not both)", file=sys.stderr)
                sys.exit(2)
            return commands.dlq_replay(
                settings, args.ids, stage=args.stage, force=args.force, deliver=args.deliver,
                dry_run=args.dry_run,
            )
        return commands.dlq_purge(settings, args.ids, before=args.before, stage=args.stage, yes=args.yes)

    _ops_run("parley dlq", make)


REPLAY_HELP = """\
Re-publish the user messages of a range of a topic into `incoming` as new events marked with a
replay id, so their answers are regenerated and archived (messages.replay_id). Reads every
partition from --from-offset to --to-offset (inclusive) or from --since (inclusive) to --until
(exclusive), up to the end offsets at start. Answers are not delivered to clients or platforms
unless --deliver. Running the same --replay-id again sends nothing new (MongoDB collections
`replays` and `replay_events` record what was sent). Needs PARLEY_KAFKA_URL and PARLEY_MONGO_URL.
"""

DLQ_HELP = """\
Inspect and act on dead letters (records on the `dead-letters` topic). What was done with them is
recorded in the MongoDB collection `dead_letter_actions`. Needs PARLEY_KAFKA_URL and
PARLEY_MONGO_URL.
"""

PURGE_HELP = """\
Hide dead letters from `parley dlq list`. Kafka topics are append-only (and the embedded broker
cannot delete records), so purge records the purged ids in MongoDB (`dead_letter_actions`); the
records stay on the topic until its retention removes them. `dlq list --all` and `dlq show`
still show them. With no ids, --before or --stage: every listed dead letter.
"""


def _add_ops_commands(sub: Any) -> None:
    times = "ISO 8601, e.g. 2025-01-31T14:00:00Z; no offset = UTC"
    replay = sub.add_parser(
        "replay", help="re-publish a range of incoming to regenerate answers", description=REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--topic", default="incoming", choices=["incoming"],
                        help="source topic (only incoming carries user messages; dead letters: `parley dlq replay`)")
    replay.add_argument("--from-offset", type=int, metavar="N", help="first offset of every partition")
    replay.add_argument("--to-offset", type=int, metavar="M", help="last offset of every partition (inclusive)")
    replay.add_argument("--since", type=_iso_time, metavar="TIME", help=f"first record time ({times})")
    replay.add_argument("--until", type=_iso_time, metavar="TIME", help=f"end time, exclusive ({times})")
    replay.add_argument("--conversation", action="append", metavar="ID", help="only this conversation (repeatable)")
    replay.add_argument("--application", action="append", metavar="ID", help="only this application (repeatable)")
    replay.add_argument("--replay-id", type=_ops_id("replay id"), metavar="ID",
                        help="name of the replay (default: generated and printed); reuse it to resume")
    replay.add_argument("--deliver", action="store_true",
                        help="also deliver the regenerated answers to the original clients and platforms")
    replay.add_argument("--include-replays", action="store_true",
                        help="also replay events that are themselves replays (skipped by default)")
    replay.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    replay.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    replay.set_defaults(func=cmd_replay)

    dlq = sub.add_parser("dlq", help="list, show, replay and purge dead letters", description=DLQ_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="table (or JSON lines) of dead letters, newest last")
    listing.add_argument("--stage", help="only this stage (processor, processor.llm, dispatcher, persister.<topic>)")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="show the newest N (default 50; 0 = all)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--all", action="store_true", help="include purged dead letters")
    show = dlq_sub.add_parser("show", help="one dead letter with its error and original bytes")
    show.add_argument("dead_letter_id")
    show.add_argument("--json", action="store_true", help="as one JSON object")
    again = dlq_sub.add_parser(
        "replay", help="re-publish dead letters' original bytes to their original topic",
        description="Re-publish the original bytes to the original topic with the original key, "
        "after a fix. A user message whose model call failed (stage processor.llm) was answered "
        "with an apology and is re-published as a replay event instead, so it is answered again. "
        "A dead letter is replayed once unless --force.",
    )
    again.add_argument("ids", nargs="*", metavar="DEAD_LETTER_ID")
    again.add_argument("--stage", help="every not yet replayed, not purged dead letter of this stage")
    again.add_argument("--force", action="store_true", help="replay even if already replayed")
    again.add_argument("--deliver", action="store_true",
                       help="deliver answers regenerated for processor.llm dead letters to the client")
    again.add_argument("--dry-run", action="store_true", help="say what would be replayed; send nothing")
    purge = dlq_sub.add_parser("purge", help="hide dead letters from `dlq list` (recorded in MongoDB)",
                               description=PURGE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    purge.add_argument("ids", nargs="*", metavar="DEAD_LETTER_ID")
    purge.add_argument("--before", type=_iso_time, metavar="TIME", help=f"only those failed before TIME ({times})")
    purge.add_argument("--stage", help="only this stage")
    purge.add_argument("--yes", action="store_true", help="required: confirm the purge")
    dlq.set_defaults(func=cmd_dlq)


def cmd_tables(args: argparse.Namespace) -> None:
    """Query a worker's table views over HTTP; print JSON."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    settings = _load_settings()
    if settings.admin_api_key is None:
        sys.exit("parley tables: set PARLEY_ADMIN_API_KEY (table queries need the admin key)")
    base = (args.url or f"http://127.0.0.1:{settings.web_port}").rstrip("/")
    if args.action == "get":
        url = f"{base}/v1/tables/{urllib.parse.quote(args.table)}/{urllib.parse.quote(args.key, safe='')}"
    else:
        query = urllib.parse.urlencode({"prefix": args.prefix, "limit": args.limit})
        url = f"{base}/v1/tables/{urllib.parse.quote(args.table)}?{query}"
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {settings.admin_api_key.get_secret_value()}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        if exc.code != 404 or "found" not in body:
            sys.exit(f"parley tables: {exc.code} {body.get('code', '')}: {body.get('message', body)}")
    except (urllib.error.URLError, TimeoutError) as exc:
        sys.exit(f"parley tables: cannot reach {base}: {exc}")
    print(json.dumps(body, indent=2, ensure_ascii=False))
    if args.action == "get" and not body.get("found"):
        sys.exit(1)


def _add_table_commands(sub: Any) -> None:
    tables = sub.add_parser("tables", help="query state tables (conversations, seen-events, usage) as JSON")
    actions = tables.add_subparsers(dest="action", required=True)
    get = actions.add_parser("get", help="one key, answered by the worker that owns it")
    get.add_argument("table")
    get.add_argument("key", help="application_id/conversation_id (conversations, seen-events) or application_id (usage)")
    scan = actions.add_parser("scan", help="keys with a prefix, across every worker")
    scan.add_argument("table")
    scan.add_argument("--prefix", default="", help='e.g. "shop/" for the conversations of application shop')
    scan.add_argument("--limit", type=int, default=100)
    for p in (get, scan):
        p.add_argument("--url", default=None, help="any worker (default http://127.0.0.1:PARLEY_WEB_PORT)")
        p.add_argument("--timeout", type=float, default=10.0)
        p.set_defaults(func=cmd_tables)


USERS_HELP = """\
Operator accounts of the console and the admin API, in the document store (PARLEY_MONGO_URL):
make the first owner, list, disable or enable, reset a password, print a one-time sign-in link.
Passwords come from standard input (--password-stdin) or are generated and printed once.
"""


def cmd_users(args: argparse.Namespace) -> None:
    import asyncio

    from parley.users.commands import CommandError, run_users_command

    settings = _load_settings()
    logging.basicConfig(level=logging.WARNING, format="parley users: %(levelname)s: %(message)s")
    _scrub_logs()
    try:
        code = asyncio.run(run_users_command(settings, args))
    except CommandError as exc:
        from parley.redact import scrub

        sys.exit(scrub(f"parley users: {exc}"))
    sys.exit(code)


def _add_user_commands(sub: Any) -> None:
    users = sub.add_parser("users", help="operator accounts: create, list, disable, reset, link",
                           description=USERS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = users.add_subparsers(dest="users_command", required=True)
    create = actions.add_parser("create", help="make an account (with no password: prints a sign-in link)")
    create.add_argument("email")
    create.add_argument("--name", default=None, help="display name (default: the email's local part)")
    create.add_argument("--role", choices=["owner", "admin", "viewer"], default="viewer")
    create.add_argument("--application", action="append", metavar="ID",
                        help="scope to this application (repeatable; default: every application)")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    listing = actions.add_parser("list", help="every account")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    disable = actions.add_parser("disable", help="disable an account (its sessions and tokens stop working)")
    disable.add_argument("email")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    reset = actions.add_parser("reset", help="set a new password (generated unless --password-stdin); ends its sessions")
    reset.add_argument("email")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    link = actions.add_parser("link", help="print a one-time sign-in link")
    link.add_argument("email")
    for p in (create, link):
        p.add_argument("--url", default=None, help="base URL of the server (default http://127.0.0.1:PARLEY_WEB_PORT)")
    users.set_defaults(func=cmd_users)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Kafka-native AI chat pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run everything on embedded servers (broker, documents)")
    dev.add_argument("--port", type=_port, default=8080, help="web port (default 8080)")
    dev.add_argument("--data-dir", default=None, help="data directory (default .parley)")
    dev.set_defaults(func=cmd_dev)
    worker = sub.add_parser("worker", help="run agents and the web server against real services")
    worker.add_argument("--port", type=_port, default=None, help="web port (default PARLEY_WEB_PORT)")
    worker.set_defaults(func=cmd_worker)
    gateway = sub.add_parser("web", help="run the web gateway alone (workers run separately)")
    gateway.add_argument("--port", type=_port, default=None, help="web port (default PARLEY_WEB_PORT)")
    gateway.set_defaults(func=cmd_web)
    _add_ops_commands(sub)
    _add_table_commands(sub)
    _add_user_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        # Ctrl-C before the worker handles its own signals (while servers start): no traceback;
        # the embedded servers were stopped on the way out
        sys.exit(130)


if __name__ == "__main__":
    main()
