# Rekisteri: migrate, then serve on 0.0.0.0:8000 as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 rekisteri
WORKDIR /srv/rekisteri

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY openapi ./openapi
COPY profiles ./profiles
# Editable install: alembic reads migrations/ from this directory at run time.
RUN pip install -e . && chown -R rekisteri:rekisteri /srv/rekisteri

USER rekisteri
EXPOSE 8000
# Production needs REKISTERI_ENV=production, REKISTERI_DATABASE_URL and REKISTERI_JWT_SECRET (or key files).
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
CMD ["sh", "-c", "rekisteri migrate && exec rekisteri serve --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --forwarded-allow-ips=${FORWARDED_ALLOW_IPS:-127.0.0.1}"]
