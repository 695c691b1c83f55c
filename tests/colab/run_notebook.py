"""Execute one notebook with nbclient, as Colab's runtime would: run by the
Colab-like environment's own Python (its ipykernel, IPython and nbclient).

    python run_notebook.py IN.ipynb OUT.ipynb [--timeout S]

Exits 1 (after writing OUT with the outputs so far) if a cell raises.
"""

from __future__ import annotations

import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--timeout", type=int, default=900)
    args = parser.parse_args()
    nb = nbformat.read(args.source, as_version=4)
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3", record_timing=True)
    start = time.time()
    status = 0
    try:
        client.execute()
    except CellExecutionError as err:
        print(str(err)[-3000:], file=sys.stderr)
        status = 1
    finally:
        nbformat.write(nb, args.target)
    print(f"executed in {time.time() - start:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
