"""What scripts/demo.py and scripts/ablation_table.py are made of: the demo's training recipe and its
synthetic validation set (`recipe`), running train.py and eval_davis.py as a person would and scoring
the results (`runs`), and the demo's pictures (`pictures`)."""
