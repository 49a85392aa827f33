"""The embedded server stops when the last process holding it lets go; a process that died without letting go
(SIGKILL, a crash) is dropped from the package's list at the next start instead of keeping the server forever."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from telehealth.db.embedded import forget_dead_handles


def test_dead_holders_are_forgotten_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([gone.pid, os.getpid()]))
    forget_dead_handles(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]


def test_no_list_or_an_unreadable_one_is_left_alone(tmp_path):
    forget_dead_handles(tmp_path)  # a new data folder: nothing to do
    (tmp_path / ".handle_pids.json").write_text("not json")
    forget_dead_handles(tmp_path)
    assert (tmp_path / ".handle_pids.json").read_text() == "not json"
