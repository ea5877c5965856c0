"""Builds the dashboard's vendored assets: Chart.js from the npm registry into static/vendor/.

Run at install time (``python -m switchboard_facade.ui.build_assets``); the gateway then serves the file
itself, so no page loads anything from a CDN. Without the file the Usage page shows its per-day table
instead of the chart. Idempotent: does nothing when the file is already there (``--force`` rebuilds).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The pinned package; its UMD build defines ``window.Chart``.
CHART_PACKAGE = "chart.js@4.4.7"
#: Found from this file alone, so the script runs before anything else of the gateway is importable.
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
TARGET = VENDOR_DIR / "chart.umd.js"


def build(force: bool = False) -> Path:
    if TARGET.is_file() and not force:
        return TARGET
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed: install Node.js (apt-get install -y npm) or skip the chart; "
                         "the Usage page then shows a table.")
    with tempfile.TemporaryDirectory(prefix="sb-ui-assets-") as tmp:
        subprocess.run([npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--ignore-scripts", "--silent",
                        CHART_PACKAGE], check=True)
        dist = Path(tmp) / "node_modules" / "chart.js" / "dist"
        source = next((p for p in (dist / "chart.umd.js", dist / "chart.umd.min.js") if p.is_file()), None)
        if source is None:
            raise SystemExit(f"{CHART_PACKAGE} has no UMD build in {dist}.")
        VENDOR_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, TARGET)
        license_file = dist.parent / "LICENSE.md"
        if license_file.is_file():
            shutil.copyfile(license_file, VENDOR_DIR / "chart.js-LICENSE.md")
    return TARGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the file exists")
    args = parser.parse_args(argv)
    print(f"chart library: {build(args.force)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
