"""Model service functions: the database row of a registered model spec, its evaluations."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.core.db import get_or_create
from clickme.images.models import ImageSet
from clickme.models.evaluate import Accuracy
from clickme.models.models import DnnModel, ModelEvaluation
from clickme.models.registry import ModelSpec


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
