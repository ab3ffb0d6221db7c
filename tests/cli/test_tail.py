"""`trackd tail`'s human lines (trackd/cli/tail.py): every value as text, hostile ones too."""

from __future__ import annotations

import io

from rich.console import Console

from trackd.cli.tail import human


def test_a_line_shows_time_user_name_attributes_and_warnings_as_text() -> None:
    event = {
        "current_time": "2024-02-26T09:24:13.396Z",
        "customer_id": "[bold]<img src=x onerror=alert(1)>[/bold]",
        "action": "[red]Bought",
        "attributes": {"k": "[link=javascript:alert(1)]x[/link]"},
        "warnings": [{"index": 0, "reason": "reserved_prefix", "attribute": "moe_x"}],
    }
    out = io.StringIO()
    Console(file=out, width=300, markup=False, highlight=False).print(human(event))
    assert out.getvalue() == (
        "09:24:13.396  [bold]<img src=x onerror=alert(1)>[/bold]  [red]Bought  "
        '{"k":"[link=javascript:alert(1)]x[/link]"}  ! reserved_prefix(moe_x)\n'
    )
