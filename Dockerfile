# syntax=docker/dockerfile:1
# audit-server images (docs/deploy.md):
#   docker build -t shiftaudit:gpu .                          CUDA, TensorRT, onnxruntime-gpu; needs an NVIDIA GPU
#   docker build --build-arg VARIANT=cpu -t shiftaudit:cpu .  ONNX Runtime on the CPU; runs anywhere
# A variant's build stage installs the engines and the package and compiles the CPU renderer (the kernels'
# host build); the variant's stage copies that environment without the compiler; the last stage, common to
# both, makes it a server.
# Both serve on 0.0.0.0:50051 with the model root at /models and the state (SQLite store, uploads,
# kernel cache) at /var/lib/shiftaudit; flags after the image name are appended to audit-server's.

# Versions. CUDA 13 throughout: the gpu extra needs cuda-bindings 13, and onnxruntime-gpu and
# TensorRT's cu13 wheels are built for it. CUDA 13.0 needs an NVIDIA driver >= 580 on the host.
ARG VARIANT=gpu
ARG VERSION=0.1.0
ARG PYTHON_VERSION=3.11
ARG CUDA_VERSION=13.0.3
ARG TENSORRT_VERSION=11.4.0.106
ARG ORT_VERSION=1.31.1
ARG CUDA_IMAGE=nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-ubuntu24.04

# ---- wheel: build the package once; both images install this wheel ----
FROM python:${PYTHON_VERSION}-slim AS wheel
ARG VERSION
WORKDIR /src
COPY . .
# The wheel's name must match VERSION, so the images' version label cannot drift from pyproject.toml.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && if [ ! -f "/dist/shiftaudit-${VERSION}-py3-none-any.whl" ]; then \
      echo "VERSION=${VERSION} does not match pyproject.toml: built $(ls /dist)" >&2; exit 1; fi

# ---- cpu-build: the CPU image's environment, with the CPU renderer compiled (the kernels' host build) ----
FROM python:${PYTHON_VERSION}-slim AS cpu-build
ARG VERSION
ARG ORT_VERSION
# The compiler stays in this stage: the image gets the built library, not g++ (python:slim's Debian).
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=wheel,source=/dist,target=/dist \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "/dist/shiftaudit-${VERSION}-py3-none-any.whl" "onnxruntime==${ORT_VERSION}" \
 && /opt/venv/bin/python -m shiftaudit.kernels --build-host

# ---- cpu: python:slim + that environment ----
FROM python:${PYTHON_VERSION}-slim AS cpu
ARG PYTHON_VERSION
ARG ORT_VERSION
LABEL org.opencontainers.image.title="shiftaudit audit-server (CPU)" \
      org.opencontainers.image.description="Audits ONNX image classifiers for one-pixel shift sensitivity, over gRPC" \
      org.opencontainers.image.base.name="python:${PYTHON_VERSION}-slim" \
      shiftaudit.onnxruntime.version="${ORT_VERSION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHIFTAUDIT_CACHE=/var/lib/shiftaudit/cache
COPY --from=cpu-build /opt/venv /opt/venv

# ---- gpu-build: CUDA + cuDNN runtime, TensorRT, onnxruntime-gpu, the CPU renderer compiled ----
FROM ${CUDA_IMAGE} AS gpu-build
ARG VERSION
ARG CUDA_VERSION
ARG TENSORRT_VERSION
ARG ORT_VERSION
# Ubuntu 24.04's Python (3.12) and compiler; its .deb versions follow the pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv g++ \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH
# TensorRT first, in a layer of its own: the largest download, and independent of our code. Its libs
# are on NVIDIA's index only (PyPI holds placeholders); the tensorrt metapackage resolves to this cu13 one.
RUN python3 -m venv /opt/venv \
 && pip install --no-cache-dir --extra-index-url https://pypi.nvidia.com "tensorrt-cu13==${TENSORRT_VERSION}"
# The package with its gpu extra, NVRTC from the base image's CUDA minor release. The package depends on
# onnxruntime (CPU); onnxruntime-gpu ships the same `onnxruntime` module, and the two must not be
# installed together (files of one overwrite the other), so the CPU build is removed before the GPU
# build goes in. `pip check` reports the onnxruntime requirement as missing: that is this swap.
RUN --mount=type=bind,from=wheel,source=/dist,target=/dist \
    pip install --no-cache-dir "/dist/shiftaudit-${VERSION}-py3-none-any.whl[gpu]" "nvidia-cuda-nvrtc==${CUDA_VERSION%.*}.*" \
 && pip uninstall -y onnxruntime \
 && pip install --no-cache-dir "onnxruntime-gpu==${ORT_VERSION}" \
 && python -c "import onnxruntime as o; p = o.get_available_providers(); assert 'CUDAExecutionProvider' in p, p" \
 && python -m shiftaudit.kernels --build-host

# ---- gpu: CUDA + cuDNN runtime, Python, and that environment ----
FROM ${CUDA_IMAGE} AS gpu
ARG CUDA_IMAGE
ARG CUDA_VERSION
ARG TENSORRT_VERSION
ARG ORT_VERSION
LABEL org.opencontainers.image.title="shiftaudit audit-server (GPU)" \
      org.opencontainers.image.description="Audits ONNX models and TensorRT engines for one-pixel shift sensitivity, over gRPC" \
      org.opencontainers.image.base.name="${CUDA_IMAGE}" \
      shiftaudit.cuda.version="${CUDA_VERSION}" \
      shiftaudit.tensorrt.version="${TENSORRT_VERSION}" \
      shiftaudit.onnxruntime.version="${ORT_VERSION}"
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHIFTAUDIT_CACHE=/var/lib/shiftaudit/cache
COPY --from=gpu-build /opt/venv /opt/venv

# ---- the server, on either variant ----
# hadolint ignore=DL3006
FROM ${VARIANT} AS server
ARG VERSION
ARG REVISION=""
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --gid 10001 shiftaudit \
 && useradd --no-log-init --no-create-home --uid 10001 --gid shiftaudit --home-dir /var/lib/shiftaudit \
      --shell /usr/sbin/nologin shiftaudit \
 && mkdir -p /models /data /var/lib/shiftaudit \
 && chown shiftaudit:shiftaudit /var/lib/shiftaudit
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/shiftaudit
EXPOSE 50051
# The standard gRPC health service (exempt from the token), plaintext on 127.0.0.1:50051; with TLS give
# the probe --tls-ca (docs/deploy.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "shiftaudit.server.probe"]
# argparse keeps the last of a repeated flag, so `docker run IMAGE --listen ...` overrides these.
ENTRYPOINT ["audit-server", "--listen", "0.0.0.0:50051", "--model-root", "/models", "--state-dir", "/var/lib/shiftaudit"]
CMD []
