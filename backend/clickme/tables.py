"""Imports every domain's tables so that Base.metadata knows them all (Alembic, tests)."""

from clickme.accounts.models import LoginFailure, StaffSession, StaffUser
from clickme.alignment.models import AlignmentJob
from clickme.campaigns.models import Campaign, CampaignVersion, ImagePlays
from clickme.core.db import Base
from clickme.exports.models import ExportJob
from clickme.game.models import PointBatch, Round
from clickme.images.models import Image, ImageSet
from clickme.players.models import Player, PlayerExclusion, PlayerFlag
from clickme.scoring.tables import DnnModel, ModelEvaluation

__all__ = [
    "AlignmentJob",
    "Base",
    "Campaign",
    "CampaignVersion",
    "DnnModel",
    "ExportJob",
    "Image",
    "ImagePlays",
    "ImageSet",
    "LoginFailure",
    "ModelEvaluation",
    "Player",
    "PlayerExclusion",
    "PlayerFlag",
    "PointBatch",
    "Round",
    "StaffSession",
    "StaffUser",
]
