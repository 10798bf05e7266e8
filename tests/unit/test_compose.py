"""docker-compose.yml, its profiles and the application image, checked without a Docker engine.

The Compose files are loaded with PyYAML (anchors and merge keys resolved as Compose does),
interpolated with each profile's env example (empty secrets replaced by test values), merged
with the profile's override the way Compose merges, and validated against the Compose
Specification's JSON schema. Then every IoT Care process's environment is loaded into the
Settings class, which must accept it as production would.

tests/support/compose-spec.json is the Compose Specification schema (schema/compose-spec.json of
https://github.com/compose-spec/compose-spec, Apache-2.0, Copyright 2020 The Compose
Specification Authors), as shipped in the npm package dclint 3.1.0 (schemas/compose.schema.json).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "docker-compose.yml"
PROFILES = ("local", "dev", "prod")
SCHEMA = ROOT / "tests" / "support" / "compose-spec.json"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto-auth.conf"

# Secrets compose must demand (${VAR:?...}) and no file in the repository may fill in.
REQUIRED_SECRETS = {
    "IOTCARE_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "IOTCARE_INFLUX_TOKEN",
    "INFLUXDB_ADMIN_PASSWORD",
    "MQTT_SERVICE_PASSWORD",
    "PREFECT_UI_PASSWORD_HASH",
}
SECRET_NAME = re.compile(r"^(?!.*_FILE$).*(PASSWORD|TOKEN|SECRET|_KEY$|HASH)", re.IGNORECASE)
# Services that run once and exit; everything else runs for good and needs a health check.
ONE_SHOTS = {"migrate", "broker-files"}
APP_IMAGE = "${IMAGE"

_VAR = re.compile(
    r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(LookupError):
    """A ${VAR:?message} whose variable is unset or empty."""


# --- loading, interpolation and merging as Compose does them -----------------------------------


def load_yaml(path: Path) -> dict[str, Any]:
    """A Compose file as Compose reads it: YAML with anchors and `<<` merge keys resolved."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def variables(text: str) -> Iterator[tuple[str, str | None]]:
    """(name, operator) of every ${...} and $NAME in a string."""
    for match in _VAR.finditer(text):
        name = match.group("braced") or match.group("bare")
        if name:
            yield name, match.group("op")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: ${V}, ${V:-d}, ${V-d}, ${V:?e}, ${V?e}, ${V:+a}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        empty = not current
        if op == ":-":
            return arg if empty else current or ""
        if op == "-":
            return arg if current is None else current
        if op in (":?", "?") and (current is None or (op == ":?" and empty)):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":+":
            return "" if empty else arg
        if op == "+":
            return "" if current is None else arg
        return current or ""

    return _VAR.sub(replace, value)


def _volume_target(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry["target"])
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge of an override file: mappings merge, volumes by target, ports add up."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if key == "volumes" and isinstance(base, list) and isinstance(override, list):
        by_target = {_volume_target(entry): entry for entry in base}
        by_target.update({_volume_target(entry): entry for entry in override})
        return list(by_target.values())
    if key in {"ports", "expose", "dns", "cap_add", "cap_drop", "security_opt"}:
        return list(dict.fromkeys([*map(_hashable, base), *map(_hashable, override)]))
    return copy.deepcopy(override)


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else value


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (quotes removed); commented-out keys are not set."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            value = match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[match.group(1)] = value
    return env


def documented_names(path: Path) -> set[str]:
    """Every variable an env example names, set or commented out."""
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", path.read_text(), re.MULTILINE))


def filled_in(name: str) -> str:
    """What a user would fill in for an empty variable of an env example."""
    if name.endswith("_DOMAIN"):
        return name.lower().replace("_", "-") + ".example.org"
    if name == "IMAGE":
        return "registry.example.org/iotcare:1.0.0"
    if name.endswith("_HASH"):
        return "$2a$14$" + "a" * 53
    if name.endswith("SECRET_KEY"):
        return "Zq7vR2mXk9TbW4pLc8NsY3hJd6FgA1uE"  # random-looking: weak keys are refused
    return f"{name.lower()}-0123456789abcdef0123456789abcdef"


