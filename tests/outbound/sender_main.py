"""Run one `push` of the stand-in store in its own process (killed and restarted by a test).

Usage: python sender_main.py DATABASE URL TOKEN
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standin import StandinStore  # noqa: E402

from fhir_adapter.outbound import Timeouts, push  # noqa: E402


def main() -> int:
    database, url, token = sys.argv[1:4]
    store = StandinStore(database)
    report = push(store, store.build, to_url=url, token=token,
                  timeouts=Timeouts(connect=5.0, read=120.0))
    print("\n".join(report.lines()), flush=True)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
