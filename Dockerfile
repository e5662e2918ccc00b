# newsbot: one image for `newsbot run` (and `newsbot ingest`, `newsbot db upgrade`).
# Build: docker build -t newsbot .   Run: see compose.yaml and the README ("Containers").

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY digests ./digests
RUN python -m venv /opt/newsbot \
 && /opt/newsbot/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/newsbot/bin/pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/newsbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    DATABASE_URL=sqlite:////data/newsbot.db
COPY --from=build /opt/newsbot /opt/newsbot
# an unprivileged user owning only its data directory (the SQLite default lives there)
RUN useradd --system --uid 10001 --home-dir /data --create-home --shell /usr/sbin/nologin newsbot
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /healthz answers 200 while the process serves and its digest ticks keep finishing
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('HTTP_PORT', '8080')}/healthz\", timeout=4)"]
# SIGTERM stops it within seconds: sends in flight are recorded, the rest stays for next time
STOPSIGNAL SIGTERM
ENTRYPOINT ["newsbot"]
CMD ["run"]
