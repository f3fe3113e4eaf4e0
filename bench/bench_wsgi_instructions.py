"""Instructions a Flask text request costs in a gunicorn worker, counted by valgrind (callgrind).

Usage::

    python bench/bench_wsgi_instructions.py                      # ~3 minutes
    python bench/bench_wsgi_instructions.py --compare-with TREE  # also TREE's wrapped app
    python bench/bench_wsgi_instructions.py --seeds 0            # one hash seed: ~1 minute

The WSGI counterpart of ``bench_instructions.py --server`` (whose helpers it uses): the Flask
text endpoint of ``bench_wsgi.py`` (``bench.wsgi_apps``), bare and behind ``SafeMedia(app)``,
served by one gunicorn sync worker under callgrind with cache simulation, one client opening a
connection per request. Only the requests are counted: instrumentation of the worker is switched
on after start-up and warm-up. User-space instructions and simulated L1 misses of the worker
(the kernel's share is not counted, and is the same for all); exact and repeatable, unlike
requests/s on a shared machine. ``--compare-with TREE``: the wrapped app from another source
tree (``git archive`` of an earlier commit), to judge a change.

Each app is measured once per hash seed (``--seeds``, ``PYTHONHASHSEED``; default 0, 1 and 2)
and the table gives the mean. For one build of the code the count repeats within ~0.02%, but a
change anywhere moves it by up to +-2k instructions a request (~0.25%) whatever it does itself:
the interpreter's type-attribute cache is a 4096-slot table indexed by type version and name
address, so where objects land decides which lookups collide (seen as ``find_name_in_mro``
calls). Another seed lays the heap out differently; the mean over a few is steadier.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_instructions import (  # noqa: E402
    _callgrind_control,
    _instrument,
    callgrind_totals,
    print_table,
)
from bench.bench_wsgi import _runtime, _worker_pid  # noqa: E402


def _get(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("GET", "/text")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200 or body != b"hello":
        raise RuntimeError(f"unexpected response {response.status} {body[:60]!r}")


def through_gunicorn(
    app: str, tree: Path, requests: int, tmp: Path, seed: str = "0"
) -> dict[str, int]:
    """Event totals of ``requests`` requests to ``bench.wsgi_apps:{app}()`` from ``tree``, in a
    worker with ``PYTHONHASHSEED=seed``."""
    out = tmp / f"{app}-{tree.name}-{seed}"
    out.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=yes"]
    command += ["--trace-children=yes", f"--callgrind-out-file={out}/callgrind.%p"]
    command += [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    command += ["--worker-class", "sync", "--timeout", "600", "--log-level", "warning"]
    command += [f"bench.wsgi_apps:{app}()"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree / "src"), str(tree)]))
    env.update(SAFEMEDIA_CONFIG=str(tmp / "safemedia.toml"), PYTHONHASHSEED=seed)
    server = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                _get(port)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"gunicorn under valgrind did not start ({app})") from None
                time.sleep(1)
        for _ in range(200):
            _get(port)
        worker = _worker_pid(server.pid)
        _instrument(worker, True)
        for _ in range(requests):
            _get(port)
        _callgrind_control("-d", None, worker)  # write the counts out
        _instrument(worker, False)
    finally:
        server.terminate()
        server.wait(120)
    return _dumped(out, worker)


def _dumped(out: Path, pid: int) -> dict[str, int]:
    """The event counts of the dumps ``callgrind_control -d`` wrote for ``pid`` (the files
    ``callgrind.PID.N``; the file written at exit holds the rest, not counted)."""
    return callgrind_totals(out.glob(f"callgrind.{pid}.*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests counted per app")
    parser.add_argument("--compare-with", type=Path, metavar="TREE", help="another source tree")
    parser.add_argument("--seeds", default="0,1,2", help="hash seeds, comma-separated (mean)")
    args = parser.parse_args()
    requests = args.requests
    seeds = args.seeds.split(",")
    rows: list[tuple[str, dict[str, int]]] = []
    per_seed: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="smbench-") as name:
        tmp = Path(name)
        _runtime(tmp).close()  # writes list.txt
        toml = tmp / "safemedia.toml"
        toml.write_text('[safemedia]\nhash_lists = ["list.txt"]\nstore = "memory:"\n')
        runs = [("bare", "bare", ROOT), ("SafeMedia(app)", "wrapped", ROOT)]
        if args.compare_with is not None:
            runs.append((f"SafeMedia(app), {args.compare_with}", "wrapped", args.compare_with))
        for seed in seeds:
            for label, app, tree in runs:
                print(f"{label}, seed {seed} ...", file=sys.stderr)
                totals = through_gunicorn(app, tree.resolve(), requests, tmp, seed)
                per_seed.setdefault(label, []).append(totals.get("Ir", 0) // requests)
                summed = next((found for name, found in rows if name == label), None)
                if summed is None:
                    rows.append((label, dict(totals)))
                else:
                    for event, value in totals.items():
                        summed[event] = summed.get(event, 0) + value
    print(
        f"Per Flask text request, gunicorn sync worker, {requests} requests, mean over hash "
        f"seeds {', '.join(seeds)}; ratio to bare\n"
    )
    print_table(rows, ("Ir", "I1mr", "D1mr", "D1mw"), requests * len(seeds))
    print("\nInstructions a request by seed:")
    for label, counts in per_seed.items():
        print(f"- {label}: {', '.join(f'{count:,}' for count in counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
