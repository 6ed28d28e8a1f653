"""The deployment recipe (`deploy/`) without Docker: the compose file parses, every service of the
hub runs a real `scrm` command, every SCRM_* variable is a setting the hub knows, migrations run
once before the API and the workers, the image is multi-stage and runs unprivileged with the model
trained at build time, and the systemd units start real commands."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import click
import yaml

from hub.cli import main
from hub.settings import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
KNOWN = {f"SCRM_{name.upper()}" for name in Settings.model_fields}


def check_scrm_command(argv: list[str]) -> None:
    """Raises if `argv` is not a command `scrm` accepts (unknown command or option)."""
    assert argv[0].endswith("scrm"), argv
    command, name, rest = main, "scrm", list(argv[1:])
    while isinstance(command, click.Group):  # scrm nlp train-sentiment ...
        assert rest and rest[0] in command.commands, f"no such command: {argv}"
        command, name, rest = command.commands[rest[0]], rest[0], rest[1:]
    command.make_context(name, rest)


def test_compose_runs_real_commands_with_known_settings_in_the_right_order():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    hub_services = {name: s for name, s in services.items() if s.get("image") == "scrm-hub:latest"}
    assert set(hub_services) == {"migrate", "api", "worker"}
    for name, service in hub_services.items():
        check_scrm_command(service["command"])
        env = service["environment"]
        unknown = {key for key in env if key.startswith("SCRM_")} - KNOWN
        assert not unknown, f"{name}: settings the hub does not know: {unknown}"
        assert {"SCRM_DATABASE_URL", "SCRM_SECRET_KEY", "SCRM_BASE_URL", "SCRM_REDIS_URL"} <= set(env)
        assert "${" in env["SCRM_SECRET_KEY"]  # a secret from the environment, never written here
    assert services["api"]["command"][1:] == ["serve", "--no-worker"] and services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["command"][1:] == ["worker"] and services["worker"]["deploy"]["replicas"] == 2
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "api"))
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}


def test_the_image_is_multi_stage_unprivileged_with_the_model_built_in():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert len(stages) == 2
    run_stage = dockerfile.split("\nFROM ")[-1]
    assert re.search(r"^USER\s+(?!root)\w+", run_stage, re.M)
    assert "COPY --from=build" in run_stage and "pip install" not in run_stage
    trained = re.search(r"scrm nlp train-sentiment (--out \S+)", dockerfile)
    assert trained and trained.group(1).split()[1] in dockerfile.split("SCRM_SENTIMENT_MODEL=")[1]
    check_scrm_command(["scrm", "nlp", "train-sentiment", *trained.group(1).split()])
    for command in re.findall(r'^CMD \[(.*)\]$', dockerfile, re.M):
        check_scrm_command([part.strip().strip('"') for part in command.split(",")])
    for key in re.findall(r"\b(SCRM_[A-Z_]+)=", dockerfile):
        assert key in KNOWN, key


def test_the_systemd_units_start_real_commands():
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} == {"scrm-serve.service", "scrm-worker@.service"}
    for unit in units:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str
        parser.read_string(unit.read_text())
        service = parser["Service"]
        for key in ("ExecStart", "ExecStartPre"):
            if key in service:
                check_scrm_command(shlex.split(service[key]))
        assert service["User"] != "root" and service["Restart"] == "on-failure"


def test_a_wrong_command_would_be_caught():
    for argv in (["scrm", "serve", "--no-such-flag"], ["scrm", "nope"]):
        try:
            check_scrm_command(argv)
        except (click.UsageError, click.NoSuchOption, AssertionError):
            continue
        raise AssertionError(f"{argv} was accepted")
