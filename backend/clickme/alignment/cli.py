"""`clickme align` and `clickme harmonize`: a DNN's human alignment, and the neural harmonizer."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clickme.core.config import Settings
from clickme.core.db import configured_session

if TYPE_CHECKING:  # torch and the models load only when a command runs
    from sqlalchemy.orm import Session

    from clickme.alignment.runs import AlignOptions
    from clickme.alignment.score import Explainer
    from clickme.alignment.train import HarmonizeConfig
    from clickme.campaigns.models import Campaign
    from clickme.data import ClickMeDataset
    from clickme.maps.valid import ImageRounds
    from clickme.scoring.evaluate import Accuracy
    from clickme.scoring.registry import ModelSpec

REPORT_NAME = "report.json"

DeviceOption = Annotated[
    str | None,
    typer.Option(help="Torch device, e.g. cpu, cuda, cuda:1 (default: cuda if any, else cpu)."),
]
ModelOption = Annotated[str, typer.Option(help="A registered model's name.")]
AccuracySetOption = Annotated[
    str | None, typer.Option(help="Also compute top-1 on every image of this image set.")
]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Images per batch.")]
MethodOption = Annotated[str, typer.Option(help="Saliency method.")]
SeedOption = Annotated[int, typer.Option(help="Random seed (bootstrap, training).")]


def _device(device: str | None) -> str:
    from clickme.alignment.runs import default_device

    return device or default_device()


def _spec(name: str, weights: Path | None = None) -> ModelSpec:
    from clickme.alignment.train import harmonized_spec
    from clickme.scoring.registry import get_model_spec

    try:
        base = get_model_spec(name)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--model") from None
    return harmonized_spec(base, weights) if weights is not None else base


def _check_method(method: str) -> None:
    from clickme.alignment.saliency import saliency_method

    try:
        saliency_method(method)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="--method") from None


def _explainer(spec: ModelSpec, device: str, method: str, batch_size: int) -> Explainer:
    from clickme.alignment.runs import build_explainer

    _check_method(method)
    return build_explainer(spec, device, method, batch_size)


def _top1(
    session: Session, settings: Settings, spec: ModelSpec, image_set: str, device: str,
    batch_size: int,
) -> Accuracy:  # fmt: skip
    """The spec's accuracy on every image of the set, recorded as a model evaluation."""
    from clickme.images.service import find_image_set, labelled_files
    from clickme.scoring.evaluate import evaluate_accuracy
    from clickme.scoring.scorer import TorchScorer
    from clickme.scoring.service import record_evaluation

    found = find_image_set(session, image_set)
    items = labelled_files(session, found.id, settings.images_dir) if found else []
    if found is None or not items:
        raise typer.BadParameter(f"no image in a set {image_set!r}", param_hint="--accuracy-set")
    scorer = TorchScorer(spec, device, max_batch=batch_size, max_wait_ms=0.0)
    try:
        accuracy = evaluate_accuracy(scorer, items, batch_size=batch_size, progress=True)
    finally:
        scorer.close()
    record_evaluation(session, spec, found.id, accuracy)
    return accuracy


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _specs(names: list[str], weights: Path | None) -> list[ModelSpec]:
    """The models named (``all``: every registered one); fine-tuned weights go with one only."""
    from clickme.scoring.registry import list_model_specs

    if weights is not None and len(names) != 1:
        raise typer.BadParameter("--weights goes with exactly one --model", param_hint="--weights")
    if "all" in names:
        return list_model_specs()
    return [_spec(name, weights) for name in dict.fromkeys(names)]


