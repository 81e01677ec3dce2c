"""Alignment of DNNs with the human maps: saliency, alignment score, the neural harmonizer."""
