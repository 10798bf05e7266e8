"""The on-disk spool: durable appends, oldest-first replay, crash recovery, and its bound."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ingest.spool import MAGIC, Spool, SpoolError, SpoolFull, decode_records, encode_records

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def records(prefix: str, count: int) -> list[bytes]:
    return [f"{prefix}-{i}".encode() for i in range(count)]


def test_append_replays_oldest_first_and_delete_frees_space(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    first = spool.append(records("a", 3))
    second = spool.append(records("b", 2))
    assert first is not None and second is not None
    assert spool.size_bytes() == first.size + second.size
    assert [rs for _, rs in spool] == [records("a", 3), records("b", 2)]
    spool.delete(first)
    assert [seg.seq for seg in spool.segments()] == [second.seq]
    assert spool.size_bytes() == second.size
    assert len(spool) == 1


def test_empty_append_writes_nothing(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    assert spool.append([]) is None
    assert len(spool) == 0
    assert spool.size_bytes() == 0


def test_bound_raises_spool_full_and_frees_after_delete(spool_dir: Path) -> None:
    one = len(encode_records(records("x", 10)))
    spool = Spool(spool_dir, one * 3)
    segments = [spool.append(records("x", 10)) for _ in range(3)]
    with pytest.raises(SpoolFull):
        spool.append(records("x", 10))
    assert spool.size_bytes() == one * 3  # a refused append leaves nothing behind
    assert len(list(spool_dir.glob("*.tmp"))) == 0
    assert segments[0] is not None
    spool.delete(segments[0])
    assert spool.append(records("x", 10)) is not None


def test_empty_spool_takes_an_oversized_append(spool_dir: Path) -> None:
    # Refusing it would wedge ingest forever; the bound applies once something is queued.
    spool = Spool(spool_dir, 10)
    assert spool.append(records("big", 5)) is not None
    with pytest.raises(SpoolFull):
        spool.append([b"more"])


def test_segments_survive_reopen_and_numbering_continues(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    spool.append(records("a", 2))
    last = spool.append(records("b", 2))
    spool.close()
    again = Spool(spool_dir, 1_000_000)
    assert [rs for _, rs in again] == [records("a", 2), records("b", 2)]
    assert again.size_bytes() == sum(p.stat().st_size for p in spool_dir.glob("*.seg"))
    newest = again.append(records("c", 1))
    assert last is not None and newest is not None and newest.seq > last.seq


def test_truncated_last_segment_keeps_its_complete_records(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(spool_dir, 1_000_000)
    spool.append(records("a", 3))
    last = spool.append(records("b", 4))
    spool.close()
    assert last is not None
    data = last.path.read_bytes()
    last.path.write_bytes(data[:-3])  # the crash cut the last record short

    again = Spool(spool_dir, 1_000_000)
    with caplog.at_level(logging.WARNING, logger="ingest.spool"):
        replayed = [rs for _, rs in again]
    assert replayed == [records("a", 3), records("b", 3)]
    assert "damaged" in caplog.text


def test_corrupt_record_stops_the_segment_at_the_damage(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    segment = spool.append([b"good-1", b"good-2", b"bad-3", b"after-4"])
    assert segment is not None
    data = bytearray(segment.path.read_bytes())
    data[data.index(b"bad-3")] ^= 0xFF  # flip a payload byte: the CRC no longer matches
    segment.path.write_bytes(bytes(data))
    assert spool.read(segment) == [b"good-1", b"good-2"]


def test_interrupted_write_is_salvaged_at_open(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    spool.append(records("a", 2))
    spool.close()
    partial = encode_records(records("t", 5))[:-4]
    (spool_dir / f"{9:020d}.tmp").write_bytes(partial)
    (spool_dir / f"{10:020d}.tmp").write_bytes(MAGIC[:3])  # died before a single record

    again = Spool(spool_dir, 1_000_000)
    assert [rs for _, rs in again] == [records("a", 2), records("t", 4)]
    assert not list(spool_dir.glob("*.tmp"))
    assert again.append([b"next"]) is not None
    assert again.segments()[-1].seq == 11


def test_directory_is_locked_to_one_process(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 1_000_000)
    with pytest.raises(SpoolError):
        Spool(spool_dir, 1_000_000)
    spool.close()
    Spool(spool_dir, 1_000_000).close()


def test_concurrent_appends_are_all_kept(spool_dir: Path) -> None:
    spool = Spool(spool_dir, 10_000_000)

    def worker(name: str) -> None:
        for i in range(20):
            spool.append([f"{name}-{i}".encode()])

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = sorted(r for _, rs in spool for r in rs)
    assert got == sorted(f"w{n}-{i}".encode() for n in range(4) for i in range(20))
    assert spool.size_bytes() == sum(p.stat().st_size for p in spool_dir.glob("*.seg"))


def test_append_survives_kill_9(spool_dir: Path) -> None:
    # The child appends, then dies by SIGKILL with no chance to flush or clean up.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from ingest.spool import Spool\n"
        "spool = Spool(Path(sys.argv[1]), 1_000_000)\n"
        "spool.append([b'one', b'two'])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(spool_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=30,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL
    assert [rs for _, rs in Spool(spool_dir, 1_000_000)] == [[b"one", b"two"]]


def test_decode_refuses_foreign_files() -> None:
    assert decode_records(b"not a spool segment") == ([], False)
    assert decode_records(encode_records([b"a", b""])) == ([b"a", b""], True)
