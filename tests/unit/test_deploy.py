"""The deployment files say only true things: the Dockerfile, deploy/compose.yaml, the
Kubernetes example and the Prometheus and Grafana configs parse, pass only flags `serve`
accepts, load a config the gateway validates, and point probes and scrapes at paths the
gateway really serves. (Nothing here builds an image: this machine runs no container engine.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_gateway.cli import _parser
from llm_gateway.core.loader import load_config
from llm_gateway.providers.registry import settings_model
from tests.unit.api.asgi import gateway

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
MANIFESTS = list(yaml.safe_load_all((DEPLOY / "kubernetes/llm-gateway.yaml").read_text()))
PROMETHEUS = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
ENVIRON = {
    "LLM_GATEWAY_MASTER_KEY": "sk-test-master-key-0123456789",
    "OPENAI_API_KEY": "sk-test-provider-key",
    "DATABASE_URL": "postgresql://gateway:gateway@postgres:5432/gateway",
    "REDIS_URL": "redis://redis:6379/0",
}


def manifest(kind: str) -> dict[str, Any]:
    (found,) = (doc for doc in MANIFESTS if doc["kind"] == kind)
    return found


def serve_args(args: list[str]) -> Any:
    """`llm-gateway serve ARGS` parsed by the real CLI (SystemExit on an unknown flag)."""
    return _parser().parse_args(["serve", *args])


def dockerfile() -> dict[str, list[str]]:
    """The final stage's instructions by keyword, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    found: dict[str, list[str]] = {}
    for line in final.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


def test_the_image_runs_serve_as_a_non_root_user_with_a_health_check() -> None:
    final = dockerfile()
    assert json.loads(final["ENTRYPOINT"][0]) == ["llm-gateway", "serve"]
    args = serve_args(json.loads(final["CMD"][0]))
    assert args.port == final["EXPOSE"][0] == "8000"
    user = final["USER"][0].split(":")[0]
    assert user not in {"root", "0"}
    assert "useradd --system --uid 10001" in final["RUN"][0] and final["RUN"][0].endswith(user)
    assert f"http://127.0.0.1:{args.port}/health" in final["HEALTHCHECK"][0]


def test_the_image_installs_only_the_locked_requirements() -> None:
    text = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\n]+)", text)
    assert installs == [
        "--no-cache-dir --require-hashes -r requirements/runtime.txt",
        "--no-cache-dir --no-deps --no-build-isolation .",
    ]


def test_compose_runs_two_gateways_on_shared_postgres_and_redis_with_monitoring() -> None:
    services = COMPOSE["services"]
    expected = {"gateway-1", "gateway-2", "loadbalancer", "postgres", "redis", "prometheus", "grafana"}
    assert set(services) == expected
    for name in ("gateway-1", "gateway-2"):
        gateway_service = services[name]
        args = serve_args(gateway_service["command"])
        assert (args.host, args.port) == ("0.0.0.0", "8000")
        mounts = dict(volume.rsplit(":", 1)[0].split(":") for volume in gateway_service["volumes"])
        assert mounts == {"./gateway.yaml": args.config}
        environment = gateway_service["environment"]
        assert environment["DATABASE_URL"].startswith("postgresql://gateway:gateway@postgres:5432/")
        assert environment["REDIS_URL"].startswith("redis://redis:6379/")
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server gateway-1:8000;" in nginx and "server gateway-2:8000;" in nginx


def test_every_file_compose_mounts_exists() -> None:
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"


def test_the_deployed_config_is_one_the_gateway_accepts(tmp_path: Path) -> None:
    config, _ = load_config(DEPLOY / "gateway.yaml", settings_model, environ=ENVIRON)
    assert config.master_key is not None and config.redis_url is not None
    assert config.database_url.get_secret_value().startswith("postgresql")
    assert {"mock", "gpt-4o-mini"} <= set(config.models)


def test_the_kubernetes_example_mounts_the_same_config_and_passes_real_flags() -> None:
    assert manifest("ConfigMap")["data"]["gateway.yaml"] == (DEPLOY / "gateway.yaml").read_text()
    secret_keys = set(manifest("Secret")["stringData"])
    assert secret_keys == set(ENVIRON)
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = serve_args(container["args"])
    (mount,) = container["volumeMounts"]
    assert Path(args.config).parent == Path(mount["mountPath"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 30  # longer than server.drain_timeout's default
    assert manifest("Service")["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def probe_paths() -> set[str]:
    (container,) = manifest("Deployment")["spec"]["template"]["spec"]["containers"]
    scrape = {config["metrics_path"] for config in PROMETHEUS["scrape_configs"]}
    annotated = manifest("Deployment")["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
    return {
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
        *scrape,
        annotated,
    }


async def test_probes_and_scrapes_point_at_paths_the_gateway_serves() -> None:
    paths = probe_paths()
    assert {"/health", "/ready", "/metrics"} <= paths
    async with gateway() as client:
        for path in sorted(paths):
            response = await client.get(path)
            assert response.status_code == 200, f"{path} answered {response.status_code}"


def test_prometheus_scrapes_each_instance_directly() -> None:
    (job,) = PROMETHEUS["scrape_configs"]
    (targets,) = job["static_configs"]
    assert targets["targets"] == ["gateway-1:8000", "gateway-2:8000"]


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    dashboards = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/llm-gateway.yaml").read_text())
    folder = dashboards["providers"][0]["options"]["path"]
    assert mounts["./grafana/llm-gateway.json"] == f"{folder}/llm-gateway.json"
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.parametrize("document", ["README.md", "docs/deployment.md", "deploy/README.md"])
def test_documented_serve_commands_use_real_flags(document: str) -> None:
    for line in (ROOT / document).read_text().splitlines():
        match = re.search(r"llm-gateway serve((?: --?[\w-]+(?: [^\s`|]+)?)*)", line)
        if match and "--" in match[1]:
            serve_args(shlex.split(match[1]))
