"""The writer lock: one holder at a time across processes, gone when its holder dies."""
import os
import signal
import subprocess
import sys

import pytest

from skiller.store import LockHeld, WriterLock
from tests.conftest import REPO

HOLD = "import sys; from pathlib import Path; from store import WriterLock; " \
       "WriterLock(Path(sys.argv[1])).acquire(); print('held', flush=True); sys.stdin.read()"


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock on tmp_path/skiller.lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "skiller.lock")], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path, holder):
    with pytest.raises(LockHeld, match=f"pid {holder.pid}") as refused:
        WriterLock(tmp_path / "skiller.lock").acquire()
    assert refused.value.pid == holder.pid and "\n" not in str(refused.value)


def test_the_lock_is_free_again_once_its_holder_exits(tmp_path, holder):
    holder.stdin.close()
    holder.wait(timeout=60)
    lock = WriterLock(tmp_path / "skiller.lock").acquire()
    assert (tmp_path / "skiller.lock").read_text().strip() == str(os.getpid())
    lock.release()


def test_a_stale_lock_file_from_a_killed_writer_does_not_block(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    assert (tmp_path / "skiller.lock").read_text().strip() == str(holder.pid)  # the file stays behind
    WriterLock(tmp_path / "skiller.lock").acquire().release()


def test_release_lets_the_same_process_take_it_again(tmp_path):
    first = WriterLock(tmp_path / "skiller.lock").acquire()
    with pytest.raises(LockHeld):
        WriterLock(tmp_path / "skiller.lock").acquire()  # a lock is per open file, even within a process
    first.release()
    WriterLock(tmp_path / "skiller.lock").acquire().release()
