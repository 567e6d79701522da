"""Data sets: seeded toy generators and MNIST loaders (numpy arrays, no JAX)."""

from vmonf_jax.data.mnist import load_mnist
from vmonf_jax.data.toy import pinwheel, semi_supervised_labels, train_test, two_circles

__all__ = ["load_mnist", "pinwheel", "semi_supervised_labels", "train_test", "two_circles"]
