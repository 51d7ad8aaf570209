# The image every GPU flow run executes in (the Kubernetes work pool's {{ image }}): a CUDA build of
# torch, torch-geometric, detectron2 built from its source, and anograph with its flows and tasks.
# Build from the repository root:
#   docker build -f infra/gpu-worker.Dockerfile -t REGISTRY/anograph-gpu:0.1.0 .
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu22.04
FROM ${CUDA_IMAGE}

ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG DETECTRON2_REF=main
# GPU architectures detectron2's CUDA kernels are compiled for (A100, L4/L40S, H100/H200).
ARG TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0"

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    FORCE_CUDA=1 \
    TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST}

RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common git build-essential ninja-build \
        libgl1 libglib2.0-0 ffmpeg ca-certificates \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get install -y --no-install-recommends python${PYTHON_VERSION} python${PYTHON_VERSION}-venv python${PYTHON_VERSION}-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python${PYTHON_VERSION} -m venv ${VIRTUAL_ENV}

# PyPI's Linux wheels of torch are CUDA builds; pin them so detectron2 compiles against the same torch.
RUN pip install --upgrade pip \
    && pip install torch==${TORCH_VERSION} torchvision==${TORCHVISION_VERSION} \
    && pip install "torch-geometric>=2.5" "setuptools<81" wheel

# detectron2 is not on PyPI: build it from its source against the torch above (no build isolation).
RUN git clone https://github.com/facebookresearch/detectron2.git /opt/detectron2 \
    && git -C /opt/detectron2 checkout ${DETECTRON2_REF} \
    && pip install --no-build-isolation /opt/detectron2

# The package, its flows and tasks (flow runs start in /opt/anograph: see prefect.yaml's pull step).
WORKDIR /opt/anograph
COPY pyproject.toml README.md ./
COPY anograph ./anograph
COPY tasks ./tasks
COPY flows ./flows
COPY prefect.yaml ./
RUN pip install . "prefect-kubernetes>=0.8" \
    && python -c "import torch, torch_geometric, detectron2, anograph; print(torch.__version__, torch.version.cuda)"

ENV ANOGRAPH_PROJECT_DIR=/opt/anograph \
    PYTHONPATH=/opt/anograph
USER 1000
