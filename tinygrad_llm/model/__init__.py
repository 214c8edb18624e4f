"""Models (lessons 04-09): modules, the transformer block and the GPT, decoding, safetensors state files
and GPT-2 interop. Imports only from ``core`` and ``text``.
"""
