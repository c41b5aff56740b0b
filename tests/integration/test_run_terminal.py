"""``shim run`` of a bundle with ``process.terminal``: the shim's terminal is the container's."""

from __future__ import annotations

import re
import termios

import pytest

from tests.helpers.pty_session import PtySession

pytestmark = pytest.mark.integration

SIZE_ANSWER = re.compile(rb"S=(\d+ \d+)=E")


def test_a_terminal_bundle_gets_the_shims_terminal(shim, tmp_path):
    bundle = shim.bundle(["/bin/sh"])
    import json

    config_path = f"{bundle}/config.json"
    with open(config_path) as f:
        config = json.load(f)
    config["process"]["terminal"] = True
    with open(config_path, "w") as f:
        json.dump(config, f)
    container_id = shim.new_id()
    session = PtySession(shim.argv(bundle, container_id), rows=31, cols=93)
    try:
        session.write(b"tty; echo S=$(stty size)=E\r")
        assert session.read_until_match(SIZE_ANSWER).group(1) == b"31 93"
        assert b"/dev/pts/" in session.output  # the container's own pty
        # Raw mode on the shim's side: the container's pty does the line editing and echo.
        assert not termios.tcgetattr(session.master)[3] & (termios.ICANON | termios.ECHO)
        session.resize(44, 120)  # SIGWINCH to the shim, which resizes the container's pty
        deadline_answers = []
        for _ in range(100):  # the resize travels asynchronously: ask until it arrived
            start = len(session.output)
            session.write(b"echo S=$(stty size)=E\r")
            answer = session.read_until_match(SIZE_ANSWER, start).group(1)
            deadline_answers.append(answer)
            if answer == b"44 120":
                break
        assert deadline_answers[-1] == b"44 120", deadline_answers
        session.write(b"exit 4\r")
        assert session.wait() == 4
        assert termios.tcgetattr(session.master) == session.initial_attributes  # restored as it was
    finally:
        session.close()
