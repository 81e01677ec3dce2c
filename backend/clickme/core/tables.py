"""Imports every domain's tables so that Base.metadata knows them all (Alembic, tests)."""

from clickme.campaigns.models import Campaign
from clickme.core.db import Base
from clickme.game.models import PointBatch, Round
from clickme.images.models import Image, ImageSet
from clickme.models.models import DnnModel
from clickme.players.models import Player

__all__ = ["Base", "Campaign", "DnnModel", "Image", "ImageSet", "Player", "PointBatch", "Round"]