def align(
    campaign: Annotated[str, typer.Option(help="Campaign slug.")],
    model: Annotated[
        list[str],
        typer.Option(help="A registered model's name; repeat for several; 'all': every one."),
    ],
    weights: Annotated[
        Path | None, typer.Option(help="Fine-tuned weights of the model (`clickme harmonize`).")
    ] = None,
    accuracy_set: AccuracySetOption = None,
    device: DeviceOption = None,
    method: MethodOption = "gradient",
    splits: Annotated[int, typer.Option(min=1, help="Random splits per image (ceiling).")] = 50,
    batch_size: BatchSizeOption = 16,
    seed: SeedOption = 0,
    exclude_flag: Annotated[
        list[str] | None,
        typer.Option(help="Leave out players with an open flag of this kind (repeatable)."),
    ] = None,
) -> None:
    """Score models' alignment with a campaign's human maps and keep it for the console (the
    split-half ceiling is measured once for all; players excluded, or with an open flag of an
    --exclude-flag kind, left out)."""
    import numpy as np
    from sqlalchemy import select

    from clickme.alignment.runs import AlignOptions
    from clickme.alignment.score import campaign_ceiling, campaign_targets
    from clickme.campaigns.models import Campaign
    from clickme.maps.aggregate import MapSettings

    specs, device = _specs(model, weights), _device(device)
    _check_method(method)
    settings_of_maps = MapSettings(exclude_flags=tuple(sorted(set(exclude_flag or ()))))
    with configured_session() as (session, settings):
        found = session.scalar(select(Campaign).where(Campaign.slug == campaign))
        if found is None:
            raise typer.BadParameter(f"no campaign {campaign!r}", param_hint="--campaign")
        images, tally = campaign_targets(session, found.id, settings_of_maps)
        left_out = sum(tally.without_map.values())
        if left_out:
            typer.echo(f"left out {left_out} image(s) without a map: " + "; ".join(tally.lines()))
        if not images:
            typer.echo(f"campaign {campaign!r} has no image with a human map yet", err=True)
            raise typer.Exit(code=1)
        ceiling = campaign_ceiling(images, settings_of_maps, splits, np.random.default_rng(seed))
        options = AlignOptions(settings_of_maps, device, method, batch_size, accuracy_set, seed)
        for spec in specs:
            _align_one(session, settings, found, images, spec, ceiling, options)


def _align_one(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    images: list[ImageRounds],
    spec: ModelSpec,
    ceiling: float | None,
    options: AlignOptions,
) -> None:
    """One model's alignment (and top-1 on the accuracy set), saved and printed."""
    from clickme.alignment.runs import align_model
    from clickme.alignment.service import result_path

    result = align_model(session, settings, campaign, images, spec, ceiling, options, True)
    path = result_path(settings.data_dir, campaign.id, spec.name, spec.version)
    typer.echo(
        f"{spec.name} {spec.version} on {campaign.slug!r} ({result.n_images} images): alignment "
        f"{result.mean:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}], ceiling "
        f"{'-' if result.ceiling is None else f'{result.ceiling:.3f}'}, "
        f"{_percent(result.of_ceiling)} of ceiling (maps: rounds of >= "
        f"{options.maps.min_points} points, images of >= {options.maps.min_rounds} rounds)"
    )
    if options.accuracy_set:
        accuracy = _top1(session, settings, spec, options.accuracy_set, options.device,
                         options.batch_size)  # fmt: skip
        typer.echo(f"top-1 on {options.accuracy_set!r}: {_percent(accuracy.top1)}")
    typer.echo(f"saved {path}")


@dataclass(frozen=True)
class ModelReport:
    """A model's top-1 on the accuracy set (None without one) and alignment on held-out images
    (mean, 95% bootstrap interval, each image's value by image id)."""

    model_name: str
    model_version: str
    top1: float | None
    alignment: float
    alignment_low: float
    alignment_high: float
    n_held_out: int
    per_image: dict[int, float]


def _report(
    spec: ModelSpec, held_out: ClickMeDataset, config: HarmonizeConfig, accuracy: Accuracy | None
) -> ModelReport:
    import numpy as np

    from clickme.alignment.score import dataset_alignment
    from clickme.maps.aggregate import MapSettings

    explainer = _explainer(spec, config.device, config.method, config.batch_size)
    score = dataset_alignment(
        explainer, held_out, held_out.image_ids, MapSettings(), np.random.default_rng(config.seed)
    )
    return ModelReport(
        spec.name, spec.version, accuracy.top1 if accuracy is not None else None,
        score.mean, score.ci_low, score.ci_high, score.n_images, score.per_image,
    )  # fmt: skip


