"""Two llamita replicas behind Debian's nginx, configured from docs/scale-out.md: editor affinity."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from serving import free_port, serve_cli, stop

pytestmark = pytest.mark.slow

DOC = Path(__file__).parents[2] / "docs" / "scale-out.md"
SESSION = "X-Llamita-Session"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run does)")
    return found


def affinity_directives() -> tuple[str, str]:
    """The ``map`` block and the ``hash`` line exactly as the docs print them."""
    text = DOC.read_text()
    block = re.search(r"^map \$http_x_llamita_session .*?^\}", text, re.S | re.M)
    hash_line = re.search(r"^\s*(hash \$llamita_affinity consistent;)", text, re.M)
    assert block and hash_line, "docs/scale-out.md lost its affinity configuration"
    return block.group(0), hash_line.group(1)


def nginx_conf(tmp: Path, port: int, upstreams: list[int]) -> str:
    map_block, hash_line = affinity_directives()
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 1;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
{map_block}
    upstream llamita {{
        {hash_line}
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://llamita;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;  # loopback replicas check the Host header
        }}
    }}
}}
"""


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not listen:\n{log.read_text()}") from None
            time.sleep(0.05)


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[str]:
    """nginx on a free loopback port in front of replicas "a" and "b"; everything stopped after."""
    nginx = nginx_binary()
    with ExitStack() as stack:
        ports = []
        for name in ("a", "b"):
            port = free_port()
            env = {"LLAMITA_REPLICA_ID": name, "OLLAMA_MODELS": str(tmp_path / name / "models")}
            stack.enter_context(serve_cli(env, port, tmp_path / f"replica-{name}.log"))
            ports.append(port)
        front = free_port()
        nginx_dir = tmp_path / "nginx"
        nginx_dir.mkdir()
        conf = nginx_dir / "nginx.conf"
        conf.write_text(nginx_conf(nginx_dir, front, ports))
        log = nginx_dir / "stderr.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    *(nginx, "-p", str(nginx_dir), "-e", str(nginx_dir / "startup.log"), "-c", str(conf)),
                    *("-g", f"daemon off; pid {nginx_dir}/nginx.pid;"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        stack.callback(stop, proc)
        wait_port(front, proc, log)
        yield f"http://127.0.0.1:{front}"


def replica(url: str, session: str | None) -> str:
    """Which replica answered; a fresh connection each time, as separate editors would open."""
    headers = {SESSION: session} if session is not None else {}
    r = httpx.get(url + "/api/version", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return r.headers["x-llamita-replica"]


def test_sessions_stick_to_one_replica_and_spread_over_both(balancer: str) -> None:
    placement = {}
    for i in range(16):
        session = f"editor-{i}"
        answered = {replica(balancer, session) for _ in range(4)}
        assert len(answered) == 1, f"{session} was served by {answered}"
        placement[session] = answered.pop()
    assert set(placement.values()) == {"a", "b"}, placement
    # No header: pinned by client address (one address here), not spread round-robin.
    assert len({replica(balancer, None) for _ in range(6)}) == 1
    assert len({replica(balancer, "") for _ in range(4)}) == 1
