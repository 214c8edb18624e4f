"""Reference solution of exercise 16.3 (Lesson 16). Predict the bytes of a (256, 512) float matrix stored as GGUF's Q8_0.

Check your answer with: tinygrad-llm exercise check 16.3   (or: python -m pytest -m exercises)
"""

ANSWER = 139264   # 256 * 512 / 32 blocks of 32 int8 codes and one float16 scale: 34 bytes each
