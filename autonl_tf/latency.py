"""Latency lookup tables: every piece of a network or search space timed as
its own tiny TFLite model with the LiteRT interpreter on this machine
(FBNet / ProxylessNAS-style tables, built for the user's own hardware).

A piece is the stem, one MBConv block (without its LightNL), one LightNL,
or the head, at its input shape. Its key names its content, not its place:
`mbconv 16x16 r1_k5_s22_e6_i24_o40_se0.25`, `lightnl 8x8x40 r0.25 s2`,
`stem 32x32 s1 c16`, `head 4x4x160 c640 k10` — so one table serves a space
and every network of it, whatever position a block lands in. The table also
holds `overhead`, the time of invoking a model that does almost nothing;
every entry includes it once, a whole network only once, so

  predicted(arch) = overhead + sum over its pieces of (entry - overhead).

Each entry is the median of `repeats` timings (after `warmup` untimed
invokes) of one invoke, with the 10th-90th percentile spread recorded. The
table file is rewritten after every entry, so a killed build keeps what it
finished and a rerun times only the rest.
"""

import dataclasses
import os
import platform
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from autonl_tf import arch as arch_lib
from autonl_tf import flops
from autonl_tf import io

__all__ = ["Piece", "arch_pieces", "space_block_pieces", "space_fixed_pieces", "space_pieces",
           "LatencyTable", "time_tflite", "piece_tflite", "build_table", "time_arch", "cpu_model",
           "machine"]

OVERHEAD = "overhead"
TABLE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Piece:
  """What one table entry times.

  kind: `stem`, `mbconv`, `lightnl`, `head` or `overhead`.
  shape: input (h, w, c).
  spec: the block (`mbconv`, without LightNL) or None.
  ratio: LightNL's channel ratio (`lightnl`).
  stride: LightNL's stride (`lightnl`) or the stem's (`stem`).
  filters: the stem's output channels (`stem`) or the head conv's (`head`).
  num_classes: the classifier's width (`head`).
  """
  kind: str
  shape: Tuple[int, int, int]
  spec: Optional[arch_lib.BlockSpec] = None
  ratio: float = 0.0
  stride: int = 1
  filters: int = 0
  num_classes: int = 0

  @property
  def key(self) -> str:
    h, w, c = self.shape
    if self.kind == "mbconv":
      return f"mbconv {h}x{w} {arch_lib.format_block(self.spec)}"
    if self.kind == "lightnl":
      return f"lightnl {h}x{w}x{c} r{self.ratio:g} s{self.stride}"
    if self.kind == "stem":
      return f"stem {h}x{w} s{self.stride} c{self.filters}"
    if self.kind == "head":
      return f"head {h}x{w}x{c} c{self.filters} k{self.num_classes}"
    return OVERHEAD


def _without_nl(spec):
  return dataclasses.replace(spec, repeats=1, nl_ratio=0.0, nl_stride=1)


def _stem_piece(input_size, stride, filters):
  return Piece("stem", (input_size, input_size, 3), stride=stride, filters=filters)


