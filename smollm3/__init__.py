"""What every stage shares about a SmolLM3 model (the layer between rundir/ and the stage packages): its
configuration and the HF config's RoPE and length settings, read and written in one place (hf_config.py)."""
