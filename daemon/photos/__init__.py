"""The photo collection for training and evaluation: catalogue, manifest and split, fetching, writing, assembly."""
