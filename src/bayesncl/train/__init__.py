"""The Lightning training layer: data module, LightningModule, optimiser and the ``fit`` runner."""
