# One image for every process of the service (migrate, web, receiver, poller, worker): the wheel, nothing else.
# Build: docker compose build (or docker build -t mailservice .). See README, "Running in production".

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mailservice mailservice
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
# pg_dump/pg_restore for `mailservice backup` and `restore` (Debian 12's client is PostgreSQL 15, as the db service).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist
# A user of its own, no login shell; /data (raw messages, attachments, the live site, keys) is its only writable place.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mailservice \
    && mkdir -p /data && chown mailservice:mailservice /data
ENV MAILSERVICE_ENVIRONMENT=production \
    MAILSERVICE_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
VOLUME /data
WORKDIR /data
USER mailservice
EXPOSE 8000 2525
ENTRYPOINT ["mailservice"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
