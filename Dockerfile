# syntax=docker/dockerfile:1
# sniper: multi-stage image. The builder turns the project (and its dependencies) into wheels;
# the runtime installs them offline and runs as an unprivileged user.
#
#   docker build -t sniper .
#   docker run -d --name sniper \
#     -v sniper-state:/var/lib/sniper \
#     -v "$PWD/config.yaml:/etc/sniper/config.yaml:ro" \
#     -v "$PWD/secrets:/run/secrets:ro" \
#     -e GATE_API_KEY_FILE=/run/secrets/gate_api_key \
#     -e GATE_API_SECRET_FILE=/run/secrets/gate_api_secret \
#     sniper
#
# No secret is ever copied into or set in a layer: credentials come at run time, from mounted
# files (*_FILE, preferred) or environment variables. The config must set `health.port: 9108`
# (or SNIPER_HEALTH_PORT must name its port) for the HEALTHCHECK below to pass.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel needs: a change in tests or docs does not rebuild this layer.
COPY pyproject.toml README.md ./
COPY sniper ./sniper
# Wheels for the project and every runtime dependency (uvloop and orjson included), so the
# runtime stage installs offline and carries no compiler.
RUN python -m pip wheel --wheel-dir /wheels . \
 && ls /wheels/sniper-*.whl /wheels/uvloop-*.whl /wheels/orjson-*.whl

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SNIPER_HEALTH_PORT=9108
RUN groupadd --system --gid 10001 sniper \
 && useradd --system --uid 10001 --gid sniper --home-dir /var/lib/sniper \
        --no-create-home --shell /usr/sbin/nologin sniper \
 && mkdir -p /var/lib/sniper /etc/sniper \
 && chown sniper:sniper /var/lib/sniper \
 && chmod 0700 /var/lib/sniper
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels sniper \
 && python -c "import uvloop, orjson, sniper.cli"

USER 10001:10001
WORKDIR /var/lib/sniper
# The journal (SQLite, WAL) and kill-switch state: keep it across container upgrades.
VOLUME ["/var/lib/sniper"]

# urllib from the standard library: no curl in a slim image. A 503 raises, so the check fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SNIPER_HEALTH_PORT', '9108'), timeout=4)"]

# SIGTERM: stop buying, leave exits resting on the exchange, flush the journal, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sniper"]
CMD ["run", "--config", "/etc/sniper/config.yaml"]