def arch_pieces(arch: arch_lib.Arch, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of the network `arch` at `input_size`, in order."""
  pieces = [_stem_piece(input_size, arch.stem_stride, arch.stem_filters)]
  h = w = flops.same_out_size(input_size, arch.stem_stride)
  c = arch.stem_filters
  for spec in arch_lib.expand_blocks(arch):
    pieces.append(Piece("mbconv", (h, w, c), _without_nl(spec)))
    h, w, c = flops.same_out_size(h, spec.strides[0]), flops.same_out_size(w, spec.strides[1]), \
        spec.out_filters
    if spec.has_nonlocal:
      pieces.append(Piece("lightnl", (h, w, c), ratio=spec.nl_ratio, stride=spec.nl_stride))
  pieces.append(Piece("head", (h, w, c), filters=arch.head_filters, num_classes=num_classes))
  return pieces


def _space_sizes(space, input_size):
  """(input size of the first searchable block, [(in size, out size)] of
  every searchable block)."""
  h = flops.same_out_size(input_size, space.stem_stride)
  if space.first_block:
    h = flops.same_out_size(h, arch_lib.parse_block(space.first_block).strides[0])
  sizes = []
  for block in space.blocks():
    sizes.append((h, flops.same_out_size(h, block[4])))
    h = sizes[-1][1]
  return sizes


def space_block_pieces(space, input_size) -> List[Dict[str, Piece]]:
  """Per searchable block of `space`: {option: Piece} with options
  `k<k>_e<e>` (the block) and `nl<r>_s<s>` (its LightNL)."""
  from autonl_tf.search.space import option_spec
  out = []
  for (h, ho), (_, _, cin, cout, stride, se, _) in zip(_space_sizes(space, input_size),
                                                        space.blocks()):
    options = {}
    for k in space.kernel_sizes:
      for e in space.expand_ratios:
        options[f"k{k}_e{e}"] = Piece("mbconv", (h, h, cin),
                                      option_spec(cin, cout, stride, se, k, e))
    for r in space.nl_ratios:
      for s in space.nl_strides:
        options[f"nl{r:g}_s{s}"] = Piece("lightnl", (ho, ho, cout), ratio=r, stride=s)
    out.append(options)
  return out


def space_fixed_pieces(space, input_size: int, num_classes: int) -> List[Piece]:
  """The pieces of `space` no decision changes: the stem, the fixed first
  block (if any) and the head."""
  pieces = [_stem_piece(input_size, space.stem_stride, space.stem_filters)]
  if space.first_block:
    h = flops.same_out_size(input_size, space.stem_stride)
    first = arch_lib.parse_block(space.first_block)
    pieces.append(Piece("mbconv", (h, h, space.stem_filters), _without_nl(first)))
  last = _space_sizes(space, input_size)[-1][1]
  pieces.append(Piece("head", (last, last, space.stages[-1].channels),
                      filters=space.head_filters, num_classes=num_classes))
  return pieces


def space_pieces(space, input_size: int, num_classes: int) -> List[Piece]:
  """Every piece any network of `space` is made of: the fixed ones and
  every option of every searchable block, each shape once."""
  pieces = space_fixed_pieces(space, input_size, num_classes)
  for options in space_block_pieces(space, input_size):
    pieces.extend(options.values())
  return list(dict((p.key, p) for p in pieces).values())


# ------------------------------------------------------------- building --

def _piece_model(piece: Piece):
  """The Keras model of one piece, batch 1."""
  import keras
  from autonl_tf.layers.lightnl import LightNL
  from autonl_tf.layers.mbconv import MBConv
  from autonl_tf.models import network
  inputs = keras.Input(shape=piece.shape, batch_size=1)
  if piece.kind == "mbconv":
    x = MBConv(piece.spec)(inputs)
  elif piece.kind == "lightnl":
    x = LightNL(piece.ratio, piece.stride)(inputs)
  elif piece.kind == "stem":
    x = network.stem(inputs, arch_lib.Arch(blocks=(), stem_stride=piece.stride,
                                           stem_filters=piece.filters))
  elif piece.kind == "head":
    x = network.head(inputs, arch_lib.Arch(blocks=(), head_filters=piece.filters),
                     piece.num_classes)
  else:  # the invoke overhead: one tiny elementwise op
    x = keras.layers.ReLU()(inputs)
  return keras.Model(inputs, x)


def _to_tflite(model, input_shape) -> bytes:
  """float32 TFLite flatbuffer of `model` (builtin ops only)."""
  import keras
  import tensorflow as tf
  with tempfile.TemporaryDirectory() as tmp:
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([1, *input_shape], tf.float32)])
    archive.write_out(tmp, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def piece_tflite(piece: Piece) -> bytes:
  import keras
  keras.backend.clear_session()
  return _to_tflite(_piece_model(piece), piece.shape)


def arch_tflite(arch: arch_lib.Arch, input_size: int, num_classes: int) -> bytes:
  """The whole network (`build_model`, no input normalisation) as TFLite."""
  import keras
  from autonl_tf.models.network import build_model
  keras.backend.clear_session()
  model = build_model(arch, (input_size, input_size, 3), num_classes)
  return _to_tflite(model, (input_size, input_size, 3))


def time_tflite(flatbuffer: bytes, threads: int, warmup: int, repeats: int) -> dict:
  """Seconds per invoke of a TFLite model on random input: median, 10th
  and 90th percentile over `repeats` invokes after `warmup`."""
  from ai_edge_litert.interpreter import Interpreter
  interp = Interpreter(model_content=flatbuffer, num_threads=threads)
  interp.allocate_tensors()
  detail = interp.get_input_details()[0]
  x = np.random.default_rng(0).standard_normal(detail["shape"]).astype(np.float32)
  interp.set_tensor(detail["index"], x)
  for _ in range(warmup):
    interp.invoke()
  samples = []
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    interp.invoke()
    samples.append(time.perf_counter() - start)
  p10, p50, p90 = np.percentile(samples, [10, 50, 90])
  return {"ms": 1e3 * float(p50), "p10_ms": 1e3 * float(p10), "p90_ms": 1e3 * float(p90),
          "repeats": len(samples)}


# ---------------------------------------------------------------- table --

def cpu_model() -> str:
  """The CPU's model name (`/proc/cpuinfo`), else what `platform` knows."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.lower().startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> dict:
  """What a timing depends on: CPU, cores, LiteRT and Python versions."""
  try:
    from importlib.metadata import version
    litert = version("ai-edge-litert")
  except Exception:  # noqa: BLE001 - recorded as unknown
    litert = "unknown"
  return {"cpu": cpu_model(), "cores": os.cpu_count(), "litert": litert,
          "python": platform.python_version()}


class LatencyTable:
  """{piece key: timing} with the settings it was measured under."""

  def __init__(self, entries=None, settings=None):
    self.entries: Dict[str, dict] = dict(entries or {})
    self.settings: dict = dict(settings or {})

  @classmethod
  def load(cls, path) -> "LatencyTable":
    try:
      data = io.read_json(path)
    except (OSError, ValueError) as e:
      raise ValueError(f"cannot read the latency table {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or \
        not isinstance(data.get("entries"), dict):
      raise ValueError(f"{path} is not a latency table (format {TABLE_FORMAT}) of "
                       f"tools/latency_table.py")
    return cls(data["entries"], data.get("settings"))

  def save(self, path):
    io.write_json(path, {"format": TABLE_FORMAT, "settings": self.settings,
                         "entries": self.entries})

  def check(self, path, **wanted):
    """Raises a ValueError naming the difference unless the table was built
    with the settings `wanted` (e.g. `input_size=32, num_classes=10`)."""
    other = {k: self.settings.get(k) for k in wanted if self.settings.get(k) != wanted[k]}
    if other:
      raise ValueError(f"the latency table {path} was built with {other}, not "
                       f"{ {k: wanted[k] for k in other} }: build a table for these")

  def entry(self, key: str) -> float:
    """The ms of entry `key` (a `Piece.key` or `OVERHEAD`)."""
    if key not in self.entries:
      raise ValueError(f"the latency table has no entry '{key}' (built for "
                       f"{self.settings.get('what', 'another space or size')})")
    return self.entries[key]["ms"]

  def ms(self, piece: Piece) -> float:
    """The entry of `piece` minus the invoke overhead."""
    return self.entry(piece.key) - self.entry(OVERHEAD)

  def predict(self, arch: arch_lib.Arch, input_size: int, num_classes: int) -> float:
    """Predicted ms of the whole network: overhead + its pieces."""
    return self.breakdown(arch, input_size, num_classes)["total"]

  def breakdown(self, arch: arch_lib.Arch, input_size: int, num_classes: int) -> dict:
    """Predicted ms per part of the network: `overhead`, `stem`, `blocks`
    (one per block of `expand_blocks`, its LightNL included), `head`, and
    their sum `total`."""
    out = {"overhead": self.entry(OVERHEAD), "blocks": []}
    for piece in arch_pieces(arch, input_size, num_classes):
      if piece.kind == "mbconv":
        out["blocks"].append(self.ms(piece))
      elif piece.kind == "lightnl":
        out["blocks"][-1] += self.ms(piece)
      else:
        out[piece.kind] = self.ms(piece)
    out["total"] = out["overhead"] + out["stem"] + sum(out["blocks"]) + out["head"]
    return out


def build_table(pieces: Sequence[Piece], path: str, settings: dict, threads: int, warmup: int,
                repeats: int, progress: Optional[Callable[[int, int, str], None]] = None,
                timer=None) -> LatencyTable:
  """Times every piece not yet in the table at `path` (created, or
  completed when it holds a build with the same settings) and rewrites the
  file after each entry."""
  timer = timer or (lambda piece: time_tflite(piece_tflite(piece), threads, warmup, repeats))
  table = LatencyTable(settings=settings)
  if os.path.exists(path):
    old = LatencyTable.load(path)
    if old.settings != settings:
      raise ValueError(f"{path} holds a table built with other settings ({old.settings}); "
                       f"remove it or pass another --out")
    table = old
  todo = [Piece("overhead", (1, 1, 8))] + list(pieces)
  todo = [p for p in todo if p.key not in table.entries]
  done = len(table.entries)
  total = done + len(todo)
  for piece in todo:
    table.entries[piece.key] = timer(piece)
    table.save(path)
    done += 1
    if progress:
      progress(done, total, piece.key)
  return table


def time_arch(arch: arch_lib.Arch, input_size: int, num_classes: int, threads: int,
              warmup: int, repeats: int) -> dict:
  """The whole network timed end to end like a table entry."""
  return time_tflite(arch_tflite(arch, input_size, num_classes), threads, warmup, repeats)
