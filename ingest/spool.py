"""A bounded, crash-safe on-disk spool: append-only segment files, drained oldest first.

Layout: one file per append, ``<seq:020d>.seg``, in one directory owned by one process (an
exclusive lock file enforces that). A segment is a magic header then records, each framed as
``length (u32 BE) | crc32 (u32 BE) | payload``. A segment is written to ``<seq>.tmp``, fsynced,
renamed to ``.seg`` and the directory fsynced, so once `Spool.append` returns the records
survive kill -9 and power loss. At open, a ``.tmp`` left by a crash keeps its complete records
(they are re-published as a segment: delivery is at-least-once and the consumers are
idempotent), and a damaged ``.seg`` yields the records before the damage.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux; the lock is a safety net, not a feature
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAGIC = b"IOTSPL1\n"
_FRAME = struct.Struct(">II")
_SEGMENT_RE = re.compile(r"^(\d{20})\.(seg|tmp)$")
# A record larger than this is corruption, not data (the ingest batches are far smaller).
MAX_RECORD_BYTES = 64 * 1024 * 1024


class SpoolError(Exception):
    """The spool cannot be used (locked by another process, unreadable directory)."""


class SpoolFull(Exception):
    """Appending would exceed the spool's bound; the caller must stop taking data."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One complete segment file on disk."""

    seq: int
    path: Path
    size: int


def encode_records(records: Sequence[bytes]) -> bytes:
    """A segment's bytes: the magic header and each record framed with its length and CRC."""
    parts = [MAGIC]
    for record in records:
        parts.append(_FRAME.pack(len(record), zlib.crc32(record)))
        parts.append(record)
    return b"".join(parts)


def decode_records(data: bytes) -> tuple[list[bytes], bool]:
    """The complete, intact records at the start of `data`, and whether all of it was intact."""
    if not data.startswith(MAGIC):
        return [], False
    records: list[bytes] = []
    offset = len(MAGIC)
    end = len(data)
    while offset < end:
        if offset + _FRAME.size > end:
            return records, False
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if length > MAX_RECORD_BYTES or start + length > end:
            return records, False
        record = data[start : start + length]
        if zlib.crc32(record) != crc:
            return records, False
        records.append(record)
        offset = start + length
    return records, True


def _fsync_dir(directory: Path) -> None:
    # A rename or create is durable only once the directory entry itself is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segments under one directory, bounded by `max_bytes`."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        """Open (creating if needed) the spool in `directory` and recover what a crash left."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._segments: dict[int, Segment] = {}
        self._size = 0
        self._next_seq = 1
        self._lock_fd: int | None = None
        self.directory.mkdir(parents=True, exist_ok=True)
        self._acquire_directory_lock()
        self._recover()

    def _acquire_directory_lock(self) -> None:
        # Two processes appending into one directory would reuse sequence numbers.
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolError(f"spool {self.directory} is in use by another process") from None
        self._lock_fd = fd

    def _recover(self) -> None:
        found: dict[int, Path] = {}
        leftovers: list[tuple[int, Path]] = []
        for entry in os.scandir(self.directory):
            match = _SEGMENT_RE.match(entry.name)
            if not match:
                continue
            seq = int(match.group(1))
            if match.group(2) == "seg":
                found[seq] = Path(entry.path)
            else:
                leftovers.append((seq, Path(entry.path)))
        for seq, path in sorted(leftovers):
            self._salvage(seq, path, found)
        for seq in sorted(found):
            path = found[seq]
            segment = Segment(seq, path, path.stat().st_size)
            self._segments[seq] = segment
            self._size += segment.size
        # Past every number seen, removed leftovers included, so no name is ever reused.
        self._next_seq = max([0, *found, *(seq for seq, _ in leftovers)]) + 1
        if self._segments:
            log.info(
                "spool %s: %d segments, %d bytes to replay",
                self.directory,
                len(self._segments),
                self._size,
            )

    def _salvage(self, seq: int, tmp: Path, found: dict[int, Path]) -> None:
        # A .tmp means the process died inside append(); keep whatever records are complete.
        records, _ = decode_records(tmp.read_bytes())
        if records and seq not in found:
            target = tmp.with_suffix(".seg")
            self._write_file(tmp, encode_records(records))
            os.replace(tmp, target)
            _fsync_dir(self.directory)
            found[seq] = target
            log.warning("spool: recovered %d records from interrupted write %s", len(records), tmp)
        else:
            tmp.unlink()
            log.warning("spool: removed interrupted write %s (no complete records)", tmp)

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, records: Sequence[bytes]) -> Segment | None:
        """Write the records as one new segment, durably; raise SpoolFull past the bound."""
        if not records:
            return None
        data = encode_records(records)
        with self._lock:
            # An empty spool takes even an oversized segment: refusing it would wedge ingest.
            if self._size and self._size + len(data) > self.max_bytes:
                raise SpoolFull(
                    f"spool {self.directory} holds {self._size} bytes; another {len(data)} "
                    f"would exceed its bound of {self.max_bytes}"
                )
            seq = self._next_seq
            self._next_seq += 1
            self._size += len(data)  # reserved now so concurrent appends respect the bound
        tmp = self.directory / f"{seq:020d}.tmp"
        path = tmp.with_suffix(".seg")
        try:
            self._write_file(tmp, data)
            os.replace(tmp, path)
            _fsync_dir(self.directory)
        except BaseException:
            with self._lock:
                self._size -= len(data)
            tmp.unlink(missing_ok=True)
            raise
        segment = Segment(seq, path, len(data))
        with self._lock:
            self._segments[seq] = segment
        return segment

    def segments(self) -> list[Segment]:
        """The complete segments, oldest first (a snapshot)."""
        with self._lock:
            return [self._segments[seq] for seq in sorted(self._segments)]

    def read(self, segment: Segment) -> list[bytes]:
        """A segment's records; a damaged tail is logged and the intact records before it kept."""
        data = segment.path.read_bytes()
        records, intact = decode_records(data)
        if not intact:
            log.warning(
                "spool: segment %s is damaged after %d records (%d bytes); keeping those",
                segment.path,
                len(records),
                len(data),
            )
        return records

    def __iter__(self) -> Iterator[tuple[Segment, list[bytes]]]:
        """Each segment with its records, oldest first, reading one segment at a time."""
        for segment in self.segments():
            if segment.path.exists():
                yield segment, self.read(segment)

    def delete(self, segment: Segment) -> None:
        """Remove a delivered segment."""
        # No directory fsync: a delete lost in a crash only means a harmless re-delivery.
        segment.path.unlink(missing_ok=True)
        with self._lock:
            if self._segments.pop(segment.seq, None) is not None:
                self._size -= segment.size

    def size_bytes(self) -> int:
        """Bytes held in complete segments."""
        with self._lock:
            return self._size

    def __len__(self) -> int:
        """Number of segments waiting."""
        with self._lock:
            return len(self._segments)

    def close(self) -> None:
        """Release the directory lock (segments stay on disk for the next open)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
