"""The documentation: the MkDocs site builds with ``--strict`` (no broken link, no missing page or
snippet), the README stays a front page (short, every tab named, pictured and linked), every tab has
its own README, and no text in the repository points at files outside it."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The ten tabs, in display order: id -> title (as the README and the app show it).
TABS = {
    "sde_ode": "SDE vs ODE",
    "flows": "Flows",
    "guidance": "Guidance",
    "controlnet": "ControlNet",
    "attention": "Attention cache",
    "detr": "DETR",
    "rnn_transformer": "RNN vs Transformer",
    "hallucination": "Hallucination",
    "instruction_tuning": "Instruction tuning",
    "preferences": "RLHF vs DPO",
}
README_MAX_LINES = 300
TAB_README_MIN_LINES = 40
SCREENSHOT_SIZE = (1280, 800)
SCREENSHOT_MAX_BYTES = 400 * 1024

# Paths outside the repository that nothing in it may cite (the repository must stand alone).
# Spelled in pieces so that this file does not cite them itself.
OUTSIDE = ("../" + "shared", "/work/" + "shared", "TEXT_" + "WORLD.md", "SHAPES_" + "WORLD.md")
TEXT_SUFFIXES = (".md", ".py", ".yml", ".txt", ".sh")


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict`` from the repository root (the snippets are read relative to it):
    a broken link, a missing page or a missing snippet file fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, f"mkdocs build --strict failed (exit {result.returncode}):\n{output}"
    for tab_id in TABS:
        assert (tmp_path / "site" / "tabs" / tab_id / "index.html").is_file(), f"no page for tab {tab_id}\n{output}"


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"
    for tab_id, title in TABS.items():
        assert title in text, f"README.md does not name the tab {title!r}"
        assert f"demos/{tab_id}/README.md" in text, f"README.md does not link demos/{tab_id}/README.md"
        assert f"docs/img/{tab_id}.png" in text, f"README.md does not show docs/img/{tab_id}.png"


@pytest.mark.parametrize("tab_id", list(TABS))
def test_each_tab_has_its_readme_and_page(tab_id):
    readme = ROOT / "demos" / tab_id / "README.md"
    assert readme.is_file(), f"{readme.relative_to(ROOT)} is missing"
    n = len(readme.read_text().splitlines())
    assert n >= TAB_README_MIN_LINES, f"{readme.relative_to(ROOT)} has {n} lines; at least {TAB_README_MIN_LINES}"
    page = (ROOT / "docs" / "tabs" / f"{tab_id}.md").read_text()
    assert f'--8<-- "demos/{tab_id}/README.md"' in page, f"docs/tabs/{tab_id}.md does not include the tab's README"


@pytest.mark.parametrize("tab_id", list(TABS))
def test_each_tab_has_its_screenshot(tab_id):
    """A viewport screenshot: a PNG of 1280x800, small enough for a README."""
    path = ROOT / "docs" / "img" / f"{tab_id}.png"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.relative_to(ROOT)} is not a PNG"
    assert struct.unpack(">II", head[16:24]) == SCREENSHOT_SIZE, f"{path.relative_to(ROOT)} is not 1280x800"
    assert path.stat().st_size <= SCREENSHOT_MAX_BYTES, f"{path.relative_to(ROOT)} is over 400 KB"


def test_the_tab_list_matches_the_app():
    """The ids and titles above are the app's own (a new tab needs its docs too)."""
    from playground import tabs

    assert list(tabs.TAB_IDS) == list(TABS)
    assert {tab_id: tabs.get(tab_id).title for tab_id in tabs.TAB_IDS} == TABS


def _repository_text_files() -> list[str]:
    """Tracked files, and new ones git does not ignore, with a text suffix that this checkout has."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout: {err}")
    return sorted({name for name in out.splitlines()
                   if name.endswith(TEXT_SUFFIXES) and (ROOT / name).is_file()})


def test_nothing_cites_a_path_outside_the_repository():
    offenders = []
    for name in _repository_text_files():
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1):
            for outside in OUTSIDE:
                if outside in line:
                    offenders.append(f"{name}:{number}: {outside}")
    assert not offenders, ("these cite paths outside the repository (the specifications are "
                           "docs/text-world.md and docs/shapes-world.md):\n" + "\n".join(offenders))
