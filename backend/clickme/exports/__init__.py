"""Research exports: maps and raw rounds in NPZ, HDF5, PNG, CSV, Parquet and WebDataset."""
