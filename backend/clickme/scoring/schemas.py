"""Admin API schemas for the model registry: models, accuracy, a try on one image."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from clickme.images.schemas import LabelOut
from clickme.scoring.tables import ModelEvaluation


class EvaluationOut(BaseModel):
    model_name: str
    model_version: str
    image_set_id: int
    image_set: str
    top1: float
    top5: float
    n_images: int
    created_at: datetime

    @classmethod
    def of(cls, evaluation: ModelEvaluation, image_set_name: str) -> "EvaluationOut":
        return cls(
            model_name=evaluation.model_name,
            model_version=evaluation.model_version,
            image_set_id=evaluation.image_set_id,
            image_set=image_set_name,
            top1=evaluation.top1,
            top5=evaluation.top5,
            n_images=evaluation.n_images,
            created_at=evaluation.created_at,
        )


class ModelOut(BaseModel):
    id: int  # the model row campaigns refer to (model_id)
    name: str
    version: str
    architecture: str
    backend: str
    in_use: bool  # the DNN this server plays with (CLICKME_MODEL)
    weights_sha256: str
    evaluations: list[EvaluationOut]


class AccuracyRequest(BaseModel):
    image_set_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class GuessOut(BaseModel):
    class_index: int
    name: str
    probability: float


class TryOut(BaseModel):
    model_name: str
    model_version: str
    image_id: int
    label: LabelOut
    top5: list[GuessOut]
    label_rank: int | None  # 1 to 5 when the label is among the guesses
