"""PCA, 2-D projection, anomaly detectors, similarity search, clustering, the store-building pipeline. No torch, no Qt."""
