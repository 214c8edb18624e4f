"""Exercise 06.1 (Lesson 06). Predict the parameter count of GPTConfig(vocab_size=100, context_length=16, d_model=32,
n_layer=2, n_head=2) (biases on, the output head tied to the token embedding).

Check your answer with: tinygrad-llm exercise check 06.1   (or: python -m pytest -m exercises)
"""

ANSWER = None   # your prediction, a number
