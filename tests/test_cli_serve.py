"""``fhir-adapter serve`` on a port another server holds: one line and exit 2, as README says."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.cli.test_cli_commands import error_lines, run


def test_serve_on_a_busy_port_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run("serve", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = error_lines(done)
    assert f"127.0.0.1:{port}" in line and "--port" in line
