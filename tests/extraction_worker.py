"""Run the extraction flow in a process of its own, for the kill-and-resume test.

Usage: ``python tests/extraction_worker.py ARGUMENTS.json``, where the JSON holds the
keyword arguments of :func:`flows.extract_features.extract_features`.
"""

from __future__ import annotations

import json
import sys

from flows.extract_features import extract_features

if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        arguments = json.load(handle)
    print(json.dumps(extract_features(**arguments)))
