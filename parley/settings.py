"""Every Parley setting, read once from the environment (prefix ``PARLEY_``).

No other module reads the environment. Unset service URLs mean "use the embedded default":
``parley dev`` and the tests start the broker and the document server as child processes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from parley.egress import parse_allow_entry
from parley.redact import redact_url

__all__ = ["Settings", "settings_table"]


#: URL settings checked for their scheme: (accepted prefixes, what the error calls them)
_URL_SCHEMES: dict[str, tuple[tuple[str, ...], str]] = {
    "redis_url": (("redis://", "rediss://", "unix://"), "a redis://"),
    "prometheus_url": (("http://", "https://"), "an http(s)://"),
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", frozen=True, extra="ignore", env_ignore_empty=True)

    # --- identity -------------------------------------------------------------------------
    app_id: str = Field("parley", description="Faust app id: the Kafka consumer group, the prefix of the tables' changelog topics and the directory of their stores (letters, digits, `.`, `_`, `-`).")
    new_group_start: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a consumer group without committed offsets (a first deployment, or a new "
        "`PARLEY_APP_ID`) starts: `earliest` answers every event retained on the topics (a worker "
        "logs how many), `latest` only events that arrive after it joined.",
    )
    data_dir: Path = Field(
        Path(".parley"), description="Table stores (RocksDB) and embedded server data."
    )

    # --- outside services -----------------------------------------------------------------
    kafka_url: str | None = Field(
        None, description="kafka://host:port[;host:port]. Unset in dev: embedded."
    )
    mongo_url: str | None = Field(
        None, description="mongodb://... Unset in dev: embedded SecantusDB."
    )
    mongo_database: str = Field("parley", description="Database holding applications, chatbots and the archive.")
    redis_url: str | None = Field(
        None, description="redis://... Unset: in-process cache and bus."
    )

    # --- topics and consumer --------------------------------------------------------------
    topic_partitions: int = Field(8, ge=1, le=1024, description="Partitions of every conversation topic; the unit of scaling.")
    topic_replicas: int = Field(1, ge=1, description="Replication factor of created topics.")
    consumer_fetch_wait_ms: int = Field(
        10,
        ge=1,
        le=5000,
        description="max broker long-poll wait. Keep ~10 on the "
        "embedded broker (it does not wake long polls); 100-500 on real Kafka.",
    )
    consumer_idle_fetch_wait_ms: int = Field(
        500,
        ge=0,
        le=60_000,
        description="Longest time an idle worker's consumer goes between two fetches (the embedded "
        "broker answers an empty fetch only after its full wait, so polling it every 10 ms costs CPU). "
        "After a few empty fetches in a row the consumer pauses before the next, doubling the pause up "
        "to this; data, or a message this process produces (its web ingress, its agents), ends the "
        "pause. So it bounds the extra delay of the first message another process (`parley web`, "
        "another worker) sends to an idle worker. 0 (or at most `PARLEY_CONSUMER_FETCH_WAIT_MS`): "
        "never pause; use it on Kafka, which wakes long polls.",
    )
    producer_max_batch_bytes: int = Field(
        16384,
        ge=1,
        le=16 * 1024 * 1024,
        description="Largest producer batch, in bytes (1: one record per batch, about 1,300 records/s "
        "against the embedded broker where batches reach 60,000).",
    )
    broker_session_timeout_s: float = Field(10.0, gt=0, description="Consumer session timeout: how soon a dead worker's partitions move.")
    broker_heartbeat_interval_s: float = Field(
        1.0, gt=0, description="Consumer heartbeat interval."
    )
    broker_rebalance_timeout_s: float = Field(
        20.0, gt=0, description="Consumer rebalance timeout; keep LLM and tool timeouts below it."
    )
    store: str = Field(
        "rocksdb://", description="table store (rocksdb:// via rocksdict, memory://)."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, le=600,
        description="On SIGTERM, how long a worker lets the turns in flight finish before it leaves "
        "them to the partitions' next owner. Keep it below the orchestrator's stop timeout.",
    )

    # --- LLM ------------------------------------------------------------------------------
    llm_base_url: str | None = Field(
        None, description="any OpenAI-compatible endpoint. Unset: OpenAI."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="unset -> the built-in echo model answers."
    )
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the provider.")
    llm_timeout_s: float = Field(30.0, gt=0, le=600, description="Timeout of one LLM call, in seconds.")
    llm_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per model on 429, 5xx, timeouts and connection errors."
    )
    llm_backoff_base_s: float = Field(
        0.5, gt=0, le=30, description="First retry delay; doubles per attempt, with full jitter."
    )
    llm_backoff_max_s: float = Field(8.0, gt=0, le=120, description="Largest retry delay.")
    llm_total_timeout_s: float = Field(
        60.0, gt=0, le=900, description="Time budget of one answer across all attempts and fallbacks."
    )
    openai_api_key: SecretStr | None = Field(None, description="Key for chatbots with provider `openai`.")
    gemini_api_key: SecretStr | None = Field(None, description="Key for chatbots with provider `gemini`.")
    xai_api_key: SecretStr | None = Field(None, description="Key for chatbots with provider `grok`.")
    history_messages: int = Field(
        40, ge=2, le=1000, description="recent messages kept per conversation."
    )
    max_tool_rounds: int = Field(
        5, ge=1, le=50, description="tool round trips per user message."
    )
    max_turns_in_flight: int = Field(
        1024, ge=1, le=100_000, description="Events in flight per agent and worker (different conversations run concurrently; a turn waits on the model most of its time)."
    )
    tool_timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of one tool call; a timeout becomes an error result.")

    # --- edges ----------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Address the web server binds (0.0.0.0 in containers).")
    web_port: int = Field(8080, ge=0, le=65535, description="Port of the web server (0 = any free port).")
    advertised_url: str | None = Field(
        None,
        description="URL other workers reach this one at (table queries are forwarded to the "
        "key's owner). Unset: http://<web host, or the hostname when binding 0.0.0.0>:<web port>.",
    )
    max_text_bytes: int = Field(
        16 * 1024, ge=1, le=1024 * 1024, description="Largest accepted message text, in UTF-8 bytes."
    )
    produce_timeout_s: float = Field(
        10.0, gt=0, description="How long ingress waits for the broker ack before answering 503."
    )
    delivery_timeout_s: float = Field(
        10.0, gt=0, description="Timeout of one callback POST."
    )
    delivery_max_attempts: int = Field(4, ge=1, le=20, description="Attempts per callback delivery (backoff between).")
    egress_allow: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Destinations Parley may call on an application's behalf although they are private "
        "(callbacks, `channels.*.api_base`, platform file URLs), comma-separated: networks in CIDR "
        "notation (`10.1.0.0/16`, `127.0.0.1/32`, `::1/128`) and host names (`receiver.internal`). "
        "Everything else must be https to a public address: loopback, private, link-local, multicast and "
        "reserved addresses are refused in any spelling. Plain http is allowed to these destinations. "
        "The LLM endpoint (PARLEY_LLM_BASE_URL) is the operator's own and is not checked.",
    )
    egress_allow_http: bool = Field(
        False,
        description="Allow plain http:// callbacks and platform URLs to public addresses too (signatures "
        "and tokens then travel unencrypted). Unset: https only, except to PARLEY_EGRESS_ALLOW.",
    )
    handler_max_attempts: int = Field(
        3, ge=1, le=20, description="Tries of a failing handler before the event is dead-lettered."
    )

    # --- document store load (docs/operations.md) -------------------------------------------
    store_batch_max_docs: int = Field(
        500, ge=1, le=10_000,
        description="Archive writes and conversation claims go to the document store in batches of at most this many documents.",
    )
    store_batch_wait_ms: float = Field(
        5.0, ge=0, le=1000,
        description="How long a document waits for others to share its batch; each caller still returns only once its own documents are written.",
    )
    store_read_concurrency: int = Field(
        32, ge=1, le=1000,
        description="Document store reads at the edges (conversation owners, resume and history) at once per process; the rest wait their turn.",
    )
    store_edge_timeout_s: float = Field(
        10.0, gt=0, le=300,
        description="How long a websocket frame or webhook waits for the document store (queue included) before it is answered `unavailable` / 503.",
    )
    archive_retry_budget_s: float = Field(
        300.0, gt=0, le=86_400,
        description="How long the persister keeps retrying an archive write while the document store is down (events stay unacked) before the event is dead-lettered.",
    )
    owner_cache_ttl_s: float = Field(
        24 * 3600.0, gt=0, le=30 * 86_400,
        description="Seconds a conversation's owner stays cached (it never changes once claimed).",
    )
    owner_negative_ttl_s: float = Field(
        2.0, gt=0, le=3600,
        description="Seconds \"nobody owns this conversation yet\" stays cached; a claim made meanwhile by another gateway is still enforced at the next message.",
    )

    # --- websocket gateway (docs/websocket-protocol.md) -----------------------------------
    ws_heartbeat_s: float = Field(
        30.0, gt=0, le=3600, description="Websocket ping interval; a client that does not answer within half of it is dropped."
    )
    ws_idle_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="A websocket with no client frame for this long is closed (code 4408)."
    )
    ws_messages_per_minute: float = Field(
        30.0, ge=0, description="Sustained rate of `message` frames per websocket connection (and, separately, of `hello` frames); 0: unlimited."
    )
    ws_message_burst: int = Field(
        20, ge=1, le=10_000, description="Messages (and, separately, hellos) a websocket connection may send at once before the per-minute rate applies."
    )
    ws_frames_per_minute: float = Field(
        600.0, ge=0, description="Sustained rate of frames of every kind (hello, message, ping, invalid JSON, unknown types, binary) per websocket connection; a frame over it is refused with `rate_limited` and counts as a bad frame; 0: unlimited."
    )
    ws_frame_burst: int = Field(
        60, ge=1, le=100_000, description="Frames of any kind a websocket connection may send at once before `PARLEY_WS_FRAMES_PER_MINUTE` applies."
    )
    ws_bad_frames_per_minute: float = Field(
        10.0, ge=0, description="Sustained rate of bad frames (invalid JSON, unknown types, binary, refused fields, frames over the frame rate) a websocket connection may send; past `PARLEY_WS_BAD_FRAME_BURST` the socket is closed with 1008; 0: unlimited."
    )
    ws_bad_frame_burst: int = Field(
        20, ge=1, le=100_000, description="Bad frames a websocket connection may send at once; the next one closes it (1008, `too_many_bad_frames`)."
    )
    user_token_max_lifetime_s: float = Field(
        86_400.0, gt=0, description="Longest a user token may still be valid for: a token whose `exp` is further than this from now is refused (websocket and uploads)."
    )
    ws_app_messages_per_minute: float = Field(
        600.0,
        ge=0,
        description="Websocket messages per application and minute, per gateway process, when its chatbot "
        "sets no `rate_limit_per_minute`; 0: unlimited.",
    )
    ws_resume_limit: int = Field(
        200, ge=1, le=10_000, description="Most archived messages a resuming websocket client is sent."
    )

    # --- attachments (docs/attachments.md) -----------------------------------------------
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024, description="Largest accepted upload, in bytes (413 above it)."
    )
    upload_allowed_types: Annotated[tuple[str, ...], NoDecode] = Field(
        ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"),
        description="MIME types an upload may have, comma-separated (415 for others).",
    )
    upload_quota_bytes_per_hour: int = Field(
        256 * 1024 * 1024, ge=0,
        description="Bytes an application's clients may upload per clock hour, across gateways "
        "(429 with Retry-After above it); 0: no quota.",
    )
    upload_unreferenced_ttl_s: int = Field(
        24 * 3600, ge=0,
        description="An upload no message has referenced is deleted this long after it was stored; 0: kept.",
    )
    upload_sweep_interval_s: float = Field(
        300.0, gt=0, description="How often a worker deletes the expired unreferenced uploads."
    )
    files_backend: Literal["auto", "s3", "local"] = Field(
        "auto",
        description="Where uploads are stored: `s3`, `local` (a directory under PARLEY_DATA_DIR) or `auto`: "
        "S3 when PARLEY_S3_ENDPOINT_URL or PARLEY_S3_ACCESS_KEY_ID is set, else local.",
    )
    files_url_expiry_s: int = Field(
        3600, ge=1, le=7 * 24 * 3600, description="Lifetime of the file URLs given to clients and models."
    )
    files_public_url: str | None = Field(
        None,
        description="Base URL under which this web server is reachable, for local file links. "
        "Unset: http://PARLEY_WEB_HOST:PARLEY_WEB_PORT.",
    )
    files_signing_key: SecretStr | None = Field(
        None,
        description="HMAC key of local file links; set it when several processes serve one directory. "
        "Unset: a random key per process.",
    )
    files_inline_images: bool = Field(
        False,
        description="Send images to the model as base64 data URLs instead of links "
        "(for stores the model provider cannot reach).",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint (MinIO, moto). Unset: AWS S3 of PARLEY_S3_REGION."
    )
    s3_bucket: str = Field("parley", description="Bucket holding uploads; created on start when missing.")
    s3_region: str = Field("us-east-1", description="Region of the bucket.")
    s3_access_key_id: SecretStr | None = Field(
        None, description="S3 access key id. Unset: botocore's credential chain."
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    s3_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Connect and read timeout of one S3 request, in seconds."
    )
    s3_max_attempts: int = Field(3, ge=1, le=10, description="Attempts per S3 call (retries with backoff).")

    admin_api_key: SecretStr | None = Field(
        None,
        description="Bootstrap / break-glass bearer key of the admin API (/v1/admin/, /v1/tables/): "
        "acts as an owner of every application. Unset: only operator accounts (sessions and "
        "personal API tokens) are accepted.",
    )
    session_idle_timeout_s: float = Field(
        7200.0, gt=0, le=30 * 86400,
        description="An operator's session ends after this many seconds without a request.",
    )
    session_max_age_s: float = Field(
        43200.0, gt=0, le=90 * 86400,
        description="An operator's session ends this many seconds after sign-in, however active.",
    )
    session_cookie_secure: bool = Field(
        False,
        description="Always mark the session cookie `Secure` (set it behind a proxy that ends TLS). "
        "Without it the cookie is `Secure` when the request came over https (or `X-Forwarded-Proto: https`).",
    )
    trust_forwarded_for: bool = Field(
        False,
        description="Take the client address (login throttling, the audit log) from the last "
        "`X-Forwarded-For` entry: set it only behind a proxy that sets that header (Traefik).",
    )
    login_max_failures_per_account: int = Field(
        5, ge=1, le=1000,
        description="Failed sign-ins of one account within `PARLEY_LOGIN_WINDOW_S` before it is refused (429) until the window ends.",
    )
    login_max_failures_per_address: int = Field(
        50, ge=1, le=100_000,
        description="Failed sign-ins from one client address within `PARLEY_LOGIN_WINDOW_S` before it is refused (429).",
    )
    login_window_s: float = Field(
        900.0, gt=0, le=86400, description="The window of the login throttle, in seconds."
    )
    api_token_max_days: int = Field(
        365, ge=1, le=3650, description="Longest lifetime of a personal API token, in days."
    )
    audit_retention_days: int = Field(
        0, ge=0, le=36500,
        description="Days an audit log entry is kept before the document store removes it (0: kept for good). Applies to entries written from then on.",
    )
    signin_link_ttl_s: float = Field(
        900.0, gt=0, le=7 * 86400,
        description="How long a one-time sign-in link (`parley users link`, `parley dev`) stays valid.",
    )
    config_cache_ttl_s: float = Field(
        30.0, gt=0, le=3600, description="Seconds application and chatbot configs stay cached in Redis (admin writes invalidate at once)."
    )
    config_local_cache_ttl_s: float = Field(
        5.0, gt=0, le=3600, description="Same, for the in-process cache used without Redis: how stale another process may be."
    )

    usage_retention_hours: int = Field(
        24 * 7, ge=1, le=24 * 400, description="Hours of usage windows kept per application."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics answers only requests with `Authorization: Bearer <token>` "
        "(401 otherwise), for ports that cannot be kept off public routes. Unset: no credentials.",
    )
    prometheus_url: str | None = Field(
        None,
        description="Prometheus that scrapes every worker and gateway (e.g. http://prometheus:9090): the "
        "console's overview reads the whole pipeline's figures from it. Unset: the figures of the process serving the console.",
    )
    metrics_interval_s: float = Field(
        5.0, gt=0, le=300, description="How often gauges computed by polling (consumer lag) are refreshed."
    )
    seed_demo: bool = Field(
        False, description="create the `demo` application at start (dev: on)."
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="Event loop of workers and gateways: `uvloop` (installed with Parley on Linux and macOS; "
        "less CPU per socket and per event), `asyncio`, or `auto`: uvloop when it can be imported.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `PARLEY_LLM_BASE_URL=` (as compose files and k8s manifests write) means "unset".
        return None if isinstance(value, str) and value.strip() == "" else value

    @field_validator("upload_allowed_types", mode="before")
    @classmethod
    def _mime_list(cls, value: object) -> object:
        # `PARLEY_UPLOAD_ALLOWED_TYPES=image/png,application/pdf`
        if value is None:
            raise ValueError("PARLEY_UPLOAD_ALLOWED_TYPES must list at least one MIME type")
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return value
        types = tuple(str(item).strip().lower() for item in items if str(item).strip())
        bad = [t for t in types if "/" not in t or " " in t]
        if not types or bad:
            raise ValueError(f"PARLEY_UPLOAD_ALLOWED_TYPES must be MIME types like image/png, got {value!r}")
        return types

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _egress_list(cls, value: object) -> object:
        # `PARLEY_EGRESS_ALLOW=10.1.0.0/16,receiver.internal`; checked by parley.egress
        if value is None:
            return ()
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return value
        entries = tuple(str(item).strip().lower() for item in items if str(item).strip())
        for entry in entries:
            parse_allow_entry(entry)
        return entries

    @field_validator("app_id")
    @classmethod
    def _app_id_is_a_name(cls, value: str) -> str:
        # it prefixes the tables' changelog topics and names the table stores' directory
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", value) or value in (".", ".."):
            raise ValueError(
                f"PARLEY_APP_ID must be 1-200 letters, digits, '.', '_' or '-' (it names Kafka "
                f"topics and a directory), got {value!r}"
            )
        return value

    @field_validator("kafka_url")
    @classmethod
    def _kafka_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("kafka://"):
            raise ValueError(f"PARLEY_KAFKA_URL is not a kafka:// URL: {redact_url(value)!r}")
        return value

    @field_validator("mongo_url")
    @classmethod
    def _mongo_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"PARLEY_MONGO_URL is not a mongodb:// URL: {redact_url(value)!r}")
        return value

    @field_validator(*_URL_SCHEMES)
    @classmethod
    def _url_scheme(cls, value: str | None, info: ValidationInfo) -> str | None:
        schemes, kind = _URL_SCHEMES[str(info.field_name)]
        if value is not None and not value.startswith(schemes):
            # the value is shown without its userinfo and query (they may carry credentials)
            raise ValueError(f"PARLEY_{str(info.field_name).upper()} is not {kind} URL: {redact_url(value)!r}")
        return value

    @property
    def uses_echo_model(self) -> bool:
        return self.llm_api_key is None or not self.llm_api_key.get_secret_value()


def settings_table() -> str:
    """The settings as a Markdown table (README's configuration section is generated from it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `PARLEY_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)
