"""Export throughput and peak memory per format, on synthetic data in a temporary SQLite DB.

    .venv/bin/python benchmarks/bench_exports.py [--images 1000] [--players 10] [--splits 0]

N noise photos (320 x 240) with 10 players' rounds each go straight into a fresh database; each
format is then exported on its own, in a fresh process, so that its peak resident memory
(ru_maxrss, the whole process: Python, NumPy, SQLite) is its own. ``--splits`` sets the
split-half splits per image (0: none, the export's fast path; each split costs ~7 ms per image).
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from clickme.core.db import Database  # noqa: E402
from clickme.core.migrate import upgrade  # noqa: E402
from clickme.exports.service import ExportRequest, run_export  # noqa: E402
from clickme.exports.writers import FORMATS  # noqa: E402
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds  # noqa: E402

CHUNK = 500


def fill(database: Database, images_dir: Path, n_images: int, n_players: int) -> None:
    with database.session() as session:
        image_set, images = add_photos(session, images_dir, n_images)
        campaign = add_campaign(session, image_set)
        players = add_players(session, n_players)
        for start in range(0, n_images, CHUNK):
            add_rounds(session, campaign, images[start : start + CHUNK], players, seed=start)
            session.expunge_all()
            session.add(campaign)


def export_once(url: str, images_dir: Path, out: Path, name: str, splits: int) -> None:
    """One export (the child process): prints images, seconds and peak MiB as JSON."""
    database = Database(url)
    request = ExportRequest(campaign="study", formats=(name,), n_splits=splits)
    started = time.perf_counter()
    with database.session() as session:
        manifest = run_export(session, request, out, secret="bench", images_dir=images_dir)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": manifest["counts"]["images"], "seconds": seconds, "peak": peak}))


def measure(url: str, root: Path, name: str, splits: int) -> dict:
    args = [sys.executable, __file__, "--child", url, str(root), name, "--splits", str(splits)]
    output = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--players", type=int, default=10)
    parser.add_argument("--splits", type=int, default=0, help="split-half splits (0: none)")
    parser.add_argument("--formats", nargs="*", default=list(FORMATS))
    parser.add_argument("--child", nargs=3, metavar=("URL", "ROOT", "FORMAT"), help="internal")
    args = parser.parse_args()
    if args.child:
        url, root, name = args.child
        export_once(url, Path(root) / "images", Path(root) / name, name, args.splits)
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'bench.db'}"
        upgrade(url)
        database = Database(url)
        started = time.perf_counter()
        fill(database, root / "images", args.images, args.players)
        database.dispose()
        print(f"{args.images} images x {args.players} players, {args.splits} splits "
              f"(filled in {time.perf_counter() - started:.1f} s)")  # fmt: skip
        print(f"{'format':<12}{'images':>8}{'seconds':>10}{'images/s':>10}{'peak MiB':>10}")
        for name in args.formats:
            result = measure(url, root, name, args.splits)
            rate = result["images"] / result["seconds"]
            print(f"{name:<12}{result['images']:>8}{result['seconds']:>10.1f}{rate:>10.1f}"
                  f"{result['peak']:>10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
