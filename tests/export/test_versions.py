"""Version reservations of a model base: distinct numbers across processes, stale ones removed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmkeras.export.versions import clean_stale, reserve_version, reserved_versions, version_dirs

ROOT = Path(__file__).resolve().parents[2]
# A child that reserves a version, prints it, then either publishes, dies, or holds it until stdin closes.
CHILD = """
import os, sys
from mmkeras.export.versions import reserve_version
base, mode = sys.argv[1], sys.argv[2]
if mode == "publish":
    for _ in range(int(sys.argv[3])):
        with reserve_version(base) as reservation:
            (reservation.staging / "model").mkdir()
            (reservation.staging / "model" / "owner").write_text(str(os.getpid()))
            reservation.publish(reservation.staging / "model")
    sys.exit(0)
reservation = reserve_version(base)
print(reservation.number, flush=True)
if mode == "die":
    os.kill(os.getpid(), 9)
sys.stdin.read()
reservation.release()
"""


def _child(base, *args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(base), *args], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_processes_reserving_at_once_get_distinct_versions_and_keep_every_one(tmp_path):
    base = tmp_path / "base"
    children = [_child(base, "publish", "8") for _ in range(4)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    versions = version_dirs(base)
    assert sorted(versions) == list(range(1, 33))
    owners = [(path / "owner").read_text() for path in versions.values()]
    assert sorted(set(owners)) == sorted(str(child.pid) for child in children)
    assert all(owners.count(str(child.pid)) == 8 for child in children)
    assert sorted(p.name for p in base.iterdir()) == sorted(map(str, range(1, 33)))  # nothing hidden left


def test_a_killed_reservation_is_removed_and_a_live_one_is_kept(tmp_path):
    base = tmp_path / "base"
    killed = _child(base, "die")
    killed.communicate(timeout=60)
    assert killed.returncode == -9 and sorted(reserved_versions(base)) == [1]
    assert (base / ".1-staging" / ".lock").read_text() == f"{killed.pid}\n"
    live = _child(base, "hold")
    assert live.stdout.readline().strip() == "1"  # the killed export's reservation was removed, its number reused
    assert (base / ".1-staging" / ".lock").read_text() == f"{live.pid}\n"
    with reserve_version(base) as reservation:
        assert reservation.number == 2 and sorted(reserved_versions(base)) == [1, 2]
    with pytest.raises(FileExistsError, match=r"version 1 of .* is being exported by another process"):
        reserve_version(base, version=1)
    assert (base / ".1-staging" / ".lock").read_text() == f"{live.pid}\n"
    live.communicate("", timeout=60)
    assert live.returncode == 0
    assert sorted(p.name for p in base.iterdir()) == []
    with reserve_version(base, version=1) as reservation:
        assert reservation.staging.name == ".1-staging"


def test_clean_stale_removes_old_orphans_and_trash_only(tmp_path):
    for name in (".new-old", ".new-young", ".trash-x", ".5-staging", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / ".5-staging" / ".lock").write_text("123\n")  # its owner is gone: nobody holds the lock
    hours_ago = time.time() - 2 * 3600
    os.utime(tmp_path / ".new-old", (hours_ago, hours_ago))
    assert sorted(clean_stale(tmp_path)) == [".5-staging", ".new-old", ".trash-x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".new-young", "notes"]


def test_explicit_version_is_refused_when_it_exists_and_replaced_with_overwrite(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "old").write_text("old")
    with pytest.raises(FileExistsError, match=r"1 already exists; pass another version"):
        reserve_version(tmp_path, version=1)
    with pytest.raises(ValueError, match="version must be an integer >= 1"):
        reserve_version(tmp_path, version=0)
    with reserve_version(tmp_path, version=1, overwrite=True) as reservation:
        (reservation.staging / "model").mkdir()
        (reservation.staging / "model" / "new").write_text("new")
        reservation.publish(reservation.staging / "model", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
    assert sorted(p.name for p in (tmp_path / "1").iterdir()) == ["new"]


def test_a_version_published_meanwhile_is_never_replaced(tmp_path):
    with reserve_version(tmp_path) as reservation:
        (tmp_path / "1").mkdir()
        (tmp_path / "1" / "theirs").write_text("")
        (reservation.staging / "model").mkdir()
        (reservation.staging / "model" / "mine").write_text("")
        with pytest.raises(FileExistsError, match="appeared while this export was written"):
            reservation.publish(reservation.staging / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]
    assert [p.name for p in (tmp_path / "1").iterdir()] == ["theirs"]
