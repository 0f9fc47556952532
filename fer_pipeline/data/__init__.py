"""Datasets: sources that materialise raw images, the on-disk dataset layout, splits and loaders."""
