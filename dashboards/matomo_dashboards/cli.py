"""`matomo-superset`: the Matomo dashboards in Superset.

    matomo-superset serve [--host 127.0.0.1] [--port 8088]   a local Superset with the dashboards, until stopped
                                                          (the port's default: MATOMO_SUPERSET_PORT, else 8088)
    matomo-superset bundle PATH [--uri URI]                   the import ZIP, for a Superset of one's own

The warehouse is PGDATABASE (a URL or a name) and the PG* variables, read by pg-url as the loader and dbt
read them; the marts are in DBT_SCHEMA (default public). `serve` keeps Superset's metadata, its secret key
and the admin's password in MATOMO_SUPERSET_HOME (default .local/superset, made private); the password is
SUPERSET_ADMIN_PASSWORD when set, else one generated once and kept there.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg
from pgurl.entrypoints import apply_to_environment

from matomo_dashboards.bundle import LIBPQ_URI, Column, build, load_spec

ADMIN = "admin"
#: How long Superset's web server has to stop once asked; then it is killed.
STOP_SECONDS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="matomo-superset", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="a local Superset with the Matomo dashboards")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=int(os.environ.get("MATOMO_SUPERSET_PORT") or 8088))
    bundle = commands.add_parser("bundle", help="write the dashboards' import ZIP")
    bundle.add_argument("path", type=Path)
    bundle.add_argument("--uri", default=LIBPQ_URI, help="the warehouse's SQLAlchemy URI in that Superset")
    args = parser.parse_args(argv)
    apply_to_environment()  # PGDATABASE read into libpq's variables, for this process and Superset's
    env = dict(os.environ)
    try:
        if args.command == "bundle":
            args.path.write_bytes(_bundle(env, args.uri))
            print(f"matomo-superset: wrote {args.path}; import it with `superset import-dashboards -p {args.path}`")
            return 0
        return _serve(env, args.host, args.port)
    except psycopg.Error as exc:
        print(f"matomo-superset: cannot read the marts' columns: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except SupersetError as exc:
        print(f"matomo-superset: {exc}", file=sys.stderr)
        return 1


class SupersetError(Exception):
    """A Superset command that failed: its output's last lines say why."""


def _bundle(env: Mapping[str, str], uri: str) -> bytes:
    spec = load_spec()
    schema = env.get("DBT_SCHEMA") or "public"
    columns = mart_columns(schema, list(spec["datasets"]))
    if not any(columns.values()):
        raise SupersetError(f"no mart in schema {schema} (DBT_SCHEMA): run `meltano run matomo-to-postgres` first")
    return build(spec, columns, schema, uri)


def mart_columns(schema: str, tables: list[str]) -> dict[str, list[Column]]:
    """Each mart's columns in the warehouse, in order (a mart not built yet has none)."""
    query = """
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = %s AND table_name = ANY(%s) ORDER BY table_name, ordinal_position
    """
    columns: dict[str, list[Column]] = {table: [] for table in tables}
    with psycopg.connect("") as conn:  # libpq's variables
        for table, name, data_type in conn.execute(query, (schema, tables)):
            columns[table].append(Column(name, data_type))
    return columns


def _serve(env: Mapping[str, str], host: str, port: int) -> int:
    home = Path(env.get("MATOMO_SUPERSET_HOME") or ".local/superset").resolve()
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    superset_env = dict(env) | {
        "MATOMO_SUPERSET_HOME": str(home),
        "SUPERSET_CONFIG_PATH": str(Path(__file__).with_name("superset_config.py")),
        "SUPERSET_SECRET_KEY": _kept(home / "secret_key", lambda: secrets.token_urlsafe(42)),
        "FLASK_APP": "superset.app:create_app()",
        "PYTHONWARNINGS": "ignore",  # Superset's own deprecation warnings, a screen of them at every start
    }
    password = env.get("SUPERSET_ADMIN_PASSWORD") or _kept(home / "admin_password", lambda: secrets.token_urlsafe(12))
    print("matomo-superset: preparing Superset's metadata (the first time takes a minute)", flush=True)
    _superset(superset_env, "db", "upgrade")
    _superset(superset_env, "init")
    # The password on standard input (Flask-AppBuilder's prompt), not in the command line others can list.
    _superset(superset_env, "fab", "create-admin", "--username", ADMIN, "--firstname", "Matomo", "--lastname",
              "Admin", "--email", "admin@localhost", stdin=f"{password}\n{password}\n")  # fmt: skip
    bundle = home / "matomo_dashboards.zip"
    bundle.write_bytes(_bundle(env, LIBPQ_URI))
    _superset(superset_env, "import-dashboards", "-p", str(bundle), "-u", ADMIN)
    where = "SUPERSET_ADMIN_PASSWORD" if env.get("SUPERSET_ADMIN_PASSWORD") else str(home / "admin_password")
    print(f"Superset on http://{host}:{port}/superset/dashboard/matomo/ : log in as {ADMIN}, password in {where}")
    print("Ctrl-C stops it", flush=True)
    command = [_executable(), "run", "--host", host, "--port", str(port), "--with-threads"]
    server = subprocess.Popen(command, env=superset_env)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops Superset as Ctrl-C does
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
        return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _kept(path: Path, make: Callable[[], str]) -> str:
    """A secret made once and kept in a file only its owner reads."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def _executable() -> str:
    return str(Path(sys.executable).with_name("superset"))


def _superset(env: Mapping[str, str], *args: str, stdin: str = "") -> None:
    command = [_executable(), *args]
    done = subprocess.run(command, env=dict(env), input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SupersetError(f"`superset {args[0]}` failed (exit {done.returncode}): " + " | ".join(tail))
