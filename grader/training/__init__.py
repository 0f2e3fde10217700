"""The training check: a short, fixed training run that shows whether a rebuilt model learns."""
