"""Drill: the disk fills up while a stage writes its output. The stage fails with one line (exit 1, no
traceback), leaves nothing that looks complete (its manifest is not `completed`, the half-written model sits in
a temporary folder), and the same command completes once there is room.

The full disk is a tmpfs of a few MiB more than the stage's inputs (mounting needs root, as on the CI
machines); without root, a file-size limit (RLIMIT_FSIZE: EFBIG, "File too large") stands in for it."""
import json
import os
import resource
import shutil
import subprocess
import sys

import pytest
from conftest import REPO


def _mount(path, size_kib: int, remount: bool = False) -> bool:
    opts = f"{'remount,' if remount else ''}size={size_kib}k"
    args = ["mount", "-o", opts, str(path)] if remount else ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)]
    return os.geteuid() == 0 and subprocess.run(args, capture_output=True).returncode == 0


def _merge(runs, limit_bytes=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "pipeline", "run", "recipes/tiny/merge.yaml"], cwd=REPO,
                          env=dict(os.environ, SMOLLM3_RUNS=str(runs)), capture_output=True, text=True, timeout=600,
                          preexec_fn=limit if limit_bytes else None)


@pytest.mark.slow
def test_a_full_disk_fails_with_one_line_and_the_same_command_completes_once_there_is_room(apo_runs, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    mounted = _mount(runs, 256 * 1024)
    try:
        for name in ("midtrain", "apo"):
            shutil.copytree(apo_runs / "tiny" / name, runs / "tiny" / name)
        if mounted:  # room for the inputs and 8 MiB: the soup (5.3 MiB) fits, the final model does not
            assert _mount(runs, shutil.disk_usage(runs).used // 1024 + 8 * 1024, remount=True)
            out, reason = _merge(runs), "No space left on device"
        else:
            out, reason = _merge(runs, limit_bytes=4 * 1024 * 1024), "File too large"
        assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-3000:]
        assert "Traceback" not in out.stderr, out.stderr[-3000:]
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("disk full: ") and reason in last and "run the same command again" in last, last
        mdir = runs / "tiny" / "merge"
        assert json.loads((mdir / "manifest.json").read_text())["status"] != "completed"
        assert not (mdir / "hf").exists()
        if mounted:
            assert _mount(runs, 256 * 1024, remount=True)
        again = _merge(runs)
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads((mdir / "manifest.json").read_text())["status"] == "completed"
        assert (mdir / "hf" / "model.safetensors").is_file() and not list(mdir.glob(".*tmp*"))
    finally:
        if mounted:
            subprocess.run(["umount", str(runs)], capture_output=True)
