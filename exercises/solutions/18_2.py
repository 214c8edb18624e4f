"""Reference solution of exercise 18.2 (Lesson 18). With Kaplan's L proportional to N^-0.076, predict the factor L(100 N) / L(N) by which the loss falls when N grows 100-fold.

Check your answer with: tinygrad-llm exercise check 18.2   (or: python -m pytest -m exercises)
"""

ANSWER = 0.7046
