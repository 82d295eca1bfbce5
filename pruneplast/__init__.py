"""pruneplast: depression as excessive synaptic pruning in a small neural network."""

__version__ = "0.1.0"
