"""The ground every other wing stands on, torch-free: tasks declared as data, crop geometry, image and
input reading, typed records, checked config fields and atomic files."""
