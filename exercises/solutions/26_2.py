"""Reference solution of exercise 26.2 (Lesson 26). The policy starts equal to the reference: predict the DPO loss of any batch at that point.

Check your answer with: tinygrad-llm exercise check 26.2   (or: python -m pytest -m exercises)
"""

ANSWER = 0.6931
