"""The data stage: datatrove pipelines that build every source of the stage mixtures as tokenized folders.

stage (the stage, `make data`), sources (a mixture source -> a datatrove reader), corpora (the tiny recipe's
local corpora), tokenizer (Hub, local or built BPE), blocks (small datatrove pipeline steps), mixture (the
seeded sampler nanotron reads a stage's mixture through), report (`make data-report`).
"""
