"""The figures of a fault suite, printed as one ``FIGURES {json}`` line (seen with
``pytest -s``) for docs/reliability.md."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.e2e.load import Answer
from trackd.models import Envelope


def report(
    suite: str, answers: list[Answer], envelopes: list[Envelope], **extra: Any
) -> dict[str, Any]:
    """The figures docs/reliability.md quotes, printed on one line and returned: requests sent,
    200s, 200s missing from the queue, envelopes queued more than once, 5xx answers."""
    statuses = Counter(a.status for a in answers)
    queued = Counter(e.request_id for e in envelopes)
    figures = {
        "suite": suite,
        "requests": len(answers),
        "acknowledged": statuses[200],
        "lost": sum(1 for a in answers if a.status == 200 and not queued[a.request_id]),
        "duplicated": sum(n - 1 for n in queued.values() if n > 1),
        "5xx": sum(n for s, n in statuses.items() if s is not None and s >= 500),
        "statuses": {str(s): n for s, n in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        **extra,
    }
    print("FIGURES " + json.dumps(figures, sort_keys=True))
    return figures
