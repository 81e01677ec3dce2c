"""Views composed with torch where the DNN runs (a GPU worker): the masks of a whole batch drawn
at once on the device, to the same geometry as ``clickme.scoring.reveal`` (equal within one grey
level, and the shares revealed within 1e-6: float32 rounding differs)."""

import numpy as np
import torch

from clickme.images.transform import EVAL_SIZE
from clickme.scoring.reveal import PreparedImage, RevealView

_POINTS_PER_CHUNK = 64  # bounds the memory of one pass: batch x chunk x 224 x 224 float32
_FAR = 1e9  # padding for views with fewer points: beyond any bubble


def _centres(
    prepared: list[PreparedImage], views: list[RevealView]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, N, 2) evaluation-crop centres padded far away, and each view's radius and fade width
    there (float32)."""
    longest = max(1, *(len(view.points) for view in views))
    centres = np.full((len(views), longest, 2), _FAR, dtype=np.float32)
    radii = np.empty(len(views), dtype=np.float32)
    fades = np.empty(len(views), dtype=np.float32)
    for i, (image, view) in enumerate(zip(prepared, views, strict=True)):
        points = np.asarray(view.points, dtype=np.float32).reshape(-1, 2)
        centres[i, : len(points)] = image.geometry.to_eval(points)
        radii[i] = view.rule.radius_px(image.width, image.height) * image.geometry.scale
        fades[i] = radii[i] * view.rule.softness
    return centres, radii, fades


def compose_views(
    prepared: list[PreparedImage], views: list[RevealView], device: str | torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (B, 224, 224, 3): each view as ``compose(prepared, render_mask(...))`` makes it;
    and float64 (B,): the share each reveals (``revealed_fraction`` of its mask)."""
    centres, radii, fades = _centres(prepared, views)
    with torch.no_grad():
        grid = torch.arange(EVAL_SIZE, device=device, dtype=torch.float32) + 0.5
        points = torch.from_numpy(centres).to(device)
        nearest = torch.full((len(views), EVAL_SIZE, EVAL_SIZE), float("inf"), device=device)
        for start in range(0, points.shape[1], _POINTS_PER_CHUNK):
            chunk = points[:, start : start + _POINTS_PER_CHUNK]
            dx2 = (grid[None, None, :] - chunk[:, :, 0:1]) ** 2  # (B, n, 224) by column
            dy2 = (grid[None, None, :] - chunk[:, :, 1:2]) ** 2  # (B, n, 224) by row
            squared = dy2[:, :, :, None] + dx2[:, :, None, :]
            nearest = torch.minimum(nearest, squared.amin(dim=1))
        distance = nearest.sqrt()
        radius = torch.from_numpy(radii).to(device)[:, None, None]
        fade = torch.from_numpy(fades).to(device)[:, None, None]
        soft = ((radius - distance) / fade.clamp_min(1e-30)).clamp(0, 1)
        mask = torch.where(fade > 0, soft, (distance <= radius).float())
        background = torch.from_numpy(np.stack([p.background for p in prepared])).to(device)
        delta = torch.from_numpy(np.stack([p.reveal_delta for p in prepared])).to(device)
        composed = (mask[..., None] * delta + background.float()).round()
        revealed = mask.double().mean(dim=(1, 2))
        return composed.clamp(0, 255).to(torch.uint8).cpu().numpy(), revealed.cpu().numpy()
