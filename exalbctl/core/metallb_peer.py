"""MetalLB's BGPPeer (v1beta2, or the deprecated v1beta1) -> exalb's BGPPeer, field by field."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from .durations import DurationError, format_seconds, parse_duration
from .mapping import Finding, Obj, exalb_object, is_set, name_of, spec_of, unknown_fields
from .metallb_bfd import peer_bfd

MAX_PASSWORD = 80  # BGPPeer.spec.password maxLength (TCP MD5's key limit)
PEER_DROPPED = {
    "vrf": "exalb has no VRFs: the session runs in the node's default routing table",
}
PEER_NOTES = {"disableMP": "deprecated in MetalLB, where it has no effect"}
PEER_CARRIED = (
    "myASN",
    "peerASN",
    "peerAddress",
    "peerPort",
    "sourceAddress",
    "connectTime",
    "enableGracefulRestart",
    "nodeSelectors",
    "dualStackAddressFamily",
)
PEER_HANDLED = (
    *PEER_CARRIED,
    *PEER_DROPPED,
    *PEER_NOTES,
    "bfdProfile",
    "holdTime",
    "keepaliveTime",
    "routerID",
    "password",
    "passwordSecret",
    "ebgpMultiHop",
    "localASN",
    "dynamicASN",
    "interface",
)


def migrate_peer(
    o: Obj,
    namespace: str,
    secrets_namespace: str,
    bfd_profiles: Mapping[str, Obj],
    findings: list[Finding],
) -> Obj | None:
    """exalb's BGPPeer, or None (with the reason) when a required field has no equivalent.

    ``secrets_namespace``: the announcers' BGP secrets namespace, where a password
    Secret must be copied to; ``bfd_profiles``: MetalLB's BFDProfiles by name.
    """
    source, spec = f"BGPPeer/{name_of(o)}", spec_of(o)
    missing = _missing_peer_fields(spec)
    if missing:
        findings.append(Finding(source, "", f"not migrated: {missing}"))
        return None
    new: Obj = {k: spec[k] for k in PEER_CARRIED if is_set(spec.get(k))}
    new.update(_timers(source, spec, findings))
    peer_ns = (o.get("metadata") or {}).get("namespace")
    new.update(_credentials(source, spec, peer_ns, secrets_namespace, findings))
    new.update(peer_bfd(source, spec.get("bfdProfile"), bfd_profiles, findings))
    for key, reason in PEER_DROPPED.items():
        if is_set(spec.get(key)):
            findings.append(Finding(source, f"spec.{key}", reason))
    for key, reason in PEER_NOTES.items():
        if is_set(spec.get(key)):
            findings.append(Finding(source, f"spec.{key}", reason, lost=False))
    new.update(_identity(source, spec, findings))
    findings += unknown_fields(source, spec, PEER_HANDLED, "spec")
    return exalb_object("BGPPeer", o, namespace, new)


def _missing_peer_fields(spec: Mapping[str, Any]) -> str:
    if not spec.get("myASN"):
        return "no myASN"
    if not spec.get("peerASN"):
        if spec.get("dynamicASN"):
            return f"dynamicASN {spec['dynamicASN']!r}: exalb needs a fixed peerASN"
        return "no peerASN"
    if not spec.get("peerAddress"):
        if spec.get("interface"):
            return (
                f"interface {spec['interface']!r}: exalb has no unnumbered BGP (needs peerAddress)"
            )
        return "no peerAddress"
    return ""


def _identity(source: str, spec: Mapping[str, Any], findings: list[Finding]) -> Obj:
    """routerID, ebgpMultiHop and the fields MetalLB's FRR modes add beside a fixed identity."""
    out: Obj = {}
    router_id = spec.get("routerID")
    if router_id:
        if _is_ipv4(str(router_id)):
            out["routerID"] = router_id
        else:
            findings.append(
                Finding(source, "spec.routerID", f"{router_id!r}: exalb takes an IPv4 router ID")
            )
    if spec.get("ebgpMultiHop"):
        if spec["myASN"] == spec["peerASN"]:
            findings.append(
                Finding(
                    source,
                    "spec.ebgpMultiHop",
                    "set on an iBGP session (myASN == peerASN), where it means "
                    "nothing; exalb rejects it",
                )
            )
        else:
            out["ebgpMultiHop"] = True
    if spec.get("localASN"):
        findings.append(
            Finding(
                source,
                "spec.localASN",
                f"exalb has no per-session local AS: the router now sees AS "
                f"{spec['myASN']} (myASN) instead of {spec['localASN']}",
            )
        )
    for key in ("dynamicASN", "interface"):  # both given beside peerASN/peerAddress
        if spec.get(key):
            findings.append(
                Finding(
                    source,
                    f"spec.{key}",
                    "exalb has no equivalent; the fixed peerASN/peerAddress is used",
                )
            )
    return out


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _timers(source: str, spec: Mapping[str, Any], findings: list[Finding]) -> Obj:
    """MetalLB's parseTimers: one of hold/keepalive implies the other (hold = 3 x keepalive).

    ExaBGP always sends keepalives every holdTime/3, so a keepaliveTime that differs is
    reported and left out (exalb's CRD rejects it).
    """
    try:
        hold = parse_duration(str(spec["holdTime"])) if spec.get("holdTime") else None
        keepalive = (
            parse_duration(str(spec["keepaliveTime"])) if spec.get("keepaliveTime") else None
        )
    except DurationError as exc:
        findings.append(Finding(source, "spec.holdTime/keepaliveTime", str(exc)))
        return {}
    if hold is None and keepalive is None:
        return {}
    if hold is None:
        hold = 3 * (keepalive or 0)
    out: Obj = {"holdTime": format_seconds(hold)}
    if keepalive is not None and keepalive * 3 == hold:
        out["keepaliveTime"] = format_seconds(keepalive)
    elif keepalive is not None:
        findings.append(
            Finding(
                source,
                "spec.keepaliveTime",
                f"ExaBGP sends keepalives every holdTime/3 "
                f"({format_seconds(hold / 3)}), not every "
                f"{format_seconds(keepalive)}",
            )
        )
    return out


def _credentials(
    source: str,
    spec: Mapping[str, Any],
    peer_ns: str | None,
    target: str,
    findings: list[Finding],
) -> Obj:
    password, secret = spec.get("password"), spec.get("passwordSecret")
    if password and len(str(password)) > MAX_PASSWORD:
        findings.append(
            Finding(
                source, "spec.password", f"longer than {MAX_PASSWORD} characters, TCP MD5's limit"
            )
        )
        return {}
    if password:
        return {"password": password}
    if not secret or not secret.get("name"):
        return {}
    secret_ns = secret.get("namespace") or peer_ns or "metallb-system"
    if secret_ns != target:
        findings.append(
            Finding(
                source,
                "spec.passwordSecret",
                f"exalb reads BGP password Secrets only in its BGP secrets namespace: copy "
                f"Secret {secret_ns}/{secret['name']} (type kubernetes.io/basic-auth, "
                f"key password) to namespace {target}, the announcers' BGP secrets namespace",
                lost=False,
            )
        )
    return {"passwordSecret": {"name": secret["name"]}}
