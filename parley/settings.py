"""Every Parley setting, read once from the environment (prefix ``PARLEY_``).

No other module reads the environment. Unset service URLs mean "use the embedded default":
``parley dev`` and the tests start the broker and the document server as child processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError"]


class SettingsError(ValueError):
    """A setting has a value Parley cannot use; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_", frozen=True, extra="ignore")

    # --- identity -------------------------------------------------------------------------
    app_id: str = Field("parley", description="PARLEY_APP_ID: Faust app id = Kafka consumer group.")
    data_dir: Path = Field(
        Path(".parley"), description="PARLEY_DATA_DIR: table stores and embedded server data."
    )

    # --- outside services -----------------------------------------------------------------
    kafka_url: str | None = Field(
        None, description="PARLEY_KAFKA_URL: kafka://host:port[;host:port]. Unset in dev: embedded."
    )
    mongo_url: str | None = Field(
        None, description="PARLEY_MONGO_URL: mongodb://... Unset in dev: embedded SecantusDB."
    )
    mongo_database: str = Field("parley", description="PARLEY_MONGO_DATABASE")
    redis_url: str | None = Field(
        None, description="PARLEY_REDIS_URL: redis://... Unset: in-process cache and bus."
    )

    # --- topics and consumer --------------------------------------------------------------
    topic_partitions: int = Field(8, ge=1, le=1024, description="PARLEY_TOPIC_PARTITIONS")
    topic_replicas: int = Field(1, ge=1, description="PARLEY_TOPIC_REPLICAS")
    consumer_fetch_wait_ms: int = Field(
        10,
        ge=1,
        le=5000,
        description="PARLEY_CONSUMER_FETCH_WAIT_MS: max broker long-poll wait. Keep ~10 on the "
        "embedded broker (it does not wake long polls); 100-500 on real Kafka.",
    )
    broker_session_timeout_s: float = Field(10.0, gt=0, description="PARLEY_BROKER_SESSION_TIMEOUT_S")
    broker_heartbeat_interval_s: float = Field(
        1.0, gt=0, description="PARLEY_BROKER_HEARTBEAT_INTERVAL_S"
    )
    broker_rebalance_timeout_s: float = Field(
        20.0, gt=0, description="PARLEY_BROKER_REBALANCE_TIMEOUT_S"
    )
    store: str = Field(
        "rocksdb://", description="PARLEY_STORE: table store (rocksdb:// via rocksdict, memory://)."
    )

    # --- LLM ------------------------------------------------------------------------------
    llm_base_url: str | None = Field(
        None, description="PARLEY_LLM_BASE_URL: any OpenAI-compatible endpoint. Unset: OpenAI."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="PARLEY_LLM_API_KEY: unset -> the built-in echo model answers."
    )
    llm_model: str = Field("gpt-4o-mini", description="PARLEY_LLM_MODEL")
    llm_timeout_s: float = Field(30.0, gt=0, le=600, description="PARLEY_LLM_TIMEOUT_S: per call.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="PARLEY_LLM_MAX_RETRIES")
    history_messages: int = Field(
        40, ge=2, le=1000, description="PARLEY_HISTORY_MESSAGES: recent messages kept per conversation."
    )
    max_tool_rounds: int = Field(
        5, ge=1, le=50, description="PARLEY_MAX_TOOL_ROUNDS: tool round trips per user message."
    )
    max_turns_in_flight: int = Field(
        256, ge=1, le=100_000, description="PARLEY_MAX_TURNS_IN_FLIGHT: per worker and agent."
    )
    tool_timeout_s: float = Field(10.0, gt=0, le=120, description="PARLEY_TOOL_TIMEOUT_S")

    # --- edges ----------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="PARLEY_WEB_HOST")
    web_port: int = Field(8080, ge=0, le=65535, description="PARLEY_WEB_PORT (0 = any free port)")
    max_text_bytes: int = Field(
        16 * 1024, ge=1, le=1024 * 1024, description="PARLEY_MAX_TEXT_BYTES: user text limit."
    )
    produce_timeout_s: float = Field(
        10.0, gt=0, description="PARLEY_PRODUCE_TIMEOUT_S: wait for the broker ack at ingress."
    )
    delivery_timeout_s: float = Field(
        10.0, gt=0, description="PARLEY_DELIVERY_TIMEOUT_S: per callback POST."
    )
    delivery_max_attempts: int = Field(4, ge=1, le=20, description="PARLEY_DELIVERY_MAX_ATTEMPTS")
    handler_max_attempts: int = Field(
        3, ge=1, le=20, description="PARLEY_HANDLER_MAX_ATTEMPTS: tries before dead-lettering."
    )

    seed_demo: bool = Field(
        False, description="PARLEY_SEED_DEMO: create the `demo` application at start (dev: on)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="PARLEY_LOG_LEVEL"
    )

    @field_validator("kafka_url")
    @classmethod
    def _kafka_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("kafka://"):
            raise ValueError(f"PARLEY_KAFKA_URL is not a kafka:// URL: {value!r}")
        return value

    @field_validator("mongo_url")
    @classmethod
    def _mongo_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(f"PARLEY_MONGO_URL is not a mongodb:// URL: {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"PARLEY_REDIS_URL is not a redis:// URL: {value!r}")
        return value

    @property
    def uses_echo_model(self) -> bool:
        return self.llm_api_key is None or not self.llm_api_key.get_secret_value()
