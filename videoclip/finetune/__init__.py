"""Fine-tuning on the downstream tasks (design §10): the paper's supervised rows.

=================  ====================================================================
module             what
=================  ====================================================================
``examples``       training items per task, windows and targets, fixed batches
``heads``          COIN's classifier head; the module that computes each task's loss
``loop``           config, the training loop (pre-training's machinery), the CLI
``evaluate``       scoring after fine-tuning (zero-shot evaluators; COIN by its head)
``selection``      the original's test-set selection and the last epoch, labelled
=================  ====================================================================
"""
