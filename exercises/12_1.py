"""Exercise 12.1 (Lesson 12). Predict the trainable parameters of a rank-8 LoRA adapter on a Linear from 128 to 384 features.

Check your answer with: tinygrad-llm exercise check 12.1   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
