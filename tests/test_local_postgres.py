"""The local PostgreSQL of the demo and the tests (devenv/postgres.py): a taken port is said in one line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devenv.demo import start_demo_server
from devenv.postgres import LocalPostgres, PortInUseError


def test_a_taken_port_is_one_line_naming_the_port_and_the_setting(tmp_path: Path) -> None:
    """Another clone's demo on 54329 made `make demo` print a traceback and PostgreSQL's log."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LocalPostgres(tmp_path / "data", port, durable=False)
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}: the port is in use"):
            server.start()
        with pytest.raises(SystemExit) as stopped:
            start_demo_server(server)
    message = str(stopped.value.code)
    assert message.count("\n") == 0
    assert "DEMO_PG_PORT" in message
