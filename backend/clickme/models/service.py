"""Model service functions: the database row of a registered model spec."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from clickme.models.models import DnnModel
from clickme.models.registry import ModelSpec


def ensure_model_row(session: Session, spec: ModelSpec) -> DnnModel:
    """The row for this spec's name and version, created on first use."""
    row = session.scalar(
        select(DnnModel).where(DnnModel.name == spec.name, DnnModel.version == spec.version)
    )
    if row is None:
        row = DnnModel(
            name=spec.name,
            version=spec.version,
            architecture=spec.architecture,
            weights_sha256=spec.weights_sha256,
        )
        session.add(row)
        session.flush()
    return row
