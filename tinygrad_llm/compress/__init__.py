"""Compression (lessons 13, 15 and 16): quantization and its files, calibration,
QAT, QLoRA, low-precision floats, GPTQ and AWQ, the GGUF export, distillation. Imports from
``finetune`` and the areas below it; pruning and sparse storage are the sibling area ``sparsity``.
"""
