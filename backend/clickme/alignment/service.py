"""Alignment results kept as JSON files, and the accuracy they are plotted against.

A result is computed by `clickme align` (minutes: a saliency map per image, the split-half
ceiling) and written to ``<data dir>/alignment/campaign-<id>/<model>@<version>.json``; computing
one again replaces it. No table holds them, so the console reads these files.
"""

import os
import re
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.alignment.schemas import AccuracySet, AlignmentResult, AlignmentRow, AlignmentTable
from clickme.alignment.score import AlignmentScore
from clickme.core.db import utcnow
from clickme.images.models import ImageSet
from clickme.maps.aggregate import MapSettings
from clickme.scoring.tables import ModelEvaluation

RESULTS_FOLDER = "alignment"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def results_dir(data_dir: Path, campaign_id: int) -> Path:
    return data_dir / RESULTS_FOLDER / f"campaign-{campaign_id}"


def result_path(data_dir: Path, campaign_id: int, model_name: str, model_version: str) -> Path:
    file_name = f"{_UNSAFE.sub('_', model_name)}@{_UNSAFE.sub('_', model_version)}.json"
    return results_dir(data_dir, campaign_id) / file_name


def alignment_result(
    campaign_id: int,
    campaign_slug: str,
    model_name: str,
    model_version: str,
    method: str,
    maps: MapSettings,
    score: AlignmentScore,
) -> AlignmentResult:
    """The stored form of a campaign's alignment score, stamped now."""
    shares = score.of_ceiling() or (None, None, None)
    return AlignmentResult(
        campaign_id=campaign_id,
        campaign_slug=campaign_slug,
        model_name=model_name,
        model_version=model_version,
        method=method,
        blur=maps.blur,
        min_points=maps.min_points,
        min_rounds=maps.min_rounds,
        n_images=score.n_images,
        mean=score.mean,
        ci_low=score.ci_low,
        ci_high=score.ci_high,
        ceiling=score.ceiling,
        of_ceiling=shares[0],
        of_ceiling_low=shares[1],
        of_ceiling_high=shares[2],
        computed_at=utcnow(),
    )


def save_result(data_dir: Path, result: AlignmentResult) -> Path:
    """Writes the result (replacing the model version's earlier one for the campaign)."""
    path = result_path(data_dir, result.campaign_id, result.model_name, result.model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(result.model_dump_json(indent=2))
    os.replace(partial, path)
    return path


def load_results(data_dir: Path, campaign_id: int) -> list[AlignmentResult]:
    """The campaign's stored results, by model name and version."""
    folder = results_dir(data_dir, campaign_id)
    if not folder.is_dir():
        return []
    results = [
        AlignmentResult.model_validate_json(path.read_text())
        for path in sorted(folder.glob("*.json"))
    ]
    return sorted(results, key=lambda result: (result.model_name, result.model_version))


def _evaluations(session: Session, results: list[AlignmentResult]) -> list[ModelEvaluation]:
    """The evaluations of the results' model versions, newest first."""
    wanted = {(result.model_name, result.model_version) for result in results}
    rows = session.scalars(
        select(ModelEvaluation)
        .where(ModelEvaluation.model_name.in_({name for name, _ in wanted}))
        .order_by(ModelEvaluation.created_at.desc(), ModelEvaluation.id.desc())
    )
    return [row for row in rows if (row.model_name, row.model_version) in wanted]


def _busiest_set(evaluations: list[ModelEvaluation]) -> int | None:
    """The image set on which the most model versions have a top-1 (ties: the lowest id)."""
    models_per_set = Counter(
        image_set_id
        for image_set_id, _, _ in {
            (row.image_set_id, row.model_name, row.model_version) for row in evaluations
        }
    )
    if not models_per_set:
        return None
    return min(models_per_set, key=lambda set_id: (-models_per_set[set_id], set_id))


def alignment_table(
    session: Session, data_dir: Path, campaign_id: int, image_set_id: int | None
) -> AlignmentTable:
    """The campaign's results with each model version's newest top-1 on the accuracy set."""
    results = load_results(data_dir, campaign_id)
    evaluations = _evaluations(session, results)
    set_id = image_set_id if image_set_id is not None else _busiest_set(evaluations)
    image_set = session.get(ImageSet, set_id) if set_id is not None else None
    top1: dict[tuple[str, str], float] = {}
    for row in evaluations:
        if image_set is not None and row.image_set_id == image_set.id:
            top1.setdefault((row.model_name, row.model_version), row.top1)
    return AlignmentTable(
        campaign_id=campaign_id,
        accuracy_set=AccuracySet(id=image_set.id, name=image_set.name) if image_set else None,
        rows=[
            AlignmentRow(
                **result.model_dump(), top1=top1.get((result.model_name, result.model_version))
            )
            for result in results
        ],
    )
