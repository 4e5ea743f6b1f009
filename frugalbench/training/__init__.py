"""Training under budget: the harness trains a submission on a budgeted subset and annotation type.

    record = train_submission(Path('submissions/x'), TrainOptions(images=10, annotation='points'))

The training runs in a limited child process (MMEngine's Runner), resumes after interruptions
from checkpoints in a work folder outside the submission, and ends with a plain state-dict
checkpoint and a training record (``training_record.json`` and the ``trainings`` table) whose
data and annotation budget is marked verified.
"""
from frugalbench.training.config import Schedule, resolve_schedule
from frugalbench.training.record import RECORD_FILE, Totals, TrainingRecord
from frugalbench.training.run import TrainOptions, load_for_training, train_submission, training_folder
from frugalbench.store.trainings import (
    TRAININGS_MIGRATION_DESCRIPTION,
    TRAININGS_MIGRATION_SQL,
    latest_training,
    save_training,
)

__all__ = [
    'RECORD_FILE', 'Schedule', 'TRAININGS_MIGRATION_DESCRIPTION', 'TRAININGS_MIGRATION_SQL', 'Totals',
    'TrainOptions', 'TrainingRecord', 'latest_training', 'load_for_training', 'resolve_schedule',
    'save_training', 'train_submission', 'training_folder',
]
