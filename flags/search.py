"""Flags of tools/search.py."""

from absl import flags

from autonl_tf.arch import ACTIVATIONS, NL_NORMS
from autonl_tf.search import choices
from flags import common

FLAGS = flags.FLAGS


def define_search_flags():
  common.define_data_flags()
  common.define_distribute_flags()
  common.define_recipe_flag()
  flags.DEFINE_string("space", None,
                      "Search space: autonl-imagenet (224px), autonl-cifar (the same macro with "
                      "a stride-1 stem, 32px), cifar (32px, autonl-s-cifar's macro), cifar13 "
                      "(32px, shallower) or tiny. Default: cifar up to --input_size=64, "
                      "autonl-imagenet above.")
  flags.DEFINE_float("width_multiplier", 1.0, "Every channel count of the space times this "
                     "(rounded to multiples of 8; 0.5: about a quarter of the MACs).")
  flags.DEFINE_enum("activation", "swish", list(ACTIVATIONS),
                    "Activation of every network of the space (swish: the paper's; hard_swish "
                    "and relu6 run faster on CPUs), on the derived arch.txt's #! line.")
  flags.DEFINE_enum("nl_norm", None, list(NL_NORMS),
                    "LightNL's product in every network of the space (none: the paper's, cubic "
                    "in its input; second_moment: divided by the image's mean square), on the "
                    "derived arch.txt's #! line. Default: the space's own (second_moment in "
                    "the 32px spaces cifar, cifar13 and autonl-cifar, none elsewhere).")
  flags.DEFINE_integer("input_size", 224, "Input image height and width.")
  flags.DEFINE_integer("num_classes", 1000, "Classes (synthetic data only; datasets bring theirs).")
  flags.DEFINE_string("model_dir", None, "Output directory.")
  flags.DEFINE_integer("epochs", 10, "Search epochs (warm-up included).")
  flags.DEFINE_integer("warmup_epochs", 2, "Epochs with the cost off, arch frozen, gate dropout.")
  flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: one pass).")
  flags.DEFINE_integer("batch_size", 128, "Global batch size.")
  flags.DEFINE_enum("cost", "log", list(choices.COST_MODES),
                    "log: a fixed price --lambda on the cost (MACs, or ms with "
                    "--cost_model=latency); target: the price adapts until the derived network "
                    "is within --tolerance of --target_macs (or --target_latency_ms).")
  flags.DEFINE_float("target_macs", None, "MAC budget of --cost=target (e.g. 3e8).")
  flags.DEFINE_enum("cost_model", "macs", list(choices.COST_MODELS),
                    "What the cost prices: macs, or latency, the ms that --latency_table "
                    "predicts on the machine it was built on.")
  flags.DEFINE_string("latency_table", None, "A table of tools/latency_table.py for this "
                      "--space, --width_multiplier, --input_size and classes (needed by "
                      "--cost_model=latency).")
  flags.DEFINE_float("target_latency_ms", None, "Latency budget (predicted ms) of --cost=target "
                     "with --cost_model=latency.")
  flags.DEFINE_float("lambda", None, "Price of the cost: weight of its normalised force "
                     "against the cross-entropy's (default 0.5 with --cost=log; with "
                     "--cost=target its start value, default 0).")
  flags.DEFINE_float("dual_lr", 0.01, "Step of lambda in target mode (times the relative excess).")
  flags.DEFINE_float("tolerance", 0.03, "Target mode: relative band around the target where "
                     "lambda holds and from which the landing picks the architecture.")
  flags.DEFINE_float("penalty", 1.0, "Target mode: proportional part of the price, "
                     "penalty * (cost / target - 1).")
  flags.DEFINE_float("margin", 0.1, "Every decision's distance from flipping (log units) "
                     "when the search proper starts.")
  flags.DEFINE_enum("decision_value", "logit", list(choices.DECISION_VALUES),
                    "What a kernel, expansion, skip or LightNL decision compares with its "
                    "learnable threshold: logit, nothing: the threshold is a logit moved by its "
                    "gradient alone; or weight_norm, the log RMS of its weights (Single-Path "
                    "NAS, the paper's; its weights are followed by batch norm, so their common "
                    "scale, invisible to the loss, drifts with weight decay whatever the "
                    "decision is worth).")
  flags.DEFINE_integer("landing_candidates", 5, "Target mode: the most visited architectures "
                       "within tolerance evaluated on the validation split; the most accurate "
                       "is derived.")
  flags.DEFINE_enum("landing_latency", "table", list(choices.LANDING_LATENCIES),
                    "--cost_model=latency, target mode: what the landing holds to the target: "
                    "the table's predicted ms, or 'measured': candidates timed end to end on "
                    "this machine (which must be the table's), the most accurate of those "
                    "measured within --tolerance derived.")
  flags.DEFINE_float("landing_window", None, "--landing_latency=measured: states visited within "
                     "this relative distance of the target (predicted) are the candidates "
                     "timed (--landing_candidates of them, nearest the target first; default "
                     "0.1).")
  flags.DEFINE_integer("validation_steps", None, "Batches of that evaluation (default: all).")
  flags.DEFINE_enum("optimizer", "rmsprop", ["rmsprop", "sgd", "adam"],
                    "Weight optimizer: rmsprop (TF1-style, the paper's) or sgd.")
  flags.DEFINE_float("momentum", 0.9, "Momentum of the weight optimizer.")
  flags.DEFINE_bool("nesterov", False, "Nesterov momentum (sgd).")
  flags.DEFINE_float("lr", 0.032, "Weight learning rate per 256 images (cosine).")
  flags.DEFINE_float("lr_warmup_epochs", 1.0, "Linear warm-up of the weight learning rate.")
  flags.DEFINE_float("arch_lr", 0.005, "Architecture learning rate (SGD on the normalised force, "
                     "cosine over the search proper).")
  flags.DEFINE_float("weight_decay", 1e-5, "L2 on conv/dense kernels.")
  flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing of the cross-entropy.")
  flags.DEFINE_float("gate_dropout", 0.1, "Warm-up gate dropout probability.")
  flags.DEFINE_bool("jit_compile", False, "XLA-compile the search step.")
  flags.DEFINE_integer("verbose", 2, "Keras progress output.")
  flags.mark_flag_as_required("model_dir")


