# cpaudit on an edge box: one image for the collector, the web and (rehearsal) the simulators;
# docker-compose.yml runs each as its own service over one persistent store in /data.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cpaudit ./cpaudit
COPY config ./config
COPY store ./store
COPY collector ./collector
COPY analyzer ./analyzer
COPY web ./web
COPY simulators ./simulators
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin cpaudit \
    && mkdir -p /data && chown cpaudit:cpaudit /data
USER cpaudit
VOLUME /data
EXPOSE 8050
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/healthz', timeout=3)"
# alone: docker run -e CPAUDIT_TOKEN=... -p 127.0.0.1:8050:8050 cpaudit (the demo campaign, its
# store kept across restarts; beyond localhost the web needs the token)
CMD ["cpaudit", "demo", "--keep", "--store", "/data/demo.db", "--host", "0.0.0.0"]
