# hotglue-webhooks: the receiver as an image. One image, three commands (as in the README):
#
#   docker run IMAGE db upgrade     # migrate (once per release, before the new web/workers)
#   docker run IMAGE web            # gunicorn on 0.0.0.0:8000 (HGW_WEB_WORKERS processes)
#   docker run IMAGE worker         # claims events, decides, acts; run M of them
#   docker run IMAGE serve          # migrate + web + one worker (the embedded default)
#
# Configuration is the README's HGW_* table; docs/deploy.md shows the topology.
# Build: docker build -t hotglue-webhooks .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/hotglue-webhooks
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/hotglue-webhooks/bin/pip install . \
 && /opt/hotglue-webhooks/bin/hotglue-webhooks check-config >/dev/null

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/hotglue-webhooks /opt/hotglue-webhooks
RUN groupadd --system --gid 10001 hgw \
 && useradd --system --uid 10001 --gid hgw --create-home --home-dir /home/hgw --shell /usr/sbin/nologin hgw \
 && mkdir -p /data && chown hgw:hgw /data
ENV PATH=/opt/hotglue-webhooks/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HGW_BIND=0.0.0.0:8000 \
    HGW_DATABASE_URL=sqlite:////data/hotglue-webhooks.db \
    HGW_LOG_FORMAT=json
USER hgw
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# No HEALTHCHECK: the same image runs web and worker; probes belong to the orchestrator
# (web: GET /healthz for liveness, GET /readyz for readiness; docs/deploy.md).
ENTRYPOINT ["hotglue-webhooks"]
CMD ["web"]
