# cpaudit on an edge box: collector + web in one image. The simulators are for rehearsal only.
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
RUN pip install --no-cache-dir .
VOLUME /data
EXPOSE 8050
CMD ["cpaudit", "demo", "--config", "/app/config/examples/brewery.yaml", "--store", "/data/demo.db", "--host", "0.0.0.0"]
