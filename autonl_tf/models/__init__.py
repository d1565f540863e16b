from autonl_tf.models.network import arch_of, build_model

__all__ = ["arch_of", "build_model"]
