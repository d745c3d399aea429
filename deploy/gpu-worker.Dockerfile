# syntax=docker/dockerfile:1
# docsort worker for NVIDIA GPUs: ONNX Runtime with the CUDA execution provider (the `gpu` extra, in
# place of the CPU onnxruntime), on a CUDA 12 + cuDNN 9 runtime. No TensorFlow.
#   docker build -f deploy/gpu-worker.Dockerfile -t docsort-gpu:0.1.0 .
# Run with the NVIDIA container toolkit (compose: `--profile gpu`; Kubernetes: nvidia.com/gpu limits).
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY docsort ./docsort
COPY schema ./schema
COPY trainer ./trainer
COPY worker ./worker
COPY ingest ./ingest
COPY review ./review
# The gpu extra brings onnxruntime-gpu; the CPU onnxruntime (a base dependency) shares its module
# name, so it is removed and onnxruntime-gpu reinstalled over it.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && WHEEL="$(ls /wheels/docsort-*.whl)" \
    && /opt/venv/bin/pip install "${WHEEL}[gpu]" \
    && /opt/venv/bin/pip uninstall -y onnxruntime \
    && ORT_VERSION="$(/opt/venv/bin/python -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))')" \
    && /opt/venv/bin/pip install --force-reinstall --no-deps "onnxruntime-gpu==${ORT_VERSION}"

FROM ${CUDA_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 docsort \
    && useradd --system --uid 10001 --gid docsort --home-dir /data --no-create-home docsort \
    && mkdir -p /data/models /data/inbox /data/processing /data/outbox /data/archive /data/error /data/review \
    && chown -R docsort:docsort /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DOCSORT_DATA_DIR=/data \
    DOCSORT_LOG_FORMAT=json \
    DOCSORT_PROVIDER=cuda
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9100
ENTRYPOINT ["docsort"]
CMD ["worker"]
