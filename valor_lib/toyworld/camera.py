"""The toy world's pinhole camera: level, at a known height over a flat floor.

World frame: X to the right, Y up (floor at Y=0), Z forward (depth). The camera sits at (0, height, 0)
looking along +Z; its principal point is above the image centre so the floor fills most of the frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Camera:
    """Intrinsics and mounting height; all scenes of one toy world share one camera."""

    width: int = 256
    height: int = 192
    focal: float = 220.0
    cx: float = 128.0
    cy: float = 56.0
    mount_height: float = 1.5

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel (u, v) of world point (x, y, z); z must be positive."""
        if z <= 0:
            raise ValueError(f"point behind the camera (z={z})")
        return self.cx + self.focal * x / z, self.cy + self.focal * (self.mount_height - y) / z

    def floor_depth(self, v: float) -> float:
        """Depth of the floor point seen at image row ``v`` (inf at or above the horizon)."""
        below = v - self.cy
        return float("inf") if below <= 0 else self.focal * self.mount_height / below

    def floor_row(self, z: float) -> float:
        """Image row where the floor at depth ``z`` appears."""
        return self.cy + self.focal * self.mount_height / z

    def metric_width(self, pixels: float, z: float) -> float:
        """Metric length at depth ``z`` of a horizontal span of ``pixels``."""
        return pixels * z / self.focal

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
