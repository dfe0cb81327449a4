"""docs/announcer.md lists the announcer's permissions: exactly those the chart grants.

A permission added to the chart without a word in the docs (or promised by the docs and not
granted) fails here, so the operator's page stays the truth about what an announcer can do.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "charts" / "exalb" / "rbac" / "announcer.yaml"
ADMISSION = RBAC.with_name("announcer-admission.yaml")
DOC = ROOT / "docs" / "announcer.md"

# The docs' words for where a rule applies -> (kind, namespace placeholder) in the chart.
SCOPES = {
    "cluster (ClusterRole)": ("ClusterRole", None),
    "exalb namespace (Role)": ("Role", "NAMESPACE"),
    "BGP secrets namespace (Role)": ("Role", "BGP_SECRETS_NS"),
}

Grant = tuple[str, str | None, str, str, frozenset[str]]  # kind, ns, group, resource, verbs


def granted() -> set[Grant]:
    out: set[Grant] = set()
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if not doc or doc["kind"] not in ("ClusterRole", "Role"):
            continue
        ns = doc["metadata"].get("namespace")
        for rule in doc["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out.add((doc["kind"], ns, group, resource, frozenset(rule["verbs"])))
    return out


def documented() -> set[Grant]:
    section = DOC.read_text().split("\n## RBAC\n", 1)[1].split("\n#", 1)[0]
    out: set[Grant] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] not in SCOPES:
            continue
        kind, ns = SCOPES[cells[0]]
        group = cells[1].strip("`").strip('"')
        verbs = frozenset(v.strip() for v in cells[3].split("(", 1)[0].split(","))
        for resource in re.findall(r"`([^`]+)`", cells[2]):
            out.add((kind, ns, group, resource, verbs))
    return out


def test_the_docs_table_is_the_announcers_rbac() -> None:
    docs = documented()
    assert docs, "no RBAC table found in docs/announcer.md"
    assert docs == granted()


def test_secrets_are_readable_only_in_the_bgp_secrets_namespace() -> None:
    secrets = {(kind, ns) for kind, ns, group, res, _ in granted() if res == "secrets"}
    assert secrets == {("Role", "BGP_SECRETS_NS")}


def test_the_admission_policy_checks_the_announcers_service_account() -> None:
    """Under another name the policy would match no request, and check no one."""
    docs = list(yaml.safe_load_all(RBAC.read_text()))
    subjects = {
        f"system:serviceaccount:{s['namespace']}:{s['name']}"
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        for s in d["subjects"]
    }
    policies = [
        d
        for d in yaml.safe_load_all(ADMISSION.read_text())
        if d["kind"] == "ValidatingAdmissionPolicy"
    ]
    [subject] = subjects  # one identity for every binding
    assert {p["metadata"]["name"] for p in policies} == {
        "exalb-announcer-own-node",
        "exalb-announcer-own-heartbeat",
    }
    for policy in policies:
        [condition] = policy["spec"]["matchConditions"]
        assert condition["expression"] == f"request.userInfo.username == '{subject}'"