def env_file_for(profile: str) -> Path:
    return ROOT / "deploy" / "env" / f"{profile}.env.example"


def profile_env(profile: str) -> dict[str, str]:
    """The profile's env example as a user fills it in (.env in the repository root)."""
    env = read_env_file(env_file_for(profile))
    return {name: value or filled_in(name) for name, value in env.items()}


def profile_files(profile: str) -> list[Path]:
    """The Compose files of a profile, from COMPOSE_FILE in its env example."""
    files = read_env_file(env_file_for(profile))["COMPOSE_FILE"].split(":")
    return [ROOT / name for name in files]


def raw_model(profile: str) -> dict[str, Any]:
    """The profile's files merged, before interpolation."""
    files = profile_files(profile)
    model = load_yaml(files[0])
    for path in files[1:]:
        model = merge(model, load_yaml(path))
    return model


def resolved_model(profile: str) -> dict[str, Any]:
    """The profile's configuration as `docker compose config` would show it."""
    return interpolate(raw_model(profile), profile_env(profile))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def app_services(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the application image (docker-compose.yml gives them ${IMAGE...})."""
    names = {
        name
        for name, service in load_yaml(BASE)["services"].items()
        if str(service.get("image", "")).startswith(APP_IMAGE)
    }
    return {name: service for name, service in services.items() if name in names}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command") or []
    return value.split() if isinstance(value, str) else list(value)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    # The schema declares draft 7 (its $schema URL lacks the '#' jsonschema looks up).
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


# --- the Compose specification ------------------------------------------------------------------


def test_schema_is_the_compose_specification(validator: jsonschema.protocols.Validator) -> None:
    schema = validator.schema
    assert schema["title"] == "Compose Specification"
    assert {"services", "volumes", "configs"} <= set(schema["properties"])
    # It does reject what Compose rejects.
    errors = list(validator.iter_errors({"services": {"x": {"imagee": "y"}}}))
    assert errors


@pytest.mark.parametrize(
    "path",
    [BASE, *(ROOT / "deploy" / "compose" / f"{p}.yml" for p in PROFILES)],
    ids=lambda p: p.name,
)
def test_each_file_matches_the_compose_schema(
    validator: jsonschema.protocols.Validator, path: Path
) -> None:
    errors = sorted(validator.iter_errors(load_yaml(path)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_resolves_to_a_valid_configuration(
    validator: jsonschema.protocols.Validator, profile: str
) -> None:
    model = resolved_model(profile)
    errors = sorted(validator.iter_errors(model), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    assert "${" not in json.dumps(model), "an unresolved variable is left"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_files_exist_and_start_with_the_base(profile: str) -> None:
    files = profile_files(profile)
    assert files[0] == BASE
    assert files[1] == ROOT / "deploy" / "compose" / f"{profile}.yml"
    assert all(path.is_file() for path in files)


# --- services -----------------------------------------------------------------------------------


def test_the_stack_has_every_part() -> None:
    services = load_yaml(BASE)["services"]
    assert {
        "mosquitto",
        "postgres",
        "influxdb",
        "migrate",
        "broker-files",
        "prefect-server",
        "flows",
        "app",
        "api",
        "caddy",
    } <= set(services)
    assert len([n for n, s in services.items() if command(s) == ["ingest"]]) == 1
    assert command(services["migrate"]) == ["db", "upgrade"]
    assert command(services["broker-files"]) == ["devices", "write-broker-files"]
    assert command(services["flows"]) == ["flows", "serve"]
    assert command(services["app"])[0] == "app"
    assert services["prefect-server"]["entrypoint"] == ["prefect"]


@pytest.mark.parametrize("profile", PROFILES)
def test_restart_policies_and_health_checks(profile: str) -> None:
    services = resolved_model(profile)["services"]
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
            continue
        assert service.get("restart") in {"unless-stopped", "always"}, name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


@pytest.mark.parametrize("profile", PROFILES)
def test_dependencies_wait_for_what_they_need(profile: str) -> None:
    services = resolved_model(profile)["services"]
    for name, service in services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = dependency["condition"]
            if target in ONE_SHOTS:
                assert condition == "service_completed_successfully", (name, target)
            else:
                assert condition == "service_healthy", (name, target)
    # Nothing touches the database before the schema is migrated.
    for name in app_services(services):
        if name in {"migrate", "prefect-server"}:
            continue
        assert _depends(services, name, "migrate"), name
    assert services["mosquitto"]["depends_on"]["broker-files"]
    assert services["caddy"]["depends_on"].keys() >= {"app", "prefect-server"}


def _depends(services: dict[str, Any], name: str, target: str) -> bool:
    direct = services[name].get("depends_on") or {}
    return target in direct or any(_depends(services, d, target) for d in direct)


def test_ingest_runs_one_replica_on_a_plain_persistent_subscription() -> None:
    services = resolved_model("prod")["services"]
    replicas = {n: s for n, s in services.items() if command(s) == ["ingest"]}
    envs = [environment(s) for s in replicas.values()]
    # Mosquitto 2.0 drops shared subscriptions on restart: the shipped arrangement must not use one.
    assert list(replicas) == ["ingest"]
    assert not envs[0].get("IOTCARE_MQTT_SHARED_GROUP")
    # A stable client id, so the broker keeps the session (and its queue) across restarts.
    assert envs[0]["IOTCARE_MQTT_CLIENT_ID"] == "iotcare-ingest"
    assert _mount_source(replicas["ingest"], "/var/lib/iotcare")
    assert envs[0]["IOTCARE_LOG_DIR"]
    # The in-flight window is the broker's: ack-after-write needs the whole window to flush.
    broker = re.search(r"^max_inflight_messages\s+(\d+)", MOSQUITTO_CONF.read_text(), re.M)
    assert broker
    for service, env in zip(replicas.values(), envs, strict=True):
        assert env["IOTCARE_INGEST_INFLIGHT_WINDOW"] == broker.group(1)
        assert env["IOTCARE_METRICS_HOST"] == "0.0.0.0"
        assert f":{env['IOTCARE_METRICS_PORT']}/healthz" in " ".join(service["healthcheck"]["test"])
        assert env["IOTCARE_INFLUX_URL"] == "http://influxdb:8086"


def test_processes_reach_each_other_by_service_name() -> None:
    services = resolved_model("prod")["services"]
    flows = environment(services["flows"])
    assert flows["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    app = services["app"]
    port = command(app)[command(app).index("--port") + 1]
    assert f":{port}/_stcore/health" in " ".join(app["healthcheck"]["test"])
    assert "--address" in command(app)
    server = environment(services["prefect-server"])
    assert server["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert server["PREFECT_SERVER_UI_API_URL"].startswith("https://")
    for env in map(environment, app_services(services).values()):
        if "IOTCARE_DATABASE_URL" in env:
            assert "@postgres:5432/" in env["IOTCARE_DATABASE_URL"]
        if "IOTCARE_MQTT_URL" in env:
            assert "@mosquitto:1883" in env["IOTCARE_MQTT_URL"]


# --- volumes ------------------------------------------------------------------------------------


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each mount; a named volume's source has no '/' or leading '.'."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            result.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            result.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return result


def _mount_source(service: dict[str, Any], target: str) -> str:
    return dict((t, s) for s, t in _mounts(service))[target]


def _is_named(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~", "$"))


@pytest.mark.parametrize("profile", PROFILES)
def test_named_volumes_are_declared_and_used(profile: str) -> None:
    model = resolved_model(profile)
    declared = set(model.get("volumes") or {})
    used = {
        source
        for service in model["services"].values()
        for source, _ in _mounts(service)
        if _is_named(source)
    }
    assert used <= declared, f"undeclared: {used - declared}"
    assert declared <= used, f"declared, never used: {declared - used}"
    for service in model["services"].values():
        for source, _ in _mounts(service):
            if not _is_named(source):
                assert (ROOT / source).exists(), f"bind mount of missing {source}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_piece_of_state_and_every_log_is_on_a_named_volume(profile: str) -> None:
    services = resolved_model(profile)["services"]
    state = {
        "postgres": "/var/lib/postgresql/data",
        "influxdb": "/var/lib/influxdb2",
        "mosquitto": "/mosquitto/data",
        "caddy": "/data",
        "prefect-server": "/var/lib/iotcare",
        "app": "/var/lib/iotcare",
        "flows": "/var/lib/iotcare",
    }
    for name, target in state.items():
        assert _is_named(_mount_source(services[name], target)), (name, target)
    assert _mount_source(services["app"], "/var/lib/iotcare") == _mount_source(
        services["flows"], "/var/lib/iotcare"
    ), "the app shows the Data Docs the flows build"
    for name, service in services.items():
        log_dir = environment(service).get("IOTCARE_LOG_DIR")
        if service is services.get("prefect-server"):
            continue
        if name in app_services(services):
            assert log_dir, f"{name} keeps no log files"
        if log_dir:
            assert any(
                _is_named(source) and log_dir.startswith(target)
                for source, target in _mounts(service)
            ), f"{name} logs to {log_dir}, not on a named volume"


def test_broker_files_reach_the_broker_through_a_shared_volume() -> None:
    services = resolved_model("prod")["services"]
    writer, broker = services["broker-files"], services["mosquitto"]
    env = environment(writer)
    shared = {s for s, _ in _mounts(writer) if _is_named(s)} & {
        s for s, _ in _mounts(broker) if _is_named(s)
    }
    assert shared == {"mosquitto-auth"}
    writer_dir = dict((s, t) for s, t in _mounts(writer))["mosquitto-auth"]
    assert Path(env["IOTCARE_MOSQUITTO_PASSWORD_FILE"]).parent == Path(writer_dir)
    assert Path(env["IOTCARE_MOSQUITTO_ACL_FILE"]).parent == Path(writer_dir)
    assert "mosquitto-auth:/mosquitto/auth:ro" in broker["volumes"], "the broker only reads them"
    mounted = {target: source for source, target in _mounts(broker)}
    assert mounted["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto/mosquitto-auth.conf"
    conf = MOSQUITTO_CONF.read_text()
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    started = " ".join(command(broker))
    for kind, setting in (
        ("password_file", "IOTCARE_MOSQUITTO_PASSWORD_FILE"),
        ("acl_file", "IOTCARE_MOSQUITTO_ACL_FILE"),
    ):
        configured = re.search(rf"^{kind}\s+(\S+)$", conf, re.M)
        assert configured, kind
        # The path the broker reads is a link to the file the writer writes, in the volume.
        written = "/mosquitto/auth/" + Path(env[setting]).name
        assert f"ln -sf {written} {configured.group(1)} " in started, kind
    assert "exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf" in started


def test_broker_files_writer_has_the_platform_account() -> None:
    """write-broker-files takes the platform's account from IOTCARE_MQTT_URL; all share it."""
    from core.device_credentials import broker_file_paths, service_account

    model = resolved_model("prod")
    services = app_services(model["services"])
    urls = {environment(s).get("IOTCARE_MQTT_URL") for n, s in services.items()}
    assert len(urls - {None}) == 1, "one broker account for every platform process"
    env = {
        k: v for k, v in environment(services["broker-files"]).items() if k != "IOTCARE_ENVIRONMENT"
    }
    values = {
        k.removeprefix(ENV_PREFIX).lower(): v for k, v in env.items() if k.startswith(ENV_PREFIX)
    }
    settings = Settings(_env_file=None, environment="test", **values)  # type: ignore[call-arg]
    assert broker_file_paths(settings) is not None
    assert service_account(settings).username == "iotcare"


# --- settings -----------------------------------------------------------------------------------


def _iotcare_names(env: dict[str, str]) -> set[str]:
    return {name for name in env if name.startswith(ENV_PREFIX)}


def _is_setting(name: str) -> bool:
    return name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields


@pytest.mark.parametrize("profile", PROFILES)
def test_every_iotcare_variable_is_a_setting(profile: str) -> None:
    names = _iotcare_names(read_env_file(env_file_for(profile))) | documented_names(
        env_file_for(profile)
    )
    for service in resolved_model(profile)["services"].values():
        names |= _iotcare_names(environment(service))
    names = {n for n in names if n.startswith(ENV_PREFIX)}
    unknown = sorted(n for n in names if not _is_setting(n))
    assert not unknown, f"not fields of core.settings.Settings: {unknown}"


def test_dockerfile_env_names_are_settings() -> None:
    names = set(re.findall(r"\b(IOTCARE_[A-Z0-9_]+)=", DOCKERFILE.read_text()))
    assert names
    assert all(_is_setting(n) for n in names), names


@pytest.mark.parametrize("profile", PROFILES)
def test_every_app_process_starts_with_its_environment(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each container gets (.env, then `environment`) is accepted by Settings."""
    model = resolved_model(profile)
    dotenv = profile_env(profile)
    for name, service in app_services(model["services"]).items():
        if name == "prefect-server":
            continue  # Prefect's own process: no IoT Care settings
        assert service.get("env_file") in (".env", [".env"]), name
        env = {**dotenv, **environment(service)}
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith(ENV_PREFIX):
                monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.environment.value == dotenv["IOTCARE_ENVIRONMENT"], name
        assert not settings.is_sqlite, f"{name} would use SQLite"
        assert settings.mqtt_url, name
        assert settings.data_dir == Path("/var/lib/iotcare"), name
        assert settings.secret_key is not None, name
        assert settings.app_base_url == f"https://{dotenv['APP_DOMAIN']}", name


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_required_secrets_are_demanded_and_documented(profile: str) -> None:
    text = json.dumps([load_yaml(path) for path in profile_files(profile)])
    required = {name for name, op in variables(text) if op in (":?", "?")}
    assert required >= REQUIRED_SECRETS, f"not required: {REQUIRED_SECRETS - required}"
    referenced = {name for name, _ in variables(text)}
    documented = documented_names(env_file_for(profile))
    assert referenced <= documented, f"undocumented in the env example: {referenced - documented}"
    # Without a secret, Compose refuses to start rather than run with an empty one.
    env = profile_env(profile)
    for secret in REQUIRED_SECRETS:
        with pytest.raises(MissingVariable, match=secret):
            interpolate(raw_model(profile), {**env, secret: ""})


@pytest.mark.parametrize("profile", PROFILES)
def test_env_examples_ship_no_secret_values(profile: str) -> None:
    env = read_env_file(env_file_for(profile))
    for name, value in env.items():
        if SECRET_NAME.search(name):
            assert value == "", f"{name} has a value in {profile}.env.example"


_URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s]+)@")


def _literal_secrets(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if (
                SECRET_NAME.search(str(key))
                and isinstance(item, str | int)
                and not re.fullmatch(r"\$\{[A-Za-z0-9_]+(:?[-?][^}]*)?\}", str(item))
            ):
                yield f"{where}.{key}"
            yield from _literal_secrets(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _literal_secrets(item, f"{where}[{index}]")
    elif isinstance(value, str):
        for password in _URL_PASSWORD.findall(value):
            if not password.startswith("${"):
                yield f"{where}: password in URL"


@pytest.mark.parametrize(
    "path",
    [BASE, *(ROOT / "deploy" / "compose" / f"{p}.yml" for p in PROFILES)],
    ids=lambda p: p.name,
)
def test_no_plaintext_secrets_in_compose_files(path: Path) -> None:
    found = list(_literal_secrets(load_yaml(path), path.name))
    assert not found, found


def test_prefect_ui_is_only_reachable_through_the_proxy() -> None:
    for profile in PROFILES:
        services = resolved_model(profile)["services"]
        assert not services["prefect-server"].get("ports"), profile
        published = {n for n, s in services.items() if s.get("ports")}
        # Only the proxy and the broker face the outside in prod.
        if profile == "prod":
            assert published == {"caddy", "mosquitto"}


# --- Caddy --------------------------------------------------------------------------------------


def _site_blocks(text: str) -> dict[str, str]:
    """Top-level blocks of a Caddyfile by their address line."""
    blocks: dict[str, str] = {}
    depth, name, body = 0, "", []
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip() if not line.strip().startswith("#") else ""
        if depth == 0 and stripped.endswith("{"):
            name, body = stripped[:-1].strip(), []
        elif depth > 0:
            body.append(stripped)
        depth += stripped.count("{") - stripped.count("}")
        if depth == 0 and name:
            blocks[name] = "\n".join(body)
            name = ""
    return blocks


def test_caddy_serves_the_app_and_the_prefect_ui_behind_a_login() -> None:
    text = CADDYFILE.read_text()
    blocks = _site_blocks(text)
    services = resolved_model("prod")["services"]
    app = blocks["{$APP_DOMAIN}"]
    prefect = blocks["{$PREFECT_DOMAIN}"]
    app_port = command(services["app"])[command(services["app"]).index("--port") + 1]
    assert f"reverse_proxy app:{app_port}" in app
    assert "reverse_proxy prefect-server:4200" in prefect
    assert "basic_auth" in prefect and "{$PREFECT_UI_PASSWORD_HASH}" in prefect
    assert "basic_auth" not in app, "the app has its own sign-in"
    for block in (app, prefect):
        assert "import security_headers" in block
    assert "Strict-Transport-Security" in text and "X-Content-Type-Options" in text
    # Automatic HTTPS stays on: no site is plain http:// and no global option turns it off.
    assert "auto_https off" not in text and "http://" not in text
    # Every {$VAR} the Caddyfile reads is given to the caddy service.
    wanted = set(re.findall(r"\{\$([A-Z0-9_]+)", text))
    assert wanted <= set(environment(services["caddy"])), wanted
    mounted = dict((t, s) for s, t in _mounts(services["caddy"]))
    assert mounted["/etc/caddy/Caddyfile"] == "./deploy/caddy/Caddyfile"
    assert {"80", "443"} <= {p.split(":")[-1].split("/")[0] for p in services["caddy"]["ports"]}


def test_caddy_routes_api_paths_to_the_api_service() -> None:
    services = resolved_model("prod")["services"]
    api = services["api"]
    port = command(api)[command(api).index("--port") + 1]
    assert command(api)[0] == "api" and "0.0.0.0" in command(api)
    assert f":{port}/api/healthz" in " ".join(api["healthcheck"]["test"])
    block = _site_blocks(CADDYFILE.read_text())["{$APP_DOMAIN}"]
    # /api/* goes to the API untouched (its paths start with /api); the rest to the app.
    assert re.search(rf"handle /api/\* \{{\s*reverse_proxy api:{port}\s*\}}", block), block
    assert block.index("handle /api/*") < block.index("reverse_proxy app:")
    assert services["caddy"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "ports" not in api, "only Caddy publishes the API"


# --- images -------------------------------------------------------------------------------------


def test_third_party_images_are_pinned() -> None:
    for profile in PROFILES:
        for name, service in resolved_model(profile)["services"].items():
            image = service["image"]
            tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
            assert tag and tag != "latest", f"{name}: {image} is not pinned"
            if name not in app_services(raw_model(profile)["services"]):
                # Full version: major.minor(.patch), as PostgreSQL numbers its releases.
                assert re.match(r"^\d+\.\d+(\.\d+)?(-|$)", tag), f"{name}: {image} is too loose"


def _stages(text: str) -> list[list[str]]:
    """Dockerfile instructions (continuations joined), split into build stages."""
    joined = re.sub(r"\\\n", " ", text)
    lines = [
        ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.M)
    assert base and re.fullmatch(
        r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base.group(1)
    )
    stages = _stages(text)
    assert len(stages) >= 2
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final)
    assert any(line.upper().startswith("ENTRYPOINT ") for line in final)
    # No compilers in the final image; what needs building happens in the first stage.
    final_text = "\n".join(final)
    for tool in ("build-essential", "gcc", "apt-get install", "pip install"):
        assert tool not in final_text, tool
    assert "COPY --from=build /opt/venv" in final_text


def test_dockerfile_installs_from_the_lock() -> None:
    build = "\n".join(_stages(DOCKERFILE.read_text())[0])
    assert re.search(r"^COPY .*requirements\.lock", build, re.M)
    install = [line for line in build.splitlines() if "pip install" in line]
    assert install and all(re.search(r"-[rc] requirements\.lock", line) for line in install)
    assert "--only-binary=:all:" in install[0]


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: * within a path part, ** across parts."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out: the last pattern matching it or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _ignore_regex(pattern.removeprefix("!").rstrip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_sends_the_sources_and_no_secrets() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for secret in (".env", "deploy/env/prod.env", ".git/config", ".venv/bin/python", "var/x.db"):
        assert _dockerignored(secret, patterns), secret
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+?) \S+$", DOCKERFILE.read_text(), re.M)
    sources = [src for line in copied for src in line.split()]
    assert "requirements.lock" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _dockerignored(source, patterns), f"{source} is left out of the context"


# --- broker TLS ---------------------------------------------------------------------------------


def _published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each published port, short syntax as the files use."""
    result = []
    for entry in service.get("ports") or []:
        host_ip, _, rest = str(entry).rpartition(":")
        address, _, _host_port = host_ip.rpartition(":")
        result.append((address or "0.0.0.0", int(rest.split("/")[0])))
    return result


def _listeners(path: Path) -> dict[str, dict[str, str]]:
    """Each `listener PORT [ADDRESS]` line of a Mosquitto config and the options that follow it
    up to the next listener (TLS options belong to the listener above them)."""
    listeners: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if name == "listener":
            current = listeners.setdefault(value.strip(), {})
        elif current is not None:
            current[name] = value.strip()
    return listeners


@pytest.mark.parametrize("profile", PROFILES)
def test_the_broker_publishes_tls_and_keeps_plain_mqtt_local(profile: str) -> None:
    broker = resolved_model(profile)["services"]["mosquitto"]
    published = _published(broker)
    assert (profile_env(profile).get("PUBLISH_ADDRESS", "0.0.0.0"), 8883) in published
    for address, port in published:
        assert port in {1883, 8883}, (profile, port)
        if port == 1883:
            # Plain MQTT (passwords in the clear) never leaves the machine.
            assert address == "127.0.0.1", (profile, address)
    if profile == "prod":
        assert [port for _, port in published] == [8883]


def test_the_platform_reaches_plain_mqtt_on_the_compose_network() -> None:
    services = resolved_model("prod")["services"]
    listeners = _listeners(MOSQUITTO_CONF)
    # Bound to every address inside the container, reached by service name, never published.
    assert "1883" in listeners
    for env in map(environment, app_services(services).values()):
        if "IOTCARE_MQTT_URL" in env:
            assert env["IOTCARE_MQTT_URL"].startswith("mqtt://")
            assert env["IOTCARE_MQTT_URL"].endswith("@mosquitto:1883")


@pytest.mark.parametrize("path", [MOSQUITTO_CONF, MOSQUITTO_CONF.with_name("mosquitto.conf")])
def test_the_broker_config_has_a_tls_listener(path: Path) -> None:
    listeners = _listeners(path)
    tls = listeners["8883"]
    for option in ("cafile", "certfile", "keyfile"):
        assert Path(tls[option]).parent == Path("/mosquitto/certs"), option
    # Devices keep logging in with user and password (and the ACL): no client certificates.
    assert tls["require_certificate"] == "false"
    assert tls["tls_version"] == "tlsv1.2"
    plain = [options for port, options in listeners.items() if port.split()[0] == "1883"]
    assert len(plain) == 1 and not {"certfile", "keyfile"} & set(plain[0])
    if path.name == "mosquitto.conf":
        # A host install: plain MQTT on loopback only.
        assert "1883 127.0.0.1" in listeners


@pytest.mark.parametrize("profile", PROFILES)
def test_the_broker_reads_its_certificate_from_a_read_only_mount(profile: str) -> None:
    broker = resolved_model(profile)["services"]["mosquitto"]
    source = _mount_source(broker, "/mosquitto/certs")
    assert f"{source}:/mosquitto/certs:ro" in broker["volumes"]
    assert (ROOT / source / "README.md").is_file(), "the default directory explains the files"
    ignored = (ROOT / source / ".gitignore").read_text().split()
    assert ignored[ignored.index("*") :] == ["*", "!.gitignore", "!README.md"], (
        "keys stay out of git"
    )
