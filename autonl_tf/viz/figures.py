"""What every picture shares: the resolution, the atomic PNG writer, a PNG's
size from its header, and the colour that marks a stride-2 block."""

import os
import struct
from typing import Tuple, Union

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autonl_tf import io

DPI = 150
STRIDE_COLOUR = "#cb181d"


def save(fig: Figure, path: Union[str, os.PathLike]) -> str:
  """Renders with Agg and writes the PNG atomically (a reader never sees a
  half-written file, e.g. while a search keeps refreshing its pictures)."""
  path = os.fspath(path)
  parent = os.path.dirname(path)
  if parent:
    os.makedirs(parent, exist_ok=True)
  FigureCanvasAgg(fig)
  with io.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=DPI, format="png")
  return path


def png_size(path: Union[str, os.PathLike]) -> Tuple[int, int]:
  """(width, height) in pixels from a PNG's header.

  Raises:
    ValueError: the file is not a PNG.
  """
  with open(path, "rb") as f:
    head = f.read(24)
  if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
    raise ValueError(f"{os.fspath(path)} is not a PNG file")
  return struct.unpack(">II", head[16:24])
