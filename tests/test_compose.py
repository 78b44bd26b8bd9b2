"""The container set-up: Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine is needed: the compose file is read with PyYAML and its
${...} references are resolved here the way Compose resolves them, so the
tests see both what is written and what a container would get.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from config.celery_app import HEARTBEAT_SECONDS
from config.settings.environment import KNOWN, check_environment

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements.txt"

APP_SERVICES = ("web", "worker", "beat")
SANDBOX_SERVICES = ("web", "worker")  # both run the grading sandbox (web: load_quizzes)
ALL_SERVICES = (*APP_SERVICES, "redis", "postgres")
# What the operator supplies; everything else has a default.
OPERATOR_ENV = {"DJANGO_SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "pw-from-operator"}


# -- helpers ---------------------------------------------------------------------
class MissingVariable(Exception):
    pass


_REFERENCE = re.compile(
    r"\$\$"                                                     # escaped dollar
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(text: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error} (no nesting: this file uses none)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        value = variables.get(name)
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and missing:
            return arg
        if op in (":?", "?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""

    return _REFERENCE.sub(replace, text)


def resolve(node: Any, variables: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: resolve(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, variables) for value in node]
    return node


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment, from either the mapping or the list syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    return {key: None if value is None else str(value) for key, value in env.items()}


def argv(command: Any) -> list[str]:
    """A command as argv; `sh -c "..."` is unwrapped to the tokens of its script."""
    tokens = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    if len(tokens) >= 3 and tokens[0] in ("sh", "/bin/sh", "bash", "/bin/bash") and tokens[1] == "-c":
        return shlex.split(tokens[2])
    return tokens


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test")
    assert test, "no healthcheck test"
    if isinstance(test, str):
        return test
    assert test[0] in ("CMD", "CMD-SHELL"), f"healthcheck test must start with CMD or CMD-SHELL: {test}"
    return " ".join(test[1:])


def build_of(service: dict[str, Any]) -> tuple[str, str]:
    build = service.get("build")
    assert build is not None, "no build section"
    if isinstance(build, str):
        return build, "Dockerfile"
    return build.get("context", "."), build.get("dockerfile", "Dockerfile")


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def requirement_pin(name: str) -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}==(\S+)", line.strip(), re.IGNORECASE)
        if match:
            return match.group(1)
    raise AssertionError(f"{name} is not pinned with == in requirements.txt")


def index_of(instructions: list[tuple[str, str]], predicate: Any, what: str) -> int:
    for i, instruction in enumerate(instructions):
        if predicate(*instruction):
            return i
    raise AssertionError(f"the Dockerfile has no {what}")


# -- fixtures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any]) -> dict[str, Any]:
    """The services as Compose would run them, given only the required secrets."""
    return resolve(compose, dict(OPERATOR_ENV))["services"]


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


# -- services --------------------------------------------------------------------
def test_the_five_services_exist(services: dict[str, Any]) -> None:
    missing = set(ALL_SERVICES) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_app_services_build_one_image_from_the_dockerfile(services: dict[str, Any]) -> None:
    builds = {name: build_of(services[name]) for name in APP_SERVICES}
    assert len(set(builds.values())) == 1, f"web, worker and beat must build alike: {builds}"
    context, dockerfile = builds["web"]
    assert (ROOT / context).resolve() == ROOT, f"build context {context!r} is not the project root"
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    # One tag shared by several building services can collide when Compose builds in parallel.
    for name in APP_SERVICES:
        assert "image" not in services[name], f"{name}: build only, no shared image tag"


def test_web_runs_gunicorn_with_the_wsgi_app_after_migrating(services: dict[str, Any]) -> None:
    web = services["web"]
    tokens = argv(web["command"])
    assert "gunicorn" in tokens, tokens
    gunicorn = tokens[tokens.index("gunicorn"):]
    assert "config.wsgi:application" in gunicorn or "config.wsgi" in gunicorn, gunicorn
    bind = [gunicorn[i + 1] for i, t in enumerate(gunicorn[:-1]) if t in ("--bind", "-b")]
    bind += [t.split("=", 1)[1] for t in gunicorn if t.startswith("--bind=")]
    assert bind == ["0.0.0.0:8000"], f"gunicorn must bind 0.0.0.0:8000, binds {bind}"
    script = " ".join(tokens)
    migrate, load, serve = (script.find(s) for s in ("manage.py migrate", "manage.py load_quizzes", "gunicorn"))
    assert -1 < migrate < load < serve, f"web must migrate, then load_quizzes, then start gunicorn: {script}"
    assert "exec gunicorn" in script, "gunicorn must replace the shell (exec) to get the stop signal"


def test_web_publishes_port_8000(services: dict[str, Any]) -> None:
    published = set()
    for port in services["web"].get("ports", []):
        if isinstance(port, dict):
            published.add((str(port.get("published")), str(port.get("target"))))
        else:
            parts = str(port).split("/")[0].split(":")
            published.add((parts[-2] if len(parts) > 1 else parts[-1], parts[-1]))
    assert ("8000", "8000") in published, f"web must publish 8000:8000, publishes {published}"


def test_worker_runs_celery_on_the_grading_queue(services: dict[str, Any]) -> None:
    tokens = argv(services["worker"]["command"])
    assert tokens[:4] == ["celery", "-A", "config", "worker"], tokens
    queues = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t in ("-Q", "--queues")]
    assert queues, f"the worker must name its queues with -Q: {tokens}"
    consumed = {q for value in queues for q in value.split(",")}
    # grading: grader.grade_submission; default: grader.requeue_stuck from beat.
    assert {"grading", "default"} <= consumed, consumed


def test_beat_runs_celery_beat(services: dict[str, Any]) -> None:
    assert argv(services["beat"]["command"])[:4] == ["celery", "-A", "config", "beat"]


@pytest.mark.parametrize("name", SANDBOX_SERVICES)
def test_sandbox_services_may_unshare_mount_and_use_landlock(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert "SYS_ADMIN" in {c.upper().removeprefix("CAP_") for c in service.get("cap_add", [])}
    options = {o.replace(":", "=", 1) for o in service.get("security_opt", [])}
    assert "seccomp=unconfined" in options, options
    assert "apparmor=unconfined" in options, options
    assert not service.get("privileged"), f"{name}: the capabilities above are enough; no privileged mode"


def test_postgres_and_redis_have_health_checks(services: dict[str, Any]) -> None:
    assert "pg_isready" in healthcheck_text(services["postgres"])
    redis = healthcheck_text(services["redis"])
    assert "redis-cli" in redis and "ping" in redis, redis
    for name in ("postgres", "redis"):
        assert not services[name]["healthcheck"].get("disable"), name


def test_web_and_worker_have_health_checks(services: dict[str, Any]) -> None:
    web = healthcheck_text(services["web"])
    assert services["web"]["healthcheck"]["test"][:2] == ["CMD", "python"], "no curl in the slim image"
    assert "http://127.0.0.1:8000/healthz/" in web, web
    worker = healthcheck_text(services["worker"])
    assert WORKER_HEARTBEAT in worker, worker
    # $(...) must reach the container's shell ($$), not be filled in from the host by Compose.
    assert not re.search(r"(?<!\$)\$[({A-Za-z]", worker), worker


# -- riding out faults (issue 14) ---------------------------------------------------
WORKER_HEARTBEAT = "/tmp/worker-heartbeat"


def test_the_worker_touches_the_heartbeat_file_its_health_check_reads(services: dict[str, Any]) -> None:
    tokens = argv(services["worker"]["command"])
    assert "--heartbeat-file" in tokens, tokens
    assert tokens[tokens.index("--heartbeat-file") + 1] == WORKER_HEARTBEAT, tokens


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("stat") is None, reason="needs sh and GNU stat")
def test_the_worker_health_check_passes_on_a_fresh_heartbeat_and_fails_on_a_stale_or_missing_one(
        resolved: dict[str, Any], tmp_path: Path) -> None:
    """The health check's own shell command, run here against a file of the test's (as the container would)."""
    test = resolved["worker"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL", test
    heartbeat = tmp_path / "heartbeat"
    script = test[1].replace(WORKER_HEARTBEAT, str(heartbeat))

    def healthy() -> bool:
        return subprocess.run(["sh", "-c", script], capture_output=True).returncode == 0

    assert not healthy(), "no heartbeat yet (the worker is starting or never connected)"
    heartbeat.touch()
    assert healthy(), script
    stale = time.time() - 3 * HEARTBEAT_SECONDS - 20  # several missed touches, past the 30 s allowed
    os.utime(heartbeat, (stale, stale))
    assert not healthy(), "a worker that stopped consuming (reconnecting, stuck) must show as unhealthy"


def test_beat_runs_on_its_own_never_inside_a_worker(services: dict[str, Any]) -> None:
    for name, service in services.items():
        tokens = argv(service.get("command") or [])
        if tokens[:4] == ["celery", "-A", "config", "worker"]:
            assert not {"-B", "--beat"} & set(tokens), f"{name} runs beat inside a worker: {tokens}"
    beats = [name for name, service in services.items() if argv(service.get("command") or [])[:4]
             == ["celery", "-A", "config", "beat"]]
    assert beats == ["beat"], beats
    assert "scale" not in services["beat"] and "replicas" not in (services["beat"].get("deploy") or {}), \
        "exactly one beat, or the sweep runs twice as often"


@pytest.mark.parametrize("name", ALL_SERVICES)
def test_every_service_is_restarted_when_it_exits(services: dict[str, Any], name: str) -> None:
    assert services[name].get("restart") in ("always", "unless-stopped"), (name, services[name].get("restart"))


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_postgres_and_redis(services: dict[str, Any], name: str) -> None:
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must use the long syntax with conditions"
    for dependency in ("postgres", "redis"):
        assert depends_on.get(dependency, {}).get("condition") == "service_healthy", (name, dependency)


# -- environment -----------------------------------------------------------------
@pytest.mark.parametrize("name", APP_SERVICES)
def test_database_url_points_at_the_postgres_service(resolved: dict[str, Any], name: str) -> None:
    url = urlsplit(environment_of(resolved[name])["DATABASE_URL"] or "")
    postgres = environment_of(resolved["postgres"])
    assert url.scheme in ("postgres", "postgresql"), url
    assert url.hostname == "postgres" and url.port in (None, 5432), url
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == OPERATOR_ENV["POSTGRES_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
    assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_database_url_follows_postgres_overrides(compose: dict[str, Any]) -> None:
    overrides = {**OPERATOR_ENV, "POSTGRES_USER": "alice", "POSTGRES_DB": "quizzes"}
    services = resolve(compose, overrides)["services"]
    url = urlsplit(environment_of(services["worker"])["DATABASE_URL"] or "")
    assert (url.username, url.path) == ("alice", "/quizzes")
    assert environment_of(services["postgres"])["POSTGRES_USER"] == "alice"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_broker_url_points_at_the_redis_service(resolved: dict[str, Any], name: str) -> None:
    url = urlsplit(environment_of(resolved[name])["CELERY_BROKER_URL"] or "")
    assert url.scheme == "redis" and url.hostname == "redis" and url.port in (None, 6379), url


@pytest.mark.parametrize("name", APP_SERVICES)
def test_allowed_hosts_default_to_localhost(resolved: dict[str, Any], name: str) -> None:
    assert environment_of(resolved[name])["DJANGO_ALLOWED_HOSTS"] == "localhost,127.0.0.1"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_secrets_are_required_never_literal(services: dict[str, Any], name: str) -> None:
    env = environment_of(services[name])
    assert (env["DJANGO_SECRET_KEY"] or "").startswith("${DJANGO_SECRET_KEY:?"), env["DJANGO_SECRET_KEY"]
    assert "${POSTGRES_PASSWORD:?" in (env["DATABASE_URL"] or ""), env["DATABASE_URL"]
    assert "env_file" not in services[name], f"{name}: an env_file's variables cannot be checked here"


def test_postgres_password_is_required(services: dict[str, Any]) -> None:
    password = environment_of(services["postgres"])["POSTGRES_PASSWORD"] or ""
    assert password.startswith("${POSTGRES_PASSWORD:?"), password


def test_no_secret_has_a_literal_value(services: dict[str, Any]) -> None:
    secretive = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$")
    for name, service in services.items():
        for key, value in environment_of(service).items():
            if secretive.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value or ""), f"{name}.{key} = {value!r}"


@pytest.mark.parametrize("missing", sorted(OPERATOR_ENV))
def test_compose_refuses_to_start_without_each_secret(compose: dict[str, Any], missing: str) -> None:
    given = {k: v for k, v in OPERATOR_ENV.items() if k != missing}
    with pytest.raises(MissingVariable, match=missing):
        resolve(compose, given)
    with pytest.raises(MissingVariable, match=missing):
        resolve(compose, {**given, missing: ""})


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_set_only_known_variables(resolved: dict[str, Any], name: str) -> None:
    env = environment_of(resolved[name])
    unknown = sorted(k for k in env if k not in KNOWN and not k.startswith("POSTGRES_"))
    assert not unknown, f"{name} sets variables config/settings/environment.py does not know: {unknown}"
    check_environment({k: v or "" for k, v in env.items()})  # the start-up guard itself
    assert env.get("DJANGO_SETTINGS_MODULE", "config.settings.production") == "config.settings.production"


# -- Dockerfile ------------------------------------------------------------------
def test_dockerfile_base_image(instructions: list[tuple[str, str]]) -> None:
    assert instructions[0] == ("FROM", "python:3.11-slim-bookworm"), instructions[0]


def test_dockerfile_installs_pinned_cpu_torch_first(instructions: list[tuple[str, str]]) -> None:
    torch_runs = [i for i, (kw, args) in enumerate(instructions) if kw == "RUN" and re.search(r"\btorch\b", args)]
    assert torch_runs, "the Dockerfile does not install torch"
    for i in torch_runs:
        args = instructions[i][1]
        assert "--index-url https://download.pytorch.org/whl/cpu" in args, args
        assert re.search(r"(?<![\w-])torch==2\.13\.0(?![\w.+])", args), args
    requirements = index_of(instructions, lambda kw, a: kw == "RUN" and "-r requirements.txt" in a,
                            "`pip install -r requirements.txt`")
    assert max(torch_runs) < requirements, "torch must be installed before requirements.txt"


def test_dockerfile_torch_pin_matches_requirements() -> None:
    pins = re.findall(r"(?<![\w-])torch==([\w.]+)", DOCKERFILE.read_text())
    assert pins and set(pins) == {requirement_pin("torch")}, (pins, requirement_pin("torch"))


def test_dockerfile_copies_requirements_before_the_code(instructions: list[tuple[str, str]]) -> None:
    copy_requirements = index_of(
        instructions, lambda kw, a: kw == "COPY" and a.split()[0] == "requirements.txt", "COPY requirements.txt")
    install = index_of(instructions, lambda kw, a: kw == "RUN" and "-r requirements.txt" in a,
                       "`pip install -r requirements.txt`")
    copy_code = index_of(instructions, lambda kw, a: kw == "COPY" and a.split()[0] == ".", "COPY . .")
    assert copy_requirements < install < copy_code


def test_dockerfile_settings_static_files_and_command(instructions: list[tuple[str, str]]) -> None:
    env = " ".join(a for kw, a in instructions if kw == "ENV")
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in env, env
    copy_code = index_of(instructions, lambda kw, a: kw == "COPY" and a.split()[0] == ".", "COPY . .")
    static = index_of(instructions, lambda kw, a: kw == "RUN" and "collectstatic --noinput" in a, "collectstatic")
    assert copy_code < static
    kw, cmd = instructions[-1]
    assert kw == "CMD", "the last instruction is the default command"
    tokens = yaml.safe_load(cmd)  # exec form is a JSON list
    assert tokens[0] == "gunicorn" and "config.wsgi:application" in tokens, tokens
    assert tokens[tokens.index("--bind") + 1] == "0.0.0.0:8000", tokens


def test_dockerfile_bakes_in_no_secret(instructions: list[tuple[str, str]]) -> None:
    for kw, args in instructions:
        if kw in ("ENV", "ARG", "LABEL"):
            for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "POSTGRES_PASSWORD", "DJANGO_ALLOWED_HOSTS"):
                assert name not in args, f"{kw} {args}: set at run time, not in the image"
        if kw == "COPY":
            assert ".dev-secret-key" not in args
    # The throw-away values exist only on the collectstatic RUN line.
    static = next(a for kw, a in instructions if kw == "RUN" and "collectstatic" in a)
    assert re.search(r"DJANGO_SECRET_KEY=build-only-\S{20,}", static), static
    assert "DATABASE_URL=sqlite:////tmp/" in static, static


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for entry in (".venv", "var", "db.sqlite3", ".dev-secret-key", ".git", "test-artifacts", "node_modules"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"
    assert {"__pycache__", "**/__pycache__"} & ignored


# -- compose file shape ------------------------------------------------------------
# Keys of the Compose specification (compose-spec, services/healthcheck/build/
# depends_on), so a misspelt key (healthcheck.start-period, securityopt, ...)
# fails here instead of being ignored or rejected on a machine with Docker.
TOP_LEVEL_KEYS = {"version", "name", "include", "services", "networks", "volumes", "configs", "secrets", "models"}
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command",
    "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period",
    "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on", "deploy", "develop",
    "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck",
    "hostname", "image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging", "mac_address",
    "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop",
    "privileged", "profiles", "provider", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets",
    "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs",
    "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
BUILD_KEYS = {
    "context", "dockerfile", "dockerfile_inline", "args", "ssh", "cache_from", "cache_to", "additional_contexts",
    "entitlements", "extra_hosts", "isolation", "privileged", "labels", "no_cache", "pull", "network", "shm_size",
    "target", "secrets", "tags", "ulimits", "platforms", "provenance", "sbom",
}
DEPENDS_ON_KEYS = {"condition", "restart", "required"}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")


def test_compose_file_shape(compose: dict[str, Any]) -> None:
    problems: list[str] = []
    for key in compose:
        if key not in TOP_LEVEL_KEYS and not key.startswith("x-"):
            problems.append(f"top-level key {key!r}")
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
            problems.append(f"service name {name!r}")
        for key in service:
            if key not in SERVICE_KEYS and not key.startswith("x-"):
                problems.append(f"{name}: unknown key {key!r}")
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: neither image nor build")
        if isinstance(service.get("build"), dict):
            problems += [f"{name}.build: unknown key {k!r}" for k in service["build"] if k not in BUILD_KEYS]
        health = service.get("healthcheck", {})
        problems += [f"{name}.healthcheck: unknown key {k!r}" for k in health if k not in HEALTHCHECK_KEYS]
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in health and not DURATION.match(str(health[key])):
                problems.append(f"{name}.healthcheck.{key}: not a duration: {health[key]!r}")
        if "retries" in health and not isinstance(health["retries"], int):
            problems.append(f"{name}.healthcheck.retries: not an integer")
        if "stop_grace_period" in service and not DURATION.match(str(service["stop_grace_period"])):
            problems.append(f"{name}.stop_grace_period: not a duration")
        if "restart" in service and str(service["restart"]).split(":")[0] not in RESTART:
            problems.append(f"{name}.restart: {service['restart']!r}")
        depends_on = service.get("depends_on", {})
        for dependency, spec in (depends_on.items() if isinstance(depends_on, dict) else []):
            if dependency not in compose["services"]:
                problems.append(f"{name}: depends on unknown service {dependency!r}")
            if dependency == name:
                problems.append(f"{name}: depends on itself")
            problems += [f"{name}.depends_on.{dependency}: unknown key {k!r}" for k in spec if k not in DEPENDS_ON_KEYS]
            if spec.get("condition", "service_started") not in CONDITIONS:
                problems.append(f"{name}.depends_on.{dependency}: condition {spec.get('condition')!r}")
            if spec.get("condition") == "service_healthy" and "healthcheck" not in compose["services"].get(dependency, {}):
                problems.append(f"{name} waits for {dependency} to be healthy, which has no healthcheck")
        for volume in service.get("volumes", []):
            source = volume.get("source") if isinstance(volume, dict) else str(volume).split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")) and source not in declared_volumes:
                problems.append(f"{name}: named volume {source!r} is not declared at the top level")
        for key in ("cap_add", "security_opt", "ports"):
            if key in service and not isinstance(service[key], list):
                problems.append(f"{name}.{key}: must be a list")
        if not isinstance(service.get("environment", {}), dict | list):
            problems.append(f"{name}.environment: must be a mapping or a list")
        for key, value in (service.get("environment") or {}).items() if isinstance(service.get("environment"), dict) else []:
            if isinstance(value, (dict, list)):
                problems.append(f"{name}.environment.{key}: must be a scalar")
    assert not problems, "docker-compose.yml: " + "; ".join(problems)
