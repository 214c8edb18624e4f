"""Fine-tuning (lessons 10-12): the topic-classification task and its baselines, classifier heads,
instruction data and tuning, LoRA, prompt tuning and bottleneck adapters. Imports from the areas below:
``core`` < ``text`` < ``model`` < ``train`` · ``evaluate`` · ``scale``.
"""
