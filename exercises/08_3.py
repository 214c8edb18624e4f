"""Exercise 08.3 (Lesson 08). Change a setting: find the temperature at which the top token of the logits
[2, 1, 0] gets probability 0.9 (within 0.005). Then change TEMPERATURES in the lesson and look at
08_temperature: how does the bar of the top token move?

Check your answer with: tinygrad-llm exercise check 08.3   (or: python -m pytest -m exercises)
"""

TEMPERATURE = None   # your setting, a number
