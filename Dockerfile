# The craton-wf service image: API and runner (`craton-wf serve`, `craton-wf runner`).
# No image can be pulled on an air-gapped build host, so the base is a build
# argument: any image with Python 3.11+ and pip, e.g. one made by
# scripts/make-base-images.sh or python:3.11-slim where a registry is reachable.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CRATON_WF_API_HOST=0.0.0.0 CRATON_WF_DATA_DIR=/var/lib/craton-wf

WORKDIR /opt/craton-wf
COPY pyproject.toml README.md alembic.ini ./
COPY craton_wf ./craton_wf
COPY migrations ./migrations
# WHEELS: a directory of wheels in the context for offline installs (pip --find-links).
ARG WHEELS=
RUN python3 -m pip install --no-cache-dir ${WHEELS:+--no-index --find-links ${WHEELS}} '.[postgres]' \
    && mkdir -p /var/lib/craton-wf && chown 10001:10001 /var/lib/craton-wf

USER 10001:10001
EXPOSE 7780
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7780/healthz', timeout=4)"
ENTRYPOINT ["craton-wf"]
CMD ["serve", "--no-runner"]
