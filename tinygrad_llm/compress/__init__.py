"""Compression (lessons 13-15): quantization and its files, calibration, QAT, QLoRA, low-precision
floats, pruning and sparse storage, distillation. Imports from ``finetune`` and the areas below it.
"""
