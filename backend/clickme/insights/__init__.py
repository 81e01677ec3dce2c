"""What staff look at: campaign progress and pictures, reliability panels, player quality,
flags and the review table; read-side, above the maps."""
