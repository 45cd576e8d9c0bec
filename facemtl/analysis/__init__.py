"""A photo's faces at run time: the analyzer (detector → crops → network → faces), the landmark passes
and their combination, test-time views, drawing. Imports nothing from training."""
