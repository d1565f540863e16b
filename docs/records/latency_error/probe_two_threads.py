"""Issue 41, second round: is the 2-thread spread per interpreter or over time?
(A) one interpreter, 30 windows of 100 invokes; (B) 30 fresh interpreters, 100 invokes each.
Both at 2 threads, then (B) at 1 thread; idle machine (study stopped, lock held)."""
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def interp(flat, threads):
  it = Interpreter(model_content=flat, num_threads=threads)
  it.allocate_tensors()
  d = it.get_input_details()[0]
  it.set_tensor(d["index"], np.random.default_rng(0).standard_normal(d["shape"]).astype(np.float32))
  for _ in range(20):
    it.invoke()
  return it

def window(it, n=100):
  s = []
  for _ in range(n):
    t = time.perf_counter(); it.invoke(); s.append(time.perf_counter() - t)
  return 1e3 * min(s), 1e3 * float(np.median(s))

out = {}
for path in sys.argv[1:]:
  flat = open(path, "rb").read()
  it = interp(flat, 2)
  a = [window(it) for _ in range(30)]
  del it
  b = [window(interp(flat, 2)) for _ in range(30)]
  c = [window(interp(flat, 1)) for _ in range(10)]
  out[path] = {"one_interp_t2": a, "fresh_t2": b, "fresh_t1": c}
  for k, v in out[path].items():
    m = [x[0] for x in v]
    print(path.split("/")[-2][:5], path.split("/")[-1], k, "fastest min %.3f med %.3f max %.3f" % (min(m), float(np.median(m)), max(m)),
          " ".join("%.2f" % x for x in m), flush=True)
json.dump(out, open("/root/autonl-runs/l41/probe2.json", "w"))
