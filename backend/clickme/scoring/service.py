"""Model service functions: the database row of a registered model spec, its evaluations."""

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.core.db import get_or_create
from clickme.core.errors import Conflict, NotFound, Unprocessable
from clickme.images import service as images
from clickme.images.labels import class_name
from clickme.images.models import ImageSet
from clickme.images.schemas import LabelOut
from clickme.images.transform import load_rgb, to_eval_space
from clickme.scoring.evaluate import Accuracy, evaluate_accuracy
from clickme.scoring.registry import ModelSpec
from clickme.scoring.schemas import GuessOut, TryOut
from clickme.scoring.scorer import Scorer, top_guesses
from clickme.scoring.tables import DnnModel, ModelEvaluation


def ensure_model_row(session: Session, spec: ModelSpec) -> DnnModel:
    """The row for this spec's name and version, created on first use."""
    return get_or_create(
        session,
        lambda: session.scalar(
            select(DnnModel).where(DnnModel.name == spec.name, DnnModel.version == spec.version)
        ),
        lambda: DnnModel(
            name=spec.name,
            version=spec.version,
            architecture=spec.architecture,
            weights_sha256=spec.weights_sha256,
        ),
    )


def record_evaluation(
    session: Session, spec: ModelSpec, image_set_id: int, accuracy: Accuracy
) -> ModelEvaluation:
    evaluation = ModelEvaluation(
        model_name=spec.name,
        model_version=spec.version,
        image_set_id=image_set_id,
        top1=accuracy.top1,
        top5=accuracy.top5,
        n_images=accuracy.n_images,
    )
    session.add(evaluation)
    session.flush()
    return evaluation


def latest_evaluations(session: Session, spec: ModelSpec) -> list[tuple[ModelEvaluation, str]]:
    """The newest evaluation of this model version on each image set, with the set's name."""
    rows = session.execute(
        select(ModelEvaluation, ImageSet.name)
        .join(ImageSet, ImageSet.id == ModelEvaluation.image_set_id)
        .where(
            ModelEvaluation.model_name == spec.name,
            ModelEvaluation.model_version == spec.version,
        )
        .order_by(ImageSet.name, ModelEvaluation.created_at.desc(), ModelEvaluation.id.desc())
    )
    newest: dict[int, tuple[ModelEvaluation, str]] = {}
    for evaluation, set_name in rows:
        newest.setdefault(evaluation.image_set_id, (evaluation, set_name))
    return list(newest.values())


def measure_accuracy(
    session: Session,
    spec: ModelSpec,
    image_set_id: int,
    images_dir: Path,
    scorer_for: Callable[[str], Scorer],
) -> tuple[ModelEvaluation, str]:
    """Top-1 and top-5 accuracy on every image of the set, computed now and kept; with the
    set's name."""
    image_set = session.get(ImageSet, image_set_id)
    if image_set is None:
        raise NotFound("image_set_not_found", f"no image set {image_set_id}")
    items = images.labelled_files(session, image_set.id, images_dir)
    if not items:
        raise Unprocessable("image_set_empty", f"image set {image_set.name!r} has no image")
    missing = [path.name for path, _ in items if not path.is_file()]
    if missing:
        raise Conflict(
            "image_files_missing", f"{len(missing)} image files are missing, e.g. {missing[0]}"
        )
    accuracy = evaluate_accuracy(scorer_for(spec.name), items)
    evaluation = record_evaluation(session, spec, image_set.id, accuracy)
    return evaluation, image_set.name


def try_on_image(
    session: Session,
    spec: ModelSpec,
    image_id: int,
    images_dir: Path,
    scorer_for: Callable[[str], Scorer],
    top_k: int,
) -> TryOut:
    """The model's top-k on the whole image (nothing hidden), with the label's rank in it."""
    image = images.get_image(session, image_id)
    if image is None:
        raise NotFound("image_not_found", f"no image {image_id}")
    path = images.image_file_path(images_dir, image)
    if not path.is_file():
        raise NotFound("image_not_found", f"the file of image {image_id} is missing")
    pixels = to_eval_space(load_rgb(path))
    probabilities = scorer_for(spec.name).classify_batch_sync(pixels[None])[0]
    guesses = top_guesses(probabilities, top_k)
    ranks = [guess.class_index for guess in guesses]
    return TryOut(
        model_name=spec.name,
        model_version=spec.version,
        image_id=image.id,
        label=LabelOut(
            class_index=image.class_index, synset=image.synset, name=class_name(image.class_index)
        ),
        top5=[
            GuessOut(
                class_index=guess.class_index,
                name=class_name(guess.class_index),
                probability=guess.probability,
            )
            for guess in guesses
        ],
        label_rank=ranks.index(image.class_index) + 1 if image.class_index in ranks else None,
    )
