"""nanochat: a compact GPT trainer (tokenizer -> base -> mid -> SFT -> chat), compatible with classic nanochat."""
