"""The engine (lesson 01, attention kernels lesson 05): the Tensor and its graph, the functional ops with
their fused and composed twins, gradient checking, the thread pool for elementwise work, and the
argument checks every other area uses. Imports nothing from the package above it.
"""