def _paired_change(before: ModelReport, after: ModelReport, seed: int) -> dict[str, float]:
    """The mean change of alignment, image by image, with its 95% bootstrap interval."""
    import numpy as np

    from clickme.alignment.score import summarise

    changes = {
        image_id: after.per_image[image_id] - value
        for image_id, value in before.per_image.items()
        if image_id in after.per_image
    }
    change = summarise(changes, None, np.random.default_rng(seed))
    return {"mean": change.mean, "ci_low": change.ci_low, "ci_high": change.ci_high,
            "n_images": change.n_images}  # fmt: skip


def harmonize(
    export: Annotated[Path, typer.Option(help="An export with WebDataset shards.")],
    model: ModelOption,
    out: Annotated[Path, typer.Option(help="Folder for checkpoints, weights and the report.")],
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: BatchSizeOption = 8,
    lr: Annotated[float, typer.Option(min=0, help="AdamW learning rate.")] = 1e-5,
    weight: Annotated[float, typer.Option(min=0, help="Lambda of the harmonization term.")] = 1.0,
    weight_decay: Annotated[float, typer.Option(min=0, help="AdamW weight decay.")] = 0.0,
    accuracy_set: AccuracySetOption = None,
    device: DeviceOption = None,
    mixed_precision: Annotated[bool, typer.Option(help="bfloat16 autocast on CUDA.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in --out.")] = False,
    checkpoint_every: Annotated[
        int, typer.Option(min=0, help="Steps between checkpoints (0: each epoch).")
    ] = 0,
    workers: Annotated[int, typer.Option(min=0, help="Data-loading processes.")] = 0,
    freeze_classifier: Annotated[
        bool, typer.Option(help="Leave the last linear layer as it is (photos of few classes).")
    ] = False,
    seed: SeedOption = 0,
) -> None:
    """Fine-tune a model on an export's human maps (the neural harmonizer); report top-1 and
    alignment on the held-out (val) images before and after."""
    from clickme.alignment.train import HarmonizeConfig, ResumeError, harmonized_spec
    from clickme.alignment.train import harmonize as run_harmonizer
    from clickme.data import ClickMeDataset

    spec, device = _spec(model), _device(device)
    try:
        train, held_out = ClickMeDataset(export, "train"), ClickMeDataset(export, "val")
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="--export") from None
    if not len(train) or not len(held_out):
        raise typer.BadParameter(
            f"the export has {len(train)} training and {len(held_out)} held-out images: it "
            "needs both (every tenth image id is held out)",
            param_hint="--export",
        )
    config = HarmonizeConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=lr, weight=weight,
        weight_decay=weight_decay, device=device, mixed_precision=mixed_precision, seed=seed,
        checkpoint_every=checkpoint_every, workers=workers, freeze_classifier=freeze_classifier,
    )  # fmt: skip

    def measure(measured: ModelSpec) -> ModelReport:
        accuracy = None
        if accuracy_set is not None:
            with configured_session() as (session, settings):
                accuracy = _top1(session, settings, measured, accuracy_set, device, batch_size)
        return _report(measured, held_out, config, accuracy)

    before = measure(spec)
    started = time.perf_counter()
    try:
        weights = run_harmonizer(spec.build(), spec.preprocessing, train, out, config,
                                 resume=resume, progress=True)  # fmt: skip
    except ResumeError as error:
        raise typer.BadParameter(str(error), param_hint="--resume") from None
    seconds = time.perf_counter() - started
    after = measure(harmonized_spec(spec, weights))
    change = _paired_change(before, after, seed)
    report = {
        "export": str(export), "config": asdict(config), "training_images": len(train),
        "training_seconds": seconds, "accuracy_set": accuracy_set, "weights": str(weights),
        "before": asdict(before), "after": asdict(after),
        "alignment_change": change,
    }  # fmt: skip
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2))
    for label, measured in (("before", before), ("after", after)):
        top1 = "" if measured.top1 is None else f"top-1 {_percent(measured.top1)}, "
        typer.echo(
            f"{label}: {top1}alignment {measured.alignment:.3f} "
            f"[{measured.alignment_low:.3f}, {measured.alignment_high:.3f}] on "
            f"{measured.n_held_out} held-out images"
        )
    typer.echo(
        f"alignment change: {change['mean']:+.3f} [{change['ci_low']:+.3f}, "
        f"{change['ci_high']:+.3f}], paired over {change['n_images']} held-out images"
    )
    typer.echo(f"weights: {weights} ({after.model_name} {after.model_version})")
