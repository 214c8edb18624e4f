"""Reference solution of exercise 13.3 (Lesson 13). Change a setting: pick the int4 group size that stores exactly 5 bits
(0.625 bytes) per weight of a (64, 256) matrix, scales included. Then try it in the lesson's
GROUP_SIZES and find it in 13_size_vs_perplexity: what does it cost in perplexity?

Check your answer with: tinygrad-llm exercise check 13.3   (or: python -m pytest -m exercises)
"""

GROUP_SIZE = 32
