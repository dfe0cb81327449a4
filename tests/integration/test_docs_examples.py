"""Every Kubernetes object shown in docs/ is accepted by the real API server.

Each ```yaml block of docs/*.md must parse; each document in it with an apiVersion and a
kind is created with dryRun=All (schema, CEL rules and defaults applied, nothing stored)
against the test control plane with the chart's CRDs installed, so an example that rots
with a CRD change fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic

from testbed.binaries import ROOT
from testbed.manifests import install_crds
from tests.conftest import fresh_namespace

pytestmark = pytest.mark.integration

DOCS = ROOT / "docs"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def yaml_blocks() -> list[tuple[str, str]]:
    return [
        (f"{md.name}#{i}", block)
        for md in sorted(DOCS.glob("*.md"))
        for i, block in enumerate(YAML_BLOCK.findall(md.read_text()), 1)
    ]


def objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for where, block in yaml_blocks():
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                found.append((f"{where} {doc['kind']} {doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize(("where", "block"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_yaml_blocks_parse(where: str, block: str) -> None:
    assert list(yaml.safe_load_all(block)), f"{where} is empty"


def test_docs_show_the_objects_users_create() -> None:
    kinds = {doc["kind"] for _, doc in objects()}
    assert {"VIPPool", "BGPPeer", "Service"} <= kinds


@pytest.fixture(scope="module")
def crds(kube: client.ApiClient) -> list[str]:
    return install_crds(kube)


@pytest.fixture(scope="module")
def docs_namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """One namespace for every example: dry runs store nothing, so nothing to wait for."""
    yield from fresh_namespace(kube, request, wait_deleted=False)


@pytest.mark.parametrize(("where", "obj"), objects(), ids=[w for w, _ in objects()])
def test_example_is_accepted_by_the_api_server(
    where: str, obj: dict[str, Any], kube: client.ApiClient, crds: list[str], docs_namespace: str
) -> None:
    dyn = dynamic.DynamicClient(kube)  # type: ignore[no-untyped-call]
    res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    body = {**obj, "metadata": {**obj["metadata"]}}
    if res.namespaced:  # the test's own namespace stands in for exalb-system or default
        body["metadata"]["namespace"] = docs_namespace
    created = res.create(body=body, namespace=body["metadata"].get("namespace"), dry_run="All")
    assert created.metadata.name == obj["metadata"]["name"], where
    assert created.metadata.uid  # the server ran admission and validation on it
