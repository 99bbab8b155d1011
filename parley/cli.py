"""The ``parley`` command: ``dev`` (everything in one process on embedded servers), ``worker``
(agents + web against the configured Kafka, MongoDB and Redis) and ``web`` (the gateway alone)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from parley.settings import Settings

__all__ = ["main"]

logger = logging.getLogger("parley")


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        sys.exit("parley: invalid settings:\n" + "\n".join(lines))


def _run_worker(settings: Settings) -> None:
    from faust.worker import Worker

    from parley.app import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = Worker(app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


def cmd_dev(args: argparse.Namespace) -> None:
    from parley.embedded import EmbeddedError, embedded_services

    settings = _load_settings()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    try:
        with embedded_services(
            data_dir, broker=settings.kafka_url is None, documents=settings.mongo_url is None
        ) as servers:
            update: dict[str, object] = {"data_dir": data_dir, "seed_demo": True, "web_port": args.port}
            if "broker" in servers:
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


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _load_settings()
    missing = [name for name in ("kafka_url", "mongo_url") if getattr(settings, name) is None]
    if missing:
        env = ", ".join(f"PARLEY_{m.upper()}" for m in missing)
        sys.exit(f"parley worker: set {env} (or use `parley dev` for embedded servers)")
    if args.port is not None:
        settings = settings.model_copy(update={"web_port": args.port})
    _run_worker(settings)


def cmd_web(args: argparse.Namespace) -> None:
    import asyncio

    from parley.gateway import GatewayConfigError, run_gateway

    settings = _load_settings()
    if args.port is not None:
        settings = settings.model_copy(update={"web_port": args.port})
    logging.basicConfig(level=settings.log_level, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    try:
        asyncio.run(run_gateway(settings))
    except GatewayConfigError as exc:
        sys.exit(f"parley web: {exc}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Kafka-native AI chat pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run everything on embedded servers (broker, documents)")
    dev.add_argument("--port", type=int, default=8080, help="web port (default 8080)")
    dev.add_argument("--data-dir", default=None, help="data directory (default .parley)")
    dev.set_defaults(func=cmd_dev)
    worker = sub.add_parser("worker", help="run agents and the web server against real services")
    worker.add_argument("--port", type=int, default=None, help="web port (default PARLEY_WEB_PORT)")
    worker.set_defaults(func=cmd_worker)
    gateway = sub.add_parser("web", help="run the web gateway alone (workers run separately)")
    gateway.add_argument("--port", type=int, default=None, help="web port (default PARLEY_WEB_PORT)")
    gateway.set_defaults(func=cmd_web)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
