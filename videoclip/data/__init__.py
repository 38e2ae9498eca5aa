"""Data: feature stores, HowTo100M captions, clip samplers, benchmark loaders:
readers of the official formats (the simulated world that writes them is :mod:`videoclip.sim`).

Import the submodules directly (``from videoclip.data.features import open_feature_store``);
this package imports nothing eagerly.
"""
