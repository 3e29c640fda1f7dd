# scpd container image: one validator per container.
#
#   docker build -t scpd .
#   docker run -v /path/to/node.toml:/etc/scpd/scpd.toml:ro -v scpd-data:/var/lib/scpd -p 11625:11625 scpd
#
# The configuration is mounted at /etc/scpd/scpd.toml (data_dir = "/var/lib/scpd");
# the ledger lives in the /var/lib/scpd volume. The daemon handles SIGTERM itself
# (graceful stop), so it runs directly as PID 1. See docs/operations.md.
#
# The daemon runs as user scpd with a fixed uid and gid, 10001:10001 (build
# arguments SCPD_UID / SCPD_GID), so that files mounted from the host can be
# given to it: the configuration holds the node's seed, so keep it mode 0600
# and `chown 10001:10001` it; a bind-mounted data directory must be owned by
# 10001:10001 too (a named volume is initialised from the image, already owned).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: install scpd and its dependencies into a virtualenv ----------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/scpd
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scpd ./scpd
RUN /opt/scpd/bin/pip install . && /opt/scpd/bin/scpd --version

# -- runtime: the virtualenv only, run by an unprivileged user -----------------
FROM ${PYTHON_IMAGE}
ARG SCPD_UID=10001
ARG SCPD_GID=10001
RUN groupadd --gid "${SCPD_GID}" scpd \
    && useradd --uid "${SCPD_UID}" --gid scpd --home-dir /var/lib/scpd --no-create-home \
        --shell /usr/sbin/nologin scpd \
    && mkdir -p /var/lib/scpd /etc/scpd \
    && chown scpd:scpd /var/lib/scpd /etc/scpd \
    && chmod 0700 /var/lib/scpd
COPY --from=build /opt/scpd /opt/scpd
ENV PATH=/opt/scpd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCPD_HEALTH_URL=http://127.0.0.1:11626/healthz
USER scpd
WORKDIR /var/lib/scpd
VOLUME ["/var/lib/scpd"]
# Peers, then /metrics: 9473 answers only when the configuration has a [metrics]
# section with port = 9473 (as `scpd localnet-config --docker` writes); the admin
# API stays on the container's loopback.
EXPOSE 11625 9473
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SCPD_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["scpd"]
CMD ["run", "--config", "/etc/scpd/scpd.toml"]
