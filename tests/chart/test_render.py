"""`helm lint --strict` and `helm template` of charts/exalb, asserting on the rendered objects."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from testbed.manifests import CHART
from tests.chart.conftest import NS, HelmFailed, Obj, containers, flag, helm, only, template

MODES = ["sidecar", "deployment"]
SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)
MONITORING = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}


def mode(m: str, **more: Any) -> dict[str, Any]:
    return {"allocator": {"mode": m}, **more}


@pytest.mark.parametrize("m", MODES)
def test_lint_strict(tmp_path: Path, m: str) -> None:
    out = helm("lint", "--strict", str(CHART), values=mode(m, monitoring=MONITORING), tmp=tmp_path)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_lint_strict_defaults() -> None:
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART))


def test_defaults_sidecar_mode(tmp_path: Path) -> None:
    objs = template(tmp_path)
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("CustomResourceDefinition") == 3
    assert not [o for o in objs if o["kind"] in ("Deployment", "PodDisruptionBudget")]
    assert not [o for o in objs if o["kind"] in ("ServiceMonitor", "PrometheusRule", "Service")]
    ds = only(objs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["announcer", "allocator"]
    assert pod["serviceAccountName"] == "exalb-announcer"
    # the allocator container authenticates as exalb-allocator, not as the pod's account
    alloc = pod["containers"][1]
    mount = next(v for v in alloc["volumeMounts"] if v["mountPath"] == SA_PATH)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    secret = only(objs, "Secret", volume["secret"]["secretName"])
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == (
        "exalb-allocator"
    )
    assert {i["key"] for i in volume["secret"]["items"]} == {"token", "ca.crt", "namespace"}
    announcer = pod["containers"][0]
    assert not [v for v in announcer["volumeMounts"] if v["mountPath"] == SA_PATH]


def test_deployment_mode(tmp_path: Path) -> None:
    objs = template(tmp_path, mode("deployment"))
    ds = only(objs, "DaemonSet")
    assert [c["name"] for c in ds["spec"]["template"]["spec"]["containers"]] == ["announcer"]
    dep = only(objs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "exalb-allocator"
    assert "hostNetwork" not in pod
    assert [c["name"] for c in pod["containers"]] == ["allocator"]
    pdb = only(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert not [o for o in objs if o["kind"] == "Secret"]  # no token to share


@pytest.mark.parametrize("m", MODES)
def test_pod_settings(tmp_path: Path, m: str) -> None:
    objs = template(tmp_path, mode(m))
    ds = only(objs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "node-role.kubernetes.io/control-plane"
    announcer = pod["containers"][0]
    assert announcer["env"][0] == {
        "name": "NODE_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
    }
    assert flag(announcer, "namespace") == NS
    assert flag(announcer, "bgp-secrets-namespace") == f"{NS}-bgp-secrets"
    secrets_ns = only(objs, "Namespace")
    assert secrets_ns["metadata"]["name"] == f"{NS}-bgp-secrets"
    assert secrets_ns["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    # the only writable path is the run directory, an emptyDir in memory
    run_dir = flag(announcer, "run-dir")
    (mount,) = announcer["volumeMounts"]
    assert mount["mountPath"] == run_dir
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"
    for _, c in containers(objs):
        assert c["command"] in (["exalb-announcer"], ["exalb-allocator"])
        assert c["image"] == "localhost/exalb:0.1.0"
        assert c["resources"]["limits"]["memory"]


@pytest.mark.parametrize("m", MODES)
def test_security_context(tmp_path: Path, m: str) -> None:
    for _, c in containers(template(tmp_path, mode(m))):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["runAsUser"] == 65532 and sc["runAsGroup"] == 65532
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"], "add": []}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("m", MODES)
@pytest.mark.parametrize("ports", [(7473, 7472), (9100, 9101)])
def test_probes_use_the_port_each_process_binds(
    tmp_path: Path, m: str, ports: tuple[int, int]
) -> None:
    values = mode(m, announcer={"metricsPort": ports[0]})
    values["allocator"]["metricsPort"] = ports[1]
    seen = set()
    for _, c in containers(template(tmp_path, values)):
        if c["name"] == "announcer":
            bound = int(flag(c, "metrics-port") or 0)
        else:
            bind = flag(c, "metrics-bind") or ""
            assert bind.startswith("0.0.0.0:")
            bound = int(bind.rpartition(":")[2])
        assert bound == ports[0 if c["name"] == "announcer" else 1]
        by_name = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path
            assert by_name[get["port"]] == bound
        seen.add(c["name"])
    assert seen == {"announcer", "allocator"}


def test_sidecar_ports_must_differ(tmp_path: Path) -> None:
    with pytest.raises(HelmFailed, match="metricsPort must differ"):
        template(tmp_path, {"announcer": {"metricsPort": 7000}, "allocator": {"metricsPort": 7000}})


@pytest.mark.parametrize(("drain", "timeout"), [(0, 10), (20, 10), (2.5, 30)])
def test_grace_period_exceeds_drain_and_shutdown(
    tmp_path: Path, drain: float, timeout: float
) -> None:
    needed = drain + timeout + 10
    a = {"gracefulShutdownDrain": drain, "shutdownTimeout": timeout}
    if needed >= 30:  # the default grace period is too short: the chart says so
        with pytest.raises(HelmFailed, match="terminationGracePeriodSeconds"):
            template(tmp_path, {"announcer": a})
        a["terminationGracePeriodSeconds"] = math.ceil(needed) + 1
    ds = only(template(tmp_path, {"announcer": a}), "DaemonSet")
    (announcer, *_) = ds["spec"]["template"]["spec"]["containers"]
    assert float(flag(announcer, "graceful-shutdown-drain") or -1) == drain
    assert float(flag(announcer, "shutdown-timeout") or -1) == timeout
    assert ds["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > needed


@pytest.mark.parametrize("m", MODES)
def test_labels(tmp_path: Path, m: str) -> None:
    objs = template(tmp_path, mode(m, monitoring=MONITORING))
    for o in objs:
        labels = o["metadata"]["labels"]
        for key in STANDARD_LABELS:
            assert labels.get(key), f"{o['kind']} {o['metadata']['name']} lacks {key}"
        assert labels["app.kubernetes.io/instance"] == "exalb"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    for workload, _ in containers(objs):
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert set(STANDARD_LABELS) <= set(pod_labels)
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        assert "app.kubernetes.io/version" not in selector  # selectors are immutable


@pytest.mark.parametrize("m", MODES)
def test_rbac_binds_the_chart_service_accounts(tmp_path: Path, m: str) -> None:
    objs = template(tmp_path, mode(m))
    accounts = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    assert accounts == {"exalb-allocator", "exalb-announcer"}
    assert {o["metadata"]["namespace"] for o in objs if o["kind"] == "ServiceAccount"} == {NS}
    for o in objs:
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for s in o["subjects"]:
                assert (s["name"], s["namespace"]) in {(a, NS) for a in accounts}
    for workload, _ in containers(objs):
        assert workload["spec"]["template"]["spec"]["serviceAccountName"] in accounts


def test_no_placeholder_left(tmp_path: Path) -> None:
    for m in MODES:
        out = helm(
            "template", "exalb", str(CHART), "--namespace", NS, "--set", f"allocator.mode={m}"
        )
        assert "NAMESPACE" not in out
        assert "BGP_SECRETS_NS" not in out


def _without_chart_labels(o: Obj) -> Obj:
    md = o["metadata"]
    labels = {k: v for k, v in md.get("labels", {}).items() if k not in STANDARD_LABELS}
    md = {k: v for k, v in md.items() if k != "labels"} | ({"labels": labels} if labels else {})
    return {**o, "metadata": md}


def test_rbac_is_the_files_content(tmp_path: Path) -> None:
    import yaml

    rendered = template(tmp_path, show_only="templates/rbac.yaml")
    files = sorted((CHART / "rbac").glob("*.yaml"))
    assert files
    expected = []
    for path in files:
        text = path.read_text().replace("BGP_SECRETS_NS", f"{NS}-bgp-secrets")
        docs = yaml.safe_load_all(text.replace("NAMESPACE", NS))
        expected += [(path.stem, d) for d in docs if d]

    def key(o: Obj) -> tuple[str, str]:
        return o["kind"], o["metadata"]["name"]

    # helm orders objects by kind; the files' order does not matter
    by_key = {key(o): o for o in rendered}
    assert len(by_key) == len(rendered) == len(expected)
    for stem, doc in expected:
        o = by_key[key(doc)]
        assert _without_chart_labels(o) == doc
        assert o["metadata"]["labels"]["app.kubernetes.io/component"] == stem


def test_crds_are_templates_kept_on_uninstall(tmp_path: Path) -> None:
    import yaml

    crds = template(tmp_path, show_only="templates/crds.yaml")
    assert {o["kind"] for o in crds} == {"CustomResourceDefinition"}
    files = sorted((CHART / "definitions").glob("*.yaml"))
    assert [_without_chart_labels(o)["metadata"]["name"] for o in crds] == [f.stem for f in files]
    for o, path in zip(crds, files, strict=True):
        assert o["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        assert o["spec"] == yaml.safe_load(path.read_text())["spec"]
        assert "exalb" in o["spec"]["names"]["categories"]
        assert o["spec"]["names"]["shortNames"]
    assert not (CHART / "crds").exists()  # Helm would install those once and never upgrade
    off = template(tmp_path, {"crds": {"install": False}})
    assert not [o for o in off if o["kind"] == "CustomResourceDefinition"]


@pytest.mark.parametrize("m", MODES)
def test_load_balancer_class(tmp_path: Path, m: str) -> None:
    def alloc(values: dict[str, Any]) -> Obj:
        return next(
            c for _, c in containers(template(tmp_path, values)) if c["name"] == "allocator"
        )

    assert flag(alloc(mode(m)), "load-balancer-class") is None
    chosen = alloc(mode(m, loadBalancerClass="example.com/exalb"))
    assert flag(chosen, "load-balancer-class") == "example.com/exalb"


@pytest.mark.parametrize(
    "values",
    [
        {"allocator": {"mode": "both"}},
        {"announcer": {"bogus": 1}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"announcer": {"metricsPort": 70000}},
        {"loadBalancerClass": "Not A Class"},
        {"monitoring": {"prometheusRule": {"sessionDownFor": "five minutes"}}},
    ],
)
def test_schema_rejects_bad_values(tmp_path: Path, values: dict[str, Any]) -> None:
    with pytest.raises(HelmFailed, match="values don't meet the specifications of the schema"):
        template(tmp_path, values)
