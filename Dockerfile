FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ONTIME_MIGRATIONS_DIR=/app/migrations \
    ONTIME_HOST=0.0.0.0

RUN useradd --create-home --uid 10001 ontime
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
COPY migrations ./migrations
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER ontime
EXPOSE 8000
# DATABASE_URL comes from the environment; without it an embedded PostgreSQL
# starts under /home/ontime/.local/share/ontime (mount a volume there to keep it).
CMD ["ontime", "serve"]