# flag -> SearchConfig field, for the flags a recipe sets.
_RECIPE_FLAGS = {
    "optimizer": "optimizer", "momentum": "momentum", "nesterov": "nesterov", "lr": "lr",
    "lr_warmup_epochs": "lr_warmup_epochs", "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing",
}


def search_config_from_flags():
  from autonl_tf.search.runner import SearchConfig
  from autonl_tf.search.space import default_space
  return SearchConfig(
      space=FLAGS.space or default_space(FLAGS.input_size),
      width_multiplier=FLAGS.width_multiplier, activation=FLAGS.activation, nl_norm=FLAGS.nl_norm,
      data=common.data_config_from_flags(common.synthetic_classes()),
      model_dir=FLAGS.model_dir, epochs=FLAGS.epochs, warmup_epochs=FLAGS.warmup_epochs,
      steps_per_epoch=FLAGS.steps_per_epoch, batch_size=FLAGS.batch_size, cost=FLAGS.cost,
      target_macs=FLAGS.target_macs, cost_model=FLAGS.cost_model,
      latency_table=FLAGS.latency_table, target_latency_ms=FLAGS.target_latency_ms,
      lam=FLAGS["lambda"].value, dual_lr=FLAGS.dual_lr,
      tolerance=FLAGS.tolerance, penalty=FLAGS.penalty, margin=FLAGS.margin,
      decision_value=FLAGS.decision_value,
      landing_candidates=FLAGS.landing_candidates, landing_latency=FLAGS.landing_latency,
      landing_window=FLAGS.landing_window, validation_steps=FLAGS.validation_steps,
      arch_lr=FLAGS.arch_lr,
      gate_dropout=FLAGS.gate_dropout, jit_compile=FLAGS.jit_compile, precision=FLAGS.precision,
      sync_bn=FLAGS.sync_bn, verbose=FLAGS.verbose,
      **common.recipe_fields("search", _RECIPE_FLAGS))
