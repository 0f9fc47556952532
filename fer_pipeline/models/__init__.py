"""Models: pure ``nn.Module`` backbones and hybrids, and the LightningModule that trains them."""
