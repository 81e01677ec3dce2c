"""Staff routes for the model registry: the registered DNNs with their accuracy (staff), a try on
one image (staff), computing the accuracy on an image set (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import ClickmeError
from clickme.images import service as images
from clickme.images.labels import class_name
from clickme.images.models import ImageSet
from clickme.images.schemas import LabelOut
from clickme.images.transform import load_rgb, to_eval_space
from clickme.models import service
from clickme.models.evaluate import evaluate_accuracy
from clickme.models.registry import ModelSpec, get_model_spec, list_model_specs
from clickme.models.schemas import AccuracyRequest, EvaluationOut, GuessOut, ModelOut, TryOut
from clickme.scoring.deps import AppRuntime
from clickme.scoring.scorer import top_guesses

router = APIRouter(prefix="/api/admin/models", tags=["admin"])

TRY_TOP_K = 5


def _spec(name: str) -> ModelSpec:
    try:
        return get_model_spec(name)
    except KeyError:
        raise ClickmeError(404, "model_not_found", f"no registered model {name!r}") from None


@router.get("")
def list_models(session: DbSession, settings: AppSettings, _staff: StaffMember) -> list[ModelOut]:
    """Every registered DNN (its database row made on first sight) with its latest accuracies."""
    return [
        ModelOut(
            id=service.ensure_model_row(session, spec).id,
            name=spec.name,
            version=spec.version,
            architecture=spec.architecture,
            backend=settings.scorer_backend,
            in_use=spec.name == settings.model,
            weights_sha256=spec.weights_sha256,
            evaluations=[
                EvaluationOut.of(evaluation, set_name)
                for evaluation, set_name in service.latest_evaluations(session, spec)
            ],
        )
        for spec in list_model_specs()
    ]


@router.post("/{name}/accuracy", status_code=201)
def compute_accuracy(
    name: str, body: AccuracyRequest, session: DbSession, runtime: AppRuntime, _admin: AdminUser
) -> EvaluationOut:
    """Top-1 and top-5 accuracy on every image of the set, computed now and kept."""
    spec = _spec(name)
    image_set = session.get(ImageSet, body.image_set_id)
    if image_set is None:
        raise ClickmeError(404, "image_set_not_found", f"no image set {body.image_set_id}")
    items = images.labelled_files(session, image_set.id, runtime.settings.images_dir)
    if not items:
        raise ClickmeError(422, "image_set_empty", f"image set {image_set.name!r} has no image")
    missing = [path.name for path, _ in items if not path.is_file()]
    if missing:
        raise ClickmeError(
            409, "image_files_missing", f"{len(missing)} image files are missing, e.g. {missing[0]}"
        )
    accuracy = evaluate_accuracy(runtime.scorer_for(spec.name), items)
    evaluation = service.record_evaluation(session, spec, image_set.id, accuracy)
    return EvaluationOut.of(evaluation, image_set.name)


@router.get("/{name}/try")
def try_model(
    name: str,
    image_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
    session: DbSession,
    runtime: AppRuntime,
    _staff: StaffMember,
) -> TryOut:
    """The model's top-5 on the whole image (nothing hidden)."""
    spec = _spec(name)
    image = images.get_image(session, image_id)
    if image is None:
        raise ClickmeError(404, "image_not_found", f"no image {image_id}")
    path = images.image_file_path(runtime.settings.images_dir, image)
    if not path.is_file():
        raise ClickmeError(404, "image_not_found", f"the file of image {image_id} is missing")
    pixels = to_eval_space(load_rgb(path))
    probabilities = runtime.scorer_for(spec.name).classify_batch_sync(pixels[None])[0]
    guesses = top_guesses(probabilities, TRY_TOP_K)
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
