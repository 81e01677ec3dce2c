"""Staff routes for the model registry: the registered DNNs with their accuracy (staff), a try on
one image (staff), computing the accuracy on an image set (admins)."""

from typing import Annotated

from fastapi import APIRouter, Query

from clickme.accounts.deps import AdminUser, StaffMember
from clickme.core.deps import AppSettings, DbSession
from clickme.core.errors import NotFound
from clickme.scoring import service
from clickme.scoring.deps import AppRuntime
from clickme.scoring.registry import ModelSpec, get_model_spec, list_model_specs
from clickme.scoring.schemas import AccuracyRequest, EvaluationOut, ModelOut, TryOut

router = APIRouter(prefix="/api/admin/models", tags=["admin"])

TRY_TOP_K = 5


def _spec(name: str) -> ModelSpec:
    try:
        return get_model_spec(name)
    except KeyError:
        raise NotFound("model_not_found", f"no registered model {name!r}") from None


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
    evaluation, set_name = service.measure_accuracy(
        session, spec, body.image_set_id, runtime.settings.images_dir, runtime.scorer_for
    )
    return EvaluationOut.of(evaluation, set_name)


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
    return service.try_on_image(
        session, spec, image_id, runtime.settings.images_dir, runtime.scorer_for, TRY_TOP_K
    )
