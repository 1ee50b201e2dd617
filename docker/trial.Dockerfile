# syntax=docker/dockerfile:1
# nerftune's image for every service of compose.yaml: the Ray head, the GPU workers (trials) and the MLflow server.
# CUDA, nerfstudio with tiny-cuda-nn built for CUDA_ARCHITECTURES, and nerftune with the extras the README installs
# on cluster nodes (`.[server]`: the PostgreSQL driver). It runs as a non-root user whose uid and gid are build
# arguments, so that what trials write into mounted folders belongs to the host's user:
#   docker build -f docker/trial.Dockerfile --build-arg USER_UID=$(id -u) --build-arg USER_GID=$(id -g) -t nerftune .
ARG CUDA_VERSION=12.4.1
ARG UBUNTU_VERSION=22.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS build
# Turing (75) to Hopper (90); one architecture builds much faster (e.g. 86 for RTX 30xx)
ARG CUDA_ARCHITECTURES="75;80;86;89;90"
ARG TORCH_VERSION=2.5.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124
ARG TCNN_VERSION=v1.7
ENV DEBIAN_FRONTEND=noninteractive
# the distribution's packages are pinned by the base image's tag; apt pins would break as its mirror moves on
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git build-essential ninja-build python3.11 python3.11-dev python3.11-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --no-cache-dir --upgrade pip==24.3.1 setuptools==75.6.0 wheel==0.45.1 \
    && pip install --no-cache-dir "torch==${TORCH_VERSION}" "torchvision==0.20.1" --index-url "${TORCH_INDEX}"
# tiny-cuda-nn's torch bindings, compiled here for the GPUs the image is meant for (nerftune runs without it too)
ENV TCNN_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}
RUN pip install --no-cache-dir --no-build-isolation \
    "git+https://github.com/NVlabs/tiny-cuda-nn@${TCNN_VERSION}#subdirectory=bindings/torch"
COPY pyproject.toml README.md /src/
COPY nerftune /src/nerftune
COPY search_spaces /src/search_spaces
# without jsonschema's IRI checker, which every Ray process would compile on import (see the Makefile)
RUN pip install --no-cache-dir "/src[server]" \
    && pip uninstall -y rfc3987-syntax

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION}
ARG USER_UID=1000
ARG USER_GID=1000
ENV DEBIAN_FRONTEND=noninteractive
# ffmpeg: videos of renders; colmap's pycolmap wheel brings its own libraries
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ffmpeg libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/search_spaces /work/search_spaces
RUN groupadd --gid "${USER_GID}" nerftune \
    && useradd --uid "${USER_UID}" --gid "${USER_GID}" --create-home --shell /bin/bash nerftune \
    && mkdir -p /work/sweeps /work/data \
    && chown -R nerftune:nerftune /work
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NERFTUNE_CACHE_DIR=/home/nerftune/.cache/nerftune
USER ${USER_UID}:${USER_GID}
WORKDIR /work
CMD ["bash"]
