"""The production files are checked, not hoped: every rendered Kubernetes manifest validates against the Kubernetes
schemas (kubernetes-validate) or its operator's CRD schema, and says what the platform needs (probes, limits,
locked-down pods, autoscaling within the partitions, a topic and a dead-letter topic each, one entry point)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from libs.common.topics import ALL_TOPICS, dlq_of
from retain_cli.supervisor import CONSOLE, PROCESSES, SERVICES, consumer_groups
from tests.ops.kustomize import Resource, render
from tests.ops.monitoring import RULES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31"
CRD_SCHEMAS: dict[str, Any] = yaml.safe_load((Path(__file__).parent / "crd_schemas.yaml").read_text())
BUILDS = ["base", "overlays/dev", "overlays/prod"]
COMPONENT = "app.kubernetes.io/component"
# Services that consume, from their own subscriptions; ingest (which also follows profile changes, for erasures)
# takes its load over HTTP and scales on CPU: an HPA and a ScaledObject must not both drive one Deployment.
CONSUMERS = tuple(sorted({group.split(".")[0] for group in consumer_groups()} - {"ingest"}))


def build(name: str) -> list[Resource]:
    return render(K8S / name)


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def container(deployment: Resource) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def config(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = of_kind(resources, "ConfigMap")["retain-config"]["data"]
    return data


@pytest.mark.parametrize("name", BUILDS)
def test_every_manifest_validates_against_its_schema(name: str) -> None:
    resources = build(name)
    assert resources
    for resource in resources:
        key = f"{resource['apiVersion']}/{resource['kind']}"
        if key in CRD_SCHEMAS:
            jsonschema.validate(resource, CRD_SCHEMAS[key])
        else:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", resource["metadata"]["name"]), key


@pytest.mark.parametrize("name", BUILDS)
def test_names_are_unique_per_kind_and_overlays_set_a_namespace(name: str) -> None:
    resources = build(name)
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(keys) == len(set(keys))
    if name != "base":
        assert {r["metadata"].get("namespace") for r in resources} == {
            "retain" if name.endswith("prod") else "retain-dev"
        }


@pytest.mark.parametrize("name", BUILDS)
def test_deployments_have_probes_limits_and_a_locked_down_pod(name: str) -> None:
    deployments = of_kind(build(name), "Deployment")
    assert set(deployments) == {f"retain-{name}" for name in PROCESSES}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        for kind in ("requests", "limits"):
            assert set(main["resources"][kind]) == {"cpu", "memory"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        security = main["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        image = main["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert main["command"] == ["python", "-m", f"services.{deployment['metadata']['name'].removeprefix('retain-')}"]


@pytest.mark.parametrize("name", BUILDS)
def test_every_deployment_has_a_disruption_budget_and_a_service_selecting_it(name: str) -> None:
    resources = build(name)
    deployments = of_kind(resources, "Deployment")
    budgets = of_kind(resources, "PodDisruptionBudget")
    services = of_kind(resources, "Service")
    for deployment_name, deployment in deployments.items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        assert budgets[deployment_name]["spec"]["selector"]["matchLabels"] == selector
        assert services[deployment_name]["spec"]["selector"] == selector
        assert services[deployment_name]["metadata"]["labels"]["retain_service"] == pod_labels["retain_service"]


@pytest.mark.parametrize("name", BUILDS)
def test_ingest_scales_on_cpu_and_each_consumer_on_its_groups_lag_within_the_partitions(name: str) -> None:
    resources = build(name)
    partitions = int(config(resources)["RETAIN_TOPIC_PARTITIONS"])
    [hpa] = of_kind(resources, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "retain-ingest"}
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    scaled = of_kind(resources, "ScaledObject")
    assert set(scaled) == {f"retain-{service}" for service in CONSUMERS}
    groups = consumer_groups()
    bootstrap = config(resources)["RETAIN_KAFKA_BOOTSTRAP"]
    authentications = of_kind(resources, "TriggerAuthentication")
    for service in CONSUMERS:
        spec = scaled[f"retain-{service}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"retain-{service}"
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        triggers = {(t["metadata"]["consumerGroup"], t["metadata"]["topic"]) for t in spec["triggers"]}
        wanted = {
            (group, topic) for group, topics in groups.items() if group.startswith(f"{service}.") for topic in topics
        }
        assert triggers == wanted, service
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["bootstrapServers"] == bootstrap
            assert trigger["metadata"]["allowIdleConsumers"] == "false"
            assert trigger["authenticationRef"]["name"] in authentications


@pytest.mark.parametrize("name", BUILDS)
def test_every_topic_and_its_dead_letter_topic_is_declared_with_the_configured_partitions(name: str) -> None:
    resources = build(name)
    settings = config(resources)
    topics = of_kind(resources, "KafkaTopic")
    wanted = {topic for base in ALL_TOPICS for topic in (base, dlq_of(base))}
    assert {t["spec"]["topicName"] for t in topics.values()} == wanted
    for topic in topics.values():
        assert topic["spec"]["partitions"] == int(settings["RETAIN_TOPIC_PARTITIONS"])
        assert topic["spec"]["replicas"] == int(settings["RETAIN_TOPIC_REPLICATION"])
        assert topic["spec"]["config"]["min.insync.replicas"] <= topic["spec"]["replicas"]
    assert settings["RETAIN_KAFKA_IDEMPOTENCE"] == "true"


def test_prometheus_rule_is_the_rules_file() -> None:
    [rule] = of_kind(build("base"), "PrometheusRule").values()
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    [monitor] = of_kind(build("base"), "ServiceMonitor").values()
    # The rules select job="retain" and name targets by retain_service.
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "retain"}
    assert monitor["spec"]["targetLabels"] == ["retain_service"]
    assert 'job="retain"' in RULES.read_text()


def _admits_outside(policy: Resource) -> bool:
    for rule in policy["spec"].get("ingress", []):
        sources = rule.get("from")
        if not sources or any("ipBlock" in source for source in sources):
            return True
    return False


@pytest.mark.parametrize("name", BUILDS)
def test_only_ingest_is_reachable_from_outside(name: str) -> None:
    resources = build(name)
    policies = list(of_kind(resources, "NetworkPolicy").values())
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"].get("ingress") is None]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"], "no default deny of ingress"
    for deployment in of_kind(resources, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        reachable = [
            p
            for p in policies
            if _admits_outside(p) and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
        ]
        if labels["app.kubernetes.io/component"] == "ingest":
            assert reachable, "ingest is not reachable from outside"
        else:
            assert reachable == [], f"{deployment['metadata']['name']} is reachable from outside"
    # People reach the console, and customers the survey pages of feedback, through the ingress controller only.
    for component in (CONSOLE, "feedback"):
        [policy] = [
            p
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels", {}).get(COMPONENT) == component
            and p["metadata"]["name"].endswith("-from-ingress-controller")
        ]
        [rule] = policy["spec"]["ingress"]
        assert rule["from"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ]


@pytest.mark.parametrize("name", BUILDS)
def test_the_console_reads_the_services_through_their_cluster_services(name: str) -> None:
    resources = build(name)
    main = container(of_kind(resources, "Deployment")["retain-console"])
    env = {item["name"]: item["value"] for item in main["env"]}
    services = of_kind(resources, "Service")
    for service in SERVICES:
        if service != "ingest":
            assert env[f"RETAIN_CONSOLE_{service.upper()}_URL"] == f"http://retain-{service}"
            assert f"retain-{service}" in services
    assert env["RETAIN_CONSOLE_SECURE_COOKIES"] == "true"
    # No database or Kafka credentials: it owns neither.
    assert [mount["name"] for mount in main["volumeMounts"]] == ["tmp"]


def test_compose_pins_every_image_and_prometheus_scrapes_every_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), f"{name}: {image}"
    for name in SERVICES:
        assert compose["services"][name]["environment"]["RETAIN_KAFKA_IDEMPOTENCE"] == "true"
        assert compose["services"][name]["read_only"] is True
    [base_image] = re.findall(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-[\w.-]+", base_image), base_image
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["job_name"] == "retain"
    assert [(c["targets"], c["labels"]["retain_service"]) for c in job["static_configs"]] == [
        ([f"{name}:8000"], name) for name in PROCESSES
    ]
    console = compose["services"][CONSOLE]["environment"]
    for name in SERVICES:
        if name != "ingest":
            assert console[f"RETAIN_CONSOLE_{name.upper()}_URL"] == f"http://{name}:8000"
    assert "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in compose["services"]["prometheus"]["volumes"]
    assert prometheus["rule_files"] == ["/etc/prometheus/rules.yml"]
