"""Pretraining: nanotron glue for the SmolLM3 recipe (model, compatibility layer, conversion)."""
