"""Issue 41 probe: are the slow in-pass timings of some networks a property of
one conversion (its random weights), e.g. subnormal floats in its tensors?
For the named seed-41 cifar test networks: convert K times (new random
weights each time), time each conversion at --threads (fastest of 100 after
20, best of 3 fresh interpreters), count subnormal values over every tensor
of one invoke (weights and activations)."""
import random, sys, time
import numpy as np
import keras
from autonl_tf.latency import timing
from autonl_tf.search import sampling
from autonl_tf.search.space import get_space

threads = int(sys.argv[1]); names = sys.argv[2].split(","); K = int(sys.argv[3])
rng = random.Random(41)
space = get_space("cifar")
archs = {f"random-{i + 1}": sampling.sample_arch(space, rng) for i in range(20)}
tiny = np.finfo(np.float32).tiny

def subnormals(flat):
  from ai_edge_litert.interpreter import Interpreter
  it = Interpreter(model_content=flat, num_threads=1, experimental_preserve_all_tensors=True)
  it.allocate_tensors()
  d = it.get_input_details()[0]
  it.set_tensor(d["index"], np.random.default_rng(0).standard_normal(d["shape"]).astype(np.float32))
  it.invoke()
  count, where = 0, {}
  for t in it.get_tensor_details():
    try:
      a = it.get_tensor(t["index"])
    except ValueError:
      continue
    if a.dtype != np.float32:
      continue
    n = int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))
    if n:
      where[t["name"][-60:]] = (n, a.size)
      count += n
  return count, where

for name in names:
  for k in range(K):
    keras.utils.set_random_seed(1000 + k)
    flat = timing.arch_tflite(archs[name], 32, 10)
    ms = [timing.time_tflite(flat, threads, 20, 100)["ms"] for _ in range(3)]
    n, where = subnormals(flat)
    top = sorted(where.items(), key=lambda kv: -kv[1][0])[:4]
    print(f"{name} conversion {k}: {min(ms):.3f} ms (passes {', '.join(f'{m:.3f}' for m in ms)}), "
          f"subnormal values {n}: {top}", flush=True)
