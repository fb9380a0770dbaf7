"""Sensitivity-guided, energy-aware compression of the classifier, one module per concern:

* `sensitivity`: how much each weight tensor (and each head / channel group) can take, by the
  diagonal Fisher (`frugal.model.fisher`) and measured on labeled dev text;
* `planner`: one bit width per tensor and SRAM residency, chosen jointly by an exact MILP,
  and the sweep of candidate plans scored on dev;
* `qat`: fake quantization and recovery by quantization-aware distillation;
* `pruning`: whole attention heads and feed-forward channel groups cut out of the model;
* `variants`: the recipe of every compressed variant `compress` builds;
* `packed`: a compressed variant saved packed, loaded, and priced as it serves.

No Prefect or MLflow; only `packed` reads and writes files.
"""
