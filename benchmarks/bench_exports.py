"""Map aggregation and export throughput, CPU and peak memory per format, at several sizes.

    .venv/bin/python benchmarks/bench_exports.py [--images 1000 10000] [--players 10]
        [--splits 50] [--split-images 1000] [--formats npz hdf5 ...] [--realistic]

For each image count, N noise photos (320 x 240) with one round of 40 points per player go
into a fresh SQLite database (bulk inserts). ``--realistic``: the photos have the sizes of the
ImageNet sample's photos (``CLICKME_IMAGENET_SAMPLE``, in turn) but every tenth is a
12-megapixel 4000 x 3000 photo, 20 players each (unless ``--players``); they are plain grey
(only their size matters to the maps). Then each measure runs in a fresh process, so that
its peak resident memory (VmHWM: Python, NumPy, SQLite) is its own (not ru_maxrss, which Linux
carries over from the parent across fork and exec: it reported the filling parent's size):
the maps alone (made on the export's worker threads, nothing written), each format's export
without split-half values, and, up to ``--split-images`` images, the NPZ export with
``--splits`` split-half splits per image. Prints a Markdown table: images per second (wall),
CPU milliseconds per image (all threads; steadier than the wall time on a busy machine), peak
MiB, and how much the peak grows from the first image count to the last.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

from PIL import Image as PilImage
from sqlalchemy import select
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from clickme.campaigns.models import Campaign  # noqa: E402
from clickme.core.db import Database  # noqa: E402
from clickme.core.migrate import upgrade  # noqa: E402
from clickme.exports.service import WORKERS, ExportRequest, run_export  # noqa: E402
from clickme.exports.writers import FORMATS  # noqa: E402
from clickme.maps.aggregate import MapSettings, human_map, to_eval  # noqa: E402
from clickme.maps.valid import IMAGES_PER_CHUNK, ImageRounds, valid_rounds  # noqa: E402
from tests.exports.fill import add_campaign, add_photos, add_players, add_rounds  # noqa: E402

CAMPAIGN = "study"
LARGE_PHOTO = (4000, 3000)
MAPS = "maps alone"
SPLIT_HALF = "npz + split-half"


class Bar:
    """An export's progress as a tqdm bar (on stderr, which the parent does not capture)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.bar: tqdm | None = None

    def start(self, total: int) -> None:
        self.bar = tqdm(total=total, unit="image", desc=self.desc, leave=False)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update()


def realistic_sizes(n_images: int, sample: Path) -> list[tuple[int, int]]:
    """The sample photos' (width, height) in turn, every tenth image 4000 x 3000 instead."""
    found = []
    for path in sorted(sample.iterdir()):
        if path.suffix.lower() in {".jpeg", ".jpg", ".png"}:
            with PilImage.open(path) as photo:
                found.append(photo.size)
    return [LARGE_PHOTO if index % 10 == 9 else found[index % len(found)]
            for index in range(n_images)]  # fmt: skip


def fill(url: str, images_dir: Path, n_images: int, n_players: int, sample: Path | None) -> float:
    """Fills a fresh database (realistic photo sizes if ``sample``); the seconds it took."""
    upgrade(url)
    database = Database(url)
    started = time.perf_counter()
    sizes = realistic_sizes(n_images, sample) if sample is not None else None
    with database.session() as session, tqdm(total=n_images, unit="image", desc="fill") as bar:
        image_set, images = add_photos(session, images_dir, n_images, sizes=sizes)
        campaign = add_campaign(session, image_set)
        players = add_players(session, n_players)
        for start in range(0, n_images, IMAGES_PER_CHUNK):
            chunk = images[start : start + IMAGES_PER_CHUNK]
            add_rounds(session, campaign, chunk, players, seed=start)
            bar.update(len(chunk))
    database.dispose()
    return time.perf_counter() - started


def _map_of(image: ImageRounds) -> None:
    to_eval(human_map(image.rounds_points, image.width, image.height))


def maps_alone(database: Database) -> int:
    """Every image's maps, on the export's number of worker threads; nothing is written."""
    count = 0
    with database.session() as session, ThreadPoolExecutor(WORKERS) as pool:
        campaign_id = session.scalar(select(Campaign.id).where(Campaign.slug == CAMPAIGN))
        images = valid_rounds(session, campaign_id, MapSettings())
        with tqdm(unit="image", desc="maps", leave=False) as bar:
            while batch := list(islice(images, IMAGES_PER_CHUNK)):
                count += len(list(pool.map(_map_of, batch)))
                bar.update(len(batch))
    return count


