"""kws: keyword spotting with the convnet that first learns to see digits."""

__version__ = "0.1.0"
