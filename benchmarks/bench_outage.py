"""How long a download takes to fail when the Hub endpoint refuses connections.

zoo fetches through huggingface_hub, which retries a failed metadata request
five times with waits of 1, 2, 4, 8 and 8 s. zoo asks once without retries
first, for a file not yet cached, so a refused connection fails at once. Both
are timed against the same refused loopback port, alternating, in one run:
``zoo`` is ``zoo.weights.hub_file`` (what ``zoo.load`` calls) and the peer is
``huggingface_hub.hf_hub_download`` itself. Each attempt runs in a fresh
subprocess with an empty cache.

    python benchmarks/bench_outage.py [--runs 3]

writes the ``hub-outage`` entry of benchmarks/results/outage.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results_file import write_report

RESULTS = Path(__file__).parent / "results" / "outage.json"
ATTEMPT = """
import sys, time
method = sys.argv[1]
if method == "zoo":
    from zoo.errors import WeightsError as expected
    from zoo.weights import hub_file
    fetch = lambda: hub_file("org/model", "model.safetensors", None, card="bench")
else:
    from huggingface_hub import hf_hub_download
    expected = Exception
    fetch = lambda: hf_hub_download("org/model", "model.safetensors")
start = time.perf_counter()
try:
    fetch()
except expected:
    pass
print(time.perf_counter() - start)
"""


def refused_endpoint() -> str:
    """A loopback port that was just closed: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def attempt(method: str, endpoint: str) -> float:
    with tempfile.TemporaryDirectory() as cache:
        env = {
            **os.environ,
            "HF_ENDPOINT": endpoint,
            "HF_HOME": cache,
            "HF_HUB_CACHE": f"{cache}/hub",
            "ZOO_CACHE": f"{cache}/zoo",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        result = subprocess.run(
            [sys.executable, "-c", ATTEMPT, method],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    endpoint = refused_endpoint()
    seconds: dict[str, list[float]] = {"zoo": [], "huggingface_hub": []}
    for round_ in range(runs):
        order = ["zoo", "huggingface_hub"] if round_ % 2 == 0 else ["huggingface_hub", "zoo"]
        for method in order:
            seconds[method].append(attempt(method, endpoint))
            print(f"{method}: {seconds[method][-1]:.2f} s", file=sys.stderr)
    medians = {method: statistics.median(values) for method, values in seconds.items()}
    report = {
        "what": "seconds until a download fails when the endpoint refuses connections",
        "runs": runs,
        "seconds": seconds,
        "median_seconds": medians,
        "ratio zoo / huggingface_hub": medians["zoo"] / medians["huggingface_hub"],
    }
    write_report(RESULTS, "hub-outage", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
