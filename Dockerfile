# Production image for `parley worker` and `parley web`.
#   docker build -t parley .
#   docker run --rm -e PARLEY_KAFKA_URL=... -e PARLEY_MONGO_URL=... parley worker
# Only the runtime dependencies are installed (`pip install .`): no `embedded` extra (the
# child-process broker and document server of `parley dev`), no `test` extra.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv with Parley and its dependencies --------------------------------------
FROM ${PYTHON_IMAGE} AS build

# faust-streaming ships no wheel for every Python/platform; its sdist compiles optional Cython
# speedups when a C compiler is present (and silently falls back to pure Python without one).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY parley ./parley
RUN pip install --upgrade pip \
    && pip install . \
    && parley --help >/dev/null

# --- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="parley" \
      org.opencontainers.image.description="Kafka-native AI chat pipeline on Faust" \
      org.opencontainers.image.licenses="Apache-2.0"

ARG UID=10001
RUN groupadd --system --gid ${UID} parley \
    && useradd --system --uid ${UID} --gid parley --home-dir /var/lib/parley \
       --shell /usr/sbin/nologin parley \
    && mkdir -p /var/lib/parley \
    && chown parley:parley /var/lib/parley

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PARLEY_DATA_DIR=/var/lib/parley \
    PARLEY_WEB_HOST=0.0.0.0 \
    PARLEY_WEB_PORT=8080

WORKDIR /var/lib/parley
USER parley:parley

EXPOSE 8080

# Liveness only (/healthz answers while the process serves HTTP); readiness is /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PARLEY_WEB_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["parley"]
CMD ["worker"]
