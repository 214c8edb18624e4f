"""The course (every lesson): quick mode, the output folder, figures and the course recipe (the corpus,
tokenizer, model and training settings the lessons share), the shared figure style (``course.figures``)
and the exercises' checkers (``course.exercises``). The library below never imports it.
"""

from .settings import PROJECT_ROOT, quick_mode, output_root, output_dir, running_in_notebook, save_figure
from .recipe import (COURSE_VOCAB_SIZE, QUICK_VOCAB_SIZE, COURSE_PATTERN, course_tokenizer_path,
                     train_course_tokenizer, course_tokenizer, course_corpus, prepare_with_defaults, course_model_config,
                     course_train_config, course_checkpoint_path, course_model)
