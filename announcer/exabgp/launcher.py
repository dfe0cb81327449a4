"""ExaBGP's own entry point, with three small fixes applied first; argv as for ``exabgp``.

The announcer runs ExaBGP as ``python launcher.py server <config>`` instead of the
``exabgp`` script so that three changes, each a few lines and each written so it could
go upstream unchanged, are in place before ExaBGP starts. All are guarded by the
ExaBGP release they were written against: with another release ExaBGP runs exactly
as shipped and the launcher says so on stderr (which is ExaBGP's log).

1. ``Neighbor.remove_self`` deep-copies every route it is handed, to replace a
   ``next-hop self`` placeholder on the copy. Our routes never use ``next-hop self``,
   so the copy is pure cost: it was 70 % of the time ExaBGP 5.0.15 took to load
   10,000 static routes (1.65 s of CPU before the first UPDATE) and it gave every
   route its own copy of attributes that the API had parsed once for a whole batch
   (+22 MiB at 10,000 routes). The fix copies only when there is a ``self`` to
   resolve. It is safe because every place that later mutates a route in the RIB
   (``del_from_rib``) copies it first.
2. ``Delay``, the reconnect timer, backs off exponentially to 60 s and cannot be
   configured. BGPPeer's ``connectTime`` (MetalLB's field: the ConnectRetry timer of
   RFC 4271) sets ``exalb_connect_retry`` in ExaBGP's environment, and the patched
   timer then waits exactly that long between attempts. Unset, ExaBGP's own back-off
   is kept.
3. A static ``attributes <attrs> nlri <prefix> <prefix> ...;`` line (one attribute set
   for many prefixes, the config twin of the API command we batch with) is parsed but
   its routes are never announced: they are left with no action (neither announce nor
   withdraw). The fix gives them the action a ``route`` line gets. With it, the seed of
   a (re)started ExaBGP is 20 lines for 10,000 routes instead of 10,000: parsed in a
   third of the time, and the routes share one attribute set (-11 MiB at 10,000).
   The announcer writes that form only when :func:`fixes_available` says the fix is in.

Runs as a script (not ``-m announcer...``) so ExaBGP's process imports nothing of ours.
"""

from __future__ import annotations

import os
import sys
import time
from importlib import metadata
from typing import Any

WRITTEN_FOR = "5.0.15"
CONNECT_RETRY_ENV = "exalb_connect_retry"
AWAIT_GO_ENV = "exalb_await_go"  # set: import everything, then wait for a line on stdin


def patch_remove_self() -> None:
    """Copy a route only when its ``next-hop self`` must be replaced on the copy."""
    from exabgp.bgp.neighbor import Neighbor

    original = Neighbor.remove_self

    def remove_self(self: Any, change: Any) -> Any:
        if not change.nlri.nexthop.SELF:
            return change
        return original(self, change)

    Neighbor.remove_self = remove_self


def patch_connect_retry(seconds: float) -> None:
    """A fixed wait of ``seconds`` between connection attempts (RFC 4271 ConnectRetryTimer)."""
    from exabgp.reactor.delay import Delay

    def increase(self: Any) -> None:
        self._time = time.time() + seconds
        self._next = seconds

    Delay.increase = increase


def patch_static_attributes() -> None:
    """Routes of a static ``attributes ... nlri ...`` line get the action of a ``route`` line."""
    from exabgp.bgp.message import Action
    from exabgp.configuration.static import ParseStatic

    original = ParseStatic.known["attributes"]

    def attributes(tokeniser: Any) -> Any:
        changes = original(tokeniser)
        action = Action.ANNOUNCE if tokeniser.announce else Action.WITHDRAW
        for change in changes:
            change.nlri.action = action
        return changes

    ParseStatic.known["attributes"] = attributes


def fixes_available() -> bool:
    """Whether a launched ExaBGP will have the fixes (asked by the announcer, which imports
    nothing of ExaBGP itself: the installed distribution's version is enough)."""
    try:
        return metadata.version("exabgp") == WRITTEN_FOR
    except metadata.PackageNotFoundError:
        return False


def apply(environ: dict[str, str] | os._Environ[str] = os.environ) -> list[str]:
    """Apply the fixes that fit this ExaBGP; returns what was applied, for the log."""
    if not fixes_available():
        print(
            f"exalb launcher: ExaBGP is not {WRITTEN_FOR}; running it unpatched "
            "(slower bulk loads, connectTime ignored)",
            file=sys.stderr,
        )
        return []
    patch_remove_self()
    patch_static_attributes()
    applied = ["remove_self copies only for next-hop self", "static attributes lines announce"]
    retry = environ.get(CONNECT_RETRY_ENV)
    if retry:
        patch_connect_retry(float(retry))
        applied.append(f"connect retry every {float(retry):g}s")
    return applied


def await_go() -> None:
    """Block until the announcer says the config is written, then detach stdin.

    Started this way, ExaBGP's interpreter start-up and imports (~0.15 s) overlap
    the announcer's first decision instead of following it: part of a cold start.
    """
    sys.stdin.readline()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main() -> int:
    applied = apply()
    if applied:
        print(f"exalb launcher: {'; '.join(applied)}", file=sys.stderr)
    from exabgp.application.main import main as exabgp_main

    if os.environ.get(AWAIT_GO_ENV):
        await_go()
    sys.argv[0] = "exabgp"
    result: int = exabgp_main()
    return result


if __name__ == "__main__":
    sys.exit(main())