def peak_resident_kib() -> int:
    """This process's own peak resident memory (VmHWM, reset by exec), in KiB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def measure_in_child(url: str, root: Path, what: str, splits: int) -> None:
    """One measure (the child process): prints images, seconds, CPU seconds, peak MiB as JSON."""
    database = Database(url)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if what == MAPS:
        images = maps_alone(database)
    else:
        name = "npz" if what == SPLIT_HALF else what
        request = ExportRequest(campaign=CAMPAIGN, formats=(name,), n_splits=splits)
        with database.session() as session:
            manifest = run_export(
                session, request, root / "out" / name, secret="bench",
                images_dir=root / "images", progress=Bar(what),
            )  # fmt: skip
        images = manifest["counts"]["images"]
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    peak = peak_resident_kib() / 1024
    print(json.dumps({"images": images, "seconds": seconds, "cpu": cpu, "peak": peak}))


def measure(url: str, root: Path, what: str, splits: int) -> dict:
    args = [sys.executable, __file__, "--child", url, str(root), what, "--splits", str(splits)]
    output = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def run_size(n_images: int, args: argparse.Namespace) -> dict[str, dict]:
    """Every measure at one image count, in a temporary database."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        url = f"sqlite:///{root / 'bench.db'}"
        sample = args.sample if args.realistic else None
        seconds = fill(url, root / "images", n_images, args.players, sample)
        print(f"filled {n_images:,} images x {args.players} players in {seconds:.1f} s",
              file=sys.stderr)  # fmt: skip
        whats = [MAPS, *args.formats]
        whats += [SPLIT_HALF] if n_images <= args.split_images and args.splits else []
        return {
            what: measure(url, root, what, args.splits if what == SPLIT_HALF else 0)
            for what in whats
        }


def table(results: dict[int, dict[str, dict]], splits: int) -> str:
    sizes = list(results)
    header = ["measure"]
    for size in sizes:
        header += [f"{size:,}: images/s", f"{size:,}: CPU ms/image", f"{size:,}: peak MiB"]
    header += [f"peak {sizes[-1]:,} / {sizes[0]:,}"] if len(sizes) > 1 else []
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for what in results[sizes[0]]:
        label = f"{what} ({splits} splits)" if what == SPLIT_HALF else what
        cells = [label]
        for size in sizes:
            found = results[size].get(what)
            if found is None:
                cells += ["-", "-", "-"]
                continue
            rate = found["images"] / found["seconds"]
            cells += [f"{rate:.0f}", f"{1000 * found['cpu'] / found['images']:.1f}",
                      f"{found['peak']:.0f}"]  # fmt: skip
        if len(sizes) > 1:
            last = results[sizes[-1]].get(what)
            cells += [f"{last['peak'] / results[sizes[0]][what]['peak']:.2f}" if last else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--players", type=int, help="players per image (10; realistic: 20)")
    parser.add_argument(
        "--realistic", action="store_true",
        help="the ImageNet sample's photo sizes and 10%% 4000 x 3000 photos",
    )  # fmt: skip
    parser.add_argument(
        "--sample", type=Path,
        default=Path(os.environ.get("CLICKME_IMAGENET_SAMPLE", "/work/shared/imagenet-sample")),
    )  # fmt: skip
    parser.add_argument("--splits", type=int, default=50, help="split-half splits per image")
    parser.add_argument(
        "--split-images", type=int, default=1000,
        help="measure the split-half export only up to this many images (it is ~100x slower)",
    )  # fmt: skip
    parser.add_argument("--formats", nargs="*", default=list(FORMATS))
    parser.add_argument("--child", nargs=3, metavar=("URL", "ROOT", "WHAT"), help="internal")
    args = parser.parse_args()
    if args.child:
        url, root, what = args.child
        measure_in_child(url, Path(root), what, args.splits)
        return
    if args.players is None:
        args.players = 20 if args.realistic else 10
    results = {n_images: run_size(n_images, args) for n_images in args.images}
    print(f"{args.players} players per image, {WORKERS} worker threads, {os.cpu_count()} CPUs\n")
    print(table(results, args.splits))


if __name__ == "__main__":
    main()
