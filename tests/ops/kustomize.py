"""Renders a kustomization the way `kubectl kustomize` does, for the fields deploy/k8s uses (no kustomize binary
is needed to test the manifests). A field outside that set fails the rendering instead of being ignored."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
# Kinds that live outside namespaces among those deploy/k8s could declare.
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


def render(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    assert not unsupported, f"{directory}: kustomization fields this renderer does not know: {sorted(unsupported)}"
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch in kustomization.get("patches", []):
        _apply_patch(resources, patch)
    for labels in kustomization.get("labels", []):
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(labels["pairs"])
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    for replicas in kustomization.get("replicas", []):
        [deployment] = [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == replicas["name"]]
        deployment["spec"]["replicas"] = replicas["count"]
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def _matches(resource: Resource, target: dict[str, str]) -> bool:
    unknown = set(target) - {"kind", "name"}
    assert not unknown, f"patch target selectors this renderer does not know: {sorted(unknown)}"
    return all(
        re.fullmatch(pattern, resource["kind"] if key == "kind" else resource["metadata"]["name"])
        for key, pattern in target.items()
    )


def _apply_patch(resources: list[Resource], patch: dict[str, Any]) -> None:
    operations = yaml.safe_load(patch["patch"])
    assert isinstance(operations, list), "only JSON 6902 patches (a list of operations) are supported"
    targets = [resource for resource in resources if _matches(resource, patch["target"])]
    assert targets, f"patch target {patch['target']} matches no resource"
    for resource in targets:
        for operation in operations:
            _apply_operation(resource, operation)


def _apply_operation(document: Resource, operation: dict[str, Any]) -> None:
    *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in operation["path"].split("/")[1:]]
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) and last != "-" else last
    op = operation["op"]
    if op == "replace":
        assert (key < len(node)) if isinstance(node, list) else key in node, f"replace of missing {operation['path']}"
        node[key] = copy.deepcopy(operation["value"])
    elif op == "add":
        if isinstance(node, list):
            node.insert(len(node) if key == "-" else key, copy.deepcopy(operation["value"]))
        else:
            node[key] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del node[key]
    else:
        raise AssertionError(f"JSON patch operation {op} is not supported")


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
