"""Scene graph generation (Neural Motifs + self-supervised relation alignment) in pure PyTorch."""
__version__ = "0.1.0"
