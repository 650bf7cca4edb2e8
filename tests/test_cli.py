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
    for option in ("--host", "--port", "--share", "--device", "--tabs"):
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
