"""The one HF-folder writer (smollm3/hf_folder.py): a folder appears whole or not at all, replaces an older one,
and in a job of several processes only the main process creates, renames or deletes, between barriers."""
import pytest

from smollm3.hf_folder import hf_folder_writer, temporary_path


def test_a_folder_is_renamed_into_place_whole_and_replaces_the_old_one(tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "old.json").write_text("{}")
    with hf_folder_writer(out) as tmp:
        assert tmp == temporary_path(out) and tmp.is_dir() and not (tmp / "old.json").exists()
        (tmp / "config.json").write_text("{}")
        assert (out / "old.json").exists()  # readers still see the old folder
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]  # nothing beside it


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "config.json").write_text("old")
    with pytest.raises(RuntimeError):
        with hf_folder_writer(out) as tmp:
            (tmp / "config.json").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (out / "config.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf"]


def test_only_the_main_process_touches_the_folder_and_every_process_waits(tmp_path, monkeypatch):
    out, waits = tmp_path / "hf", []
    monkeypatch.setenv("RANK", "1")  # a non-main rank of a torchrun / accelerate job
    with hf_folder_writer(out, wait=lambda: waits.append("wait")) as tmp:
        assert not tmp.exists()  # the main process creates it
    assert not out.exists() and waits == ["wait"] * 3  # handed over, written, in place
    monkeypatch.setenv("RANK", "0")
    with hf_folder_writer(out, wait=lambda: waits.append("main")) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (out / "config.json").is_file() and waits.count("main") == 3
