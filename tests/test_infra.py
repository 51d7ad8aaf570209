"""Static checks of infra/ and prefect.yaml: no Docker daemon or Kubernetes cluster exists here, so the
image definition is parsed, the work-pool template is rendered with Prefect's own templating, the stack
script is syntax-checked, and every deployment parameter is checked against its flow's signature."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
from pathlib import Path

import yaml
from prefect.utilities.templating import apply_values, find_placeholders

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                           "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        pending += " " + stripped
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def test_gpu_worker_image_definition_parses_and_builds_what_the_cluster_needs():
    instructions = parse_dockerfile((INFRA / "gpu-worker.Dockerfile").read_text())
    keywords = [keyword for keyword, _ in instructions]
    assert set(keywords) <= DOCKERFILE_INSTRUCTIONS, set(keywords) - DOCKERFILE_INSTRUCTIONS
    assert keywords[keywords.index("FROM") - 1::-1] == ["ARG"] * keywords.index("FROM")  # only ARGs before FROM
    assert keywords.count("FROM") == 1
    base = dict(instructions)["FROM"]
    assert base == "${CUDA_IMAGE}"
    (cuda_image,) = [arguments for keyword, arguments in instructions
                     if keyword == "ARG" and arguments.startswith("CUDA_IMAGE=")]
    assert "nvidia/cuda" in cuda_image and "devel" in cuda_image  # nvcc is needed to build detectron2
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "torch==${TORCH_VERSION}" in runs and "torch-geometric" in runs
    assert "github.com/facebookresearch/detectron2" in runs and "--no-build-isolation" in runs
    assert re.search(r"pip install \. ", runs)
    copied = {arguments.split()[0] for keyword, arguments in instructions if keyword == "COPY"}
    assert {"anograph", "tasks", "flows", "prefect.yaml"} <= copied
    assert all((REPO / path).exists() for path in copied | {"pyproject.toml", "README.md"})


def _template() -> dict:
    text = (INFRA / "k8s" / "gpu-base-job-template.json").read_text()
    template = json.loads(text)
    assert yaml.safe_load(text) == template  # valid YAML as well
    return template


def test_kubernetes_work_pool_template_requests_a_gpu_and_reads_storage_credentials_from_a_secret():
    template = _template()
    properties = template["variables"]["properties"]
    # Every placeholder the job configuration uses is a declared variable.
    placeholders = {placeholder.name for placeholder in find_placeholders(template["job_configuration"])}
    assert placeholders <= set(properties), placeholders - set(properties)

    defaults = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    rendered = apply_values(template["job_configuration"], defaults)
    pod = rendered["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert container["envFrom"] == [{"secretRef": {"name": "anograph-storage"}}]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "anograph-data"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert rendered["job_manifest"]["spec"]["backoffLimit"] == 0  # retries belong to Prefect
    # No credential is written into the template itself.
    assert not re.search(r"AWS_SECRET_ACCESS_KEY|password", json.dumps(template["job_configuration"]), re.I)

    secret = yaml.safe_load((INFRA / "k8s" / "storage-secret.example.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == defaults["storage_secret"]
    assert all(value.startswith("<") or value == "us-east-1" for value in secret["stringData"].values())


def test_local_stack_script_is_valid_bash():
    script = INFRA / "local-stack.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    for piece in ("prefect server start", "weed mini", "prefect worker start", "deploy --all"):
        assert piece in text


def test_every_deployment_parameter_is_an_argument_of_its_flow():
    """Prefect accepts unknown parameter names at deploy time and only fails the run: check them here."""
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    names = set()
    for deployment in config["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
        arguments = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= arguments, deployment["name"]
        names.add(deployment["name"])
    assert {"pipeline", "nightly-retrain", "evaluate-model", "extract-dataset", "extract-shards"} <= names
