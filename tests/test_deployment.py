"""docker-compose.yml holds together (no Docker engine runs here): every service has an image or a
build context, the CLICKME_* variables are real settings with valid values, the commands exist in
the CLI, dependencies and health checks make sense, and the HTTPS proxy forwards to the API, which
trusts it alone. The proxy's configuration itself runs in tests/browser/test_https_proxy.py."""

import ipaddress
import json
import re
import shlex
import subprocess

import pytest
import typer
import yaml
from typer.core import TyperCommand, TyperGroup

from clickme.cli import app as cli_app
from clickme.core.config import Settings
from tests.conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CADDYFILE = REPO_ROOT / "deploy" / "Caddyfile"
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
    texts = [COMPOSE_FILE.read_text(), CADDYFILE.read_text()]
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


def proxy_environment(services: dict[str, dict]) -> dict[str, str]:
    """The proxy's environment as compose makes it for an operator who set DOMAIN (and not TLS)."""
    environment = services["proxy"]["environment"]
    filled = {"DOMAIN": "clickme.lab.org"}
    return {
        key: INTERPOLATION.sub(lambda match: filled.get(match.group(1), ""), str(value))
        for key, value in environment.items()
    }


def test_the_proxy_mounts_the_caddyfile_and_forwards_to_the_api(
    services: dict[str, dict],
) -> None:
    proxy = services["proxy"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in proxy["volumes"])}
    assert REPO_ROOT / mounts["/etc/caddy/Caddyfile"] == CADDYFILE
    assert "/data" in mounts, "certificates must outlive the container"
    environment = proxy_environment(services)
    assert environment["API_UPSTREAMS"] == f"api:{option(command_of(services['api']), '--port')}"
    assert "DOMAIN" in COMPOSE_FILE.read_text().split("docker compose up")[0]


def test_the_proxy_publishes_http_and_https_and_checks_its_upstreams(
    services: dict[str, dict],
) -> None:
    published = {str(port).split(":")[-1] for port in services["proxy"]["ports"]}
    assert {"80", "443", "443/udp"} <= published
    healthcheck = " ".join(services["proxy"]["healthcheck"]["test"])
    assert "localhost:2019/reverse_proxy/upstreams" in healthcheck


def caddy_config(environment: dict[str, str]) -> dict:
    """deploy/Caddyfile as Caddy reads it with this environment (Debian's `caddy adapt`)."""
    result = subprocess.run(
        ["caddy", "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"} | environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def caddy() -> None:
    if subprocess.run(["which", "caddy"], capture_output=True).returncode != 0:
        pytest.skip("caddy not installed (scripts/test.sh installs it)")


@pytest.mark.usefixtures("caddy")
def test_the_compose_proxy_config_is_valid_caddy(services: dict[str, dict]) -> None:
    config = caddy_config(proxy_environment(services))
    server = config["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == [":443"]
    assert config["apps"]["http"]["http_port"] == 80
    assert server["routes"][0]["match"] == [{"host": ["clickme.lab.org"]}]
    assert "tls" not in config["apps"], "no TLS set: automatic certificates, no files"
    handlers = json_handlers(server)
    proxy = next(handler for handler in handlers if handler["handler"] == "reverse_proxy")
    assert proxy["upstreams"] == [{"dial": "api:8000"}]
    assert proxy["headers"]["request"]["set"]["X-Request-Id"] == ["{http.request.uuid}"]
    inside = next(handler for handler in handlers if handler["handler"] == "static_response")
    assert inside["status_code"] == 404


@pytest.mark.usefixtures("caddy")
def test_a_labs_own_certificate_comes_from_the_mounted_files(services: dict[str, dict]) -> None:
    environment = proxy_environment(services) | {"TLS": "/certs/cert.pem /certs/key.pem"}
    files = caddy_config(environment)["apps"]["tls"]["certificates"]["load_files"]
    assert [(f["certificate"], f["key"]) for f in files] == [("/certs/cert.pem", "/certs/key.pem")]


def json_handlers(server: dict) -> list[dict]:
    """Every handler of the server's routes, subroutes flattened."""
    found = []
    for route in server["routes"]:
        for handler in route.get("handle", []):
            found.append(handler)
            found += json_handlers(handler) if handler.get("handler") == "subroute" else []
    return found


def test_the_api_trusts_the_proxys_address_alone(services: dict[str, dict], compose: dict) -> None:
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    subnet = compose["networks"]["default"]["ipam"]["config"][0]
    assert proxy_address in ipaddress.ip_network(subnet["subnet"])
    assert proxy_address not in ipaddress.ip_network(subnet["ip_range"]), "may be taken"
    trusted = services["api"]["environment"]["CLICKME_FORWARDED_ALLOW_IPS"]
    settings = Settings(forwarded_allow_ips=trusted)
    assert [ipaddress.ip_network(item) for item in settings.trusted_proxies] == [
        ipaddress.ip_network(proxy_address)
    ]
    assert "FORWARDED_ALLOW_IPS" not in services["api"]["environment"], "uvicorn's: unused"
