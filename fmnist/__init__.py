"""fmnist: a Hydra experiment framework for ResNet studies on Fashion-MNIST."""

__version__ = "0.1.0"
