"""The training wing: recipes and their flags, losses and their balancing, the engine, run folders,
distributed launch and the jobs that train the landmark model and the detector."""
