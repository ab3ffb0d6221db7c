"""The CLI's progress display (trackd/cli/progress.py): a rich bar with rate and ETA on a
terminal, nothing (the caller's plain lines) elsewhere."""

from __future__ import annotations

import io

from trackd.cli import progress


def test_on_a_terminal_the_bar_shows_the_count_the_rate_and_an_eta() -> None:
    out = io.StringIO()
    console = progress.console(out, force_terminal=True)
    console.width = 160
    with progress.bar("send", 1000, console) as bar:
        assert bar is not None
        bar.update(500, events=1234, note="2 failed")
    text = out.getvalue()
    assert "send" in text and "50%" in text
    assert "1,234 events" in text and "/s" in text
    assert "ETA" in text and "2 failed" in text


def test_elsewhere_there_is_no_bar() -> None:
    console = progress.console(io.StringIO(), force_terminal=False)
    with progress.bar("send", 1000, console) as bar:
        assert bar is None


def test_an_unknown_total_still_shows_the_rate() -> None:
    out = io.StringIO()
    console = progress.console(out, force_terminal=True)
    console.width = 160
    with progress.bar("export", None, console) as bar:
        assert bar is not None
        bar.update(10, events=10)
    assert "10 events" in out.getvalue()
