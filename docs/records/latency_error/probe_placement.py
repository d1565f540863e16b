"""Issue 41 probe 2: one conversion of a network, timed from differently placed
buffers, interleaved: the converter's bytes, a file read back, copies made
after heap churn, and the file itself (model_path: TFLite mmaps it)."""
import random, sys, time, os, tempfile
import numpy as np
import keras
from ai_edge_litert.interpreter import Interpreter
from autonl_tf.latency import timing
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space

threads, name, R = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(41)
archs = {f"random-{i + 1}": sampling.sample_arch(get_space("cifar"), rng) for i in range(20)}
keras.utils.set_random_seed(1000)
flat = timing.arch_tflite(archs[name], 32, 10)
path = os.path.join(tempfile.mkdtemp(), "m.tflite")
open(path, "wb").write(flat)
read = open(path, "rb").read()
junk = [bytes(np.random.default_rng(i).integers(0, 255, 3_000_000 + 4096 * i, dtype=np.uint8)) for i in range(8)]
heap = []
for i in range(3):
  heap.append(bytes(bytearray(flat)))
  junk.append(bytes(1000 * (i + 1)))

def fastest(make):
  it = make(); it.allocate_tensors()
  d = it.get_input_details()[0]
  it.set_tensor(d["index"], np.random.default_rng(0).standard_normal(d["shape"]).astype(np.float32))
  for _ in range(20): it.invoke()
  s = []
  t0 = time.perf_counter()
  while len(s) < 100 or time.perf_counter() - t0 < 1.0:
    a = time.perf_counter(); it.invoke(); s.append(time.perf_counter() - a)
  return 1e3 * min(s)

sources = {"converter bytes": lambda: Interpreter(model_content=flat, num_threads=threads),
           "file read": lambda: Interpreter(model_content=read, num_threads=threads),
           **{f"heap copy {i}": (lambda b=b: Interpreter(model_content=b, num_threads=threads)) for i, b in enumerate(heap)},
           "model_path": lambda: Interpreter(model_path=path, num_threads=threads)}
ms = {k: [] for k in sources}
for r in range(R):
  for k, make in sources.items():
    ms[k].append(fastest(make))
addr = {"converter bytes": id(flat), "file read": id(read), **{f"heap copy {i}": id(b) for i, b in enumerate(heap)}}
for k in sources:
  print(f"{k:16s} {addr.get(k, 0):#x}: " + ", ".join(f"{m:.3f}" for m in ms[k]), flush=True)
