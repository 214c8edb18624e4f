"""Reference solution of exercise 07.3 (Lesson 07). Change a setting: choose WARMUP_STEPS so that the learning rate at step 4 (counting
from 0) is exactly half the peak. Then set it in TrainConfig, rerun the lesson and look at the
schedule panel of 07_loss_curves: what do fewer or more warmup steps change?

Check your answer with: tinygrad-llm exercise check 07.3   (or: python -m pytest -m exercises)
"""

WARMUP_STEPS = 10
