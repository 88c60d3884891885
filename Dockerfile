# The craton-wf service image: the API (`craton-wf serve --no-runner`), the
# runners (`craton-wf runner`) and the migrations (`craton-wf migrate`).
#
# The base is a build argument: any Debian-like image with Python 3.11+, e.g.
# craton/python:3 made by scripts/make-base-images.sh (no pip in it) or
# python:3.11-slim where a registry is reachable. Every stage uses the same
# base, so the virtualenv copied from the build stages finds its interpreter.
#
# WHEELS names a directory of wheels inside the build context (pip itself,
# setuptools, wheel and every dependency): the install then runs offline, with
# pip run straight from its wheel. scripts/build-service-image.sh makes one.
# Without WHEELS the base's own pip installs from the package index. Either
# way the versions are constraints.txt's, the ones the tests pass with.
#
# Layers are ordered for the cache: the dependencies are installed before the
# sources are copied, so a change of the sources only reinstalls craton-wf.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS deps
ARG WHEELS=
# With WHEELS: the wheels and their requirements.txt. Without: pyproject.toml,
# whose dependencies become the requirements. Either way the sources are not
# in this stage, so it stays cached until the dependencies change.
COPY ${WHEELS:-pyproject.toml} /wheels/
COPY constraints.txt /constraints.txt
# craton-pip: pip run from its wheel, or the base's own pip, installing into
# the virtualenv; the virtualenv itself gets no pip.
RUN set -eu; \
    python3 -m venv --without-pip /opt/craton-wf; \
    if [ -n "$WHEELS" ]; then \
        pip_wheel="$(ls /wheels/pip-*.whl | head -n 1)"; \
        printf '#!/bin/sh\nexec /opt/craton-wf/bin/python %s/pip "$@" --no-index --find-links /wheels\n' \
            "$pip_wheel" >/usr/local/bin/craton-pip; \
    else \
        printf '#!/bin/sh\nexec python3 -m pip --python /opt/craton-wf/bin/python "$@"\n' \
            >/usr/local/bin/craton-pip; \
        python3 -c 'import tomllib; p = tomllib.load(open("/wheels/pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgres"] + p["optional-dependencies"]["kubernetes"]))' \
            >/wheels/requirements.txt; \
    fi; \
    chmod +x /usr/local/bin/craton-pip; \
    craton-pip install --no-cache-dir --disable-pip-version-check -c /constraints.txt \
        -r /wheels/requirements.txt

FROM deps AS app
COPY pyproject.toml README.md /src/
COPY migrations /src/migrations
COPY craton_wf /src/craton_wf
# Into a prefix of its own, so the final stage copies only craton-wf's files
# over the (cached) dependency layer.
RUN craton-pip install --no-cache-dir --disable-pip-version-check --no-deps \
        --prefix /opt/craton-wf-app /src

FROM ${BASE_IMAGE}
# scripts/build-service-image.sh adds org.opencontainers.image.version and .revision.
LABEL org.opencontainers.image.title="craton-wf" \
      org.opencontainers.image.description="Containerized task-job platform: API, runners, migrations" \
      org.opencontainers.image.licenses="Apache-2.0"
# The state of a single-node install (SQLite, build scratch space) lives in
# /var/lib/craton-wf: mount a volume there. Deployments with PostgreSQL set
# CRATON_WF_DATABASE_URL and may run with a read-only root filesystem.
ENV PATH=/opt/craton-wf/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/var/lib/craton-wf \
    CRATON_WF_API_HOST=0.0.0.0 CRATON_WF_API_PORT=7780 \
    CRATON_WF_DATA_DIR=/var/lib/craton-wf/data \
    CRATON_WF_DATABASE_URL=sqlite:////var/lib/craton-wf/craton-wf.db
RUN groupadd --system --gid 10001 craton-wf \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/craton-wf \
        --no-create-home --shell /usr/sbin/nologin craton-wf \
    && mkdir -p /var/lib/craton-wf \
    && chown 10001:10001 /var/lib/craton-wf
WORKDIR /var/lib/craton-wf
EXPOSE 7780
# Docker and Swarm use this; Kubernetes probes /healthz and /readyz itself.
# Over https when the API serves it (on loopback its certificate is not
# checked); with mutual TLS it has no client certificate and only connects.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, socket, ssl, urllib.request as r; e = os.environ.get; p = int(e('CRATON_WF_API_PORT', '7780')); tls = e('CRATON_WF_TLS_CERT'); socket.create_connection(('127.0.0.1', p), 4).close() if e('CRATON_WF_TLS_CLIENT_CA') else r.urlopen(('https' if tls else 'http') + '://127.0.0.1:%d/healthz' % p, timeout=4, context=ssl._create_unverified_context() if tls else None)"]
ENTRYPOINT ["craton-wf"]
CMD ["serve", "--no-runner"]
USER 10001:10001

# Root owns the code: the service's user cannot change it.
COPY --from=deps /opt/craton-wf /opt/craton-wf
COPY --from=app /opt/craton-wf-app /opt/craton-wf
