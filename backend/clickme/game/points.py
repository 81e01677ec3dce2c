"""Packing painted points compactly: little-endian float32 x, float32 y, int32 t per point."""

import numpy as np

POINT_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("t", "<i4")])


def pack_points(points: list[tuple[float, float, int]]) -> bytes:
    return np.array(points, dtype=POINT_DTYPE).tobytes()


def unpack_points(chunks: list[bytes]) -> np.ndarray:
    """Structured array (x, y, t) of the chunks in order."""
    return np.frombuffer(b"".join(chunks), dtype=POINT_DTYPE)


def xy_of(points: np.ndarray) -> np.ndarray:
    """(N, 2) float32 native-pixel coordinates of a structured points array."""
    return np.stack([points["x"], points["y"]], axis=1).astype(np.float32, copy=False)
