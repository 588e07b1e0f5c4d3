"""Post-training on TRL: what mid-training, SFT and APO share (the recipe -> TRL config table, the dataset
mixture, local conversations for the tiny recipe), then the chat template, SFT, preference pairs and APO."""
