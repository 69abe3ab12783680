"""The results file the benchmark scripts share: one JSON object, one entry per model."""

import json
from pathlib import Path


def write_report(path: Path, model: str, report: dict) -> None:
    """One entry per model in the results file, so each model's run keeps the others'."""
    reports = json.loads(path.read_text()) if path.is_file() else {}
    reports[model] = report
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reports, indent=2, sort_keys=True) + "\n")
