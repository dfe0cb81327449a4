"""Child processes owned by the tests: started with a log file, always reaped.

Every process the harness starts goes through :class:`Proc`, so teardown can
guarantee that no stray etcd, apiserver or router survives a test session, and
a failure can show the tail of the process's own log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


class Proc:
    """A child process whose stdout and stderr go to ``log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        nice: int = 0,
    ) -> None:
        self.name = name
        self.argv = ["nice", "-n", str(nice), *argv] if nice else list(argv)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._logf = log.open("ab")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(
            self.argv,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
        if nice:
            _nice_session(self.popen.pid, nice)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.popen.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL the whole process group after ``timeout``."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        code = self.popen.wait(5)
        self._logf.close()
        return code

    def kill(self) -> None:
        """SIGKILL only this process: a crash, as the tests' fault injection needs."""
        if self.alive():
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    interval: float = 0.05,
    on_timeout: Callable[[], str] | None = None,
) -> None:
    """Poll ``check`` until it is true; raise with ``what`` (and extra detail) on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
            last_exc = None
        except Exception as exc:  # the thing polled may not be up yet
            last_exc = exc
        time.sleep(interval)
    detail = on_timeout() if on_timeout else ""
    raise TimeoutError(
        f"timed out after {timeout:.1f}s waiting for {what}"
        + (f" (last error: {last_exc!r})" if last_exc else "")
        + (f"\n{detail}" if detail else "")
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _nice_session(pid: int, nice: int) -> None:
    """Give the session ``pid`` leads (each Proc starts one) the niceness its processes have.

    With the scheduler's autogroups, every session shares the CPU equally with every
    other, and a process's own niceness only ranks it within its session: 100 niced
    sessions would still each get as much CPU as the API server's.
    """
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():  # a kernel built without autogroups has no such file
        autogroup.write_text(str(nice))
