#!/bin/bash
# Wait for a running batch (process id PID) to end, then run batch file BATCH.jsonl;
# its log goes to $ISSUE17_WORK/logs/BATCH.log. Python: $PYTHON (default: python3).
set -eu
usage="usage: ISSUE17_WORK=DIR ISSUE17_DATA=DIR $0 PID BATCH.jsonl
  waits for process PID to end, then runs batch.py on BATCH.jsonl"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then echo "$usage"; exit 0; fi
if [ "$#" -ne 2 ]; then echo "$usage" >&2; exit 2; fi
: "${ISSUE17_WORK:?set ISSUE17_WORK to the work folder of the study}"
: "${ISSUE17_DATA:?set ISSUE17_DATA to the folder holding the three .txt.gz corpora}"
here="$(cd "$(dirname "$0")" && pwd)"
while kill -0 "$1" 2>/dev/null; do sleep 10; done
mkdir -p "$ISSUE17_WORK/logs"
"${PYTHON:-python3}" "$here/batch.py" "$2" > "$ISSUE17_WORK/logs/$(basename "$2" .jsonl).log" 2>&1
