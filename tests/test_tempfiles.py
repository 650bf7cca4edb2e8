"""One temp folder per process, swept by age and total size (issue 19, item 3)."""

import os
import subprocess
import sys
import time

from playground import tempfiles
from tests.conftest import ROOT


def make(folder, sub, name, size, age_s, now):
    path = folder / sub / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_files_older_than_the_age_limit_are_deleted_and_younger_ones_kept(tmp_path):
    now = time.time()
    old = make(tmp_path, "outputs", "a/old.json", 10, 7200, now)
    fresh = make(tmp_path, "gradio", "b/fresh.png", 10, 60, now)
    os.utime(old.parent, (now - 7200, now - 7200))  # a young empty folder is kept: a result being written
    result = tempfiles.sweep(tmp_path, max_age_s=3600, max_bytes=10**9, keep_s=600, now=now)
    assert not old.exists() and fresh.exists()
    assert (result.deleted_files, result.kept_files, result.kept_bytes) == (1, 1, 10)
    assert not (tmp_path / "outputs" / "a").exists(), "an emptied result folder is removed too"


def test_over_the_size_limit_the_oldest_go_first_but_never_a_file_a_user_may_be_downloading(tmp_path):
    now = time.time()
    files = [make(tmp_path, "outputs", f"f{i}.bin", 100, age, now) for i, age in enumerate([3000, 2000, 1000, 10])]
    result = tempfiles.sweep(tmp_path, max_age_s=10**6, max_bytes=250, keep_s=600, now=now)
    assert [f.exists() for f in files] == [False, False, True, True]
    assert result.kept_bytes == 200
    # Only young files left: the limit waits for them to age rather than delete them.
    young = [make(tmp_path, "tmp", f"y{i}.bin", 100, 5, now) for i in range(3)]
    tempfiles.sweep(tmp_path, max_age_s=10**6, max_bytes=250, keep_s=600, now=now)
    assert all(f.exists() for f in young) and files[3].exists()


def test_only_the_apps_own_sub_folders_are_touched(tmp_path):
    now = time.time()
    mine = make(tmp_path, ".", "notes.txt", 10, 10**6, now)
    tempfiles.sweep(tmp_path, max_age_s=1, max_bytes=0, keep_s=0, now=now)
    tempfiles.empty(tmp_path)
    assert mine.exists()


def test_the_server_process_writes_under_its_folder_and_empties_it_at_exit(tmp_path):
    """``configure_process`` moves Gradio's cache and Python's temp files under the folder; a tab's
    result folder is there too; at exit the sub-folders are emptied (the folder given is kept)."""
    code = (
        "import os, tempfile\n"
        "from playground import tempfiles\n"
        "folder = tempfiles.configure_process()\n"
        "print(os.environ['GRADIO_TEMP_DIR'])\n"
        "print(tempfile.NamedTemporaryFile(delete=False).name)\n"
        "print(tempfiles.output_folder('detr_'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, "PLAYGROUND_TEMP_DIR": str(tmp_path / "replica-1")})
    assert result.returncode == 0, result.stderr
    gradio_dir, temp_file, output = result.stdout.split()
    folder = tmp_path / "replica-1"
    assert gradio_dir == str(folder / "gradio")
    assert temp_file.startswith(str(folder / "tmp")) and output.startswith(str(folder / "outputs"))
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_without_a_folder_given_each_process_gets_its_own_and_removes_it():
    code = "from playground import tempfiles\nprint(tempfiles.output_folder('x_'))\nprint(tempfiles.root())\n"
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_TEMP_DIR"}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env=env) for _ in range(2)]
    roots = [r.stdout.split()[1] for r in runs]
    assert roots[0] != roots[1] and all("playground-" in r for r in roots)
    assert not any(os.path.exists(r) for r in roots)
