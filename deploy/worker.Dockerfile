# syntax=docker/dockerfile:1
# docsort base image: worker, watcher, web application and migrations. Base install only: ONNX Runtime
# on CPU, no TensorFlow (`pip install docsort` installs none).
#   docker build -f deploy/worker.Dockerfile -t docsort:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY docsort ./docsort
COPY schema ./schema
COPY trainer ./trainer
COPY worker ./worker
COPY ingest ./ingest
COPY review ./review
# One wheel of docsort itself, then a virtual environment with it and its base dependencies.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install /wheels/docsort-*.whl

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DOCSORT_DATA_DIR=/data \
    DOCSORT_LOG_FORMAT=json \
    MPLCONFIGDIR=/tmp/matplotlib
RUN groupadd --system --gid 10001 docsort \
    && useradd --system --uid 10001 --gid docsort --home-dir /data --no-create-home docsort \
    && mkdir -p /data/models /data/inbox /data/processing /data/outbox /data/archive /data/error /data/review \
    && chown -R docsort:docsort /data
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000 9100
ENTRYPOINT ["docsort"]
CMD ["--help"]
