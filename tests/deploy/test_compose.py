"""docker-compose.yml, checked without a container engine: builds exist, settings exist, services wired."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import (
    COMPOSE,
    DEPLOY,
    ROOT,
    env_names_in,
    load_compose,
    load_yaml_documents,
    setting_env_names,
)

DOCSORT_SERVICES = ("migrate", "worker", "gpu-worker", "watcher", "web")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_has_every_service_of_the_deployment(compose: dict[str, Any]) -> None:
    expected = {"redis", "postgres", "migrate", "worker", "gpu-worker", "watcher", "web", "flower"}
    assert expected <= set(compose["services"])


def test_every_service_has_an_image_or_a_build_whose_dockerfile_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert context.is_dir(), name
            assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file(), name
        if "build" not in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), f"{name}: pin a tag"


def test_every_docsort_variable_in_compose_and_its_env_example_is_a_setting() -> None:
    known = setting_env_names()
    used = env_names_in(COMPOSE.read_text()) | env_names_in((DEPLOY / "docsort.env.example").read_text())
    assert used, "compose sets DOCSORT_* variables"
    assert sorted(used - known) == []


def test_docsort_services_read_secrets_from_the_env_file(compose: dict[str, Any]) -> None:
    example = (DEPLOY / "docsort.env.example").read_text()
    for key in ("DOCSORT_SECRET_KEY", "DOCSORT_DATABASE_URL", "DOCSORT_BROKER_URL", "REDIS_PASSWORD"):
        assert f"{key}=" in example
    for name in DOCSORT_SERVICES:
        env_files = compose["services"][name]["env_file"]
        paths = [e["path"] if isinstance(e, dict) else e for e in env_files]
        assert "./docsort.env" in paths, name
        environment = compose["services"][name].get("environment", {})
        assert "DOCSORT_SECRET_KEY" not in environment, f"{name}: the secret key belongs in the env file"
        assert environment.get("DOCSORT_ENVIRONMENT") == "production", name


def test_make_env_script_writes_every_key_of_the_example(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(["bash", str(DEPLOY / "make-env.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    made = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    example = {line.split("=", 1)[0] for line in (DEPLOY / "docsort.env.example").read_text().splitlines()}
    assert {k for k in example if k and not k.startswith("#")} <= set(made)
    assert len(made["DOCSORT_SECRET_KEY"]) >= 32
    assert made["POSTGRES_PASSWORD"] in made["DOCSORT_DATABASE_URL"]
    assert made["REDIS_PASSWORD"] in made["DOCSORT_BROKER_URL"]


def test_redis_never_evicts_and_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert "--maxmemory-policy noeviction" in command
    assert "--appendonly yes" in command
    assert "--requirepass" in command
    assert "healthcheck" in redis and any(v.startswith("redis:") for v in redis["volumes"])


def test_postgres_keeps_its_data_in_a_volume_and_reports_health(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_services_wait_for_the_migration_and_the_migration_waits_for_postgres(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "gpu-worker", "watcher", "web"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_long_running_docsort_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name in ("redis", "postgres", "worker", "gpu-worker", "watcher", "web"):
        assert compose["services"][name]["healthcheck"]["test"], name


def test_worker_watcher_and_web_share_every_file_area(compose: dict[str, Any]) -> None:
    areas = ("/data/models", "/data/inbox", "/data/processing", "/data/outbox")
    areas += ("/data/archive", "/data/error", "/data/review")
    declared = set(compose["volumes"])
    mounts: dict[str, set[str]] = {}
    for name in ("worker", "gpu-worker", "watcher", "web"):
        volumes = compose["services"][name]["volumes"]
        mounts[name] = {v.rsplit(":", 1)[-1] if v.count(":") == 1 else v.split(":")[-1] for v in volumes}
        for volume in volumes:
            source = volume.split(":")[0]
            if not source.startswith(("$", ".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"
        environment = compose["services"][name]["environment"]
        for area in areas:
            assert area in mounts[name], f"{name} lacks {area}"
            variable = f"DOCSORT_{area.rsplit('/', 1)[-1].upper()}_DIR"
            assert environment[variable] == area, f"{name}: {variable}"


def test_worker_image_is_the_base_image_and_the_gpu_worker_is_a_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["worker"]["build"]["dockerfile"] == "deploy/worker.Dockerfile"
    assert services["worker"]["environment"]["DOCSORT_PROVIDER"] == "cpu"
    gpu = services["gpu-worker"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "deploy/gpu-worker.Dockerfile"
    assert gpu["environment"]["DOCSORT_PROVIDER"] == "cuda"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert services["flower"]["profiles"] == ["flower"]


def test_watcher_runs_docsort_watch_and_web_runs_docsort_serve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["watcher"]["command"][0] == "watch"
    assert services["web"]["command"][0] == "serve"
    assert "0.0.0.0" in services["web"]["command"]
    assert services["worker"]["command"][0] == "worker"


def test_prometheus_scrapes_the_workers_metrics_port(compose: dict[str, Any]) -> None:
    config = load_yaml_documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    port = int(compose["services"]["worker"]["environment"]["DOCSORT_METRICS_PORT"])
    for job, service in (("docsort-worker", "worker"), ("docsort-gpu-worker", "gpu-worker")):
        sd = jobs[job]["dns_sd_configs"][0]
        assert sd["names"] == [service] and sd["port"] == port
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == (DEPLOY / "prometheus" / "prometheus.yml").resolve()


def test_deploy_guide_names_only_real_settings_and_every_profile(compose: dict[str, Any]) -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert sorted(env_names_in(guide) - setting_env_names()) == []
    profiles = {p for service in compose["services"].values() for p in service.get("profiles", [])}
    assert profiles and all(f"--profile {p}" in guide for p in profiles)
