# The production image: `ontime serve` as a numeric non-root user, every
# dependency installed from requirements.lock by its hash.
# Build: `make docker`. Run with its database and a proxy: compose.yaml.
# Both stages use the same base image, so the venv built in the first runs in
# the second as it is.

FROM python:3.11-slim-bookworm AS builder

WORKDIR /src

# The dependencies first: a change to ontime's code reuses this layer. Wheels
# only, so nothing is compiled here (every locked package has wheels for Linux
# x86_64 and aarch64).
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/ontime \
    && /opt/ontime/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements.lock \
    && pip install --no-cache-dir --require-hashes -r requirements-build.lock

# ontime itself, as a wheel built with the locked setuptools (no unpinned
# download of a build backend), installed without touching the locked set.
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/ontime/bin/pip install --no-cache-dir --no-deps /wheels/ontime-*.whl


FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="ontime" \
      org.opencontainers.image.description="Shipment tracking API" \
      org.opencontainers.image.licenses="Apache-2.0"

# DATABASE_URL and ONTIME_BOOTSTRAP_ADMIN_KEY come from the deployment. Without
# DATABASE_URL an embedded PostgreSQL starts in ONTIME_DATA_DIR (mount a volume
# there to keep it); that is for trying the image, not for production.
ENV PATH=/opt/ontime/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ONTIME_HOST=0.0.0.0 \
    ONTIME_PORT=8000 \
    ONTIME_MIGRATIONS_DIR=/opt/ontime/migrations \
    ONTIME_DATA_DIR=/var/lib/ontime

# A named account with a fixed id: the embedded PostgreSQL's initdb refuses a
# uid with no passwd entry, and `USER 10001:10001` (numeric) lets an
# orchestrator check the user is not root without reading /etc/passwd.
RUN groupadd --system --gid 10001 ontime \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ontime --create-home \
       --shell /usr/sbin/nologin ontime

COPY --from=builder /opt/ontime /opt/ontime
COPY migrations /opt/ontime/migrations

USER 10001:10001
WORKDIR /var/lib/ontime
EXPOSE 8000

# Ready when the database answers; slim has no curl, Python's urllib does it
# (a non-2xx answer raises, and the exit status is then 1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('ONTIME_PORT', '8000'), timeout=3)"]

CMD ["ontime", "serve"]
