"""When the event store copies its WAL back into the database (issue 14).

The store's connection never checkpoints inside a COMMIT (``wal_autocheckpoint = 0``): with
SQLite's automatic checkpoint (every 1,000 pages, inside a COMMIT) a large batch also rewrote
the database file and synced it before its acknowledgement (bench/processor.py, 100-event
envelopes: ~15% of the store's time). Instead, after a batch has committed, a `Checkpointer`
queues one PASSIVE checkpoint on the store's own thread and connection once the WAL holds
`WAL_CHECKPOINT_BYTES` not copied yet: it runs while the processor acknowledges the batch and
plans the next one, and it has ended when the next batch begins, so that batch's first write
starts the WAL again from its first frame.

It used to run on a thread and a connection of its own, as soon as the WAL *file* passed the
bound: the file keeps its size, so after the first time that was after every batch, and the next
batch's first write usually came while the checkpoint still ran, so the WAL was never started
again and grew by every batch for as long as batches kept coming (bench/processor.py, 100-event
envelopes: a 178 MB WAL for 200,000 events, a checkpoint after each of 20 batches; now 24 MB at
most, and one checkpoint every second batch).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

log = logging.getLogger(__name__)

#: WAL frames not yet copied, in bytes, past which a checkpoint is queued.
WAL_CHECKPOINT_BYTES = 16 << 20

_WAL_HEADER = struct.Struct(">IIIIII")  # magic, version, page size, sequence, salt-1, salt-2
_FRAME_SALTS = struct.Struct(">II")  # at byte 8 of each frame's 24-byte header
_WAL_HEADER_BYTES = 32  # the fields above, then two checksums
_FRAME_HEADER = 24


def wal_bytes(wal: Path) -> int:
    """The bytes of frames in `wal` since SQLite last started it again (0 without a WAL).

    A checkpoint leaves the file its size; the next write after a complete one starts from the
    first frame again with new salts in the file's header. A frame is the current run's while
    its header carries the file header's salts (sqlite.org/fileformat2.html#walformat), and the
    current frames come first, so a binary search over frame headers finds where they end."""
    try:
        with open(wal, "rb") as f:
            header = f.read(_WAL_HEADER_BYTES)
            if len(header) < _WAL_HEADER_BYTES:
                return 0
            _, _, page_size, _, *salts = _WAL_HEADER.unpack_from(header)
            frame: int = _FRAME_HEADER + page_size
            low, high = 0, (os.fstat(f.fileno()).st_size - _WAL_HEADER_BYTES) // frame
            while low < high:  # frames before `low` are current, from `high` on they are not
                middle = (low + high) // 2
                at = _WAL_HEADER_BYTES + middle * frame + 8
                found = os.pread(f.fileno(), _FRAME_SALTS.size, at)
                if len(found) == _FRAME_SALTS.size and list(_FRAME_SALTS.unpack(found)) == salts:
                    low = middle + 1
                else:
                    high = middle
            return low * frame
    except OSError:  # none yet, or removed as the store closed: nothing to copy
        return 0


class Checkpointer:
    """Queues a PASSIVE checkpoint after a commit once the WAL needs one (see the module
    docstring); one queued at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._queued: Future[None] | None = None

    def after_commit(self, pool: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        """On the store's `pool` (one thread, first in first out), so it ends before the next
        batch's calls begin and never inside a transaction."""
        if self._queued is None or self._queued.done():
            self._queued = pool.submit(self._checkpoint, conn)

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            if wal_bytes(self._wal) >= WAL_CHECKPOINT_BYTES:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:  # the next commit tries again; SQLite checkpoints on close too
            log.exception("checkpoint of %s failed", self._path)
