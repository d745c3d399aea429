"""Kubernetes manifests (kustomize), checked without a cluster: schemas, references, labels, settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.support.deploy import K8S, env_names_in, load_yaml_documents, setting_env_names

KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
OVERLAYS = sorted(p.parent for p in K8S.glob("overlays/*/kustomization.yaml"))
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor"}
POD_OWNERS = {"Deployment", "Job"}
Doc = dict[str, Any]


def _kustomization(folder: Path) -> Doc:
    return load_yaml_documents(folder / "kustomization.yaml")[0]


def _build(folder: Path) -> list[Doc]:
    """The objects a kustomization gathers (resources and components, recursively; no patching)."""
    spec = _kustomization(folder)
    docs: list[Doc] = []
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        target = (folder / entry).resolve()
        docs.extend(_build(target) if target.is_dir() else load_yaml_documents(target))
    return docs


def _all_manifests() -> Iterator[tuple[Path, Doc]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml" and "patch" not in path.stem and path.stem != "ingress-host":
            for doc in load_yaml_documents(path):
                yield path, doc


def _pod_spec(doc: Doc) -> Doc:
    return doc["spec"]["template"]["spec"]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.parent.relative_to(K8S)))
def test_kustomization_references_only_files_that_exist(kustomization: Path) -> None:
    folder = kustomization.parent
    spec = _kustomization(folder)
    assert spec["apiVersion"].startswith("kustomize.config.k8s.io/")
    for entry in [*spec.get("resources", []), *spec.get("components", [])]:
        target = folder / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{folder}: {entry}"
    for patch in spec.get("patches", []):
        assert "path" not in patch or (folder / patch["path"]).is_file(), patch
    for generator in spec.get("secretGenerator", []) + spec.get("configMapGenerator", []):
        for env in generator.get("envs", []):  # secrets stay out of git: an example must sit beside
            assert (folder / env).is_file() or (folder / f"{env}.example").is_file(), env


def test_every_manifest_is_valid_yaml_with_the_fields_its_kind_requires() -> None:
    seen = 0
    for path, doc in _all_manifests():
        seen += 1
        assert {"apiVersion", "kind", "metadata"} <= set(doc), path
        assert doc["metadata"].get("name"), path
        if doc["kind"] in CRD_KINDS:
            assert "spec" in doc, path
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path}: {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert seen >= 12


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_deployment_selectors_match_their_pod_labels_and_names_are_unique(overlay: Path) -> None:
    docs = _build(overlay)
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), "an object is defined twice"
    for doc in docs:
        if doc["kind"] == "Deployment":
            selector = doc["spec"]["selector"]["matchLabels"]
            assert _matches(selector, doc["spec"]["template"]["metadata"]["labels"]), doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_services_pdbs_and_monitors_select_existing_pods(overlay: Path) -> None:
    docs = _build(overlay)
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] == "Deployment"]
    services = [d for d in docs if d["kind"] == "Service"]
    for doc in docs:
        if doc["kind"] == "Service":
            assert any(_matches(doc["spec"]["selector"], p) for p in pods), doc["metadata"]["name"]
        if doc["kind"] == "PodDisruptionBudget":
            assert any(_matches(doc["spec"]["selector"]["matchLabels"], p) for p in pods), doc["metadata"][
                "name"
            ]
        if doc["kind"] == "ServiceMonitor":
            labels = [s["metadata"]["labels"] for s in services]
            assert any(_matches(doc["spec"]["selector"]["matchLabels"], x) for x in labels)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_keda_scales_an_existing_worker_deployment_on_the_docsort_queue(overlay: Path) -> None:
    docs = _build(overlay)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    auths = {d["metadata"]["name"] for d in docs if d["kind"] == "TriggerAuthentication"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert scaled
    for obj in scaled:
        target = obj["spec"]["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        assert target["name"] in deployments
        assert "worker" in target["name"]
        trigger = obj["spec"]["triggers"][0]
        assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "docsort"
        assert trigger["authenticationRef"]["name"] in auths
    for doc in docs:
        if doc["kind"] == "TriggerAuthentication":
            for ref in doc["spec"]["secretTargetRef"]:
                assert ref["key"] in secrets[ref["name"]]["stringData"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_pods_run_as_non_root_with_limits_probes_and_the_settings(overlay: Path) -> None:
    docs = _build(overlay)
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    for doc in (d for d in docs if d["kind"] in POD_OWNERS):
        pod, name = _pod_spec(doc), doc["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            if doc["kind"] == "Deployment":
                assert "livenessProbe" in container, name
            refs = container["envFrom"]
            assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} <= configmaps
            assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} <= secrets
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name


def test_every_docsort_variable_in_the_manifests_is_a_setting() -> None:
    known = setting_env_names()
    used: set[str] = set()
    for path in K8S.rglob("*"):
        if path.is_file():
            used |= env_names_in(path.read_text())
    assert "DOCSORT_SECRET_KEY" in used and "DOCSORT_DATABASE_URL" in used
    assert sorted(used - known) == []


def test_base_has_the_required_workloads() -> None:
    docs = _build(K8S / "base")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for needed in [
        ("Deployment", "docsort-worker"),
        ("Deployment", "docsort-web"),
        ("Deployment", "docsort-watcher"),
        ("Job", "docsort-migrate"),
        ("Service", "docsort-web"),
        ("Ingress", "docsort-web"),
        ("ConfigMap", "docsort-settings"),
        ("Secret", "docsort-secrets"),
        ("ScaledObject", "docsort-worker"),
    ]:
        assert needed in kinds, needed
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    watcher = by_name[("Deployment", "docsort-watcher")]
    assert watcher["spec"]["replicas"] == 1 and watcher["spec"]["strategy"]["type"] == "Recreate"
    claim = by_name[("PersistentVolumeClaim", "docsort-data")]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    ingress = by_name[("Ingress", "docsort-web")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "docsort-web"
    web_ports = {p["name"] for p in by_name[("Service", "docsort-web")]["spec"]["ports"]}
    assert backend["port"]["name"] in web_ports
    migrate = by_name[("Job", "docsort-migrate")]
    assert _pod_spec(migrate)["containers"][0]["args"] == ["db", "upgrade"]
    worker = _pod_spec(by_name[("Deployment", "docsort-worker")])
    annotations = by_name[("Deployment", "docsort-worker")]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    port = by_name[("ConfigMap", "docsort-settings")]["data"]["DOCSORT_METRICS_PORT"]
    assert annotations["prometheus.io/port"] == port
    assert worker["containers"][0]["ports"][0]["containerPort"] == int(port)
