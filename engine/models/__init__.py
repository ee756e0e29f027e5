"""Several models in one process on one accelerator budget, chosen per request.

* :mod:`engine.models.registry` -- which models a server offers (F5_MODELS, F5_MODELS_FILE);
* :mod:`engine.models.budget` -- at most F5_MAX_LOADED_MODELS of them (and other holders of device
  memory) resident at once, switched least recently used first, fairly;
* :mod:`engine.models.pool` -- one Engine per model behind that budget: ``reserve``, ``synthesize``,
  ``synthesize_stream``, ``status``;
* :mod:`engine.models.build` -- ``build_pool`` / ``pool_from_env`` at start-up.
"""
