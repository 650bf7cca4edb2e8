"""The command line: help, and one-line errors that say what to do."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, free_port


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "playground", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_help_lists_every_option():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--host", "--port", "--share", "--device", "--tabs", "--root-path"):
        assert option in result.stdout


def test_unknown_tab_is_one_line_error():
    result = run_cli("--tabs", "no_such_tab")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_tab" in lines[0] and "choose from" in lines[0]


def test_busy_port_is_one_line_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run_cli("--port", str(port))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(port) in lines[0] and "--port" in lines[0]


def test_a_port_whose_last_connections_are_in_time_wait_is_free_at_once():
    """A replica that crashed leaves its accepted connections in TIME-WAIT; the restart's port
    check must not refuse the port for a minute (SO_REUSEADDR, as the server binds)."""
    from playground.__main__ import check_port

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's listening socket
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end goes to TIME-WAIT
        client.recv(1)
        client.close()
    with open("/proc/net/tcp") as f:
        assert any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "06" for line in f), \
            "expected a TIME-WAIT socket on the port"
    check_port("127.0.0.1", port)  # no SystemExit


@pytest.mark.parametrize("root_path", ["playground", "/a b", "/x/../y", "/q?x=1"])
def test_a_malformed_root_path_is_one_line_error(root_path):
    result = run_cli("--root-path", root_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--root-path must be a path like /playground" in lines[0]


def test_cuda_without_cuda_is_one_line_error():
    import torch

    assert not torch.cuda.is_available(), "this test expects a machine without CUDA"
    result = run_cli("--device", "cuda")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]


def test_share_without_network_warns_and_serves_locally():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "playground", "--port", str(port), "--share"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        status = None
        for _ in range(120):
            time.sleep(0.5)
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status
            except OSError:
                continue
            if status == 200:
                break
        assert status == 200
        time.sleep(1)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "warning: --share could not create a public link" in stderr


@pytest.mark.parametrize("host,share,public", [("127.0.0.1", False, False), ("localhost", False, False),
                                               ("0.0.0.0", False, True), ("127.0.0.1", True, True)])
def test_a_shared_or_non_local_server_is_marked_public(monkeypatch, host, share, public):
    from playground import settings

    monkeypatch.delenv("PLAYGROUND_PUBLIC", raising=False)
    monkeypatch.setenv("PLAYGROUND_SD_SAFETY_CHECKER", "off")
    settings.mark_public(host, share)
    assert (os.environ.get("PLAYGROUND_PUBLIC") == "1") == public
    assert settings.safety_checker_required() == public  # an opt-out holds only on a private server
