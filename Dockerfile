# Rekisteri: a production image. Build:  docker build -t rekisteri .
# Runs `rekisteri serve` as an unprivileged user with REKISTERI_ENV=production. Migrations are a separate
# one-off step (`docker compose run --rm migrate`, or your platform's pre-deploy job), and the outbox worker
# a second process from the same image (`rekisteri worker`); see compose.yaml and docs/operating.md.

# --- build: dependencies from the lock file (hashes checked), the app as a wheel ---------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
RUN python -m venv /opt/rekisteri
COPY requirements.lock ./
RUN /opt/rekisteri/bin/pip install --require-hashes --no-deps -r requirements.lock

COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY migrations ./migrations
# A plain (non-editable) wheel; it carries the migrations as `rekisteri_migrations`.
RUN /opt/rekisteri/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/rekisteri/bin/pip install --no-deps /wheels/rekisteri-*.whl

# --- run: the virtual environment only, no compilers, no source tree --------------------------------------
FROM python:3.11-slim AS run

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/rekisteri/bin:$PATH \
    REKISTERI_ENV=production \
    PROMETHEUS_MULTIPROC_DIR=/tmp/rekisteri-metrics

RUN useradd --create-home --uid 10001 --user-group rekisteri
COPY --from=build /opt/rekisteri /opt/rekisteri
COPY profiles /srv/rekisteri/profiles
WORKDIR /srv/rekisteri

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# Production also needs REKISTERI_DATABASE_URL, REKISTERI_JWT_SECRET, REKISTERI_ERASURE_KEYS, REKISTERI_PUBLIC_BASE_URL and the
# delivery settings: without them the service lists what is missing and exits non-zero.
ENTRYPOINT ["rekisteri"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
