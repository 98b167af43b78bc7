"""Export trained models to formats other tools read.

* :mod:`.core` - the spiking core of a model as plain arrays (affine maps, LIF populations,
  the leaky readout), with batch normalisation folded in and everything that cannot be
  written exactly refused by name.
* :mod:`.nir` - the Neuromorphic Intermediate Representation (NIR): :func:`~.nir.to_nir`,
  :func:`~.nir.write_nir`, and :func:`~.nir.from_nir`, which rebuilds sparse's own layers from
  a NIR graph. Needs the optional ``nir`` package (the ``nir`` extra).
* :mod:`.checkpoint` - :func:`~.checkpoint.export_checkpoint`: the model of a checkpoint to a
  file.
* :mod:`.cli` - ``sparse export CHECKPOINT --format nir OUT.nir`` (argument parsing only).

Nothing here is imported by ``import sparse``; see ``docs/export.md`` for the mapping.
"""
