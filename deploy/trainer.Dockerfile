# syntax=docker/dockerfile:1
# docsort trainer: the `train` extra (TensorFlow, tf2onnx) for `docsort train / evaluate / export`.
# Workers never need this image.
#   docker build -f deploy/trainer.Dockerfile -t docsort-trainer:0.1.0 .
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
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && WHEEL="$(ls /wheels/docsort-*.whl)" \
    && /opt/venv/bin/pip install "${WHEEL}[train]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DOCSORT_DATA_DIR=/data \
    TF_CPP_MIN_LOG_LEVEL=2
RUN groupadd --system --gid 10001 docsort \
    && useradd --system --uid 10001 --gid docsort --home-dir /data --no-create-home docsort \
    && mkdir -p /data/models /data/training \
    && chown -R docsort:docsort /data
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
ENTRYPOINT ["docsort"]
CMD ["train", "--help"]
