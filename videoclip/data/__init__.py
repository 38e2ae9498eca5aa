"""Data: feature stores, HowTo100M captions, clip samplers, the simulated world, benchmark loaders.

Import the submodules directly (``from videoclip.data.features import open_feature_store``);
this package imports nothing eagerly.
"""
