"""Active learning: GP regressor, acquisition functions, scorers, ranking, oracle simulation, metrics. No torch, no Qt."""
