"""The course (every lesson): quick mode, the output folder, figures and the course recipe (the corpus,
tokenizer, model and training settings the lessons share). The library below never imports it.
"""

from .settings import PROJECT_ROOT, quick_mode, output_dir, save_figure
