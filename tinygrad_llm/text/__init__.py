"""Text (lessons 02-03): simple tokenizers, byte-level BPE and its split patterns, tokenizer file formats,
the corpus and the token-array data pipeline. Imports only from ``core``.
"""
