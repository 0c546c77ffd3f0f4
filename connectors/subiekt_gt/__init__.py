"""InsERT Subiekt GT as a source (``source.kind: subiekt_gt``): config, queries, rows, fake."""
