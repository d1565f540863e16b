"""The checks every layer's test runs (as keras-hub's `run_layer_test`):
config round trip, output shape, weight counts, and a `.keras` file that
reloads to the same outputs."""

import keras
import numpy as np

#: The tests' shared generator; `reset_rng` (called before every test by
#: conftest.py) rewinds it, so that a test's draws do not depend on which tests
#: ran before it in its worker process.
RNG = np.random.default_rng(0)


def reset_rng(seed=0):
  RNG.bit_generator.state = np.random.default_rng(seed).bit_generator.state


def randomize(layer, rng=RNG):
  """Random non-trivial values for every weight; BN variances stay positive."""
  for w in layer.weights:
    shape = tuple(w.shape)
    if "variance" in w.path:
      w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
    else:
      w.assign(rng.normal(0, 0.5, shape).astype("float32"))


def count_params(weights):
  return sum(int(np.prod(w.shape)) for w in weights)


def run_layer_test(layer_cls, init_kwargs, input_shape, tmp_path, expected_output_shape,
                   expected_trainable_weights, expected_non_trainable_weights,
                   expected_trainable_params=None):
  """Checks `layer_cls(**init_kwargs)` on inputs of `input_shape` (without
  the batch axis):

  * `get_config` -> `from_config` and Keras (de)serialisation give the same
    config and class;
  * in a functional model, the output shape is `expected_output_shape`
    (without the batch axis) and `compute_output_shape`'s;
  * the numbers of trainable and non-trainable weights (variables) and,
    when given, of trainable parameters;
  * with every weight randomised, the model saved as `.keras` and loaded
    again gives the same outputs (inference mode), from a layer of the same
    class and config.

  Returns:
    the built layer, its weights randomised.
  """
  layer = layer_cls(**init_kwargs)
  config = layer.get_config()
  assert layer_cls.from_config(config).get_config() == config
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
  assert type(restored) is layer_cls and restored.get_config() == config

  inputs = keras.Input(input_shape)
  outputs = layer(inputs)
  assert tuple(outputs.shape) == (None,) + tuple(expected_output_shape)
  assert tuple(layer.compute_output_shape((None,) + tuple(input_shape))) == tuple(outputs.shape)
  assert len(layer.trainable_weights) == expected_trainable_weights
  assert len(layer.non_trainable_weights) == expected_non_trainable_weights
  if expected_trainable_params is not None:
    assert count_params(layer.trainable_weights) == expected_trainable_params

  randomize(layer)
  model = keras.Model(inputs, outputs)
  x = RNG.normal(size=(2,) + tuple(input_shape)).astype("float32")
  want = keras.ops.convert_to_numpy(model(x, training=False))
  path = str(tmp_path / f"{layer_cls.__name__}.keras")
  model.save(path)
  reloaded = keras.models.load_model(path)
  again = reloaded.layers[-1]
  assert type(again) is layer_cls and again.get_config() == layer.get_config()
  np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(x, training=False)), want)
  return layer
