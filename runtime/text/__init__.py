"""CLIP's tokenizer without transformers: the BPE, the tokenizer folder's files, the tokenizer."""
