"""docker-compose.yml holds together (no Docker engine runs here): every service has an image or a
build context, the CLICKME_* variables are real settings with valid values, the commands exist in
the CLI, dependencies and health checks make sense, and the proxy forwards to the API."""

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml
from typer.core import TyperCommand, TyperGroup

from clickme.cli import app as cli_app
from clickme.core.config import Settings
from tests.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SERVICES = {"postgres", "redis", "migrate", "images", "api", "worker", "proxy"}
# A name CLICKME_X anywhere (a comment included) must be a setting.
SETTING_NAME = re.compile(r"\bCLICKME_([A-Z0-9_]*[A-Z0-9])\b")
# ${NAME}, ${NAME:?message} or ${NAME:-default}: what the operator's environment fills in.
# What an operator puts in the environment for each ${...} (a generated secret).
OPERATOR_VALUE = "k3Jd9xP2mQ7vL5tR8wZ1nB4cF6hY0aE2gU9iO3sK"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::[?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def command_of(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def one_shot(services: dict[str, dict]) -> set[str]:
    """Services others wait to see finish (jobs, not servers)."""
    return {
        target
        for service in services.values()
        for target, rule in service.get("depends_on", {}).items()
        if rule.get("condition") == "service_completed_successfully"
    }


def test_the_production_services_are_all_there(services: dict[str, dict]) -> None:
    assert set(services) == SERVICES


def test_every_service_has_a_pinned_image_or_a_build_context(services: dict[str, dict]) -> None:
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            context = REPO_ROOT / (build if isinstance(build, str) else build["context"])
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (context / (dockerfile or "Dockerfile")).is_file(), name
        else:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), name


def test_every_clickme_variable_is_a_setting(compose: dict) -> None:
    texts = [COMPOSE_FILE.read_text(), (REPO_ROOT / "deploy" / "nginx.conf").read_text()]
    named = {match for text in texts for match in SETTING_NAME.findall(text)}
    assert named, "no CLICKME_* variable found"
    unknown = {f"CLICKME_{name}" for name in named if name.lower() not in Settings.model_fields}
    assert not unknown, f"not settings: {sorted(unknown)}"


def test_each_service_environment_makes_valid_production_settings(
    services: dict[str, dict],
) -> None:
    for name, service in services.items():
        environment = service.get("environment", {})
        values = {
            key.removeprefix("CLICKME_").lower(): INTERPOLATION.sub(OPERATOR_VALUE, str(value))
            for key, value in environment.items()
            if key.startswith("CLICKME_")
        }
        if values:
            settings = Settings(**values)
            assert settings.environment == "production" and settings.redis_url, name
            assert settings.resolved_log_format == "json", name


def cli_command(words: list[str]) -> TyperCommand | TyperGroup:
    """The CLI command the words name (``clickme db upgrade ...``), or a failed test."""
    assert words[0] == "clickme", words
    command = typer.main.get_command(cli_app)
    for word in words[1:]:
        if not isinstance(command, TyperGroup):
            break
        assert word in command.commands, f"no command {word!r} in {' '.join(words)}"
        command = command.commands[word]
    return command


def test_every_command_exists_in_the_cli_with_its_options(services: dict[str, dict]) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    commands = [command_of(service) for service in services.values() if "build" in service]
    commands.append(yaml.safe_load(re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)))
    assert {tuple(words[:2]) for words in commands} >= {
        ("clickme", "db"), ("clickme", "serve"), ("clickme", "worker"), ("clickme", "images")
    }  # fmt: skip
    for words in commands:
        command = cli_command(words)
        known = {opt for param in command.params for opt in param.opts}
        given = {word for word in words if word.startswith("--")}
        assert given <= known, f"{' '.join(words)}: unknown options {given - known}"


def test_dependencies_exist_and_wait_for_what_they_need(services: dict[str, dict]) -> None:
    jobs = one_shot(services)
    assert jobs == {"migrate", "images"}
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on a missing {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}'s health"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_server_has_a_health_check_on_its_own_port(services: dict[str, dict]) -> None:
    jobs = one_shot(services)
    for name, service in services.items():
        assert ("healthcheck" in service) != (name in jobs), name
    api_port = option(command_of(services["api"]), "--port")
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert f"127.0.0.1:{api_port}/readyz" in api_check
    assert "/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    metrics_port = option(command_of(services["worker"]), "--metrics-port")
    assert f"127.0.0.1:{metrics_port}/metrics" in " ".join(
        services["worker"]["healthcheck"]["test"]
    )


def test_api_replicas_sit_behind_the_proxy_and_workers_reserve_a_gpu(
    services: dict[str, dict],
) -> None:
    api = services["api"]
    assert api["deploy"]["replicas"] >= 2
    assert "ports" not in api  # replicas cannot share a host port: the proxy is the way in
    assert str(option(command_of(api), "--port")) in {str(port) for port in api["expose"]}
    assert option(command_of(api), "--host") == "0.0.0.0"
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert services["proxy"]["ports"]


def test_the_proxy_forwards_to_the_api_service_and_port(services: dict[str, dict]) -> None:
    proxy = services["proxy"]
    mounts = [volume.split(":") for volume in proxy["volumes"]]
    config_path = next(REPO_ROOT / source for source, target, *_ in mounts if "nginx" in target)
    config = Path(config_path).read_text()
    upstream = re.search(r"upstream\s+(\w+)\s*\{\s*server\s+([\w.-]+):(\d+)", config)
    assert upstream, "no upstream in the proxy's config"
    name, host, port = upstream.groups()
    assert re.search(rf"proxy_pass\s+http://{name}\s*;", config)
    assert host == "api" and host in services
    assert port == option(command_of(services["api"]), "--port")
    assert "X-Request-ID $request_id" in config
