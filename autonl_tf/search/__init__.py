"""The AutoNL search, one concept per module:

* `space`: declarative search spaces;
* `choices`: the values the search's string settings take;
* `sampling`: uniform random architectures of a space (at a MAC budget);
* `gates`: hard 0/1 gates with straight-through gradients;
* `blocks`: `SuperMBConv`, the searchable block;
* `supernet`: `SuperNet`, the `keras.Model` and its NAS `train_step`;
* `cost`: the MACs as a function of the gates, and the cost term of the loss;
* `pieces`: a space as latency-table pieces (`latency.Piece`), keyed by typed options;
* `derive`: from gates to an `Arch` (and back), `arch.txt`, `decisions.json`, child weights;
* `landing`: which visited architecture the search returns (candidates, validation,
  measured timing, the landing's record and log);
* `callbacks`: warm-up / search switch, the visited-state record, per-epoch and per-step logs;
* `config`: `SearchConfig` (every default of a search);
* `runner`: `search()`.

`space`, `sampling`, `choices` and `config` are pure Python; the names below are imported when
first used (as in the `autonl_tf` package), so that importing those four does
not load TensorFlow.
"""

from autonl_tf import lazy as _lazy

__all__, __getattr__, __dir__ = _lazy.exports(__name__, {
    "blocks": ["SuperMBConv"],
    "derive": ["copy_child_weights", "derive_arch", "write_derived"],
    "space": ["SPACES", "SearchSpace", "Stage", "get_space"],
    "supernet": ["SuperNet"]})
