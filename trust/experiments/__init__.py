"""One module per question: a frozen ``Config``, ``run(config) -> (results, arrays)``."""
