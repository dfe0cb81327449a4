"""exalbctl's command line: arguments, exit codes, output forms, files, and cluster errors.

The cluster side here is a local HTTP server (for refusals and paging) or a closed port
(unreachable); the real apiserver is in tests/integration/exalbctl.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from exalbctl import exits
from exalbctl.cluster import connect, kubeconfig_paths
from exalbctl.main import run
from testbed.procs import free_port

FIXTURES = Path(__file__).parent / "fixtures"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def kubeconfig(path: Path, servers: dict[str, str], current: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": current,
                "clusters": [{"name": n, "cluster": {"server": s}} for n, s in servers.items()],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in servers],
            }
        )
    )
    return path


# --- usage -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["status", "-o", "xml"], ["migrate"], ["migrate", "calico"], ["status", "x"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(*argv)
    assert exc.value.code == exits.USAGE
    assert "usage: exalbctl" in capsys.readouterr().err


# --- migrate from files ---------------------------------------------------------------------
def test_migrate_prints_yaml_and_reports_on_stderr() -> None:
    code, out, err = cli("migrate", "metallb", "-f", str(FIXTURES / "metallb" / "peers.yaml"))
    assert code == exits.OK
    assert out == (FIXTURES / "exalb" / "peers.yaml").read_text()
    assert "6 not carried over" in err
    assert "LOST  BGPPeer/in-vrf          spec.vrf" in err


@pytest.mark.parametrize(("case", "code"), [("peers", exits.PROBLEMS), ("bgp-simple", exits.OK)])
def test_strict_fails_only_when_something_is_lost(case: str, code: int) -> None:
    path = str(FIXTURES / "metallb" / f"{case}.yaml")
    assert cli("migrate", "metallb", "--strict", "-f", path)[0] == code


def test_migrate_json_is_a_list() -> None:
    path = str(FIXTURES / "metallb" / "bgp-simple.yaml")
    code, out, _ = cli("migrate", "metallb", "-o", "json", "-f", path)
    doc = json.loads(out)
    assert code == 0 and (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    assert doc["items"] == list(yaml.safe_load_all((FIXTURES / "exalb" / "bgp-simple.yaml").open()))


def test_migrate_output_dir_and_report_file(tmp_path: Path) -> None:
    path = str(FIXTURES / "metallb" / "advertisements.yaml")
    code, out, err = cli(
        "migrate",
        "metallb",
        "-f",
        path,
        "--output-dir",
        str(tmp_path / "out"),
        "--report",
        str(tmp_path / "report.txt"),
    )
    assert code == 0 and err == ""
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["bgppeer-peer1.yaml", "vippool-bigpool.yaml", "vippool-westpool.yaml"]
    assert "VIPPool  bigpool" in out and str(tmp_path / "out" / "vippool-bigpool.yaml") in out
    expected = list(yaml.safe_load_all((FIXTURES / "exalb" / "advertisements.yaml").open()))
    written = [yaml.safe_load((tmp_path / "out" / f).read_text()) for f in files]
    assert sorted(written, key=str) == sorted(expected, key=str)
    assert "Findings: none" in (tmp_path / "report.txt").read_text()


def test_migrate_a_directory_and_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    _, out_dir, _ = cli("migrate", "metallb", "-o", "json", "-f", str(FIXTURES / "metallb"))
    names = {(o["kind"], o["metadata"]["name"]) for o in json.loads(out_dir)["items"]}
    assert ("VIPPool", "first-pool") in names and ("BGPPeer", "legacy") in names
    monkeypatch.setattr(
        "sys.stdin", io.StringIO((FIXTURES / "metallb" / "bgp-simple.yaml").read_text())
    )
    code, out, _ = cli("migrate", "metallb", "-f", "-")
    assert code == 0 and out == (FIXTURES / "exalb" / "bgp-simple.yaml").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file or directory"),
        ("a: [", "not valid YAML"),
        ("- 1\n", "is not an object"),
    ],
)
def test_unreadable_input_exits_3(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "in.yaml"
    if content is not None:
        path.write_text(content)
    code, out, err = cli("migrate", "metallb", "-f", str(path))
    assert (code, out) == (exits.UNREADABLE, "")
    assert message in err and err.startswith("exalbctl: ")


# --- the cluster --------------------------------------------------------------------------
def test_unreachable_cluster_says_which_server(tmp_path: Path) -> None:
    port = free_port()
    cfg = kubeconfig(tmp_path / "kc", {"a": f"http://127.0.0.1:{port}"}, "a")
    code, out, err = cli("status", "--kubeconfig", str(cfg))
    assert (code, out) == (exits.UNREADABLE, "")
    assert f"cannot reach the API server at http://127.0.0.1:{port}" in err
    assert "refused" in err.lower()


def test_context_flag_selects_the_context(tmp_path: Path) -> None:
    a, b = free_port(), free_port()
    cfg = kubeconfig(
        tmp_path / "kc", {"a": f"http://127.0.0.1:{a}", "b": f"http://127.0.0.1:{b}"}, "a"
    )
    _, _, err = cli("status", "--kubeconfig", str(cfg), "--context", "b")
    assert f"127.0.0.1:{b}" in err
    code, _, err = cli("migrate", "metallb", "--kubeconfig", str(cfg), "--context", "zz")
    assert code == exits.UNREADABLE and "no context named 'zz'" in err


def test_kubeconfig_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kubeconfig_paths("/flag", {"KUBECONFIG": "/env"}) == "/flag"
    assert kubeconfig_paths(None, {"KUBECONFIG": "/a:/b"}) == "/a:/b"
    assert kubeconfig_paths(None, {}) is None  # then in-cluster
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text("{}")
    assert kubeconfig_paths(None, {}) == str(tmp_path / ".kube" / "config")


class Api(BaseHTTPRequestHandler):
    """Answers lists from ``pages[path]`` (one page per ``continue`` token), else ``status``."""

    pages: ClassVar[dict[str, list[list[dict[str, Any]]]]] = {}
    status = 200
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.seen.append(self.path)
        if self.status != 200 or url.path not in self.pages:
            code = self.status if self.status != 200 else 404
            body: dict[str, Any] = {"kind": "Status", "message": f"told to answer {code}"}
        else:
            code = 200
            n = int(parse_qs(url.query).get("continue", ["0"])[0])
            pages = self.pages[url.path]
            body = {
                "items": pages[n],
                "metadata": {"continue": str(n + 1) if n + 1 < len(pages) else ""},
            }
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, type[Api]]]:
    handler = type("Handler", (Api,), {"pages": {}, "status": 200, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            kubeconfig(tmp_path / "kc", {"a": f"http://127.0.0.1:{server.server_port}"}, "a"),
            handler,
        )
    finally:
        server.shutdown()
        server.server_close()


def test_lists_follow_continue_tokens(api: tuple[Path, type[Api]]) -> None:
    cfg, handler = api
    handler.pages["/api/v1/services"] = [[{"n": 1}, {"n": 2}], [{"n": 3}]]
    assert connect(str(cfg)).list("v1", "services") == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [("limit=500" in s, "continue=1" in s) for s in handler.seen] == [
        (True, False),
        (True, True),
    ]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, "does not serve vippools.exalb.io/v1alpha1 (is its CRD installed?)"),
        (403, "refused to list vippools.exalb.io/v1alpha1: HTTP 403: told to answer 403"),
        (500, "listing vippools.exalb.io/v1alpha1 on http://127.0.0.1:"),
    ],
)
def test_api_refusals_are_explained(api: tuple[Path, type[Api]], status: int, message: str) -> None:
    cfg, handler = api
    handler.status = status
    code, out, err = cli("status", "--kubeconfig", str(cfg))
    assert (code, out) == (exits.UNREADABLE, "")
    assert message in err


def test_status_exit_code_follows_problems(api: tuple[Path, type[Api]]) -> None:
    cfg, handler = api
    pool = {
        "metadata": {"name": "main", "generation": 1},
        "spec": {"addresses": ["198.51.100.0/30"]},
        "status": {
            "observedGeneration": 1,
            "capacityIPv4": 4,
            "assignedIPv4": 1,
            "availableIPv4": 3,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    handler.pages.update(
        {
            "/apis/exalb.io/v1alpha1/namespaces/exalb-system/vippools": [[pool]],
            "/api/v1/services": [[]],
            "/apis/exalb.io/v1alpha1/namespaces/exalb-system/bgpsessionstatuses": [[]],
            "/apis/coordination.k8s.io/v1/namespaces/exalb-system/leases": [[]],
        }
    )
    code, out, _ = cli("status", "--kubeconfig", str(cfg), "-o", "yaml")
    assert code == exits.OK and yaml.safe_load(out)["problems"] == []
    assert not any("events" in s for s in handler.seen)  # nothing pending: no Event read
    pool["status"]["availableIPv4"] = 0
    code, out, _ = cli("status", "--kubeconfig", str(cfg), "-o", "json")
    assert code == exits.PROBLEMS
    assert json.loads(out)["problems"] == ["pool main is exhausted: 1/4 IPv4 addresses assigned"]
