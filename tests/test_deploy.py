"""deploy/: the balancer templates render to configurations nginx and HAProxy accept (issue 19)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

RENDER = [sys.executable, str(ROOT / "deploy" / "render.py")]


def tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/sbin/{name}"
    assert Path(path).exists(), f"{name} is missing: `bash scripts/test.sh` installs it (apt-get install {name})"
    return path


def render(tmp_path, kind: str, *args: str) -> str:
    out = tmp_path / f"{kind}.conf"
    result = subprocess.run([*RENDER, kind, "--run-dir", str(tmp_path), "--out", str(out), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("root_path", ["", "/playground"])
def test_the_nginx_configuration_is_valid_and_sticky(tmp_path, root_path):
    conf = render(tmp_path, "nginx", "--ports", "7861,7862,7863", "--listen", "127.0.0.1:8080", "--foreground",
                  *(["--root-path", root_path] if root_path else []))
    check = subprocess.run([tool("nginx"), "-t", "-c", str(conf), "-e", str(tmp_path / "error.log")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    text = conf.read_text()
    for line in ("hash $gp_affinity consistent;", "proxy_buffering off;", "proxy_read_timeout 3600s;",
                 "client_max_body_size 10m;", "add_header X-Replica $upstream_addr always;",
                 "proxy_set_header X-Forwarded-Proto $scheme;", "daemon off;", f"location {root_path}/ {{"):
        assert line in text
    assert "ip_hash" not in text.replace("Not ip_hash", "")
    assert all(f"server 127.0.0.1:{p} " in text for p in (7861, 7862, 7863))


@pytest.mark.parametrize("root_path", ["", "/playground"])
def test_the_haproxy_configuration_is_valid_and_sticky(tmp_path, root_path):
    conf = render(tmp_path, "haproxy", "--ports", "7861,7862", "--listen", "127.0.0.1:8080",
                  *(["--root-path", root_path] if root_path else []))
    check = subprocess.run([tool("haproxy"), "-c", "-f", str(conf)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    text = conf.read_text()
    assert "cookie gp_replica insert indirect nocache httponly" in text and "option redispatch" in text
    assert "server r2 127.0.0.1:7862 cookie r2 check" in text


@pytest.mark.parametrize("args,message", [(["--ports", "80,x"], "--ports must be comma-separated"),
                                          (["--ports", "0"], "--ports must be port numbers"),
                                          (["--ports", "7861", "--root-path", "/a b"], "--root-path must be")])
def test_bad_arguments_are_one_line_errors(tmp_path, args, message):
    result = subprocess.run([*RENDER, "nginx", "--run-dir", str(tmp_path), *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr


def test_the_replica_script_parses_and_explains_itself(tmp_path):
    script = ROOT / "deploy" / "replicas.sh"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2 and "start [N] | stop | status" in usage.stderr
    bad = subprocess.run(["bash", str(script), "start", "two"], capture_output=True, text=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin:/usr/sbin", "RUN_DIR": str(tmp_path / "run")})
    assert bad.returncode == 2 and "N must be a positive number" in bad.stderr
